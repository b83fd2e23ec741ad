// Explanation methods beyond Grad-CAM: Grad-CAM++ weights against the closed form and its
// derivatives against finite differences, Score-CAM against a one-mask-at-a-time reference,
// saliency by hand, SmoothGrad and Integrated Gradients (completeness), batching invariance.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/explain/methods.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "source_dir.hpp"

namespace test_explain_methods {

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

// The hand-set network of test_explain.cpp: A0 = [[2, 5], [0, 2]], A1 = [[2, 0], [0, 3]],
// logits S0 = A0[0,0] + A1[1,1] = 5, S1 = 0.5 A0[0,1] - A1[0,0] = 0.5.
template <class T>
Sequential<T> tiny_network() {
    Sequential<T> model(Shape{1, 3, 3});
    model.add(Conv2D<T>(2, 2).activation("relu"));
    model.add(Flatten<T>());
    model.add(Dense<T>(2));
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

// A small network with three classes and seeded weights: 1x5x5 -> Conv2D(3, 2x2, relu) ->
// [3, 4, 4] -> Flatten -> Dense(3). Its logits are linear in the conv output, so p_c is a
// smooth function of every element of it. The dense weights are scaled up so that the
// derivatives are of order one, well above the rounding noise of finite differences.
Sequential<double> three_class_network() {
    Sequential<double> model(Shape{1, 5, 5}, 11, InitScheme::torch);
    model.add(Conv2D<double>(3, 2).activation("relu"));
    model.add(Flatten<double>());
    model.add(Dense<double>(3));
    model.parameters()[2].variable.value().array() *= 8.0;
    return model;
}

template <class T>
void check_close(const Tensor<T>& got, const std::vector<double>& want, double tolerance = 1e-6) {
    REQUIRE(got.numel() == static_cast<std::int64_t>(want.size()));
    for (std::int64_t i = 0; i < got.numel(); ++i) {
        INFO("element ", i);
        CHECK(static_cast<double>(got[i]) == doctest::Approx(want[static_cast<std::size_t>(i)]).epsilon(tolerance));
    }
}

template <class T>
void check_same(const Tensor<T>& a, const Tensor<T>& b, double tolerance) {
    REQUIRE(a.shape() == b.shape());
    for (std::int64_t i = 0; i < a.numel(); ++i) {
        INFO("element ", i);
        REQUIRE(static_cast<double>(a[i]) == doctest::Approx(static_cast<double>(b[i])).epsilon(tolerance).scale(1.0));
    }
}

}  // namespace

TEST_CASE("Grad-CAM++ weights follow the closed form") {
    SUBCASE("hand-set network, exponential of the logit: alpha = 1 / (2 + S_k g) where g = 1") {
        // Class 0 has gradient 1 at A0[0,0] (channel sum 9) and at A1[1,1] (channel sum 5) only.
        const auto model = tiny_network<double>();
        CamOptions o;
        o.score = Score::logit;
        o.post = PostProcess::raw();
        const Explanation e = grad_cam_plus_plus(model, tiny_input<double>(), o);
        check_close(e.maps, {2.0 / 11 + 2.0 / 7, 5.0 / 11, 0.0, 2.0 / 11 + 3.0 / 7});
    }
    SUBCASE("arbitrary derivatives, including guarded zero denominators") {
        // One image, two channels of 2 positions. Channel 0: A = (1, 3), sum 4.
        const Tensor<double> a = Tensor<double>::from(Shape{1, 2, 1, 2}, {1, 3, /**/ 0.5, 0.5});
        ScoreDerivatives<double> d;
        d.first = Tensor<double>::from(Shape{1, 2, 1, 2}, {0.5, -2, /**/ 1, 3});
        d.second = Tensor<double>::from(Shape{1, 2, 1, 2}, {0.3, 0.7, /**/ 1, 0});
        d.third = Tensor<double>::from(Shape{1, 2, 1, 2}, {0.2, 0.1, /**/ -2, 0});
        const Tensor<double> w = gradcam_pp_weights(a, d);
        // Channel 0: alpha = 0.3 / (0.6 + 4 * 0.2) at a positive first derivative 0.5; the second
        // position has a negative first derivative and adds nothing.
        // Channel 1 (sum 1): 2 * 1 + 1 * (-2) = 0 -> guarded to 0; 0 / 0 -> 0.
        check_close(w, {0.3 / 1.4 * 0.5, 0.0});
    }
}

TEST_CASE("Grad-CAM++ derivatives equal finite differences of the score in the layer output") {
    const auto model = three_class_network();
    const Tensor<double> x = Tensor<double>::from(Shape{2, 1, 5, 5}, [] {
        std::vector<double> v(50);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.7 * static_cast<double>(i)) + 0.3;
        return v;
    }());
    const std::size_t conv = 0;
    const Layer<double>* target = &model.layer(conv);
    const std::vector<int> classes{1, 2};

    for (Score score : {Score::probability, Score::logit}) {
        INFO("score ", std::string(to_string(score)));
        ScoreDerivatives<double> d;
        Tensor<double> a;
        {
            LayerProbe<double> probe(model, conv, x);
            d = score_derivatives(probe, classes, score);
            a = probe.activations().clone();
        }
        // Y(t) with element e of image i of the conv output shifted by t: p_c, or exp(S_c).
        const auto y = [&](std::int64_t i, std::int64_t e, double t) {
            NoGrad no_grad;
            Variable<double> logits = model.forward_logits(Variable<double>(x), {}, [&](const Layer<double>& l, Variable<double>& h) {
                if (&l != target) return;
                Tensor<double> changed = h.value().clone();
                changed[i * 48 + e] += t;
                h = Variable<double>(changed);
            });
            const int c = classes[static_cast<std::size_t>(i)];
            if (score == Score::logit) return std::exp(logits.value()(i, c));
            double total = 0;
            for (int j = 0; j < 3; ++j) total += std::exp(logits.value()(i, j));
            return std::exp(logits.value()(i, c)) / total;
        };
        const double h = 2e-3;
        int nonzero = 0;
        for (std::int64_t i = 0; i < 2; ++i)
            for (std::int64_t e = 0; e < 48; ++e) {
                const double y0 = y(i, e, 0), yp = y(i, e, h), ym = y(i, e, -h), yp2 = y(i, e, 2 * h), ym2 = y(i, e, -2 * h);
                const double first = (yp - ym) / (2 * h);
                const double second = (yp - 2 * y0 + ym) / (h * h);
                const double third = (yp2 - 2 * yp + 2 * ym - ym2) / (2 * h * h * h);
                const std::int64_t k = i * 48 + e;
                INFO("image ", i, " element ", e, " (A = ", a[k], ")");
                // The derivatives are relative to Y, and so is the rounding noise of the differences.
                CHECK(d.first[k] == doctest::Approx(first / y0).epsilon(1e-5).scale(1e-3));
                CHECK(d.second[k] == doctest::Approx(second / y0).epsilon(1e-5).scale(1e-3));
                CHECK(d.third[k] == doctest::Approx(third / y0).epsilon(1e-4).scale(1e-2));
                nonzero += std::fabs(d.third[k]) > 1e-2;
            }
        CHECK(nonzero > 40);
    }
}

TEST_CASE("Score-CAM weights are the target scores of the masked images") {
    const auto model = fashion_mnist_cnn<float>(4);
    const Tensor<float> x = fixture_images<float>(10, 3);
    CamOptions o;
    o.post = PostProcess::raw();
    o.chunk_size = 2;  // image chunks of 2 and 1; masked copies in batches of 2
    const Explanation e = score_cam(model, x, o);

    // Reference, one image and one mask at a time: weights = p_c(x * minmax(A_k)).
    LayerProbe<float> probe(model, 0, x);
    const Tensor<float> a = probe.activations().clone();
    NoGrad no_grad;
    for (std::int64_t i = 0; i < 3; ++i) {
        const int c = e.targets[static_cast<std::size_t>(i)];
        CHECK(c == e.predicted[static_cast<std::size_t>(i)]);
        std::vector<double> map(784, 0.0);
        for (std::int64_t k = 0; k < 64; ++k) {
            const float* ak = a.data() + (i * 64 + k) * 784;
            float lo = ak[0], hi = ak[0];
            for (int p = 0; p < 784; ++p) lo = std::min(lo, ak[p]), hi = std::max(hi, ak[p]);
            if (!(hi > lo)) continue;
            Tensor<float> masked = Tensor<float>::uninitialized(Shape{1, 1, 28, 28});
            for (int p = 0; p < 784; ++p) masked[p] = x[i * 784 + p] * ((ak[p] - lo) / (hi - lo));
            const double w = model.forward(Variable<float>(masked)).value()(0, c);
            for (int p = 0; p < 784; ++p) map[static_cast<std::size_t>(p)] += w * ak[p];
        }
        for (int p = 0; p < 784; ++p) CHECK(e.maps[i * 784 + p] == doctest::Approx(map[static_cast<std::size_t>(p)]).epsilon(1e-4).scale(1e-5));
    }
}

TEST_CASE("saliency of the hand-set network is |dS/dx| computed by hand") {
    // S0 = (x00 + x11) + (x12 - x21), both units active: gradient 1, 1, 1, -1 there.
    const auto model = tiny_network<double>();
    GradientOptions o;
    o.score = Score::logit;
    o.post = PostProcess::raw();
    const Explanation e = saliency(model, tiny_input<double>(), o);
    CHECK(e.layer.empty());
    check_close(e.maps, {1, 0, 0, 0, 1, 1, 0, 1, 0});
    o.target = Target::same_class(1);  // S1 = 0.5 (x01 + x12) - (x01 - x10)
    check_close(saliency(model, tiny_input<double>(), o).maps, {0, 0.5, 0, 1, 0, 0.5, 0, 0, 0});
}

TEST_CASE("Integrated Gradients: attributions add up to Y(x) - Y(baseline)") {
    const auto model = fashion_mnist_cnn<double>(6);
    const Tensor<double> x = fixture_images<double>(0, 3);
    const std::vector<int> classes{1, 4, 7};
    const Tensor<double> black(x.shape());
    NoGrad no_grad;
    const Tensor<double> px = model.forward(Variable<double>(x)).value(), p0 = model.forward(Variable<double>(black)).value();
    for (Score score : {Score::probability, Score::logit}) {
        const Tensor<double> attributions = integrated_gradients_attributions(model, x, classes, score, 128, 0.0);
        const Tensor<double> logits_x = model.forward_logits(Variable<double>(x)).value();
        const Tensor<double> logits_0 = model.forward_logits(Variable<double>(black)).value();
        for (std::int64_t i = 0; i < 3; ++i) {
            const int c = classes[static_cast<std::size_t>(i)];
            double total = 0;
            for (std::int64_t e = 0; e < 784; ++e) total += attributions[i * 784 + e];
            const double change = score == Score::probability ? px(i, c) - p0(i, c) : logits_x(i, c) - logits_0(i, c);
            INFO("image ", i, " score ", std::string(to_string(score)), ": sum ", total, ", change ", change);
            CHECK(std::fabs(total - change) <= 0.02 * std::fabs(change) + 1e-4);
        }
    }
    // The maps are the attributions summed over channels (one channel here), post-processed.
    IntegratedGradientsOptions o;
    o.target = Target::classes(classes);
    o.post = PostProcess::raw();
    o.steps = 8;
    const Explanation e = integrated_gradients(model, x, o);
    check_same(e.maps.reshape(Shape{3 * 784}),
               integrated_gradients_attributions(model, x, classes, Score::probability, 8, 0.0).template cast<float>().reshape(Shape{3 * 784}),
               1e-5);
}

TEST_CASE("SmoothGrad: noise-free it is saliency; maps do not depend on the chunk size") {
    const auto model = fashion_mnist_cnn<float>(8);
    const Tensor<float> x = fixture_images<float>(20, 5);
    SmoothGradOptions o;
    o.samples = 1;
    o.noise_level = 0;
    check_same(smoothgrad(model, x, o).maps, saliency(model, x).maps, 1e-6);
    o.samples = 3;
    o.noise_level = 0.2;
    o.chunk_size = 5;
    const Tensor<float> whole = smoothgrad(model, x, o).maps;
    o.chunk_size = 2;
    check_same(smoothgrad(model, x, o).maps, whole, 1e-4);
    o.seed = 1;
    const Tensor<float> other = smoothgrad(model, x, o).maps;
    double difference = 0;
    for (std::int64_t i = 0; i < whole.numel(); ++i) difference += std::fabs(other[i] - whole[i]);
    CHECK(difference > 1.0);  // another seed, other noise
}

// In double, as test_explain.cpp says why: float rounding differs between a batch and a single
// image and is magnified by the normalisation of maps that mostly cancel.
TEST_CASE("every method: a batch equals single-image calls, maps are finite and in [0, 1]") {
    const auto model = fashion_mnist_cnn<double>(9);
    const Tensor<double> x = fixture_images<double>(30, 3);
    MethodOptions o;
    o.smoothgrad_samples = 2;
    o.integrated_gradients_steps = 4;
    o.chunk_size = 2;
    for (Method m : all_methods()) {
        INFO(std::string(to_string(m)));
        const Explanation batch = explain_with(model, x, m, o);
        REQUIRE(batch.maps.shape() == Shape{3, 28, 28});
        CHECK(batch.probabilities.shape() == Shape{3, 10});
        for (std::int64_t i = 0; i < batch.maps.numel(); ++i) {
            REQUIRE(std::isfinite(batch.maps[i]));
            REQUIRE(batch.maps[i] >= 0.0f);
            REQUIRE(batch.maps[i] <= 1.0f);
        }
        if (m == Method::random || m == Method::smoothgrad) continue;  // keyed by the position in the batch
        for (std::int64_t i = 0; i < 3; ++i) {
            const Explanation one = explain_with(model, fixture_images<double>(30 + i, 1), m, o);
            CHECK(one.predicted[0] == batch.predicted[static_cast<std::size_t>(i)]);
            check_same(one.maps, batch.maps.rows(i, 1), 1e-6);
        }
    }
}

TEST_CASE("the other methods reject misuse like Grad-CAM") {
    const auto model = fashion_mnist_cnn<float>(0);
    const Tensor<float> x = fixture_images<float>(0, 2);
    CamOptions o;
    o.layer = "flatten";
    CHECK_THROWS_WITH_AS(grad_cam_plus_plus(model, x, o), doctest::Contains("grad_cam_plus_plus: layer 'flatten' is a Flatten layer"), Error);
    CHECK_THROWS_WITH_AS(score_cam(model, x, o), doctest::Contains("score_cam: layer 'flatten'"), Error);
    CHECK_THROWS_WITH_AS(layer_cam(model, x, o), doctest::Contains("layer_cam: layer 'flatten' is a Flatten layer"), Error);
    o.layer = "no_such_layer";
    CHECK_THROWS_WITH_AS(layer_cam(model, x, o), doctest::Contains("layer_cam: no layer named 'no_such_layer'"), Error);
    CHECK_THROWS_WITH_AS(saliency(model, Tensor<float>(Shape{0, 1, 28, 28})), doctest::Contains("saliency: empty batch"), Error);
    SmoothGradOptions s;
    s.samples = 0;
    CHECK_THROWS_WITH_AS(smoothgrad(model, x, s), doctest::Contains("samples must be at least 1"), Error);
    IntegratedGradientsOptions g;
    g.steps = 0;
    CHECK_THROWS_WITH_AS(integrated_gradients(model, x, g), doctest::Contains("steps must be at least 1"), Error);
}

}  // namespace test_explain_methods
