// Explanation methods: Grad-CAM, HiResCAM and LayerCAM against maps computed by hand on a tiny
// network, LayerCAM at layers of a residual network against the probe's activations and gradients,
// the captured gradient against hooks and finite differences, batching and chunking, safe
// normalisation, and misuse.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/explain/gradcam.hpp"
#include "cnnlite/explain/hirescam.hpp"
#include "cnnlite/explain/layercam.hpp"
#include "cnnlite/nn/add.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/relu.hpp"
#include "source_dir.hpp"

namespace test_explain {

using namespace cnnlite;
using namespace cnnlite::explain;

namespace {

const FashionMnist& fixture() {
    static const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    return data;
}

template <class T>
Tensor<T> fixture_images(std::int64_t first, std::int64_t count) {
    const Tensor<float> x = fixture().test.images().rows(first, count);
    if constexpr (std::is_same<T, float>::value) return x.clone();
    else return x.template cast<T>();
}

// Input 1x3x3 -> Conv2D(2 filters, 2x2, valid, relu) -> [2, 2, 2] -> Flatten -> Dense(2) logits.
// With the input below, A0 = [[2, 5], [0, 2]] and A1 = [[2, 0], [0, 3]] (negatives clipped),
// logits S0 = A0[0,0] + A1[1,1] = 5 and S1 = 0.5 * A0[0,1] - A1[0,0] = 0.5.
template <class T>
Sequential<T> tiny_network(bool softmax_output) {
    Sequential<T> model(Shape{1, 3, 3});
    model.add(Conv2D<T>(2, 2).activation("relu"));
    model.add(Flatten<T>());
    model.add(Dense<T>(2).activation(softmax_output ? "softmax" : "linear"));
    auto p = model.parameters();
    p[0].variable.value() = Tensor<T>::from(Shape{2, 1, 2, 2}, {1, 0, 0, 1, /**/ 0, 1, -1, 0});
    p[1].variable.value().fill(0);
    p[2].variable.value() = Tensor<T>::from(Shape{2, 8}, {1, 0, 0, 0, 0, 0, 0, 1, /**/ 0, 0.5, 0, 0, -1, 0, 0, 0});
    p[3].variable.value().fill(0);
    return model;
}

template <class T>
Tensor<T> tiny_input() {
    return Tensor<T>::from(Shape{1, 1, 3, 3}, {1, 2, 0, 0, 1, 3, 2, 0, 1});
}

template <class T>
void check_close(const Tensor<T>& got, const std::vector<double>& want, double tolerance = 1e-6) {
    REQUIRE(got.numel() == static_cast<std::int64_t>(want.size()));
    for (std::int64_t i = 0; i < got.numel(); ++i) {
        INFO("element ", i);
        CHECK(static_cast<double>(got[i]) == doctest::Approx(want[static_cast<std::size_t>(i)]).epsilon(tolerance));
    }
}

CamOptions raw_options(Score score) {
    CamOptions o;
    o.score = score;
    o.post = PostProcess::raw();
    return o;
}

}  // namespace

TEST_CASE("Grad-CAM on a hand-set network matches the maps computed by hand") {
    const auto model = tiny_network<float>(false);
    const auto x = tiny_input<float>();

    SUBCASE("logit of the predicted class (0): g0 = [[1,0],[0,0]], g1 = [[0,0],[0,1]], alpha = 1/4, 1/4") {
        const Explanation raw = grad_cam(model, x, raw_options(Score::logit));
        CHECK(raw.layer == "conv2d");
        CHECK(raw.predicted == std::vector<int>{0});
        CHECK(raw.targets == std::vector<int>{0});
        CHECK(raw.maps.shape() == Shape{1, 2, 2});
        check_close(raw.maps, {1.0, 1.25, 0.0, 1.25});  // (A0 + A1) / 4

        CamOptions o;
        o.score = Score::logit;
        const Explanation full = grad_cam(model, x, o);
        // Divided by its max 1.25 -> [[0.8, 1], [0, 1]], then bilinear 2x2 -> 3x3 with half-pixel
        // centres: the middle row and column are the averages of their neighbours.
        CHECK(full.maps.shape() == Shape{1, 3, 3});
        check_close(full.maps, {0.8, 0.9, 1.0, 0.4, 0.7, 1.0, 0.0, 0.5, 1.0});
    }
    SUBCASE("logit of class 1: alpha = (0.5/4, -1/4), map = A0/8 - A1/4 = [[-0.25, 0.625], [0, -0.5]]") {
        CamOptions o = raw_options(Score::logit);
        o.target = Target::same_class(1);
        check_close(grad_cam(model, x, o).maps, {-0.25, 0.625, 0.0, -0.5});
        o.post.relu = true;
        o.post.normalization = Normalization::max;
        check_close(grad_cam(model, x, o).maps, {0.0, 1.0, 0.0, 0.0});
    }
    SUBCASE("softmax probability: g = p0 p1 (W0 - W1), so alpha = p0 p1 (1/8, 1/2)") {
        const double p0 = 1 / (1 + std::exp(0.5 - 5.0)), p1 = 1 - p0;
        const Explanation raw = grad_cam(model, x, raw_options(Score::probability));
        const double s = p0 * p1;
        check_close(raw.maps, {s * 1.25, s * 0.625, 0.0, s * 1.75}, 1e-5);
        CHECK(raw.probabilities[0] == doctest::Approx(p0));
        CamOptions o;
        o.post.upsample = false;
        check_close(grad_cam(model, x, o).maps, {1.25 / 1.75, 0.625 / 1.75, 0.0, 1.0}, 1e-5);
    }
    SUBCASE("a model ending in softmax gives the same maps (its logits are used, then softmax)") {
        const auto with_softmax = tiny_network<float>(true);
        for (Score score : {Score::logit, Score::probability}) {
            const Tensor<float> a = grad_cam(model, x, raw_options(score)).maps;
            const Tensor<float> b = grad_cam(with_softmax, x, raw_options(score)).maps;
            for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == b[i]);
        }
    }
}

TEST_CASE("Grad-CAM at a named feature-map layer that is not a convolution: a ReLU after the conv gives the conv's maps") {
    // The same network with a ReLU layer between the (already rectified) convolution and
    // Flatten: the ReLU changes no value, and the gradient at its output is the gradient at the
    // convolution's output, so both layers' maps are (A0 + A1) / 4.
    Sequential<float> model(Shape{1, 3, 3});
    model.add(Conv2D<float>(2, 2).activation("relu"));
    model.add(ReLU<float>());
    model.add(Flatten<float>());
    model.add(Dense<float>(2));
    const Sequential<float> reference = tiny_network<float>(false);
    auto p = model.parameters();
    const auto q = reference.parameters();
    for (std::size_t i = 0; i < p.size(); ++i) p[i].variable.value().copy_from(q[i].variable.value());
    CamOptions o = raw_options(Score::logit);
    o.layer = "re_lu";
    const Explanation at_relu = grad_cam(model, tiny_input<float>(), o);
    CHECK(at_relu.layer == "re_lu");
    check_close(at_relu.maps, {1.0, 1.25, 0.0, 1.25});
    o.layer = "flatten";
    CHECK_THROWS_WITH_AS(grad_cam(model, tiny_input<float>(), o),
                         doctest::Contains("layer 'flatten' is a Flatten layer with output shape [8]"), Error);
}

TEST_CASE("HiResCAM on a hand-set network matches the maps computed by hand") {
    const auto model = tiny_network<double>(false);
    const auto x = tiny_input<double>();
    // Class 0: g0 * A0 + g1 * A1 = [[2, 0], [0, 0]] + [[0, 0], [0, 3]].
    check_close(hires_cam(model, x, raw_options(Score::logit)).maps, {2.0, 0.0, 0.0, 3.0});
    CamOptions o;
    o.score = Score::logit;
    o.post.upsample = false;
    check_close(hires_cam(model, x, o).maps, {2.0 / 3.0, 0.0, 0.0, 1.0});
    // Class 1: 0.5 * A0[0,1] at (0,1) and -A1[0,0] at (0,0).
    o = raw_options(Score::logit);
    o.target = Target::classes({1});
    check_close(hires_cam(model, x, o).maps, {-2.0, 2.5, 0.0, 0.0});
}

TEST_CASE("LayerCAM on a hand-set network matches the maps computed by hand") {
    const auto model = tiny_network<double>(false);
    const auto x = tiny_input<double>();
    // Class 0's logit: both gradients are >= 0, so LayerCAM is HiResCAM, [[2, 0], [0, 3]].
    check_close(layer_cam(model, x, raw_options(Score::logit)).maps, {2.0, 0.0, 0.0, 3.0});
    // Class 1's logit: g0 = 0.5 at (0,1), g1 = -1 at (0,0). HiResCAM gives -A1[0,0] = -2 at
    // (0,0); LayerCAM drops the negative gradient: [[0, 2.5], [0, 0]]. Grad-CAM is
    // [[-0.25, 0.625], [0, -0.5]].
    CamOptions o = raw_options(Score::logit);
    o.target = Target::classes({1});
    check_close(layer_cam(model, x, o).maps, {0.0, 2.5, 0.0, 0.0});
    check_close(hires_cam(model, x, o).maps, {-2.0, 2.5, 0.0, 0.0});
    // Class 0's probability: g = p0 p1 (W0 - W1), so g0 = s [[1, -0.5], [0, 0]] and
    // g1 = s [[1, 0], [0, 1]] with s = p0 p1. HiResCAM: s [[4, -2.5], [0, 3]]; LayerCAM keeps
    // relu(g0) = s [[1, 0], [0, 0]]: s [[4, 0], [0, 3]]; Grad-CAM: s [[1.25, 0.625], [0, 1.75]].
    const double p0 = 1 / (1 + std::exp(0.5 - 5.0)), s = p0 * (1 - p0);
    const Explanation raw = layer_cam(model, x, raw_options(Score::probability));
    CHECK(raw.layer == "conv2d");
    CHECK(raw.targets == std::vector<int>{0});
    check_close(raw.maps, {4 * s, 0.0, 0.0, 3 * s});
    check_close(hires_cam(model, x, raw_options(Score::probability)).maps, {4 * s, -2.5 * s, 0.0, 3 * s});
    // The default post-processing: divided by the max 4s, [[1, 0], [0, 0.75]], then bilinear
    // 2x2 -> 3x3: edge midpoints average two neighbours, the centre all four.
    const Explanation shown = layer_cam(model, x);
    CHECK(shown.maps.shape() == Shape{1, 3, 3});
    check_close(shown.maps, {1.0, 0.5, 0.0, 0.5, 0.4375, 0.375, 0.0, 0.375, 0.75}, 1e-5);
    CamOptions small;
    small.post.upsample = false;
    check_close(layer_cam(model, x, small).maps, {1.0, 0.0, 0.0, 0.75}, 1e-5);
    check_close(grad_cam(model, x, small).maps, {1.25 / 1.75, 0.625 / 1.75, 0.0, 1.0}, 1e-5);

    CHECK_THROWS_WITH_AS(layercam_maps(Tensor<double>(Shape{1, 2, 2, 2}), Tensor<double>(Shape{1, 2, 2, 1})),
                         doctest::Contains("layercam_maps: activations [1, 2, 2, 2] and gradients [1, 2, 2, 1]"), Error);
}

TEST_CASE("LayerCAM at any feature-map layer of a residual network is sum_k relu(dS/dA_k) A_k of the probe") {
    // Input -> conv (relu) -> conv (linear: negative activations) -> Add with the first conv ->
    // ReLU -> Flatten -> Dense(3). At the linear conv and at the Add, activations and gradients
    // take both signs, so LayerCAM, HiResCAM and Grad-CAM all differ there.
    auto in = Input<double>({1, 6, 6});
    auto c1 = Conv2D<double>(3, 3).padding("same").activation("relu")(in);
    auto c2 = Conv2D<double>(3, 3).padding("same")(c1);
    auto y = Dense<double>(3)(Flatten<double>()(ReLU<double>()(Add<double>()({c2, c1}))));
    const Model<double> model(in, y, 21);
    Tensor<double> x(Shape{3, 1, 6, 6});
    for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = std::sin(0.7 * static_cast<double>(i)) + 0.3;
    for (const char* layer : {"conv2d_1", "add", "re_lu"}) {
        INFO("layer ", layer);
        for (Score score : {Score::logit, Score::probability}) {
            CamOptions o = raw_options(score);
            o.layer = layer;
            o.target = Target::classes({0, 1, 2});
            const Explanation e = layer_cam(model, x, o);
            CHECK(e.layer == layer);
            REQUIRE(e.maps.shape() == Shape{3, 6, 6});
            LayerProbe<double> probe(model, model.index_of(layer), x);
            const Tensor<double>& a = probe.activations();
            const Tensor<double> g = probe.gradient(std::vector<int>{0, 1, 2}, score);
            Tensor<float> direct(Shape{3, 6, 6});
            bool negative_gradient = false;
            for (std::int64_t n = 0; n < 3; ++n)
                for (std::int64_t k = 0; k < 3; ++k)
                    for (std::int64_t p = 0; p < 36; ++p) {
                        const std::int64_t i = (n * 3 + k) * 36 + p;
                        negative_gradient = negative_gradient || (g[i] < 0 && a[i] != 0);
                        direct[n * 36 + p] += static_cast<float>(std::max(g[i], 0.0) * a[i]);
                    }
            CHECK(negative_gradient);  // the case where LayerCAM and HiResCAM part
            for (std::int64_t i = 0; i < direct.numel(); ++i)
                REQUIRE(e.maps[i] == doctest::Approx(direct[i]).epsilon(1e-6).scale(1e-6));
            CHECK(hires_cam(model, x, o).maps.to_vector() != e.maps.to_vector());
            CHECK(grad_cam(model, x, o).maps.to_vector() != e.maps.to_vector());
            // Post-processed maps: the library's ReLU and division by the max of the direct sum.
            o.post = PostProcess{};
            const Tensor<float> want = postprocess_maps(direct, o.post, 6, 6);
            const Tensor<float> shown = layer_cam(model, x, o).maps;
            for (std::int64_t i = 0; i < want.numel(); ++i) REQUIRE(shown[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(1e-5));
        }
    }
}

TEST_CASE("the captured gradient equals a hook on the layer output and finite differences of the score") {
    const auto model = fashion_mnist_cnn<double>(3);
    const Tensor<double> x = fixture_images<double>(0, 2);
    const std::size_t conv = model.index_of("conv2d");
    const std::vector<int> classes{fixture().test.labels()[0], 4};

    Tensor<double> g, a;
    {
        LayerProbe<double> probe(model, conv, x);  // freezes the parameters while alive
        g = probe.gradient(classes, Score::probability);
        a = probe.activations().clone();
    }
    REQUIRE(g.shape() == Shape{2, 64, 28, 28});

    // A hook registered on the conv output of an ordinary forward pass receives the same gradient.
    Tensor<double> hooked;
    const Layer<double>* target = &model.layer(conv);
    Variable<double> out = model.forward(Variable<double>(x), {}, [&](const Layer<double>& l, Variable<double>& h) {
        if (&l == target) h.register_hook([&](Tensor<double>& grad) { hooked = grad.clone(); });
    });
    Tensor<double> seed(out.shape());
    for (std::int64_t i = 0; i < 2; ++i) seed(i, classes[static_cast<std::size_t>(i)]) = 1;
    out.backward(seed);
    for (auto& p : model.parameters()) p.variable.zero_grad();
    REQUIRE(hooked.defined());
    double worst = 0;
    for (std::int64_t i = 0; i < g.numel(); ++i) worst = std::max(worst, std::fabs(g[i] - hooked[i]));
    CHECK(worst < 1e-15);

    // Central differences of p_c with respect to single elements of A (replaced through the tap).
    // Elements are taken where A is not tied with another value in its 4x4 pooling block, so
    // that the max-pools are differentiable there.
    const auto score_with = [&](std::int64_t image, std::int64_t element, double delta) {
        NoGrad no_grad;
        Variable<double> y = model.forward(Variable<double>(x), {}, [&](const Layer<double>& l, Variable<double>& h) {
            if (&l != target) return;
            Tensor<double> changed = h.value().clone();
            changed[image * 64 * 784 + element] += delta;
            h = Variable<double>(changed);
        });
        return y.value()(image, classes[static_cast<std::size_t>(image)]);
    };
    const double eps = 1e-6;
    int zero = 0, nonzero = 0;
    for (std::int64_t image = 0; image < 2; ++image) {
        for (std::int64_t e = 11; e < 64 * 784; e += 37) {
            const std::int64_t c = e / 784, yy = (e % 784) / 28, xx = e % 28;
            const double v = a(image, c, yy, xx);
            bool tied = false, block_max = true;
            for (std::int64_t dy = 0; dy < 4; ++dy)
                for (std::int64_t dx = 0; dx < 4; ++dx) {
                    const std::int64_t oy = yy / 4 * 4 + dy, ox = xx / 4 * 4 + dx;
                    if (oy == yy && ox == xx) continue;
                    tied = tied || std::fabs(a(image, c, oy, ox) - v) < 10 * eps;
                    block_max = block_max && a(image, c, oy, ox) < v;
                }
            // Mostly elements that reach the logits (block maxima), and a few that do not.
            if (tied || (!block_max && zero >= 10 * (image + 1)) || (block_max && nonzero >= 40 * (image + 1))) continue;
            const double numeric = (score_with(image, e, eps) - score_with(image, e, -eps)) / (2 * eps);
            const double analytic = g[image * 64 * 784 + e];
            INFO("image ", image, " element ", e);
            CHECK(analytic == doctest::Approx(numeric).epsilon(1e-5).scale(1e-7));
            CHECK((analytic != 0) == block_max);
            ++(block_max ? nonzero : zero);
        }
    }
    CHECK(nonzero == 80);
    CHECK(zero == 20);
}

// In double: the maps are normalised by their maximum after the channel sum has cancelled most
// of itself, which magnifies float rounding (a batch and a single image take different product
// kernels) past any tolerance that would still catch an indexing error.
TEST_CASE("a batch gives the maps of single-image calls, and chunking changes nothing") {
    const auto model = fashion_mnist_cnn<double>(5);
    const Tensor<double> x = fixture_images<double>(0, 7);
    CamOptions o;
    o.chunk_size = 7;
    const Explanation whole = grad_cam(model, x, o);
    REQUIRE(whole.maps.shape() == Shape{7, 28, 28});
    REQUIRE(whole.probabilities.shape() == Shape{7, 10});
    o.chunk_size = 3;  // chunks of 3, 3, 1
    const Explanation chunked = grad_cam(model, x, o);
    CHECK(chunked.predicted == whole.predicted);
    for (std::int64_t i = 0; i < whole.maps.numel(); ++i) REQUIRE(chunked.maps[i] == doctest::Approx(whole.maps[i]).epsilon(1e-6));
    double largest = 0;
    for (std::int64_t i = 0; i < 7; ++i) {
        const Explanation one = grad_cam(model, fixture_images<double>(i, 1));
        CHECK(one.predicted[0] == whole.predicted[static_cast<std::size_t>(i)]);
        CHECK(one.targets[0] == whole.targets[static_cast<std::size_t>(i)]);
        for (std::int64_t j = 0; j < 784; ++j) {
            REQUIRE(one.maps[j] == doctest::Approx(whole.maps[i * 784 + j]).epsilon(1e-6).scale(1e-6));
            largest = std::max(largest, static_cast<double>(whole.maps[i * 784 + j]));
        }
        for (std::int64_t k = 0; k < 10; ++k) CHECK(one.probabilities[k] == doctest::Approx(whole.probabilities[i * 10 + k]));
    }
    CHECK(largest == doctest::Approx(1.0));  // normalised by the max

    SUBCASE("given targets per image and a function of the output") {
        CamOptions given;
        given.target = Target::classes({0, 1, 2, 3, 4, 5, 6});
        const Explanation e = grad_cam(model, x, given);
        CHECK(e.targets == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
        const Explanation single = grad_cam(model, fixture_images<double>(3, 1), [] {
            CamOptions s;
            s.target = Target::same_class(3);
            return s;
        }());
        for (std::int64_t j = 0; j < 784; ++j) CHECK(single.maps[j] == doctest::Approx(e.maps[3 * 784 + j]).epsilon(1e-6).scale(1e-6));

        CamOptions second;  // the runner-up class, chosen from the probabilities
        second.chunk_size = 4;
        std::vector<std::int64_t> firsts;
        second.target = Target::chosen_by([&](const Tensor<float>& p, std::int64_t first) {
            firsts.push_back(first);
            std::vector<int> out;
            for (std::int64_t r = 0; r < p.dim(0); ++r) {
                std::vector<std::pair<float, int>> row;
                for (int c = 0; c < 10; ++c) row.emplace_back(p(r, c), c);
                std::sort(row.rbegin(), row.rend());
                out.push_back(row[1].second);
            }
            return out;
        });
        const Explanation runner_up = grad_cam(model, x, second);
        CHECK(firsts == std::vector<std::int64_t>{0, 4});
        for (std::int64_t i = 0; i < 7; ++i) CHECK(runner_up.targets[static_cast<std::size_t>(i)] != runner_up.predicted[static_cast<std::size_t>(i)]);
    }
}

TEST_CASE("normalisation never produces NaN: all-zero and constant maps become zero") {
    Tensor<float> maps = Tensor<float>::from(Shape{4, 1, 3}, {0, 0, 0, /**/ 2, 2, 2, /**/ -1, 0, 3, /**/ 1e-40f, 0, 0});
    Tensor<float> by_max = maps.clone(), by_range = maps.clone();
    normalize_maps(by_max, Normalization::max);
    normalize_maps(by_range, Normalization::min_max);
    check_close(by_max, {0, 0, 0, 1, 1, 1, -1.0 / 3, 0, 1, 0, 0, 0});
    check_close(by_range, {0, 0, 0, 0, 0, 0, 0, 0.25, 1, 0, 0, 0});

    // A black image through a network without biases: every activation and gradient is zero.
    auto model = fashion_mnist_cnn<float>(1);
    const Tensor<float> black(Shape{3, 1, 28, 28});
    for (Normalization how : {Normalization::max, Normalization::min_max}) {
        CamOptions o;
        o.post.normalization = how;
        const Explanation e = grad_cam(model, black, o);
        for (std::int64_t i = 0; i < e.maps.numel(); ++i) REQUIRE(e.maps[i] == 0.0f);
        const Explanation h = hires_cam(model, black, o);
        for (std::int64_t i = 0; i < h.maps.numel(); ++i) REQUIRE(h.maps[i] == 0.0f);
    }
}

TEST_CASE("explaining leaves the model untouched: parameter gradients and requires_grad") {
    const auto model = fashion_mnist_cnn<float>(2);
    grad_cam(model, fixture_images<float>(0, 3));
    for (const auto& p : model.parameters()) {
        CHECK(p.variable.requires_grad());
        CHECK_FALSE(p.variable.has_grad());
    }
}

TEST_CASE("explanations from several threads at once agree with serial ones and leave the model intact") {
    const auto model = fashion_mnist_cnn<float>(2);
    const Tensor<float> x = fixture_images<float>(0, 6);
    const Tensor<float> serial = grad_cam(model, x).maps;
    std::vector<Tensor<float>> results(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < results.size(); ++t)
        threads.emplace_back([&, t] { results[t] = grad_cam(model, x).maps; });
    for (auto& thread : threads) thread.join();
    for (const auto& r : results) CHECK(r.to_vector() == serial.to_vector());
    for (const auto& p : model.parameters()) {
        CHECK(p.variable.requires_grad());
        CHECK_FALSE(p.variable.has_grad());
    }
}

TEST_CASE("Grad-CAM rejects misuse with clear errors") {
    const auto model = fashion_mnist_cnn<float>(0);
    const Tensor<float> x = fixture_images<float>(0, 2);
    CamOptions o;
    o.layer = "conv9";
    CHECK_THROWS_WITH_AS(grad_cam(model, x, o),
                         doctest::Contains("no layer named 'conv9'; the model's layers are: conv2d (Conv2D), max_pooling2d"),
                         Error);
    o.layer = "dense";
    CHECK_THROWS_WITH_AS(grad_cam(model, x, o), doctest::Contains("layer 'dense' is a Dense layer with output shape [256]; class-activation maps need a layer whose output is feature maps [C, H, W] (here for example the convolutions: conv2d)"), Error);
    o.layer.clear();
    CHECK_THROWS_WITH_AS(grad_cam(model, Tensor<float>(Shape{0, 1, 28, 28}), o), doctest::Contains("grad_cam: empty batch"), Error);
    CHECK_THROWS_WITH_AS(grad_cam(model, Tensor<float>(Shape{2, 1, 27, 28}), o), doctest::Contains("expects input [N, 1, 28, 28]"), Error);
    o.chunk_size = 0;
    CHECK_THROWS_WITH_AS(grad_cam(model, x, o), doctest::Contains("chunk size must be positive"), Error);
    o.chunk_size = 256;
    o.target = Target::classes({1, 2, 3});
    CHECK_THROWS_WITH_AS(grad_cam(model, x, o), doctest::Contains("3 target classes for 2 images"), Error);
    o.target = Target::classes({1, 10});
    CHECK_THROWS_WITH_AS(grad_cam(model, x, o), doctest::Contains("target class 10 of image 1 is outside [0, 10)"), Error);
    o.target = Target::chosen_by([](const Tensor<float>&, std::int64_t) { return std::vector<int>{0}; });
    CHECK_THROWS_WITH_AS(grad_cam(model, x, o), doctest::Contains("returned 1 classes for 2 images"), Error);

    Tensor<float> poisoned = x.clone();
    poisoned[784 + 5] = std::nanf("");
    CHECK_THROWS_WITH_AS(grad_cam(model, poisoned), doctest::Contains("image 1 holds a non-finite value"), Error);

    Sequential<float> no_conv(Shape{1, 28, 28});
    no_conv.add(Flatten<float>());
    no_conv.add(Dense<float>(10));
    CHECK_THROWS_WITH_AS(grad_cam(no_conv, x), doctest::Contains("the model has no Conv2D layer"), Error);
}

}  // namespace test_explain
