// ONNX import (io/onnx_import.hpp): cnnlite's own exports read back (the paper's network and a
// residual graph with BatchNorm predict what the originals predict), hand-built graphs of each
// operator against values computed by hand or by a naive loop here, every refusal with the
// message it must give, fine-tuning of an imported model and its save_model file, and a
// network trained and exported by PyTorch (tests/fixtures/onnx/, made by
// make_onnx_fixture.py) whose probabilities and accuracy must be PyTorch's.
// Needs the ONNX component (CMake -DCNNLITE_WITH_ONNX=ON: linked into test_io_onnx); without it
// the file compiles to nothing.
#include <doctest/doctest.h>

#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include "cnnlite/core/random.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/npy.hpp"
#include "cnnlite/io/onnx_export.hpp"
#include "cnnlite/io/onnx_import.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/nn/symbolic.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/train/fit.hpp"
#include "onnx_graph_builder.hpp"
#include "program_runner.hpp"
#include "source_dir.hpp"

namespace test_io_onnx_import {

using namespace cnnlite;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() : path(fs::temp_directory_path() / ("cnnlite_onnx_import_" + std::to_string(::getpid()))) {
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

// Values in [-1, 1) from a fixed stream, so that every test sees the same inputs.
template <class T = float>
Tensor<T> pattern(const Shape& shape, std::uint64_t seed) {
    Tensor<T> t(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i)
        t[i] = static_cast<T>(std::sin(0.7 * static_cast<double>(i) + static_cast<double>(seed)));
    return t;
}

template <class T>
double max_difference(const Tensor<T>& a, const Tensor<T>& b) {
    REQUIRE(a.shape() == b.shape());
    double worst = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i)
        worst = std::max(worst, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    return worst;
}

using test_support::GraphBuilder;
using test_support::range;
using test_support::set_float;
using test_support::set_int;
using test_support::set_ints;
using test_support::set_text;

// The single-image reference: a direct convolution of x [C, H, W] with zero padding.
std::vector<double> naive_conv(const Tensor<float>& x, const std::vector<float>& w, std::int64_t o, std::int64_t kh,
                               std::int64_t kw, std::int64_t stride, std::int64_t top, std::int64_t left,
                               std::int64_t oh, std::int64_t ow, const std::vector<float>& bias,
                               std::int64_t groups = 1, std::int64_t dilation = 1) {
    const std::int64_t c = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
    const std::int64_t cg = c / groups;  // input channels each filter reads
    std::vector<double> y;
    for (std::int64_t f = 0; f < o; ++f)
        for (std::int64_t i = 0; i < oh; ++i)
            for (std::int64_t j = 0; j < ow; ++j) {
                double s = bias.empty() ? 0 : bias[static_cast<std::size_t>(f)];
                for (std::int64_t k = 0; k < cg; ++k)
                    for (std::int64_t a = 0; a < kh; ++a)
                        for (std::int64_t b = 0; b < kw; ++b) {
                            const std::int64_t r = i * stride + a * dilation - top, q = j * stride + b * dilation - left;
                            if (r < 0 || r >= h || q < 0 || q >= wd) continue;
                            const std::int64_t ch = f / (o / groups) * cg + k;
                            s += static_cast<double>(w[static_cast<std::size_t>(((f * cg + k) * kh + a) * kw + b)]) *
                                 x[(ch * h + r) * wd + q];
                        }
                y.push_back(s);
            }
    return y;
}

void check_close(const Tensor<float>& got, const std::vector<double>& expected, double tolerance = 1e-5) {
    REQUIRE(got.numel() == static_cast<std::int64_t>(expected.size()));
    for (std::int64_t i = 0; i < got.numel(); ++i) {
        CAPTURE(i);
        CHECK(got[i] == doctest::Approx(expected[static_cast<std::size_t>(i)]).epsilon(tolerance));
    }
}

std::string refusal(const onnx::ModelProto& proto) {
    try {
        from_onnx<float>(proto, "test.onnx");
    } catch (const cnnlite::Error& e) {
        return e.what();
    }
    return "(accepted)";
}

std::string refusal_of_bytes(const std::string& bytes) {
    try {
        load_onnx_bytes<float>(bytes, "test.onnx");
    } catch (const cnnlite::Error& e) {
        return e.what();
    }
    return "(accepted)";
}

// x [1, 2, 4, 4] -> Conv(3 filters, 3x3, pads 1) -> Relu -> y: the graph most refusals start from.
GraphBuilder small_conv_graph() {
    GraphBuilder b({2, 4, 4});
    auto& conv = b.node("Conv", "conv", {"x", "w", "bias"}, {"c"});
    set_ints(conv, "pads", {1, 1, 1, 1});
    b.weights("w", {3, 2, 3, 3}, range(54));
    b.weights("bias", {3}, {0.1f, -0.2f, 0.3f});
    b.node("Relu", "relu", {"c"}, {"y"});
    b.output("y");
    return b;
}

// The residual graph of tests/test_io_onnx.cpp without GELU (which the importer does not read):
// Conv+BatchNorm+ReLU, a residual Add, max pooling, a strided convolution with uneven padding,
// Concatenate, Dropout, global average pooling, Dense softmax; BatchNorm statistics set away
// from their defaults.
Model<float> residual_graph() {
    auto x = Input<float>({3, 10, 10});
    Conv2dOptions stem;
    stem.filters = 8;
    stem.kernel_size = {3, 3};
    stem.padding = Padding::same();
    stem.use_bias = false;
    Symbolic<float> h = ReLU<float>()(BatchNormalization<float>(BatchNormConvention::torch)(Conv2D<float>(stem)(x)));
    Symbolic<float> branch = Conv2D<float>(8, 3).padding("1,1,1,1").activation("relu")(h);
    h = Add<float>()({branch, h});
    h = MaxPool2D<float>(2, 2)(h);
    Symbolic<float> side = Conv2D<float>(4, 3).strides(2, 2).padding("2,0,1,0")(x);
    h = Concatenate<float>()({h, side});
    h = Dropout<float>(0.5)(h);
    h = GlobalAveragePooling2D<float>()(h);
    h = Dense<float>(6).activation("relu")(h);
    Model<float> model(x, Dense<float>(5).activation("softmax")(h), /*seed=*/3, InitScheme::torch);
    for (auto& b : model.buffers()) {
        Tensor<float>& v = b.variable.value();
        for (std::int64_t c = 0; c < v.numel(); ++c)
            v[c] = b.name == "batch_normalization.running_mean" ? 0.1f * float(c + 1) - 0.3f : 0.5f + 0.25f * float(c);
    }
    return model;
}

}  // namespace

// --- round trips ------------------------------------------------------------------------------

TEST_CASE("the paper's network and a residual graph read back from save_onnx predict what they did") {
    TempDir dir;
    const Sequential<float> paper = fashion_mnist_cnn<float>(7);
    save_onnx(paper, dir.file("paper.onnx"));
    const Model<float> paper_back = load_onnx<float>(dir.file("paper.onnx"));
    const Tensor<float> images = pattern(Shape{16, 1, 28, 28}, 1);
    CHECK(max_difference(paper.predict(images), paper_back.predict(images)) < 1e-6);
    // Layers keep their names and kinds; the Dense relu and the Conv relu are fused again.
    CHECK(paper_back.has_layer("conv2d"));
    CHECK(dynamic_cast<const Conv2D<float>&>(paper_back.layer("conv2d")).activation() == Activation::relu);
    CHECK(dynamic_cast<const Dense<float>&>(paper_back.layer("dense")).options().activation == Activation::relu);
    CHECK(paper_back.parameter_count() == paper.parameter_count());
    CHECK(paper_back.ends_in_softmax());

    const Model<float> graph = residual_graph();
    save_onnx(graph, dir.file("graph.onnx"));
    const Model<float> graph_back = load_onnx<float>(dir.file("graph.onnx"));
    const Tensor<float> x = pattern(Shape{4, 3, 10, 10}, 2);
    CHECK(max_difference(graph.predict(x), graph_back.predict(x)) < 1e-6);
    const auto& bn = dynamic_cast<const BatchNormalization<float>&>(graph_back.layer("batch_normalization"));
    CHECK(bn.running_mean()[2] == doctest::Approx(0.0f));
    CHECK(bn.running_var()[3] == doctest::Approx(1.25f));
    CHECK(bn.convention() == BatchNormConvention::torch);
    CHECK(bn.momentum() == doctest::Approx(0.1));
    CHECK(graph_back.parameter_count() == graph.parameter_count());

    // In double too, from the protobuf directly.
    const Model<double> paper_double = from_onnx<double>(to_onnx(paper));
    Tensor<double> images_double(images.shape());
    for (std::int64_t i = 0; i < images.numel(); ++i) images_double[i] = images[i];
    const Tensor<double> p = paper_double.predict(images_double);
    const Tensor<float> q = paper.predict(images);
    for (std::int64_t i = 0; i < q.numel(); ++i) CHECK(p[i] == doctest::Approx(q[i]).epsilon(1e-5));
}

TEST_CASE("SiLU, as x * Sigmoid(x), reads back as one layer; GELU's arithmetic is refused") {
    Sequential<float> model(Shape{2, 6, 6}, /*seed=*/5, InitScheme::torch);
    model.add(Conv2D<float>(3, 3).activation("silu"));
    model.add(Flatten<float>());
    model.add(Dense<float>(4).activation("silu"));
    model.add(ActivationLayer<float>("sigmoid"));
    const Model<float> back = from_onnx<float>(to_onnx(model));
    CHECK(back.size() == 6);  // Conv2D, Activation silu, Flatten, Dense, Activation silu, Activation sigmoid
    const Tensor<float> x = pattern(Shape{3, 2, 6, 6}, 4);
    CHECK(max_difference(model.predict(x), back.predict(x)) < 1e-6);

    Sequential<float> gelu(Shape{4}, /*seed=*/5);
    gelu.add(Dense<float>(3).activation("gelu"));
    CHECK(refusal(to_onnx(gelu)).find("(Mul): operator Mul is not supported") != std::string::npos);
}

// --- operators, by hand ------------------------------------------------------------------------

TEST_CASE("Conv with strides, pads and bias, and a constant Pad folded into it, compute a direct convolution") {
    GraphBuilder b({2, 5, 5});
    b.node("Pad", "pad", {"x", "pads"}, {"p"});
    b.ints("pads", {0, 0, 0, 1, 0, 0, 1, 0});  // one column on the left, one row at the bottom
    auto& conv = b.node("Conv", "conv", {"p", "w", "bias"}, {"y"});
    set_ints(conv, "kernel_shape", {2, 2});
    set_ints(conv, "strides", {2, 2});
    set_ints(conv, "pads", {1, 0, 0, 0});  // and one row on top
    b.weights("w", {3, 2, 2, 2}, range(24));
    b.weights("bias", {3}, {0.5f, 0, -0.5f});
    b.output("y");
    const Model<float> m = from_onnx<float>(b.proto);
    REQUIRE(m.size() == 1);  // the Pad is part of the convolution's padding
    // Padded input: rows 1 + 5 + 1 (conv's top, Pad's bottom), columns 1 + 5 (Pad's left).
    CHECK(m.output_shape() == Shape{3, 3, 3});
    const Tensor<float> x = pattern(Shape{1, 2, 5, 5}, 3);
    check_close(m.predict(x), naive_conv(x, range(24), 3, 2, 2, 2, 1, 1, 3, 3, {0.5f, 0, -0.5f}));
}

TEST_CASE("Conv with group and dilations: a depthwise multiplier and SAME_UPPER over the dilated span") {
    // Two groups of two input channels, four filters (two per group), a 3x3 kernel at rate 2
    // (span 5) with SAME_UPPER on a 6x5 input: total padding 4 each way, 2 before.
    GraphBuilder b({4, 6, 5});
    auto& conv = b.node("Conv", "conv", {"x", "w", "bias"}, {"y"});
    set_int(conv, "group", 2);
    set_ints(conv, "dilations", {2, 2});
    set_text(conv, "auto_pad", "SAME_UPPER");
    b.weights("w", {4, 2, 3, 3}, range(72));
    b.weights("bias", {4}, {0.5f, 0, -0.5f, 1});
    b.output("y");
    const Model<float> m = from_onnx<float>(b.proto);
    REQUIRE(m.size() == 1);
    const auto& layer = dynamic_cast<const Conv2D<float>&>(m.layer(0));
    CHECK(layer.options().groups == 2);
    CHECK(layer.options().dilation_rate == Extent2{2, 2});
    CHECK(m.output_shape() == Shape{4, 6, 5});
    const Tensor<float> x = pattern(Shape{1, 4, 6, 5}, 5);
    check_close(m.predict(x), naive_conv(x, range(72), 4, 3, 3, 1, 2, 2, 6, 5, {0.5f, 0, -0.5f, 1}, 2, 2));

    // Depthwise (group = channels), explicit pads, and the model's ONNX export reads back.
    GraphBuilder d({3, 5, 5});
    auto& depthwise = d.node("Conv", "depthwise", {"x", "w"}, {"y"});
    set_int(depthwise, "group", 3);
    set_ints(depthwise, "dilations", {2, 2});
    set_ints(depthwise, "pads", {1, 1, 1, 1});
    d.weights("w", {3, 1, 2, 2}, range(12));
    d.output("y");
    const Model<float> dm = from_onnx<float>(d.proto);
    CHECK(dm.output_shape() == Shape{3, 5, 5});
    const Tensor<float> dx = pattern(Shape{1, 3, 5, 5}, 6);
    check_close(dm.predict(dx), naive_conv(dx, range(12), 3, 2, 2, 1, 1, 1, 5, 5, {}, 3, 2));
    const Model<float> back = from_onnx<float>(to_onnx(dm));
    CHECK(max_difference(dm.predict(dx), back.predict(dx)) == 0);
}

TEST_CASE("the pads PyTorch's TorchScript exporter computes for F.pad are folded, and the Pad into the Conv") {
    // F.pad(x, (0, 1, 0, 1)) exported at opset 17: the pads [0, 1, 0, 1] in PyTorch's order are
    // turned into ONNX's by ConstantOfShape, Concat, Reshape, Slice, Transpose, Reshape and Cast.
    GraphBuilder b({1, 5, 5});
    test_support::add_torchscript_pad(b, "x", "padded");
    b.node("Conv", "/conv/Conv", {"padded", "w", "bias"}, {"y"});
    b.weights("w", {2, 1, 2, 2}, range(8));
    b.weights("bias", {2}, {0.25f, -0.25f});
    b.output("y");
    const Model<float> m = from_onnx<float>(b.proto);
    REQUIRE(m.size() == 1);
    const auto& conv = dynamic_cast<const Conv2D<float>&>(m.layer(0));
    CHECK(conv.options().padding == Padding::explicit_pad(0, 1, 0, 1));  // bottom and right, as 'same' pads
    const Tensor<float> x = pattern(Shape{2, 1, 5, 5}, 8);
    std::vector<double> expected;
    for (int i = 0; i < 2; ++i) {
        Tensor<float> one(Shape{1, 1, 5, 5});
        for (int k = 0; k < 25; ++k) one[k] = x[i * 25 + k];
        const std::vector<double> y = naive_conv(one, range(8), 2, 2, 2, 1, 0, 0, 5, 5, {0.25f, -0.25f});
        expected.insert(expected.end(), y.begin(), y.end());
    }
    check_close(m.predict(x), expected);

    // Folding stays within what a shape computation needs.
    GraphBuilder big({4});
    big.node("ConstantOfShape", "/big", {"shape"}, {"zeros"});
    big.ints("shape", {1 << 20});
    big.node("Reshape", "/flat", {"x", "zeros"}, {"y"});
    big.output("y");
    CHECK(refusal(big.proto).find("node '/big' (ConstantOfShape): 1048576 values are more than a folded constant "
                                  "may hold") != std::string::npos);

    // Found by fuzz_onnx: a Reshape of a constant without its shape input read past the inputs.
    GraphBuilder lone({1, 5, 5});
    lone.ints("pads", {0, 0, 0, 1, 0, 0, 1, 0});
    lone.node("Reshape", "/Reshape", {"pads"}, {"same_pads"});
    lone.node("Pad", "/Pad", {"x", "same_pads"}, {"padded"});
    lone.node("Conv", "/conv/Conv", {"padded", "w"}, {"y"});
    lone.weights("w", {1, 1, 2, 2}, range(4));
    lone.output("y");
    CHECK(refusal(lone.proto).find("node '/Reshape' (Reshape): 1 inputs (2 to 2 expected)") != std::string::npos);
    lone.g->mutable_node(0)->add_input("");
    CHECK(refusal(lone.proto).find("node '/Reshape' (Reshape): input 1 is missing") != std::string::npos);

    // A folded Reshape to eight extents of 4096: their product (2^96) must not overflow.
    GraphBuilder wide({1, 5, 5});
    wide.ints("pads", {0, 0, 0, 1, 0, 0, 1, 0});
    wide.ints("huge", std::vector<std::int64_t>(8, 4096));
    wide.node("Reshape", "/Reshape", {"pads", "huge"}, {"same_pads"});
    wide.node("Pad", "/Pad", {"x", "same_pads"}, {"padded"});
    wide.node("Conv", "/conv/Conv", {"padded", "w"}, {"y"});
    wide.weights("w", {1, 1, 2, 2}, range(4));
    wide.output("y");
    CHECK(refusal(wide.proto).find("node '/Reshape' (Reshape): 8 values do not fill the shape") != std::string::npos);
}

TEST_CASE("BatchNormalization and the activations compute their formulas") {
    GraphBuilder b({2, 1, 2});
    auto& bn = b.node("BatchNormalization", "bn", {"x", "gamma", "beta", "mean", "var"}, {"n"});
    set_float(bn, "epsilon", 0.01f);
    set_float(bn, "momentum", 0.8f);
    b.weights("gamma", {2}, {2.0f, 0.5f});
    b.weights("beta", {2}, {0.1f, -0.1f});
    b.weights("mean", {2}, {0.25f, -0.5f});
    b.weights("var", {2}, {0.99f, 3.99f});  // + epsilon: 1 and 4
    b.output("n");
    const Model<float> m = from_onnx<float>(b.proto);
    const auto& layer = dynamic_cast<const BatchNormalization<float>&>(m.layer("bn"));
    CHECK(layer.epsilon() == doctest::Approx(0.01));
    CHECK(layer.momentum() == doctest::Approx(0.2));  // PyTorch's sense: 1 - ONNX's
    Tensor<float> x(Shape{1, 2, 1, 2});
    const float xs[] = {1.25f, -0.75f, 1.5f, 0.5f};
    for (int i = 0; i < 4; ++i) x[i] = xs[i];
    // Channel 0: 2 (x - 0.25) / 1 + 0.1; channel 1: 0.5 (x + 0.5) / 2 - 0.1.
    check_close(m.predict(x), {2.1, -1.9, 0.4, 0.15});

    struct Case {
        const char* op;
        float alpha;
        double (*f)(double);
    };
    const Case cases[] = {
        {"Relu", 0, [](double v) { return std::max(v, 0.0); }},
        {"LeakyRelu", 0.1f, [](double v) { return v > 0 ? v : 0.1 * v; }},
        {"Elu", 0.5f, [](double v) { return v > 0 ? v : 0.5 * (std::exp(v) - 1); }},
        {"Sigmoid", 0, [](double v) { return 1 / (1 + std::exp(-v)); }},
        {"Tanh", 0, [](double v) { return std::tanh(v); }},
        {"Softplus", 0, [](double v) { return std::log1p(std::exp(v)); }},
    };
    const Tensor<float> v = pattern(Shape{3, 4}, 5);
    for (const Case& c : cases) {
        CAPTURE(c.op);
        GraphBuilder g({4});
        auto& n = g.node(c.op, "act", {"x"}, {"y"});
        if (c.alpha != 0) set_float(n, "alpha", c.alpha);
        g.output("y");
        const Model<float> a = from_onnx<float>(g.proto);
        std::vector<double> expected;
        for (std::int64_t i = 0; i < v.numel(); ++i) expected.push_back(c.f(v[i]));
        check_close(a.predict(v), expected);
    }
}

TEST_CASE("MaxPool and AveragePool with pads, strides and a harmless ceil_mode match direct pooling") {
    for (const bool max : {true, false}) {
        CAPTURE(max);
        GraphBuilder b({1, 5, 5});
        auto& pool = b.node(max ? "MaxPool" : "AveragePool", "pool", {"x"}, {"y"});
        set_ints(pool, "kernel_shape", {3, 3});
        set_ints(pool, "strides", {2, 2});
        set_ints(pool, "pads", {1, 1, 1, 1});
        set_int(pool, "ceil_mode", 1);  // (5 + 2 - 3) / 2 is whole: no partial window
        b.output("y");
        const Model<float> m = from_onnx<float>(b.proto);
        CHECK(m.output_shape() == Shape{1, 3, 3});
        Tensor<float> x = pattern(Shape{1, 1, 5, 5}, 6);
        for (std::int64_t i = 0; i < x.numel(); ++i) x[i] -= 2;  // all negative: a zero pad would win a max
        std::vector<double> expected;
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) {
                double best = -1e9, sum = 0;
                int count = 0;
                for (int a = 0; a < 3; ++a)
                    for (int c = 0; c < 3; ++c) {
                        const int r = 2 * i + a - 1, q = 2 * j + c - 1;
                        if (r < 0 || r >= 5 || q < 0 || q >= 5) continue;
                        best = std::max(best, static_cast<double>(x[r * 5 + q]));
                        sum += x[r * 5 + q];
                        ++count;
                    }
                expected.push_back(max ? best : sum / count);  // padded cells are left out of the mean
            }
        check_close(m.predict(x), expected);
    }
}

TEST_CASE("GlobalAveragePool, Flatten, Gemm with alpha, beta and transB, and Softmax") {
    GraphBuilder b({2, 2, 2});
    b.node("GlobalAveragePool", "gap", {"x"}, {"g"});
    b.node("Flatten", "flat", {"g"}, {"f"});
    auto& gemm = b.node("Gemm", "fc", {"f", "B", "C"}, {"z"});
    set_float(gemm, "alpha", 2.0f);
    set_float(gemm, "beta", 0.5f);
    b.weights("B", {2, 3}, {1, 0, -1, 0.5f, 1, 2});  // [in, units]: transB = 0
    b.weights("C", {1, 3}, {1, 2, 3});
    b.node("Softmax", "softmax", {"z"}, {"y"});
    b.output("y");
    const Model<float> m = from_onnx<float>(b.proto);
    CHECK(m.size() == 3);  // GlobalAveragePooling2D, Dense, Softmax: cnnlite's pooled value is flat already
    Tensor<float> x(Shape{1, 2, 2, 2});
    const float xs[] = {1, 2, 3, 4, -1, -1, 1, 1};  // channel means 2.5 and 0
    for (int i = 0; i < 8; ++i) x[i] = xs[i];
    const double z[] = {2 * 2.5 + 0.5, 2 * 0 + 1, 2 * -2.5 + 1.5};
    const double e = std::exp(z[0]) + std::exp(z[1]) + std::exp(z[2]);
    check_close(m.predict(x), {std::exp(z[0]) / e, std::exp(z[1]) / e, std::exp(z[2]) / e});
}

TEST_CASE("MatMul with a constant bias Add and a Relu becomes one Dense layer") {
    GraphBuilder b({3});
    b.node("MatMul", "mm", {"x", "W"}, {"m"});
    b.weights("W", {3, 2}, {1, -1, 2, 0.5f, 0, 1});  // [in, units]
    b.node("Add", "bias", {"bias_value", "m"}, {"a"});
    b.weights("bias_value", {2}, {-1, 0.25f});
    b.node("Relu", "relu", {"a"}, {"y"});
    b.output("y");
    const Model<float> m = from_onnx<float>(b.proto);
    REQUIRE(m.size() == 1);
    const auto& dense = dynamic_cast<const Dense<float>&>(m.layer("mm"));
    CHECK(dense.options().activation == Activation::relu);
    CHECK(dense.weight().value().shape() == Shape{2, 3});
    Tensor<float> x(Shape{2, 3});
    const float xs[] = {1, 2, 3, -1, 0, 1};
    for (int i = 0; i < 6; ++i) x[i] = xs[i];
    // Row 1: [1 + 4 + 0 - 1, -1 + 1 + 3 + 0.25]; row 2: [-1 + 0 + 0 - 1, 1 + 0 + 1 + 0.25] -> relu.
    check_close(m.predict(x), {4, 3.25, 0, 2.25});
}

TEST_CASE("Add and Concat of branches, Identity, Dropout, and Reshape to [batch, -1] from a Constant") {
    GraphBuilder b({2, 2, 2});
    b.node("Relu", "branch_a", {"x"}, {"a"});
    b.node("Sigmoid", "branch_b", {"x"}, {"s"});
    b.node("Identity", "same", {"s"}, {"s2"});
    b.node("Add", "sum", {"a", "s2"}, {"sum"});
    auto& cat = b.node("Concat", "join", {"a", "sum"}, {"c"});
    set_int(cat, "axis", -3);  // the channels of [batch, C, H, W]
    b.node("Dropout", "drop", {"c", "ratio"}, {"d"});
    b.weights("ratio", {}, {0.25f});
    b.constant_ints("shape", "target", {0, -1});
    b.node("Reshape", "flat", {"d", "target"}, {"y"});
    b.output("y");
    const Model<float> m = from_onnx<float>(b.proto);
    CHECK(m.output_shape() == Shape{16});
    CHECK(std::string(m.layer("drop").type()) == "Dropout");  // kept for fine-tuning
    const Tensor<float> x = pattern(Shape{2, 2, 2, 2}, 7);
    std::vector<double> expected;
    for (int n = 0; n < 2; ++n) {
        for (int i = 0; i < 8; ++i) expected.push_back(std::max(0.0f, x[n * 8 + i]));
        for (int i = 0; i < 8; ++i) {
            const double v = x[n * 8 + i];
            expected.push_back(std::max(0.0, v) + 1 / (1 + std::exp(-v)));
        }
    }
    check_close(m.predict(x), expected);
}

TEST_CASE("ReduceMean and ReduceMax over H and W, merged with a whole-plane MaxPool, and Softplus' threshold") {
    // PyTorch's torch.export-based exporter writes adaptive pooling to 1 x 1 as ReduceMean /
    // ReduceMax and softplus as Where(x > 20, x, Softplus(x)); its TorchScript exporter writes
    // adaptive max pooling as a MaxPool over the whole plane, which cnnlite holds as [C, 1, 1].
    GraphBuilder b({2, 3, 3});
    b.node("Softplus", "softplus", {"x"}, {"sp"});
    b.node("Greater", "greater", {"x", "threshold"}, {"big"});
    b.weights("threshold", {}, {20.0f});
    b.node("Where", "where", {"big", "x", "sp"}, {"s"});
    b.node("ReduceMean", "mean", {"s", "axes"}, {"m"});
    b.ints("axes", {-1, -2});
    auto& mx = b.node("ReduceMax", "max", {"s"}, {"r"});
    set_ints(mx, "axes", {2, 3});
    auto& whole = b.node("MaxPool", "plane", {"s"}, {"p"});
    set_ints(whole, "kernel_shape", {3, 3});
    auto& cat = b.node("Concat", "join", {"m", "r", "p"}, {"c"});
    set_int(cat, "axis", 1);
    b.node("Flatten", "flat", {"c"}, {"y"});
    b.output("y");
    const Model<float> m = from_onnx<float>(b.proto);
    CHECK(m.output_shape() == Shape{6});
    CHECK(std::string(m.layer("mean").type()) == "GlobalAveragePooling2D");
    CHECK(std::string(m.layer("join_flatten").type()) == "Flatten");  // the MaxPool's [2, 1, 1] -> [2] to join
    const Tensor<float> x = pattern(Shape{1, 2, 3, 3}, 9);
    std::vector<double> mean(2, 0), max(2, -1e9);
    for (int c = 0; c < 2; ++c)
        for (int i = 0; i < 9; ++i) {
            const double v = std::log1p(std::exp(static_cast<double>(x[c * 9 + i])));
            mean[static_cast<std::size_t>(c)] += v / 9;
            max[static_cast<std::size_t>(c)] = std::max(max[static_cast<std::size_t>(c)], v);
        }
    check_close(m.predict(x), {mean[0], mean[1], max[0], max[1], max[0], max[1]});

    GraphBuilder w({4});
    w.node("Greater", "greater", {"x", "threshold"}, {"big"});
    w.weights("threshold", {}, {20.0f});
    w.node("Where", "where", {"big", "x", "x"}, {"y"});
    w.output("y");
    CHECK(refusal(w.proto).find("node 'where' (Where): Where is supported only as Where(x > threshold, x, "
                                "Softplus(x))") != std::string::npos);
    w.g->mutable_initializer(0)->set_raw_data(std::string("\0\0\0\0", 4));  // threshold 0
    CHECK(refusal(w.proto).find("node 'greater' (Greater): a comparison is supported only as Softplus' "
                                "threshold") != std::string::npos);
    GraphBuilder r({2, 3, 3});
    auto& sum = r.node("ReduceMean", "mean", {"x"}, {"y"});
    set_ints(sum, "axes", {1});
    r.output("y");
    CHECK(refusal(r.proto).find("node 'mean' (ReduceMean): axes [1] are not supported") != std::string::npos);
}

TEST_CASE("nodes the output does not depend on are ignored, and names become cnnlite layer names") {
    GraphBuilder b = small_conv_graph();
    b.node("LSTM", "unused", {"x"}, {"nobody_reads_this"});
    b.g->mutable_node(0)->set_name("/features/features.0/Conv");
    const Model<float> m = from_onnx<float>(b.proto);
    REQUIRE(m.size() == 1);  // Conv with its Relu fused
    CHECK(m.layer(0).name() == "features_features_0_Conv");
}

// --- refusals ------------------------------------------------------------------------------------

TEST_CASE("hostile and unsupported files are refused with a message naming the node and the problem") {
    const std::string ok = small_conv_graph().proto.SerializeAsString();
    CHECK_NOTHROW(load_onnx_bytes<float>(ok));

    SUBCASE("bytes that are not a protobuf, or a truncated one") {
        CHECK(refusal_of_bytes("not an onnx file at all") != "(accepted)");
        CHECK(refusal_of_bytes(ok.substr(0, ok.size() / 2)).find("not a valid ONNX protobuf") != std::string::npos);
        CHECK(refusal_of_bytes(ok.substr(0, ok.size() - 3)).find("test.onnx") != std::string::npos);
    }
    SUBCASE("huge, negative or disagreeing initialiser dimensions") {
        GraphBuilder b = small_conv_graph();
        auto* w = b.g->mutable_initializer(0);
        w->clear_dims();
        for (std::int64_t d : {1 << 15, 1 << 15, 3, 3}) w->add_dims(d);  // 38 GB claimed, 216 bytes held
        CHECK(refusal(b.proto).find("initialiser 'w': 216 bytes of raw data for 9663676416 float32 values") !=
              std::string::npos);
        w->clear_dims();
        for (std::int64_t d : {1 << 30, 1 << 30, 1 << 30}) w->add_dims(d);
        CHECK(refusal(b.proto).find("more than 2^40 elements") != std::string::npos);
        w->clear_dims();
        for (std::int64_t d : {-3, 2, 3, -3}) w->add_dims(d);
        CHECK(refusal(b.proto).find("initialiser 'w': dimension -3 is negative") != std::string::npos);
        w->clear_dims();
        for (std::int64_t d : {3, 2, 3, 2}) w->add_dims(d);
        CHECK(refusal(b.proto).find("216 bytes of raw data for 36 float32 values of shape [3, 2, 3, 2]") !=
              std::string::npos);
        w->clear_raw_data();
        for (int i = 0; i < 5; ++i) w->add_float_data(1.0f);
        CHECK(refusal(b.proto).find("5 float values for shape [3, 2, 3, 2]") != std::string::npos);
    }
    SUBCASE("external data") {
        GraphBuilder b = small_conv_graph();
        b.g->mutable_initializer(0)->set_data_location(onnx::TensorProto::EXTERNAL);
        CHECK(refusal(b.proto).find("initialiser 'w': external data") != std::string::npos);
    }
    SUBCASE("a cycle") {
        GraphBuilder b({2});
        b.node("Relu", "first", {"second_out"}, {"first_out"});
        b.node("Relu", "second", {"first_out"}, {"second_out"});
        b.output("second_out");
        CHECK(refusal(b.proto).find("(Relu) is on a cycle") != std::string::npos);
    }
    SUBCASE("a missing initialiser") {
        GraphBuilder b = small_conv_graph();
        b.g->mutable_initializer()->RemoveLast();  // the bias
        CHECK(refusal(b.proto).find("node 'conv' (Conv) reads 'bias', which no node, initialiser or graph input "
                                    "provides") != std::string::npos);
    }
    SUBCASE("duplicate value names") {
        GraphBuilder b = small_conv_graph();
        b.weights("w", {1}, {1});
        CHECK(refusal(b.proto).find("duplicate value name 'w'") != std::string::npos);
        GraphBuilder c = small_conv_graph();
        c.node("Relu", "again", {"c"}, {"y"});
        CHECK(refusal(c.proto).find("node 'again' (Relu): duplicate value name 'y'") != std::string::npos);
        GraphBuilder d = small_conv_graph();
        d.g->mutable_node(0)->set_output(0, "x");
        CHECK(refusal(d.proto).find("duplicate value name 'x'") != std::string::npos);
    }
    SUBCASE("an output no node produces") {
        GraphBuilder b = small_conv_graph();
        b.g->mutable_output(0)->set_name("nothing");
        CHECK(refusal(b.proto).find("the graph's output 'nothing' is not produced by any node") != std::string::npos);
    }
    SUBCASE("operators, attribute values, opsets, domains and data types cnnlite does not run") {
        GraphBuilder b = small_conv_graph();
        b.g->mutable_node(1)->set_op_type("Gelu");
        CHECK(refusal(b.proto).find("node 'relu' (Gelu): operator Gelu is not supported") != std::string::npos);

        // small_conv_graph: 2 input channels, weight [3, 2, 3, 3], a 4x4 input padded by 1.
        GraphBuilder g = small_conv_graph();
        set_int(*g.g->mutable_node(0), "group", 3);
        CHECK(refusal(g.proto).find("node 'conv' (Conv): group 3 does not divide the input's 2 channels") !=
              std::string::npos);
        GraphBuilder g0 = small_conv_graph();
        set_int(*g0.g->mutable_node(0), "group", 0);
        CHECK(refusal(g0.proto).find("node 'conv' (Conv): group 0 does not divide") != std::string::npos);
        GraphBuilder g2 = small_conv_graph();  // two groups want [O, 1, kh, kw] with O even
        set_int(*g2.g->mutable_node(0), "group", 2);
        CHECK(refusal(g2.proto).find("node 'conv' (Conv): weight [3, 2, 3, 3] does not fit an input of 2 channels in "
                                     "2 group(s)") != std::string::npos);
        GraphBuilder d = small_conv_graph();
        set_ints(*d.g->mutable_node(0), "dilations", {0, 1});
        CHECK(refusal(d.proto).find("node 'conv' (Conv): dilations [0, 1] are not supported") != std::string::npos);
        GraphBuilder w = small_conv_graph();  // span 3 * 2 - 1 = 5 over 4 + 2 padded rows fits; 3 * 4 - 3 = 9 does not
        set_ints(*w.g->mutable_node(0), "dilations", {4, 1});
        CHECK(refusal(w.proto).find("node 'conv' (Conv): the window 9x3 is larger than the padded input") !=
              std::string::npos);
        GraphBuilder u = small_conv_graph();
        set_int(*u.g->mutable_node(0), "unknown", 1);
        CHECK(refusal(u.proto).find("node 'conv' (Conv): attribute 'unknown' is not supported") != std::string::npos);
        GraphBuilder a = small_conv_graph();
        set_text(*a.g->mutable_node(0), "auto_pad", "SAME_LOWER");
        CHECK(refusal(a.proto).find("auto_pad SAME_LOWER is not supported") != std::string::npos);

        for (const std::int64_t opset : {12, 19}) {
            GraphBuilder o = small_conv_graph();
            o.proto.mutable_opset_import(0)->set_version(opset);
            CHECK(refusal(o.proto).find("opset " + std::to_string(opset) +
                                        " of the default ONNX domain is not supported") != std::string::npos);
        }
        GraphBuilder m = small_conv_graph();
        m.g->mutable_node(1)->set_domain("com.microsoft");
        CHECK(refusal(m.proto).find("node 'relu' (Relu): domain 'com.microsoft' is not supported") != std::string::npos);

        GraphBuilder t = small_conv_graph();
        std::vector<double> doubles(3, 0.5);
        auto* bias = t.g->mutable_initializer(1);
        bias->set_data_type(onnx::TensorProto::DOUBLE);
        bias->set_raw_data(doubles.data(), doubles.size() * sizeof(double));
        CHECK(refusal(t.proto).find("initialiser 'bias': data type DOUBLE is not supported") != std::string::npos);
        GraphBuilder i = small_conv_graph();
        i.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT16);
        CHECK(refusal(i.proto).find("input 'x' has element type FLOAT16") != std::string::npos);
    }
    SUBCASE("a dynamic dimension other than the batch") {
        GraphBuilder b = small_conv_graph();
        b.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_param(
            "height");
        CHECK(refusal(b.proto).find("input 'x': dimension 2 is dynamic ('height')") != std::string::npos);
        GraphBuilder h = small_conv_graph();
        h.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(3)->set_dim_value(
            std::int64_t(1) << 40);
        CHECK(refusal(h.proto).find("input 'x': dimension 3 = 1099511627776 is out of range") != std::string::npos);
    }
    SUBCASE("Pad anywhere but before a Conv, or not zero, and other unsupported uses") {
        GraphBuilder b({1, 4, 4});
        b.node("Pad", "pad", {"x", "pads"}, {"p"});
        b.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
        auto& pool = b.node("MaxPool", "pool", {"p"}, {"y"});
        set_ints(pool, "kernel_shape", {2, 2});
        b.output("y");
        CHECK(refusal(b.proto).find("node 'pad' (Pad): a Pad is supported only before a Conv") != std::string::npos);
        set_text(*b.g->mutable_node(0), "mode", "reflect");
        CHECK(refusal(b.proto).find("node 'pad' (Pad): mode 'reflect' is not supported") != std::string::npos);

        GraphBuilder s({2, 2, 2});
        s.node("Softmax", "sm", {"x"}, {"y"});
        s.output("y");
        CHECK(refusal(s.proto).find("node 'sm' (Softmax): axis -1") != std::string::npos);

        GraphBuilder r({2, 2, 2});
        r.node("Reshape", "reshape", {"x", "shape"}, {"y"});
        r.ints("shape", {0, 4, 2});
        r.output("y");
        CHECK(refusal(r.proto).find("node 'reshape' (Reshape): a reshape to [3] values [0, 4, 2] is not supported") !=
              std::string::npos);

        GraphBuilder m({1, 4, 4});
        auto& mp = m.node("MaxPool", "pool", {"x"}, {"y", "indices"});
        set_ints(mp, "kernel_shape", {2, 2});
        m.node("Relu", "relu", {"indices"}, {"z"});
        m.node("Add", "add", {"y", "z"}, {"out"});
        m.output("out");
        CHECK(refusal(m.proto).find("node 'pool' (MaxPool): output 1 ('indices') is used") != std::string::npos);

        GraphBuilder c({1, 5, 5});
        auto& ceil = c.node("AveragePool", "pool", {"x"}, {"y"});
        set_ints(ceil, "kernel_shape", {2, 2});
        set_ints(ceil, "strides", {2, 2});
        set_int(ceil, "ceil_mode", 1);
        c.output("y");
        CHECK(refusal(c.proto).find("node 'pool' (AveragePool): ceil_mode = 1 adds a partial window") !=
              std::string::npos);
    }
    SUBCASE("refusals from a file name the file") {
        TempDir dir;
        std::ofstream(dir.file("bad.onnx"), std::ios::binary) << "garbage";
        try {
            load_onnx<float>(dir.file("bad.onnx"));
            FAIL("accepted");
        } catch (const cnnlite::Error& e) {
            CHECK(std::string(e.what()).find(dir.file("bad.onnx")) != std::string::npos);
        }
        CHECK_THROWS_AS(load_onnx<float>(dir.file("missing.onnx")), Error);
    }
}

// --- fine-tuning ---------------------------------------------------------------------------------

TEST_CASE("an imported network fine-tunes (the loss falls) and saves as a cnnlite model file") {
    TempDir dir;
    save_onnx(fashion_mnist_cnn<float>(11, InitScheme::torch), dir.file("paper.onnx"));
    Model<float> model = load_onnx<float>(dir.file("paper.onnx"));
    FashionMnistLimits limits;
    limits.train_images = 256;
    limits.test_images = 0;
    const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures", limits);
    const double before = evaluate(model, data.train, EvaluateOptions{}).loss;
    AdamOptions adam;
    adam.learning_rate = 1e-3;
    Adam<float> optimizer(model.trainable_variables(), adam);
    FitOptions options;
    options.epochs = 2;
    options.batch_size = 32;
    options.verbosity = Verbosity::silent;
    fit(model, optimizer, data.train, nullptr, options);
    const double after = evaluate(model, data.train, EvaluateOptions{}).loss;
    CHECK(after < 0.8 * before);

    save_model(model, dir.file("tuned.safetensors"));
    const Model<float> reloaded = load_model<float>(dir.file("tuned.safetensors"));
    const Tensor<float> images = data.train.images().rows(0, 8);
    CHECK(max_difference(model.predict(images), reloaded.predict(images)) == 0);
}

// --- a network trained and exported by PyTorch -------------------------------------------------

namespace {

std::string fixture(const std::string& name) {
    return test_support::source_dir().string() + "/tests/fixtures/onnx/" + name;
}

// The integer after "key": in the fixture's JSON summary.
std::int64_t json_integer(const std::string& path, const std::string& key) {
    std::ifstream in(path);
    REQUIRE(in);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t at = text.find("\"" + key + "\": ");
    REQUIRE(at != std::string::npos);
    return std::stoll(text.substr(at + key.size() + 4));
}

std::int64_t correct(const Tensor<float>& probabilities, const std::vector<int>& labels) {
    const std::int64_t n = probabilities.shape()[0], classes = probabilities.shape()[1];
    std::int64_t right = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        const float* row = probabilities.data() + i * classes;
        right += std::max_element(row, row + classes) - row == labels[static_cast<std::size_t>(i)];
    }
    return right;
}

}  // namespace

TEST_CASE("a CNN trained and exported by PyTorch predicts PyTorch's probabilities, fine-tunes and saves") {
    FashionMnistLimits limits;
    limits.train_images = 512;
    limits.test_images = 500;
    const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures", limits);
    const Tensor<float> expected = load_npy<float>(fixture("fashion_cnn_probabilities.npy"));
    REQUIRE(expected.shape() == Shape{500, 10});
    const std::vector<int>& labels = data.test.labels();
    const std::int64_t torch_correct = json_integer(fixture("fashion_cnn.json"), "correct");
    CHECK(correct(expected, labels) == torch_correct);

    // Both of PyTorch's exporters: torch.export-based at opset 18, TorchScript at opset 17.
    for (const std::string file : {"fashion_cnn.onnx", "fashion_cnn_opset17.onnx"}) {
        CAPTURE(file);
        Model<float> model = load_onnx<float>(fixture(file));
        CHECK(model.input_shape() == Shape{1, 28, 28});
        CHECK(model.output_shape() == Shape{10});
        CHECK(model.ends_in_softmax());
        std::size_t batch_norms = 0, convs = 0;
        for (std::size_t i = 0; i < model.size(); ++i) {
            batch_norms += std::string(model.layer(i).type()) == "BatchNormalization";
            convs += std::string(model.layer(i).type()) == "Conv2D";
        }
        CHECK(batch_norms == 1);
        CHECK(convs == 3);
        const Tensor<float> probabilities = model.predict(data.test.images());
        CHECK(max_difference(probabilities, expected) < 1e-5);
        CHECK(correct(probabilities, labels) == torch_correct);

        // One short epoch on 512 training images lowers their loss; the result saves as a
        // cnnlite model file that predicts the same.
        const double before = evaluate(model, data.train, EvaluateOptions{}).loss;
        AdamOptions adam;
        adam.learning_rate = 5e-4;
        Adam<float> optimizer(model.trainable_variables(), adam);
        FitOptions options;
        options.batch_size = 32;
        options.verbosity = Verbosity::silent;
        fit(model, optimizer, data.train, nullptr, options);
        const double after = evaluate(model, data.train, EvaluateOptions{}).loss;
        CHECK(after < before);
        TempDir dir;
        save_model(model, dir.file("tuned.safetensors"));
        const Model<float> reloaded = load_model<float>(dir.file("tuned.safetensors"));
        CHECK(max_difference(model.predict(data.test.images()), reloaded.predict(data.test.images())) == 0);
    }
}

TEST_CASE("fashion_mnist evaluate --model reads an ONNX file by content and exports one back") {
    test_support::TempDir dir;
    const fs::path fixtures = test_support::source_dir() / "data" / "fixtures";
    const Model<float> paper = fashion_mnist_cnn<float>(9);
    save_model(paper, (dir.path / "model.safetensors").string());
    const fs::path exported = dir.path / "paper.model";  // no telling extension
    test_support::RunResult r = test_support::run_program(
        {"export", "--model", (dir.path / "model.safetensors").string(), "--to", exported.string(), "--quiet"},
        dir.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    for (const char* run : {"from_model_file", "from_onnx"}) {
        const std::string model = std::string(run) == "from_onnx" ? exported.string()
                                                                   : (dir.path / "model.safetensors").string();
        r = test_support::run_program(
            {"evaluate", "--model", model, "--data", fixtures.string(), "--out", (dir.path / run).string()}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
    }
    CHECK(test_support::contains(r.out, "reading " + exported.string() + " as ONNX"));
    const auto accuracy = [&](const char* run) {
        const std::string json = test_support::read_text(dir.path / run / "metrics.json");
        const std::size_t at = json.find("\"test_accuracy\"");
        REQUIRE(at != std::string::npos);
        return json.substr(at, json.find_first_of(",}", at) - at);
    };
    CHECK(accuracy("from_model_file") == accuracy("from_onnx"));
    // A file that is none of the formats names all of them.
    std::ofstream(dir.path / "notes.txt") << "not a model";
    r = test_support::run_program({"evaluate", "--model", (dir.path / "notes.txt").string(), "--data",
                                   fixtures.string(), "--out", (dir.path / "bad").string()},
                                  dir.path);
    CHECK(r.status != 0);
    CHECK(test_support::contains(r.err, "is not a cnnlite model file (safetensors) or Keras weights, and not an ONNX"));
}

TEST_CASE("a constant Slice whose step is -(2^63 - 1) folds to one element, without overflow (a fuzz_onnx finding)") {
    // The input fuzz_onnx found (tests/fuzz/corpus/onnx): its Slice counted elements as
    // (start - end - step - 1) / -step, which overflows int64 for such a step (UBSan).
    const std::string path = test_support::source_dir().string() + "/tests/fuzz/corpus/onnx/slice_step_minus_2_63.onnx";
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string outcome = "loaded";
    try {
        (void)cnnlite::load_onnx_bytes<float>(bytes);
    } catch (const cnnlite::Error& e) {
        outcome = e.what();
    }
    // The Slice folds, and the import goes on to the node after it, an operator it refuses.
    CHECK(outcome.find("operator Topassrne is not supported") != std::string::npos);
}

}  // namespace test_io_onnx_import

#endif  // CNNLITE_WITH_ONNX
