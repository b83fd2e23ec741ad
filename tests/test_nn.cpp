// Layers and Sequential: the paper's model summary, Keras naming, initialisation, layer
// gradchecks through the Layer interface, the architecture round trip, predict, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <thread>

#include "cnnlite/autograd/gradcheck.hpp"
#include "cnnlite/core/init.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/nn/layer_registry.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/summary.hpp"
#include "cnnlite/ops/reduction.hpp"
#include "cnnlite/ops/softmax_cross_entropy.hpp"
#include "model_gradients.hpp"

namespace test_nn {

using namespace cnnlite;
using cnnlite::testing::check_model_gradients;

TEST_CASE("the paper's model: 805,962 parameters and the rows of its Figure 4") {
    const auto model = fashion_mnist_cnn<float>(0);
    CHECK(model.parameter_count() == 805962);
    const std::vector<std::string> names{"conv2d",    "max_pooling2d", "dropout", "max_pooling2d_1", "dropout_1",
                                         "flatten",   "dense",         "dropout_2", "dense_1"};
    const std::vector<std::int64_t> params{320, 0, 0, 0, 0, 0, 803072, 0, 2570};
    const std::vector<Shape> shapes{{64, 28, 28}, {64, 14, 14}, {64, 14, 14}, {64, 7, 7}, {64, 7, 7},
                                    {3136},       {256},        {256},        {10}};
    REQUIRE(model.size() == names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        CHECK(model.layer(i).name() == names[i]);
        CHECK(model.layer(i).parameter_count() == params[i]);
        CHECK(model.layer(i).output_shape() == shapes[i]);
    }
    const std::string table = summary(model);
    CHECK(table.find("Total params: 805,962 (3.07 MB)") != std::string::npos);
    CHECK(table.find(" conv2d (Conv2D)") != std::string::npos);
    CHECK(table.find("(None, 64, 28, 28)") != std::string::npos);
    CHECK(table.find(" dense_1 (Dense)") != std::string::npos);
    CHECK(table.find("803,072") != std::string::npos);
}

TEST_CASE("layer names restart in every model and clash with explicit names is an error") {
    Sequential<float> a(Shape{4}), b(Shape{4});
    a.add(Dense<float>(3));
    a.add(Dense<float>(3));
    b.add(Dense<float>(3));
    CHECK(a.layer(1).name() == "dense_1");
    CHECK(b.layer(0).name() == "dense");
    Sequential<float> c(Shape{4});
    c.add(Dense<float>(3).name("head"));
    CHECK(c.has_layer("head"));
    CHECK_THROWS_WITH_AS(c.add(Dense<float>(3).name("head")), doctest::Contains("'head' exists already"), Error);
    CHECK_THROWS_WITH_AS(c.layer("tail"), doctest::Contains("no layer named 'tail' (layers: head)"), Error);
}

TEST_CASE("Keras initialisation: glorot-uniform kernels, zero biases; torch scheme as an option") {
    const auto model = fashion_mnist_cnn<float>(7);
    const auto& dense = model.layer("dense");
    const double limit = std::sqrt(6.0 / (3136 + 256));
    const auto params = dense.parameters();
    const auto& w = params[0].variable.value();
    double lo = 1, hi = -1, mean = 0;
    for (float v : w) lo = std::min<double>(lo, v), hi = std::max<double>(hi, v), mean += v;
    mean /= static_cast<double>(w.numel());
    CHECK(lo >= -limit);
    CHECK(hi <= limit);
    CHECK(hi > 0.99 * limit);  // 800k draws reach close to the bound
    CHECK(std::fabs(mean) < 1e-3);
    for (float v : params[1].variable.value()) CHECK(v == 0.0f);

    const auto torch_model = fashion_mnist_cnn<float>(7, InitScheme::torch);
    const auto& b = torch_model.layer("dense").parameters()[1].variable.value();
    const double bound = 1.0 / std::sqrt(3136.0);
    bool any_nonzero = false;
    for (float v : b) {
        CHECK(std::fabs(v) <= bound);
        any_nonzero |= v != 0.0f;
    }
    CHECK(any_nonzero);
    // Same seed, same weights; another seed, other weights.
    const auto again = fashion_mnist_cnn<float>(7);
    CHECK(again.layer("dense").parameters()[0].variable.value().to_vector() == w.to_vector());
    const auto other = fashion_mnist_cnn<float>(8);
    CHECK(other.layer("dense").parameters()[0].variable.value().to_vector() != w.to_vector());
}


TEST_CASE("every layer passes gradcheck through the Layer interface (double)") {
    SUBCASE("Conv2D same 2x2 relu, MaxPool2D, Flatten, Dense relu, Dense softmax") {
        Sequential<double> m(Shape{2, 6, 6});
        m.add(Conv2D<double>(3, 2).padding("same").activation("relu"));
        m.add(MaxPool2D<double>(2, 2));
        m.add(Flatten<double>());
        m.add(Dense<double>(5).activation("relu"));
        m.add(Dense<double>(4).activation("softmax"));
        check_model_gradients(m, Shape{2, 2, 6, 6}, false);
    }
    SUBCASE("Conv2D strided valid without bias, Dropout in training, ReLU and Softmax layers") {
        Sequential<double> m(Shape{1, 7, 7});
        m.add(Conv2D<double>(2, 3).strides(2, 2).use_bias(false));
        m.add(ReLU<double>());
        m.add(Dropout<double>(0.4));
        m.add(Flatten<double>());
        m.add(Dense<double>(3));
        m.add(Softmax<double>());
        check_model_gradients(m, Shape{3, 1, 7, 7}, true);
    }
}

TEST_CASE("activation=relu: the layer's own output is after the ReLU, as in Keras") {
    const auto model = fashion_mnist_cnn<float>(1);
    Tensor<float> x(Shape{2, 1, 28, 28});
    fill_uniform(x, RandomStream(1, Purpose::user), 0, 1);
    bool seen = false;
    model.forward(Variable<float>(x), {}, [&](const Layer<float>& layer, Variable<float>& out) {
        if (layer.name() != "conv2d") return;
        seen = true;
        CHECK(out.shape() == Shape{2, 64, 28, 28});
        for (float v : out.value()) REQUIRE(v >= 0.0f);
    });
    CHECK(seen);
}

TEST_CASE("a model ending in softmax: forward gives probabilities, forward_logits the logits") {
    const auto model = fashion_mnist_cnn<double>(2);
    CHECK(model.ends_in_softmax());
    Tensor<double> x(Shape{3, 1, 28, 28});
    fill_uniform(x, RandomStream(2, Purpose::user), 0, 1);
    const auto probs = model.forward(Variable<double>(x)).value();
    const auto logits = model.forward_logits(Variable<double>(x)).value();
    for (int i = 0; i < 3; ++i) {
        double total = 0, z = 0;
        for (int j = 0; j < 10; ++j) z += std::exp(logits(i, j));
        for (int j = 0; j < 10; ++j) {
            total += probs(i, j);
            CHECK(probs(i, j) == doctest::Approx(std::exp(logits(i, j)) / z));
        }
        CHECK(total == doctest::Approx(1.0));
    }
}

TEST_CASE("the architecture rebuilds the same network") {
    const auto model = fashion_mnist_cnn<float>(0);
    const auto rebuilt = make_sequential<float>(model.input_shape(), model.architecture(), 0);
    CHECK(summary(rebuilt) == summary(model));
    for (std::size_t i = 0; i < model.size(); ++i) {
        CHECK(model.layer(i).config().args == rebuilt.layer(i).config().args);
        CHECK(model.layer(i).config().type == rebuilt.layer(i).config().type);
    }
    LayerConfig bad{"Conv3D", "x", {}};
    CHECK_THROWS_WITH_AS(make_layer<float>(bad), doctest::Contains("unknown layer type 'Conv3D'"), Error);
    LayerConfig missing{"Dense", "d", {{"units", "4"}}};
    CHECK_THROWS_WITH_AS(make_layer<float>(missing), doctest::Contains("lacks 'use_bias'"), Error);
    LayerConfig junk{"Dense", "d", {{"units", "4x"}, {"use_bias", "true"}, {"activation", "relu"}}};
    CHECK_THROWS_WITH_AS(make_layer<float>(junk), doctest::Contains("'units' = '4x' is not an integer"), Error);
}

TEST_CASE("layer_options: every options struct writes and reads back its fields; bad text is named") {
    Conv2dOptions conv;
    conv.filters = 7;
    conv.kernel_size = {3, 5};
    conv.strides = {2, 1};
    conv.padding = Padding::explicit_pad(1, 0, 2, 3);
    conv.use_bias = false;
    conv.activation = Activation::relu;
    const auto args = options_to_args(conv);
    CHECK(args.at("kernel_size") == "3,5");
    CHECK(args.at("padding") == "1,0,2,3");
    CHECK(args.at("use_bias") == "false");
    CHECK(args.at("activation") == "relu");
    const auto back = options_from_config<Conv2dOptions>(LayerConfig{"Conv2D", "c", args});
    CHECK(back.filters == 7);
    CHECK(back.kernel_size == conv.kernel_size);
    CHECK(back.strides == conv.strides);
    CHECK(back.padding == conv.padding);
    CHECK(back.use_bias == false);
    CHECK(back.activation == Activation::relu);
    DropoutOptions drop;
    drop.rate = 0.1;  // not exact in binary: must come back bit for bit
    CHECK(options_from_config<DropoutOptions>(LayerConfig{"Dropout", "d", options_to_args(drop)}).rate == drop.rate);
    CHECK(options_to_args(NoOptions{}).empty());
    // The layer's own config is its options, and clone_config copies them.
    const Conv2D<float> layer(conv);
    CHECK(layer.config().args == args);
    CHECK(layer.clone_config()->config().args == args);

    auto bad = args;
    bad["kernel_size"] = "3x5";
    CHECK_THROWS_WITH_AS(options_from_config<Conv2dOptions>(LayerConfig{"Conv2D", "c", bad}),
                         doctest::Contains("layer 'c': 'kernel_size' = '3x5' is not a pair 'h,w'"), Error);
    bad = args;
    bad["use_bias"] = "yes";
    CHECK_THROWS_WITH_AS(options_from_config<Conv2dOptions>(LayerConfig{"Conv2D", "c", bad}),
                         doctest::Contains("'use_bias' = 'yes' is not true/false"), Error);
    bad = args;
    bad["padding"] = "1,2,3";
    CHECK_THROWS_WITH_AS(options_from_config<Conv2dOptions>(LayerConfig{"Conv2D", "c", bad}),
                         doctest::Contains("unknown padding '1,2,3'"), Error);
}

TEST_CASE("predict: chunked, no graph, same from several threads at once") {
    const auto model = fashion_mnist_cnn<float>(3);
    Tensor<float> x(Shape{37, 1, 28, 28});
    fill_uniform(x, RandomStream(3, Purpose::user), 0, 1);
    const Tensor<float> whole = model.predict(x, 1000);
    const Tensor<float> chunked = model.predict(x, 8);
    REQUIRE(whole.shape() == Shape{37, 10});
    for (std::int64_t i = 0; i < whole.numel(); ++i) CHECK(chunked[i] == doctest::Approx(whole[i]).epsilon(1e-6));
    std::vector<Tensor<float>> results(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { results[static_cast<std::size_t>(t)] = model.predict(x, 16); });
    for (auto& t : threads) t.join();
    for (const auto& r : results)
        for (std::int64_t i = 0; i < r.numel(); ++i) REQUIRE(r[i] == doctest::Approx(whole[i]).epsilon(1e-6));
}

TEST_CASE("wrong input shapes give errors that name the layer and both shapes") {
    const auto model = fashion_mnist_cnn<float>(0);
    Tensor<float> wrong(Shape{2, 3, 28, 28});
    CHECK_THROWS_WITH_AS(model.predict(wrong), doctest::Contains("expects input [N, 1, 28, 28] with N >= 1, got [2, 3, 28, 28]"),
                         Error);
    CHECK_THROWS_AS(model.predict(Tensor<float>(Shape{0, 1, 28, 28})), Error);
    Sequential<float> m(Shape{1, 4, 4});
    CHECK_THROWS_WITH_AS(m.add(Dense<float>(3)), doctest::Contains("add a Flatten layer"), Error);
    CHECK_THROWS_WITH_AS(m.add(Conv2D<float>(2, 5)), doctest::Contains("larger than the padded input"), Error);
    CHECK_THROWS_AS(Dropout<float>(1.0), Error);
    CHECK_THROWS_AS(Conv2D<float>(0, 2), Error);
}

TEST_CASE("Conv2D 'same' keeps the size for odd and even kernels and strides round up") {
    Sequential<float> m(Shape{1, 7, 9});
    m.add(Conv2D<float>(2, 2).padding("same"));
    m.add(Conv2D<float>(2, 3).padding("same"));
    m.add(Conv2D<float>(2, 3).padding("same").strides(2, 2));
    CHECK(m.layer(0).output_shape() == Shape{2, 7, 9});
    CHECK(m.layer(1).output_shape() == Shape{2, 7, 9});
    CHECK(m.layer(2).output_shape() == Shape{2, 4, 5});
}

TEST_CASE("layer fusion (Conv2D+ReLU+MaxPool2D) gives the unfused values and gradients") {
    auto fused = fashion_mnist_cnn<double>(5);
    auto plain = fashion_mnist_cnn<double>(5);
    plain.set_fusion(false);
    Tensor<double> x(Shape{3, 1, 28, 28});
    fill_uniform(x, RandomStream(6, Purpose::user), 0, 1);
    std::vector<std::int64_t> ids{7, 8, 9};
    const ForwardContext ctx{true, 3, 2, ids.data()};
    Variable<double> a = fused.forward(Variable<double>(x), ctx);
    Variable<double> b = plain.forward(Variable<double>(x), ctx);
    CHECK(a.value().to_vector() == b.value().to_vector());
    sum(a).backward();
    sum(b).backward();
    const auto pa = fused.parameters(), pb = plain.parameters();
    for (std::size_t k = 0; k < pa.size(); ++k)
        for (std::int64_t i = 0; i < pa[k].variable.grad().numel(); ++i)
            REQUIRE(pa[k].variable.grad()[i] == doctest::Approx(pb[k].variable.grad()[i]).epsilon(1e-10).scale(1e-12));
}

}  // namespace test_nn
