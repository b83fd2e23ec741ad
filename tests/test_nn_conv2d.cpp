// The Conv2D layer's dilation_rate and groups (depthwise when groups = channels): a dilated
// window and a depthwise product by hand, 'same' padding over the dilated span against a naive
// loop, the weight shape and initialisation bounds PyTorch and Keras use for grouped kernels,
// gradchecks in double through models, model files with and without the new keys, the fusion
// rules (no conv + ReLU + pool fusion for them; BatchNorm folding still applies), summary
// counts and the errors of hostile settings. The conv2d op under the layer is checked against
// PyTorch in float and double by the op-case table (tests/op_cases.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "cnnlite/core/init.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/layer_registry.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/model.hpp"
#include "cnnlite/nn/summary.hpp"
#include "cnnlite/nn/symbolic.hpp"
#include "model_gradients.hpp"

namespace test_nn_conv2d {

using namespace cnnlite;
using cnnlite::testing::check_model_gradients;

template <class T>
Tensor<T> random_tensor(const Shape& shape, std::uint64_t seed, double lo = -1, double hi = 1) {
    Tensor<T> x(shape);
    fill_uniform(x, RandomStream(seed, Purpose::user), lo, hi);
    return x;
}

template <class T>
const Conv2D<T>& conv_layer(const Model<T>& model, std::size_t index) {
    const auto* conv = dynamic_cast<const Conv2D<T>*>(&model.layer(index));
    REQUIRE(conv != nullptr);
    return *conv;
}

// A grouped, dilated, strided convolution with explicit padding, one output at a time in
// double: y[n, f, i, j] = b[f] + sum over the c / groups channels of f's group and the taps.
template <class T>
std::vector<double> naive_conv(const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& bias, std::int64_t groups,
                               std::int64_t stride_h, std::int64_t stride_w, std::int64_t dil_h, std::int64_t dil_w,
                               std::int64_t top, std::int64_t left, std::int64_t oh, std::int64_t ow) {
    const std::int64_t batch = x.shape()[0], c = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
    const std::int64_t filters = w.shape()[0], cg = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3];
    REQUIRE(cg * groups == c);
    std::vector<double> y;
    for (std::int64_t n = 0; n < batch; ++n)
        for (std::int64_t f = 0; f < filters; ++f) {
            const std::int64_t group = f / (filters / groups);
            for (std::int64_t i = 0; i < oh; ++i)
                for (std::int64_t j = 0; j < ow; ++j) {
                    double s = bias.numel() > 0 ? static_cast<double>(bias[f]) : 0.0;
                    for (std::int64_t k = 0; k < cg; ++k)
                        for (std::int64_t a = 0; a < kh; ++a)
                            for (std::int64_t b = 0; b < kw; ++b) {
                                const std::int64_t r = i * stride_h + a * dil_h - top;
                                const std::int64_t q = j * stride_w + b * dil_w - left;
                                if (r < 0 || r >= h || q < 0 || q >= wd) continue;
                                const std::int64_t ch = group * cg + k;
                                s += static_cast<double>(w[((f * cg + k) * kh + a) * kw + b]) *
                                     static_cast<double>(x[((n * c + ch) * h + r) * wd + q]);
                            }
                    y.push_back(s);
                }
        }
    return y;
}

TEST_CASE("a dilated window and a depthwise product, by hand") {
    // x[i, j] = 5 i + j on a 5x5 plane; a 3x3 kernel of ones at rate 2 spans the whole plane
    // ('valid': one output) and reads rows and columns 0, 2 and 4:
    // sum over i, j in {0, 2, 4} of 5 i + j = 3 * 5 * 6 + 3 * 6 = 108.
    Sequential<double> dilated(Shape{1, 5, 5});
    dilated.add(Conv2D<double>(1, 3).dilation_rate(2, 2).use_bias(false));
    CHECK(dilated.output_shape() == Shape{1, 1, 1});
    dilated.parameters()[0].variable.value().fill(1.0);
    Tensor<double> x(Shape{1, 1, 5, 5});
    for (std::int64_t i = 0; i < 25; ++i) x[i] = static_cast<double>(5 * (i / 5) + i % 5);
    CHECK(dilated.predict(x)[0] == 108.0);

    // Depthwise (groups = channels = 2), 1x1 kernels 3 and -2 and biases 1 and 0.5: each
    // channel is scaled on its own, never mixed with the other.
    Sequential<double> depthwise(Shape{2, 2, 2});
    depthwise.add(Conv2D<double>(2, 1).groups(2));
    auto params = depthwise.parameters();  // weight [2, 1, 1, 1], bias [2]
    REQUIRE(params[0].variable.shape() == Shape{2, 1, 1, 1});
    params[0].variable.value()[0] = 3.0;
    params[0].variable.value()[1] = -2.0;
    params[1].variable.value()[0] = 1.0;
    params[1].variable.value()[1] = 0.5;
    Tensor<double> planes(Shape{1, 2, 2, 2});
    for (std::int64_t i = 0; i < 8; ++i) planes[i] = static_cast<double>(i + 1);
    const Tensor<double> y = depthwise.predict(planes);
    const double expected[8] = {4, 7, 10, 13, -9.5, -11.5, -13.5, -15.5};
    for (std::int64_t i = 0; i < 8; ++i) CHECK(y[i] == expected[i]);
}

// A layer of the test below: its settings, and by hand its output size and top and left padding
// (TensorFlow's 'same' over the dilated span (k - 1) d + 1).
struct ConvCase {
    const char* label;
    std::int64_t channels, filters, kernel_h, kernel_w, stride, dil_h, dil_w, groups;
    const char* padding;
    bool bias;
    std::int64_t out_h, out_w, top, left;
};

// The case's layer in T on a 9x7 input: its shapes and op arguments, and its output for x against
// naive_conv on the layer's own weights, to `tolerance`.
template <class T>
void check_against_naive_loop(const ConvCase& c, const Tensor<T>& x, double tolerance) {
    Sequential<T> model(Shape{c.channels, 9, 7}, /*seed=*/3, InitScheme::torch);
    model.add(Conv2D<T>(c.filters, c.kernel_h, c.kernel_w)
                  .strides(c.stride, c.stride)
                  .dilation_rate(c.dil_h, c.dil_w)
                  .groups(c.groups)
                  .padding(c.padding)
                  .use_bias(c.bias));
    CHECK(model.output_shape() == Shape{c.filters, c.out_h, c.out_w});
    const auto& conv = conv_layer(model, 0);
    CHECK(conv.weight().shape() == Shape{c.filters, c.channels / c.groups, c.kernel_h, c.kernel_w});
    const Conv2dArgs args = conv.conv2d_args();
    CHECK(args.pad_top == c.top);
    CHECK(args.pad_left == c.left);
    CHECK(args.dilation_h == c.dil_h);
    CHECK(args.dilation_w == c.dil_w);
    CHECK(args.groups == c.groups);
    const Tensor<T> y = model.predict(x);
    const std::vector<double> expected =
        naive_conv(x, conv.weight().value(), c.bias ? conv.bias().value() : Tensor<T>(), c.groups, c.stride, c.stride,
                   c.dil_h, c.dil_w, c.top, c.left, c.out_h, c.out_w);
    REQUIRE(y.numel() == static_cast<std::int64_t>(expected.size()));
    for (std::int64_t i = 0; i < y.numel(); ++i) {
        CAPTURE(i);
        CHECK(y[i] == doctest::Approx(expected[static_cast<std::size_t>(i)]).epsilon(tolerance));
    }
}

TEST_CASE("'same' padding sees the dilated span; grouped, dilated, strided layers equal a naive loop") {
    // A 9x7 input. 'same', stride 1, 3x3 at rate 2: span 5, total padding 4 -> 2 above, 2 left.
    // Stride 2, 3x2 at rate (3, 2): spans 7 and 3; outputs ceil(9/2) = 5 and 4; total padding
    // (5-1)*2 + 7 - 9 = 6 -> 3 above, and (4-1)*2 + 3 - 7 = 2 -> 1 left.
    const ConvCase cases[] = {
        {"depthwise, dilation 2, same", 4, 4, 3, 3, 1, 2, 2, 4, "same", true, 9, 7, 2, 2},
        {"2 groups, depthwise multiplier 2, stride 2, dilation 3x2, same", 4, 8, 3, 2, 2, 3, 2, 2, "same", false, 5, 4,
         3, 1},
        {"2 groups, dilation 1x3, valid", 6, 4, 2, 3, 1, 1, 3, 2, "valid", true, 8, 1, 0, 0},
        {"plain, dilation 2, explicit padding", 3, 2, 3, 3, 1, 2, 2, 1, "1,0,2,1", true, 6, 6, 1, 2},
    };
    for (const ConvCase& c : cases) {
        CAPTURE(c.label);
        const Tensor<double> x = random_tensor<double>(Shape{2, c.channels, 9, 7}, 5);
        check_against_naive_loop(c, x, 1e-12);
        // In float, through the float kernels, to rounding.
        Tensor<float> xf(x.shape());
        for (std::int64_t i = 0; i < x.numel(); ++i) xf[i] = static_cast<float>(x[i]);
        check_against_naive_loop(c, xf, 1e-5);
    }
}

TEST_CASE("grouped kernels are initialised with PyTorch's and Keras' fans: c / groups * kh * kw inputs") {
    // PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases; a depthwise 3x3 kernel
    // over 64 channels has fan_in 9, not 576.
    Sequential<float> torch(Shape{64, 8, 8}, /*seed=*/1, InitScheme::torch);
    torch.add(Conv2D<float>(128, 3).groups(64));
    const auto& conv = conv_layer(torch, 0);
    REQUIRE(conv.weight().shape() == Shape{128, 1, 3, 3});
    const double bound = 1.0 / std::sqrt(9.0);
    double largest = 0;
    for (std::int64_t i = 0; i < conv.weight().value().numel(); ++i)
        largest = std::max(largest, std::fabs(static_cast<double>(conv.weight().value()[i])));
    CHECK(largest <= bound);
    CHECK(largest > 0.95 * bound);  // 1,152 draws reach the bound's neighbourhood
    // Keras: Glorot uniform, limit sqrt(6 / (fan_in + fan_out)) with fan_out = filters * kh * kw.
    Sequential<float> keras(Shape{64, 8, 8}, /*seed=*/1, InitScheme::keras);
    keras.add(Conv2D<float>(128, 3).groups(64));
    const double limit = std::sqrt(6.0 / (9.0 + 128.0 * 9.0));
    largest = 0;
    for (std::int64_t i = 0; i < conv_layer(keras, 0).weight().value().numel(); ++i)
        largest = std::max(largest, std::fabs(static_cast<double>(conv_layer(keras, 0).weight().value()[i])));
    CHECK(largest <= limit);
    CHECK(largest > 0.95 * limit);
}

TEST_CASE("gradchecks in double through models: dilated, grouped and depthwise Conv2D") {
    SUBCASE("depthwise 3x3 at rate 2 ('same'), then a pointwise 1x1: a separable convolution") {
        Sequential<double> m(Shape{3, 7, 6}, /*seed=*/2);
        m.add(Conv2D<double>(3, 3).dilation_rate(2, 2).groups(3).padding("same").use_bias(false));
        m.add(Conv2D<double>(4, 1).activation("relu"));
        m.add(Flatten<double>());
        check_model_gradients(m, Shape{2, 3, 7, 6}, false);
    }
    SUBCASE("depthwise 3x3 over 16 channels (the channel-block kernels), stride 2, relu, then a pointwise 1x1") {
        Sequential<double> m(Shape{16, 5, 6}, /*seed=*/2);
        m.add(Conv2D<double>(16, 3).groups(16).strides(2, 2).padding("same").activation("relu"));
        m.add(Conv2D<double>(2, 1));
        m.add(Flatten<double>());
        check_model_gradients(m, Shape{2, 16, 5, 6}, false);
    }
    SUBCASE("two groups, stride 2, dilation 1x2, relu, then max pooling (not fused)") {
        Sequential<double> m(Shape{4, 9, 9}, /*seed=*/2);
        m.add(Conv2D<double>(6, 3, 2).strides(2, 2).dilation_rate(1, 2).groups(2).activation("relu"));
        m.add(MaxPool2D<double>(2, 2));
        m.add(Flatten<double>());
        check_model_gradients(m, Shape{2, 4, 9, 9}, false);
    }
    SUBCASE("a grouped convolution and BatchNormalization in training") {
        Sequential<double> m(Shape{4, 5, 5}, /*seed=*/2);
        m.add(Conv2D<double>(4, 3).groups(2).dilation_rate(2, 1).padding("same").use_bias(false));
        m.add(BatchNormalization<double>());
        m.add(Flatten<double>());
        check_model_gradients(m, Shape{3, 4, 5, 5}, true);
    }
}

TEST_CASE("the fusion rules: no conv + ReLU + pool fusion for dilated or grouped layers, BatchNorm still folds") {
    for (const bool dilated : {true, false}) {
        CAPTURE(dilated);
        Sequential<float> fused(Shape{4, 8, 8}, /*seed=*/4);
        Conv2D<float> conv(6, 3);
        conv.activation("relu").padding("same");
        if (dilated) conv.dilation_rate(2, 2);
        else conv.groups(2);
        fused.add(conv);
        fused.add(MaxPool2D<float>(2, 2));
        const Tensor<float> x = random_tensor<float>(Shape{3, 4, 8, 8}, 6);
        const Tensor<float> a = fused.predict(x);
        fused.set_fusion(false);
        const Tensor<float> b = fused.predict(x);
        REQUIRE(a.shape() == b.shape());
        for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == b[i]);
    }
    // A grouped, dilated Conv2D followed by BatchNormalization folds for inference: the same
    // values as the two layers, in double to 1e-13.
    Sequential<double> model(Shape{4, 7, 7}, /*seed=*/5);
    model.add(Conv2D<double>(8, 3).groups(4).dilation_rate(2, 2).padding("same"));
    model.add(BatchNormalization<double>(BatchNormConvention::torch));
    const Tensor<double> x = random_tensor<double>(Shape{4, 4, 7, 7}, 7);
    std::vector<std::int64_t> ids{0, 1, 2, 3};
    for (std::int64_t step = 0; step < 2; ++step)  // running statistics away from 0 and 1
        model.forward(Variable<double>(x), ForwardContext{true, 1, step, ids.data()});
    const Tensor<double> a = model.predict(x);
    model.set_fusion(false);
    const Tensor<double> b = model.predict(x);
    for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-13));
}

TEST_CASE("model files store dilation_rate and groups; files written before them load as 1 and 1") {
    auto input = Input<float>({4, 10, 10});
    auto h = Conv2D<float>(8, 3).groups(4).dilation_rate(2, 3).padding("same")(input);
    h = Conv2D<float>(8, 3).groups(8).strides(2, 2).use_bias(false).activation("relu")(h);
    Model<float> model(input, Flatten<float>()(h), /*seed=*/9);
    const auto path = (std::filesystem::temp_directory_path() / "cnnlite_test_conv2d_groups.safetensors").string();
    save_model(model, path);
    const Model<float> loaded = load_model<float>(path);
    std::filesystem::remove(path);
    const auto configs = loaded.architecture();
    REQUIRE(configs.size() == 3);
    CHECK(configs[0].args.at("dilation_rate") == "2,3");
    CHECK(configs[0].args.at("groups") == "4");
    CHECK(configs[1].args.at("groups") == "8");
    CHECK(summary(loaded) == summary(model));
    const Tensor<float> x = random_tensor<float>(Shape{2, 4, 10, 10}, 10);
    const Tensor<float> a = model.predict(x), b = loaded.predict(x);
    for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == b[i]);

    // A configuration without the two keys, as earlier files store a Conv2D.
    auto args = options_to_args(Conv2dOptions{});
    args.erase("dilation_rate");
    args.erase("groups");
    const Conv2dOptions old = options_from_config<Conv2dOptions>(LayerConfig{"Conv2D", "conv", args, {}});
    CHECK(old.dilation_rate == Extent2{1, 1});
    CHECK(old.groups == 1);
    args["groups"] = "0";
    CHECK_THROWS_WITH_AS(make_layer<float>(LayerConfig{"Conv2D", "conv", args, {}}),
                         doctest::Contains("Conv2D: groups 0 must be positive"), Error);
    args["groups"] = "1";
    args["dilation_rate"] = "2";
    CHECK_THROWS_WITH_AS(make_layer<float>(LayerConfig{"Conv2D", "conv", args, {}}),
                         doctest::Contains("'dilation_rate' = '2' is not a pair 'h,w'"), Error);
}

TEST_CASE("summary counts a depthwise kernel's parameters: channels * kh * kw + bias") {
    Sequential<float> m(Shape{16, 8, 8});
    m.add(Conv2D<float>(16, 3).groups(16).padding("same"));  // 16 * 1 * 3 * 3 + 16 = 160
    m.add(Conv2D<float>(32, 1).groups(4));                    // 32 * 4 * 1 * 1 + 32 = 160
    CHECK(m.layer(0).parameter_count() == 160);
    CHECK(m.layer(1).parameter_count() == 160);
    CHECK(summary(m).find("Total params: 320 ") != std::string::npos);
}

TEST_CASE("hostile settings: groups and dilation errors name the layer and the numbers") {
    CHECK_THROWS_WITH_AS(Conv2D<float>(4, 3).groups(0), doctest::Contains("Conv2D: groups 0 must be positive"), Error);
    CHECK_THROWS_WITH_AS(Conv2D<float>(4, 3).groups(-2), doctest::Contains("groups -2 must be positive"), Error);
    CHECK_THROWS_WITH_AS(Conv2D<float>(4, 3).dilation_rate(0, 1),
                         doctest::Contains("Conv2D: dilation_rate 0x1 must be positive"), Error);
    CHECK_THROWS_WITH_AS(Conv2D<float>(4, 3).dilation_rate(1, std::int64_t(1) << 40),
                         doctest::Contains("must be positive"), Error);  // beyond the op's 32 bits
    Conv2dOptions options;
    options.filters = 2;
    options.groups = -1;
    CHECK_THROWS_WITH_AS(Conv2D<float>{options}, doctest::Contains("groups -1 must be positive"), Error);

    Sequential<float> three(Shape{3, 8, 8});
    CHECK_THROWS_WITH_AS(three.add(Conv2D<float>(4, 3).groups(2)),
                         doctest::Contains("Conv2D 'conv2d': 2 groups must divide both the input's 3 channels and the 4 filters"),
                         Error);
    Sequential<float> four(Shape{4, 8, 8});
    CHECK_THROWS_WITH_AS(four.add(Conv2D<float>(6, 3).groups(4)),
                         doctest::Contains("4 groups must divide both the input's 4 channels and the 6 filters"), Error);
    // A dilated kernel wider than a 'valid' input, and a span that would overflow.
    CHECK_THROWS_WITH_AS(four.add(Conv2D<float>(4, 3).dilation_rate(4, 1).name("wide")),
                         doctest::Contains(
                             "Conv2D 'wide' (kernel 3x3 at dilation_rate 4,1): kernel 9x3 larger than the padded input 8x8"), Error);
    Conv2dOptions huge;
    huge.filters = 1;
    huge.kernel_size = {std::int64_t(1) << 40, 1};
    huge.dilation_rate = {std::numeric_limits<std::int32_t>::max(), 1};
    huge.padding = Padding::same();
    CHECK_THROWS_WITH_AS(four.add(Conv2D<float>{huge}), doctest::Contains("spans more than any input"), Error);
    // The model is unchanged by the refused layers.
    CHECK(four.size() == 0);
}

}  // namespace test_nn_conv2d
