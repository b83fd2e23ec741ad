// The layers of modern CNNs: BatchNormalization (Keras' and PyTorch's running statistics,
// training vs inference, frozen), AvgPool2D and padded MaxPool2D, global pooling, Concatenate,
// the activation layers and activation= strings, SpatialDropout2D, and Add as one add_n node.
// Gradchecks in double through models, hand-computed values, the fusions (BatchNorm folded into
// a convolution for inference, BatchNorm + ReLU as one op in training), a model-file round trip
// of a graph with every new layer, summary rows and the errors of hostile settings.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "cnnlite/core/init.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/nn/layer_registry.hpp"
#include "cnnlite/nn/summary.hpp"
#include "cnnlite/ops/elementwise.hpp"
#include "cnnlite/ops/reduction.hpp"
#include "model_gradients.hpp"

namespace test_nn_modern_layers {

using namespace cnnlite;
using cnnlite::testing::check_model_gradients;

template <class T>
Tensor<T> random_batch(const Shape& shape, std::uint64_t seed, double lo = -1, double hi = 1) {
    Tensor<T> x(shape);
    fill_uniform(x, RandomStream(seed, Purpose::user), lo, hi);
    return x;
}

template <class T>
bool same_values(const Tensor<T>& a, const Tensor<T>& b) {
    if (a.shape() != b.shape()) return false;
    for (std::int64_t i = 0; i < a.numel(); ++i)
        if (!(a[i] == b[i])) return false;
    return true;
}

template <class T>
const BatchNormalization<T>& bn_layer(const Model<T>& model, const std::string& name) {
    const auto* bn = dynamic_cast<const BatchNormalization<T>*>(&model.layer(name));
    REQUIRE(bn != nullptr);
    return *bn;
}

TEST_CASE("gradchecks in double through models: every new layer, BatchNormalization in training") {
    SUBCASE("Conv2D -> BatchNormalization (training, batch 3) -> GlobalAveragePooling2D -> Dense") {
        Sequential<double> m(Shape{2, 5, 5});
        m.add(Conv2D<double>(3, 3).padding("same").use_bias(false));
        m.add(BatchNormalization<double>());
        m.add(ActivationLayer<double>("relu"));
        m.add(GlobalAveragePooling2D<double>());
        m.add(Dense<double>(4));
        check_model_gradients(m, Shape{3, 2, 5, 5}, true);
    }
    SUBCASE("BatchNormalization on [N, features], PyTorch convention, without scale, in training") {
        Sequential<double> m(Shape{5});
        m.add(Dense<double>(4));
        m.add(BatchNormalization<double>(BatchNormConvention::torch).scale(false));
        m.add(Dense<double>(3));
        check_model_gradients(m, Shape{4, 5}, true);
    }
    SUBCASE("BatchNormalization in inference with moved running statistics, without center") {
        Sequential<double> m(Shape{3, 4, 4});
        m.add(BatchNormalization<double>().center(false));
        auto buffers = m.buffers();
        REQUIRE(buffers.size() == 2);
        Tensor<double>& mean = buffers[0].variable.value();
        Tensor<double>& var = buffers[1].variable.value();
        for (std::int64_t c = 0; c < 3; ++c) mean[c] = 0.1 * static_cast<double>(c + 1), var[c] = 0.5 + c;
        m.add(Flatten<double>());
        m.add(Dense<double>(2));
        check_model_gradients(m, Shape{2, 3, 4, 4}, false);
    }
    SUBCASE("AvgPool2D valid and same, MaxPool2D same, GlobalMaxPooling2D") {
        Sequential<double> m(Shape{2, 7, 7});
        m.add(AvgPool2D<double>(2, 2).strides(1, 1));
        m.add(MaxPool2D<double>(3, 3).strides(2, 2).padding("same"));
        m.add(AvgPool2D<double>(2, 2).padding("same"));
        m.add(GlobalMaxPooling2D<double>());
        m.add(Dense<double>(3));
        check_model_gradients(m, Shape{2, 2, 7, 7}, false);
    }
    SUBCASE("Concatenate of branches on channels and on features, Add of three") {
        auto x = Input<double>({2, 4, 4});
        auto a = Conv2D<double>(2, 3).padding("same")(x);
        auto b = Conv2D<double>(3, 1)(x);
        auto c = Concatenate<double>()({a, b, x});
        auto pooled = Concatenate<double>(-1)({GlobalAveragePooling2D<double>()(c), GlobalMaxPooling2D<double>()(c)});
        auto d1 = Dense<double>(3)(pooled);
        auto d2 = Dense<double>(3)(pooled);
        auto y = Add<double>()({d1, d2, Dense<double>(3)(pooled)});
        Model<double> model(x, y, 3);
        CHECK(model.layer("concatenate").output_shape() == Shape{7, 4, 4});
        CHECK(model.layer("concatenate_1").output_shape() == Shape{14});
        check_model_gradients(model, Shape{2, 2, 4, 4}, false);
    }
    SUBCASE("activation layers and activation= strings") {
        Sequential<double> m(Shape{1, 5, 5});
        m.add(Conv2D<double>(2, 3).activation("silu"));
        m.add(ActivationLayer<double>("gelu"));
        m.add(ActivationLayer<double>("gelu_tanh"));
        m.add(LeakyReLU<double>(0.1));
        m.add(ELU<double>(0.7));
        m.add(ActivationLayer<double>("softplus"));
        m.add(Flatten<double>());
        m.add(Dense<double>(4).activation("tanh"));
        m.add(ActivationLayer<double>("sigmoid"));
        m.add(ActivationLayer<double>("leaky_relu"));
        m.add(ActivationLayer<double>("elu"));
        m.add(Dense<double>(3).activation("gelu"));
        m.add(ActivationLayer<double>("softmax"));
        check_model_gradients(m, Shape{2, 1, 5, 5}, false);
    }
    SUBCASE("SpatialDropout2D in training") {
        Sequential<double> m(Shape{4, 3, 3});
        m.add(Conv2D<double>(4, 1));
        m.add(SpatialDropout2D<double>(0.5));
        m.add(Flatten<double>());
        m.add(Dense<double>(2));
        check_model_gradients(m, Shape{3, 4, 3, 3}, true);
    }
}

// x: [4, 2]; feature 0 = 1, 2, 3, 6 (mean 3, biased variance 14/4 = 3.5, unbiased 14/3);
// feature 1 = 0, 0, 4, 4 (mean 2, biased variance 4, unbiased 16/3).
Tensor<double> bn_features() { return Tensor<double>::from(Shape{4, 2}, {1, 0, 2, 0, 3, 4, 6, 4}); }

TEST_CASE("BatchNormalization's running statistics after one training step, Keras' and PyTorch's convention") {
    const Tensor<double> x = bn_features();
    const ForwardContext train{true, 0, 0, nullptr};
    SUBCASE("Keras: running = 0.99 running + 0.01 batch, biased variance, epsilon 1e-3") {
        Sequential<double> m(Shape{2});
        m.add(BatchNormalization<double>());
        const Tensor<double> y = m.forward(Variable<double>(x), train).value();
        const auto& bn = bn_layer(m, "batch_normalization");
        CHECK(bn.running_mean()[0] == doctest::Approx(0.03).epsilon(1e-14));       // 0.01 * 3
        CHECK(bn.running_mean()[1] == doctest::Approx(0.02).epsilon(1e-14));       // 0.01 * 2
        CHECK(bn.running_var()[0] == doctest::Approx(1.025).epsilon(1e-14));       // 0.99 + 0.01 * 3.5
        CHECK(bn.running_var()[1] == doctest::Approx(1.03).epsilon(1e-14));        // 0.99 + 0.01 * 4
        // The output used the batch's statistics: (6 - 3) / sqrt(3.5 + 1e-3), (0 - 2) / sqrt(4 + 1e-3).
        CHECK(y(3, 0) == doctest::Approx(3.0 / std::sqrt(3.501)).epsilon(1e-12));
        CHECK(y(0, 1) == doctest::Approx(-2.0 / std::sqrt(4.001)).epsilon(1e-12));
        // Inference now uses the running statistics: (6 - 0.03) / sqrt(1.025 + 1e-3).
        const Tensor<double> z = m.predict(x);
        CHECK(z(3, 0) == doctest::Approx(5.97 / std::sqrt(1.026)).epsilon(1e-12));
        CHECK(z(0, 1) == doctest::Approx(-0.02 / std::sqrt(1.031)).epsilon(1e-12));
        // A second step compounds: 0.99 * 0.03 + 0.01 * 3 = 0.0597.
        m.forward(Variable<double>(x), train);
        CHECK(bn.running_mean()[0] == doctest::Approx(0.0597).epsilon(1e-14));
    }
    SUBCASE("PyTorch: running = 0.9 running + 0.1 batch, unbiased variance, epsilon 1e-5") {
        Sequential<double> m(Shape{2});
        m.add(BatchNormalization<double>(BatchNormConvention::torch));
        const Tensor<double> y = m.forward(Variable<double>(x), train).value();
        const auto& bn = bn_layer(m, "batch_normalization");
        CHECK(bn.momentum() == 0.1);
        CHECK(bn.epsilon() == 1e-5);
        CHECK(bn.running_mean()[0] == doctest::Approx(0.3).epsilon(1e-14));
        CHECK(bn.running_mean()[1] == doctest::Approx(0.2).epsilon(1e-14));
        CHECK(bn.running_var()[0] == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(1e-14));  // 1.3666...
        CHECK(bn.running_var()[1] == doctest::Approx(0.9 + 0.1 * 16.0 / 3.0).epsilon(1e-14));  // 1.4333...
        // The normalisation itself uses the biased variance, as PyTorch's does.
        CHECK(y(3, 0) == doctest::Approx(3.0 / std::sqrt(3.5 + 1e-5)).epsilon(1e-12));
    }
    SUBCASE("[N, C, H, W]: statistics over N, H and W of each channel") {
        // Channel 0: 1, 3 | 5, 7 (mean 4, biased variance 5, unbiased 20/3); channel 1: 2, 2 | 2, 2.
        const Tensor<double> images = Tensor<double>::from(Shape{2, 2, 1, 2}, {1, 3, 2, 2, 5, 7, 2, 2});
        Sequential<double> m(Shape{2, 1, 2});
        m.add(BatchNormalization<double>(BatchNormConvention::torch));
        const Tensor<double> y = m.forward(Variable<double>(images), train).value();
        const auto& bn = bn_layer(m, "batch_normalization");
        CHECK(bn.running_mean()[0] == doctest::Approx(0.4).epsilon(1e-14));
        CHECK(bn.running_mean()[1] == doctest::Approx(0.2).epsilon(1e-14));
        CHECK(bn.running_var()[0] == doctest::Approx(0.9 + 0.1 * 20.0 / 3.0).epsilon(1e-14));
        CHECK(bn.running_var()[1] == doctest::Approx(0.9).epsilon(1e-14));  // a constant channel
        CHECK(y(1, 0, 0, 1) == doctest::Approx(3.0 / std::sqrt(5.0 + 1e-5)).epsilon(1e-12));
        CHECK(y(0, 1, 0, 0) == 0.0);
    }
    SUBCASE("a channel-sum reducer: the statistics of the global batch (here two identical processes)") {
        const ChannelSumReducer twice = [](double* v, std::int64_t n) {
            for (std::int64_t i = 0; i < n; ++i) v[i] *= 2;
        };
        ForwardContext ctx = train;
        ctx.channel_sum_reducer = &twice;
        Sequential<double> m(Shape{2});
        m.add(BatchNormalization<double>(BatchNormConvention::torch));
        m.forward(Variable<double>(x), ctx);
        // Mean and biased variance are unchanged; the count is 8, so the unbiased variance is 28/7 = 4.
        const auto& bn = bn_layer(m, "batch_normalization");
        CHECK(bn.running_mean()[0] == doctest::Approx(0.3).epsilon(1e-14));
        CHECK(bn.running_var()[0] == doctest::Approx(0.9 + 0.1 * 4.0).epsilon(1e-14));
    }
}

TEST_CASE("BatchNormalization: inference and training differ, inference changes nothing, frozen uses running statistics") {
    const Tensor<double> x = random_batch<double>({5, 3, 2, 2}, 11, -2, 3);
    Sequential<double> m(Shape{3, 2, 2});
    m.add(BatchNormalization<double>());
    const auto& bn = bn_layer(m, "batch_normalization");
    // Inference with the initial statistics (mean 0, variance 1): x / sqrt(1 + 1e-3).
    const Tensor<double> inference = m.predict(x);
    for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(inference[i] == doctest::Approx(x[i] / std::sqrt(1.001)));
    CHECK(bn.running_mean().to_vector() == std::vector<double>{0, 0, 0});
    CHECK(bn.running_var().to_vector() == std::vector<double>{1, 1, 1});
    // Training: every channel of the output has mean 0 and (biased) variance var / (var + eps) ~ 1.
    const ForwardContext train{true, 0, 0, nullptr};
    const Tensor<double> trained = m.forward(Variable<double>(x), train).value();
    for (std::int64_t c = 0; c < 3; ++c) {
        double s = 0, s2 = 0;
        for (std::int64_t n = 0; n < 5; ++n)
            for (std::int64_t k = 0; k < 4; ++k) s += trained(n, c, k / 2, k % 2), s2 += std::pow(trained(n, c, k / 2, k % 2), 2);
        CHECK(std::fabs(s / 20) < 1e-12);
        CHECK(s2 / 20 == doctest::Approx(1.0).epsilon(1e-2));
    }
    CHECK_FALSE(same_values(trained, inference));
    const std::vector<double> mean_after = bn.running_mean().to_vector();
    CHECK(mean_after != std::vector<double>{0, 0, 0});

    // Frozen: a training forward normalises with the running statistics and updates nothing.
    m.layer(0).set_trainable(false);
    const Tensor<double> before = m.predict(x);
    const Tensor<double> frozen = m.forward(Variable<double>(x), train).value();
    CHECK(same_values(frozen, before));
    CHECK(bn.running_mean().to_vector() == mean_after);
    CHECK(m.trainable_variables().empty());
    // Unfrozen again, training uses the batch again.
    m.layer(0).set_trainable(true);
    CHECK(same_values(m.forward(Variable<double>(x), train).value(), trained));
}

// Conv2D -> BatchNormalization with random weights, gamma, beta and running statistics.
template <class T>
Sequential<T> conv_batch_norm_model(bool conv_bias, std::uint64_t seed) {
    Sequential<T> m(Shape{3, 7, 6}, seed);
    m.add(Conv2D<T>(4, 3).strides(2, 1).padding("same").use_bias(conv_bias));
    m.add(BatchNormalization<T>(BatchNormConvention::torch));
    std::uint64_t stream = seed;
    for (auto& p : m.parameters()) fill_uniform(p.variable.value(), RandomStream(++stream, Purpose::user), -1.5, 1.5);
    for (auto& b : m.buffers()) {  // mean in [-1, 1], variance in [0.2, 3]
        const bool variance = b.name.find("running_var") != std::string::npos;
        fill_uniform(b.variable.value(), RandomStream(++stream, Purpose::user), variance ? 0.2 : -1, variance ? 3 : 1);
    }
    return m;
}

TEST_CASE("inference folds BatchNormalization into the Conv2D before it, only where no gradient or batch statistic is needed") {
    for (const bool conv_bias : {false, true}) {
        CAPTURE(conv_bias);
        Sequential<double> m = conv_batch_norm_model<double>(conv_bias, 3);
        const Tensor<double> x = random_batch<double>({3, 3, 7, 6}, 4, -2, 2);
        m.set_fusion(false);
        const Tensor<double> plain = m.predict(x);
        m.set_fusion(true);
        const Tensor<double> folded = m.predict(x);
        REQUIRE(folded.shape() == plain.shape());
        for (std::int64_t i = 0; i < plain.numel(); ++i) REQUIRE(folded[i] == doctest::Approx(plain[i]).epsilon(1e-13));

        // The rule itself: it applies without gradient recording in inference, and to a frozen
        // layer in training; never while a graph is recorded, or to a trainable layer in training.
        const Layer<double>& conv = m.layer(0);
        Layer<double>& bn = m.layer(1);
        const Variable<double> input(x);
        const ForwardContext train{true, 0, 0, nullptr};
        CHECK_FALSE(run_fused(conv, bn, input, ForwardContext{}).defined());
        {
            NoGrad no_grad;
            CHECK(run_fused(conv, bn, input, ForwardContext{}).defined());
            CHECK_FALSE(run_fused(conv, bn, input, train).defined());
            bn.set_trainable(false);
            CHECK(run_fused(conv, bn, input, train).defined());
            bn.set_trainable(true);
        }
    }
    // Float: within float rounding of the two layers.
    Sequential<float> f = conv_batch_norm_model<float>(true, 5);
    const Tensor<float> xf = random_batch<float>({2, 3, 7, 6}, 6, -2, 2);
    const Tensor<float> folded = f.predict(xf);
    f.set_fusion(false);
    const Tensor<float> plain = f.predict(xf);
    for (std::int64_t i = 0; i < plain.numel(); ++i) REQUIRE(folded[i] == doctest::Approx(plain[i]).epsilon(1e-5));

    // In a graph: a residual block whose main path and shortcut each end in Conv2D ->
    // BatchNormalization, after a few training steps moved the running statistics.
    {
        auto in = Input<double>({3, 6, 6});
        auto conv_bn = [](const Symbolic<double>& h, std::int64_t kernel) {
            return BatchNormalization<double>(BatchNormConvention::torch)(
                Conv2D<double>(4, kernel).padding("same").use_bias(false)(h));
        };
        auto main_path = conv_bn(ReLU<double>()(conv_bn(in, 3)), 3);
        auto y = GlobalAveragePooling2D<double>()(ReLU<double>()(Add<double>()({main_path, conv_bn(in, 1)})));
        Model<double> g(in, y, 12);
        const ForwardContext train{true, 0, 0, nullptr};
        for (std::uint64_t step = 0; step < 3; ++step)
            g.forward(Variable<double>(random_batch<double>({8, 3, 6, 6}, 20 + step, -1, 3)), train);
        const Tensor<double> images = random_batch<double>({2, 3, 6, 6}, 30);
        const Tensor<double> folded_graph = g.predict(images);
        g.set_fusion(false);
        const Tensor<double> plain_graph = g.predict(images);
        REQUIRE(folded_graph.shape() == plain_graph.shape());
        for (std::int64_t i = 0; i < plain_graph.numel(); ++i)
            REQUIRE(folded_graph[i] == doctest::Approx(plain_graph[i]).epsilon(1e-13));
    }

    // A Conv2D with an activation keeps it before the batch norm: no folding.
    Sequential<double> relu(Shape{2, 5, 5}, 1);
    relu.add(Conv2D<double>(3, 3).activation("relu"));
    relu.add(BatchNormalization<double>());
    NoGrad no_grad;
    CHECK_FALSE(run_fused(relu.layer(0), relu.layer(1), Variable<double>(random_batch<double>({1, 2, 5, 5}, 2)),
                          ForwardContext{})
                    .defined());

    // A negative running variance is an error with the layer's name, fused or not.
    Sequential<double> bad = conv_batch_norm_model<double>(false, 7);
    for (auto& b : bad.buffers())
        if (b.name.find("running_var") != std::string::npos) b.variable.value()[2] = -0.5;
    const Tensor<double> x = random_batch<double>({1, 3, 7, 6}, 8);
    CHECK_THROWS_WITH_AS(bad.predict(x), doctest::Contains("running variance -0.5 of channel 2 is negative"), Error);
    bad.set_fusion(false);
    CHECK_THROWS_WITH_AS(bad.predict(x), doctest::Contains("of channel 2 is negative"), Error);
}

TEST_CASE("BatchNormalization + ReLU in training run as one op (batch_norm_relu), with the bits of the two layers") {
    // A stem and a residual block of ResNet-8's kind: three SGD steps with the fusion on, and the
    // same three with it off, must leave identical weights and running statistics.
    const auto build = [] {
        auto in = Input<float>({3, 8, 8});
        auto conv_bn = [](const Symbolic<float>& h, BatchNormConvention convention) {
            return BatchNormalization<float>(convention)(Conv2D<float>(4, 3).padding("same").use_bias(false)(h));
        };
        auto h = ReLU<float>()(conv_bn(in, BatchNormConvention::torch));
        auto r = conv_bn(ReLU<float>()(conv_bn(h, BatchNormConvention::keras)), BatchNormConvention::torch);
        h = ReLU<float>()(Add<float>()({r, h}));
        return Model<float>(in, Dense<float>(3)(GlobalAveragePooling2D<float>()(h)), 17, InitScheme::torch);
    };
    Model<float> fused = build(), plain = build();
    plain.set_fusion(false);
    std::vector<std::int64_t> ids{0, 1, 2, 3, 4};
    for (std::int64_t step = 0; step < 3; ++step) {
        const Tensor<float> x = random_batch<float>({5, 3, 8, 8}, 40 + static_cast<std::uint64_t>(step), -1, 2);
        const Tensor<float> w = random_batch<float>({5, 3}, 50 + static_cast<std::uint64_t>(step));
        for (Model<float>* m : {&fused, &plain}) {
            auto params = m->parameters();
            for (auto& p : params) p.variable.zero_grad();
            Variable<float> out = m->forward(Variable<float>(x), ForwardContext{true, 1, step, ids.data()});
            out.backward(w);
            for (auto& p : params) {
                Tensor<float>& v = p.variable.value();
                const Tensor<float>& g = p.variable.grad();
                for (std::int64_t i = 0; i < v.numel(); ++i) v[i] -= 0.1f * g[i];
            }
        }
    }
    const auto a = fused.state(), b = plain.state();  // parameters, then running statistics
    REQUIRE(a.size() == b.size());
    REQUIRE(a.size() > 10);
    for (std::size_t i = 0; i < a.size(); ++i) {
        CAPTURE(a[i].name);
        CHECK(same_values(a[i].variable.value(), b[i].variable.value()));
    }
    CHECK_FALSE(same_values(a[0].variable.value(), build().state()[0].variable.value()));  // the steps moved them

    // The fused op is what runs: a model ending in BatchNormalization + ReLU returns its node;
    // in inference or for a frozen layer (running statistics) the two layers run.
    Sequential<double> tail(Shape{2, 4, 4}, 3);
    tail.add(BatchNormalization<double>());
    tail.add(ReLU<double>());
    const ForwardContext train{true, 0, 0, nullptr};
    const Variable<double> x(random_batch<double>({3, 2, 4, 4}, 9));
    CHECK(std::string(tail.forward(x, train).node()->op) == "batch_norm_relu");
    CHECK(std::string(tail.forward(x, ForwardContext{}).node()->op) == "relu");
    tail.layer(0).set_trainable(false);
    CHECK(std::string(tail.forward(x, train).node()->op) == "relu");
}

TEST_CASE("BatchNormalization counts the batches that moved its running statistics (num_batches_tracked), exactly") {
    const Tensor<float> x = random_batch<float>({4, 3}, 5);
    const ForwardContext train{true, 0, 0, nullptr};
    for (const auto convention : {BatchNormConvention::keras, BatchNormConvention::torch}) {
        CAPTURE(to_string(convention));
        Sequential<float> m(Shape{3});
        m.add(BatchNormalization<float>(convention));
        const auto& bn = bn_layer(m, "batch_normalization");
        CHECK(bn.num_batches_tracked() == 0);
        const auto counters = m.counters();
        REQUIRE(counters.size() == 1);
        CHECK(counters[0].name == "batch_normalization.num_batches_tracked");
        CHECK(counters[0].value.shape() == Shape{});
        for (int i = 0; i < 3; ++i) m.forward(Variable<float>(x), train);
        CHECK(bn.num_batches_tracked() == 3);
        // Inference and a frozen layer move nothing, so they count nothing.
        m.predict(x);
        m.forward(Variable<float>(x), ForwardContext{});
        m.layer(0).set_trainable(false);
        m.forward(Variable<float>(x), train);
        CHECK(bn.num_batches_tracked() == 3);
        m.layer(0).set_trainable(true);
        // Past 2^24, where a float buffer would stop counting (2^24 + 1 is not a float).
        m.counters()[0].value.data()[0] = (std::int64_t(1) << 24);
        m.forward(Variable<float>(x), train);
        CHECK(bn.num_batches_tracked() == (std::int64_t(1) << 24) + 1);
        // Not a value of the summary's counts (Keras has no such counter).
        CHECK(m.non_trainable_count() == 6);
    }
}

TEST_CASE("activations: values by hand, Keras' names and defaults, strings round-trip") {
    const Tensor<double> x = Tensor<double>::from(Shape{1, 4}, {-2, -1, 0, 1});
    const auto run = [&](std::unique_ptr<Layer<double>> layer) {
        Sequential<double> m(Shape{4});
        m.add(std::move(layer));
        return m.predict(x);
    };
    const auto gelu = run(std::make_unique<ActivationLayer<double>>("gelu"));
    CHECK(gelu[3] == doctest::Approx(0.8413447460685429).epsilon(1e-12));  // 1 * Phi(1)
    CHECK(gelu[1] == doctest::Approx(-0.15865525393145707).epsilon(1e-12));
    const auto gelu_tanh = run(std::make_unique<ActivationLayer<double>>("gelu_tanh"));
    CHECK(gelu_tanh[3] == doctest::Approx(0.8411919906082768).epsilon(1e-12));
    CHECK(run(std::make_unique<ActivationLayer<double>>("swish"))[3] == doctest::Approx(0.7310585786300049).epsilon(1e-12));
    CHECK(run(std::make_unique<ActivationLayer<double>>("sigmoid"))[2] == 0.5);
    CHECK(run(std::make_unique<ActivationLayer<double>>("softplus"))[2] == doctest::Approx(std::log(2.0)).epsilon(1e-14));
    CHECK(run(std::make_unique<ActivationLayer<double>>("tanh"))[1] == doctest::Approx(-0.7615941559557649).epsilon(1e-12));
    CHECK(run(std::make_unique<ActivationLayer<double>>("leaky_relu"))[1] == doctest::Approx(-0.2));  // keras.activations' 0.2
    CHECK(run(std::make_unique<LeakyReLU<double>>())[0] == doctest::Approx(-0.6));                     // the layer's 0.3
    CHECK(run(std::make_unique<ELU<double>>(0.5))[1] == doctest::Approx(-0.31606027941427883).epsilon(1e-12));
    CHECK(run(std::make_unique<ActivationLayer<double>>("elu"))[3] == 1.0);
    CHECK(run(std::make_unique<ActivationLayer<double>>("linear"))[0] == -2.0);

    // Names: "swish" reads as silu, and every name writes back as itself.
    CHECK(parse_activation("swish") == Activation::silu);
    for (const char* name : {"linear", "relu", "softmax", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "sigmoid",
                             "tanh", "softplus"})
        CHECK(std::string(to_string(parse_activation(name))) == name);
    // Dense's activation= string applies after the product: the same as Dense then the layer.
    Sequential<double> fused(Shape{4}, 2), split(Shape{4}, 2);
    fused.add(Dense<double>(3).activation("gelu"));
    split.add(Dense<double>(3));
    split.add(ActivationLayer<double>("gelu"));
    CHECK(same_values(fused.predict(x), split.predict(x)));
    CHECK(fused.layer(0).config().args.at("activation") == "gelu");
    // An Activation("softmax") at the end is left to the fused loss, as a Softmax layer is.
    Sequential<double> head(Shape{4});
    head.add(ActivationLayer<double>("softmax"));
    CHECK(head.ends_in_softmax());
    CHECK(same_values(head.forward_logits(Variable<double>(x)).value(), x));
}

TEST_CASE("pooling with padding: AvgPool2D leaves padded cells out of the mean, padded MaxPool2D never fuses") {
    // A 3x3 plane 1..9 with 2x2 windows, stride 2, 'same': output 2x2, padding one row and one
    // column at the bottom/right. Means over the cells inside: (1+2+4+5)/4, (3+6)/2, (7+8)/2, 9.
    const Tensor<double> x = Tensor<double>::from(Shape{1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    Sequential<double> avg(Shape{1, 3, 3});
    avg.add(AvgPool2D<double>(2, 2).padding("same"));
    CHECK(avg.predict(x).to_vector() == std::vector<double>{3, 4.5, 7.5, 9});
    Sequential<double> mx(Shape{1, 3, 3});
    mx.add(MaxPool2D<double>(2, 2).padding("same"));
    CHECK(mx.predict(x).to_vector() == std::vector<double>{5, 6, 8, 9});
    Sequential<double> valid(Shape{1, 3, 3});
    valid.add(AvgPool2D<double>(2, 2).strides(1, 1));
    CHECK(valid.predict(x).to_vector() == std::vector<double>{3, 4, 6, 7});

    // Conv2D(relu) + a padded MaxPool2D: the fused kernel does not pad, so the rule must not apply.
    Sequential<double> model(Shape{1, 7, 7}, 4);
    model.add(Conv2D<double>(2, 3).padding("same").activation("relu"));
    model.add(MaxPool2D<double>(3, 3).strides(2, 2).padding("same"));
    const Tensor<double> images = random_batch<double>({2, 1, 7, 7}, 5);
    const Tensor<double> fused = model.predict(images);
    model.set_fusion(false);
    CHECK(same_values(fused, model.predict(images)));
    CHECK(model.layer(1).output_shape() == Shape{2, 4, 4});

    // Files written before pooling had padding (no 'padding' key) load as 'valid'.
    const auto old = make_layer<float>(LayerConfig{"MaxPooling2D", "p", {{"pool_size", "2,2"}, {"strides", "2,2"}}});
    CHECK(old->config().args.at("padding") == "valid");
}

TEST_CASE("SpatialDropout2D drops whole feature maps, keyed by sample index and step; identity in inference") {
    Sequential<double> m(Shape{6, 3, 3});
    m.add(SpatialDropout2D<double>(0.5));
    const Tensor<double> x = random_batch<double>({4, 6, 3, 3}, 8, 1, 2);  // no zeros of its own
    std::vector<std::int64_t> ids{10, 11, 12, 13};
    const ForwardContext ctx{true, 5, 3, ids.data()};
    const Tensor<double> y = m.forward(Variable<double>(x), ctx).value();
    int dropped = 0;
    for (std::int64_t n = 0; n < 4; ++n)
        for (std::int64_t c = 0; c < 6; ++c) {
            const bool zero = y(n, c, 0, 0) == 0.0;
            dropped += zero;
            for (std::int64_t k = 0; k < 9; ++k)
                REQUIRE(y(n, c, k / 3, k % 3) == (zero ? 0.0 : 2.0 * x(n, c, k / 3, k % 3)));
        }
    CHECK(dropped > 0);
    CHECK(dropped < 24);
    // Sample 12 alone in a batch gets the same maps dropped.
    std::vector<std::int64_t> one{12};
    const Tensor<double> alone = m.forward(Variable<double>(x.rows(2, 1).clone()), ForwardContext{true, 5, 3, one.data()}).value();
    for (std::int64_t i = 0; i < alone.numel(); ++i) REQUIRE(alone[i] == y[2 * 54 + i]);
    // Another step draws again; inference is the identity.
    CHECK_FALSE(same_values(m.forward(Variable<double>(x), ForwardContext{true, 5, 4, ids.data()}).value(), y));
    CHECK(same_values(m.predict(x), x));
}

TEST_CASE("Add of three inputs is one add_n node") {
    auto x = Input<double>({3});
    auto a = Dense<double>(2)(x);
    auto b = Dense<double>(2)(x);
    auto c = Dense<double>(2)(x);
    Model<double> model(x, Add<double>()({a, b, c}), 1);
    const Tensor<double> input = random_batch<double>({2, 3}, 1);
    const Variable<double> y = model.forward(Variable<double>(input));
    CHECK(std::string(y.op_name()) == "add_n");
    const ForwardContext ctx;
    const Variable<double> v(input);
    const Tensor<double> expected = add(add(model.layer("dense").forward(v, ctx), model.layer("dense_1").forward(v, ctx)),
                                        model.layer("dense_2").forward(v, ctx))
                                        .value();
    CHECK(same_values(y.value(), expected));
}

// Every new layer in one graph.
Model<float> every_layer_model(std::uint64_t seed) {
    auto x = Input<float>({3, 8, 8});
    auto h = Conv2D<float>(4, 3).padding("same").use_bias(false)(x);
    h = BatchNormalization<float>()(h);
    h = ActivationLayer<float>("gelu")(h);
    auto a = MaxPool2D<float>(3, 3).strides(2, 2).padding("same")(h);
    auto b = AvgPool2D<float>(2, 2)(h);
    h = Concatenate<float>()({a, b});
    h = SpatialDropout2D<float>(0.25)(h);
    h = LeakyReLU<float>(0.1)(h);
    h = ELU<float>(0.5)(h);
    h = Conv2D<float>(4, 1).activation("silu")(h);
    h = Concatenate<float>(-1)({GlobalAveragePooling2D<float>()(h), GlobalMaxPooling2D<float>()(h)});
    h = BatchNormalization<float>(BatchNormConvention::torch).momentum(0.2)(h);
    auto d1 = Dense<float>(5).activation("tanh")(h);
    auto d2 = Dense<float>(5).activation("leaky_relu")(h);
    auto y = ActivationLayer<float>("softmax")(Add<float>()({d1, d2}));
    return Model<float>(x, y, seed);
}

TEST_CASE("a graph with every new layer round-trips through a model file bit for bit, running statistics included") {
    Model<float> model = every_layer_model(21);
    const Tensor<float> images = random_batch<float>({6, 3, 8, 8}, 22);
    std::vector<std::int64_t> ids{0, 1, 2, 3, 4, 5};
    for (std::int64_t step = 0; step < 3; ++step)  // moves the running statistics off their defaults
        model.forward(Variable<float>(images), ForwardContext{true, 1, step, ids.data()});
    const auto path = (std::filesystem::temp_directory_path() / "cnnlite_test_modern_layers.safetensors").string();
    save_model(model, path);
    const SafetensorsFile file = SafetensorsFile::load(path);
    for (const char* name : {"batch_normalization.weight", "batch_normalization.bias", "batch_normalization.running_mean",
                             "batch_normalization.running_var", "batch_normalization_1.running_var"})
        CHECK_MESSAGE(file.entries().count(name) == 1, name);
    // The counts as PyTorch's state_dict holds them: 0-d I64; the file is of format version 3.
    for (const char* name : {"batch_normalization.num_batches_tracked", "batch_normalization_1.num_batches_tracked"}) {
        CAPTURE(name);
        REQUIRE(file.contains(name));
        CHECK(file.entry(name).dtype == SafetensorsDtype::I64);
        CHECK(file.entry(name).shape == Shape{});
        CHECK(file.tensor<std::int64_t>(name)[0] == 3);
    }
    CHECK(file.metadata().at("format_version") == "3");
    const Model<float> loaded = load_model<float>(path);
    std::filesystem::remove(path);

    CHECK(summary(loaded) == summary(model));
    const auto configs = model.architecture(), loaded_configs = loaded.architecture();
    REQUIRE(configs.size() == loaded_configs.size());
    for (std::size_t i = 0; i < configs.size(); ++i) {
        CHECK(configs[i].type == loaded_configs[i].type);
        CHECK(configs[i].args == loaded_configs[i].args);
        CHECK(configs[i].inputs == loaded_configs[i].inputs);
    }
    const auto buffers = model.buffers(), loaded_buffers = loaded.buffers();
    REQUIRE(buffers.size() == 4);
    REQUIRE(loaded_buffers.size() == 4);
    for (std::size_t i = 0; i < buffers.size(); ++i) {
        CHECK(buffers[i].name == loaded_buffers[i].name);
        CHECK(same_values(buffers[i].variable.value(), loaded_buffers[i].variable.value()));
    }
    CHECK(bn_layer(loaded, "batch_normalization").running_var()[0] != 1.0f);  // restored, not fresh
    CHECK(bn_layer(loaded, "batch_normalization").num_batches_tracked() == 3);
    CHECK(bn_layer(loaded, "batch_normalization_1").num_batches_tracked() == 3);
    CHECK(bn_layer(loaded, "batch_normalization_1").momentum() == 0.2);
    CHECK(bn_layer(loaded, "batch_normalization_1").convention() == BatchNormConvention::torch);
    // Inference and a training step agree bit for bit.
    CHECK(same_values(model.predict(images), loaded.predict(images)));
    const ForwardContext step{true, 1, 7, ids.data()};
    CHECK(same_values(model.forward(Variable<float>(images), step).value(),
                      loaded.forward(Variable<float>(images), step).value()));
    CHECK(same_values(bn_layer(model, "batch_normalization").running_mean(),
                      bn_layer(loaded, "batch_normalization").running_mean()));
    CHECK(bn_layer(loaded, "batch_normalization").num_batches_tracked() == 4);
}

TEST_CASE("summary: BatchNormalization's gamma and beta are trainable, its running statistics are not") {
    Sequential<float> m(Shape{3, 6, 6});
    m.add(Conv2D<float>(4, 3).use_bias(false));                    // 4*3*3*3 = 108
    m.add(BatchNormalization<float>());                            // 4 gamma + 4 beta + 8 statistics
    m.add(GlobalAveragePooling2D<float>());
    m.add(Dense<float>(2));                                        // 4*2 + 2 = 10
    m.add(BatchNormalization<float>().center(false));              // 2 gamma + 4 statistics
    CHECK(m.layer(1).parameter_count() == 8);
    CHECK(m.layer(1).buffer_count() == 8);
    CHECK(m.layer(4).parameter_count() == 2);
    CHECK(m.trainable_count() == 108 + 8 + 10 + 2);
    CHECK(m.non_trainable_count() == 8 + 4);
    const std::string table = summary(m);
    CHECK(table.find(" batch_normalization (BatchNormalization)(None, 4, 4, 4)") != std::string::npos);
    const auto row = table.find(" batch_normalization (BatchNormalization)");
    CHECK(table.substr(row, table.find('\n', row) - row).find("16") != std::string::npos);
    CHECK(table.find(" global_average_pooling2d (GlobalAveragePooling2D)(None, 4)") != std::string::npos);
    CHECK(table.find("Total params: 140 ") != std::string::npos);
    CHECK(table.find("Trainable params: 128 ") != std::string::npos);
    CHECK(table.find("Non-trainable params: 12 ") != std::string::npos);
    // Freezing moves gamma and beta to the non-trainable count.
    m.layer(1).set_trainable(false);
    CHECK(m.non_trainable_count() == 8 + 4 + 8);
    const auto names = m.trainable_names();
    CHECK(std::find(names.begin(), names.end(), "batch_normalization_1.weight") != names.end());
    CHECK(std::find(names.begin(), names.end(), "batch_normalization.weight") == names.end());
}

TEST_CASE("hostile settings and inputs: errors name the layer and the problem") {
    // BatchNormalization on an input rank it does not take, and a training batch of one.
    Sequential<float> wrong_rank(Shape{2, 4});
    CHECK_THROWS_WITH_AS(wrong_rank.add(BatchNormalization<float>()),
                         doctest::Contains("BatchNormalization 'batch_normalization': input must be [C, H, W] or [features]"),
                         Error);
    Sequential<float> flat(Shape{3});
    flat.add(BatchNormalization<float>());
    const ForwardContext train{true, 0, 0, nullptr};
    CHECK_THROWS_WITH_AS(flat.forward(Variable<float>(Tensor<float>(Shape{1, 3})), train),
                         doctest::Contains("BatchNormalization 'batch_normalization': training needs more than one value per channel"),
                         Error);
    CHECK_THROWS_WITH_AS(flat.layer(0).forward(Variable<float>(Tensor<float>(Shape{2, 4})), train),
                         doctest::Contains("'batch_normalization' (BatchNormalization) expects input [N, 3], got [2, 4]"), Error);
    // Momentum outside [0, 1), epsilon not positive, an unknown convention in a file.
    CHECK_THROWS_WITH_AS(BatchNormalization<float>().momentum(1.0), doctest::Contains("momentum 1 outside [0, 1)"), Error);
    CHECK_THROWS_WITH_AS(BatchNormalization<float>().momentum(-0.1), doctest::Contains("momentum -0.1 outside [0, 1)"), Error);
    BatchNormOptions bad_options;
    bad_options.momentum = 1.5;
    CHECK_THROWS_WITH_AS(BatchNormalization<float>{bad_options}, doctest::Contains("momentum 1.5 outside [0, 1)"), Error);
    CHECK_THROWS_WITH_AS(BatchNormalization<float>().epsilon(-1e-3), doctest::Contains("epsilon -0.001 must be positive"), Error);
    CHECK_THROWS_AS(BatchNormalization<float>().epsilon(std::nan("")), Error);
    auto args = options_to_args(BatchNormOptions{});
    CHECK(args.at("convention") == "keras");
    args["convention"] = "tensorflow";
    CHECK_THROWS_WITH_AS(make_layer<float>(LayerConfig{"BatchNormalization", "bn", args}),
                         doctest::Contains("layer 'bn' (BatchNormalization): 'convention': unknown batch-norm convention 'tensorflow'"),
                         Error);
    args["convention"] = "torch";
    args["momentum"] = "1";
    CHECK_THROWS_WITH_AS(make_layer<float>(LayerConfig{"BatchNormalization", "bn", args}),
                         doctest::Contains("momentum 1 outside [0, 1)"), Error);

    // Pools larger than their input.
    Sequential<float> small(Shape{1, 3, 3});
    CHECK_THROWS_WITH_AS(small.add(AvgPool2D<float>(4, 4)),
                         doctest::Contains("AvgPool2D 'average_pooling2d': kernel 4x4 larger than the padded input 3x3"), Error);
    CHECK_THROWS_WITH_AS(small.add(MaxPool2D<float>(2, 5)),
                         doctest::Contains("MaxPool2D 'max_pooling2d': kernel 2x5 larger than the padded input 3x3"), Error);
    CHECK_THROWS_WITH_AS(small.add(AvgPool2D<float>(2, 2).padding("2,0,0,0")),
                         doctest::Contains("must be smaller than the pool size 2x2"), Error);
    CHECK_THROWS_WITH_AS(AvgPool2D<float>(0, 2), doctest::Contains("AvgPool2D: pool size must be positive"), Error);
    CHECK_THROWS_WITH_AS(Sequential<float>(Shape{4}).add(GlobalAveragePooling2D<float>()),
                         doctest::Contains("GlobalAveragePooling2D 'global_average_pooling2d': input must be [C, H, W]"), Error);

    // Concatenate: shapes that differ off the axis, the batch axis, an axis the inputs lack.
    auto x = Input({1, 6, 6});
    CHECK_THROWS_WITH_AS(Model<>(x, Concatenate<>()({Conv2D<>(2, 3).padding("same")(x), Conv2D<>(2, 3)(x)})),
                         doctest::Contains("layer 'concatenate' (Concatenate): input 1 has shape [N, 2, 4, 4], input 0 has "
                                           "[N, 2, 6, 6] (they may differ only on axis 1)"),
                         Error);
    CHECK_THROWS_WITH_AS(Model<>(x, Concatenate<>(0)({Conv2D<>(2, 3)(x), Conv2D<>(2, 3)(x)})),
                         doctest::Contains("axis 0 is not an axis of a sample of rank 3"), Error);
    CHECK_THROWS_WITH_AS(Model<>(x, Concatenate<>(-5)({Conv2D<>(2, 3)(x), Conv2D<>(2, 3)(x)})),
                         doctest::Contains("axis -5 is not an axis"), Error);
    CHECK_THROWS_WITH_AS(Model<>(x, Concatenate<>()({Flatten<>()(x), Conv2D<>(2, 3)(x)})),
                         doctest::Contains("input 1 has shape [N, 2, 4, 4], input 0 has [N, 36]"), Error);

    // Unknown activations, in code and in a file.
    CHECK_THROWS_WITH_AS(Dense<float>(3).activation("gelux"),
                         doctest::Contains("Dense: unknown activation 'gelux' (known: linear, relu"), Error);
    CHECK_THROWS_WITH_AS(Conv2D<float>(3, 3).name("c1").activation("mish"),
                         doctest::Contains("Conv2D 'c1': unknown activation 'mish'"), Error);
    CHECK_THROWS_WITH_AS(ActivationLayer<float>("mish"), doctest::Contains("Activation layer: unknown activation 'mish'"),
                         Error);
    CHECK_THROWS_WITH_AS(make_layer<float>(LayerConfig{"Activation", "act", {{"activation", "mish"}}}),
                         doctest::Contains("layer 'act' (Activation): 'activation': unknown activation 'mish'"), Error);
    CHECK_THROWS_WITH_AS(make_layer<float>(LayerConfig{"Dense", "d", {{"units", "2"}, {"use_bias", "true"}, {"activation", "Relu"}}}),
                         doctest::Contains("layer 'd' (Dense): 'activation': unknown activation 'Relu'"), Error);
    CHECK_THROWS_WITH_AS(LeakyReLU<float>(std::nan("")), doctest::Contains("LeakyReLU: alpha nan must be finite"), Error);

    // SpatialDropout2D: a rate of 1, an input without planes.
    CHECK_THROWS_WITH_AS(SpatialDropout2D<float>(1.0), doctest::Contains("SpatialDropout2D: rate 1 outside [0, 1)"), Error);
    CHECK_THROWS_WITH_AS(Sequential<float>(Shape{4}).add(SpatialDropout2D<float>(0.1)),
                         doctest::Contains("SpatialDropout2D 'spatial_dropout2d': input must be [C, H, W]"), Error);
}

}  // namespace test_nn_modern_layers
