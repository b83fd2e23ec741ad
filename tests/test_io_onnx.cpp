// ONNX export (io/onnx_export.hpp): the paper's network and a small graph with Conv+BatchNorm+
// ReLU, a residual Add, a Concatenate, GlobalAveragePooling2D and Dense+softmax, in float and
// double, written, read back with protobuf, passed through libonnx's checker and its full shape
// inference (strict), and compared node by node, attribute by attribute and byte by byte with
// the model; unsupported layers and unwritable paths are errors that name them. The numbers the
// files compute are checked by onnxruntime in tests/python/test_onnx_export.py.
// Needs the ONNX component (CMake -DCNNLITE_WITH_ONNX=ON: its own executable, test_io_onnx);
// without it the file compiles to nothing.
#include <doctest/doctest.h>

#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include "cnnlite/io/onnx_export.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/nn/symbolic.hpp"

namespace test_io_onnx {

using namespace cnnlite;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() : path(fs::temp_directory_path() / ("cnnlite_onnx_" + std::to_string(::getpid()))) {
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

onnx::ModelProto load(const std::string& path) {
    onnx::ModelProto proto;
    REQUIRE(proto.ParseFromString(read_bytes(path)));
    return proto;
}

// libonnx's checker, then its full shape inference with type checks, throwing on any node's
// error (Python's onnx.checker.check_model(full_check=True) does the same two steps).
void validate(onnx::ModelProto& proto) {
    onnx::checker::check_model(proto);
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*error_mode=*/1));
}

// "batch,64,28,28": a value's shape as the file declares or inference found it.
std::string dims_text(const onnx::ValueInfoProto& info) {
    std::string text;
    for (const auto& d : info.type().tensor_type().shape().dim())
        text += (text.empty() ? "" : ",") + (d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
    return text;
}

std::string expected_dims(const Shape& sample) {
    std::string text = "batch";
    for (int i = 0; i < sample.rank(); ++i) text += "," + std::to_string(sample[i]);
    return text;
}

// After inference: every value the graph names, with its shape.
std::map<std::string, std::string> value_shapes(const onnx::ModelProto& proto) {
    std::map<std::string, std::string> shapes;
    for (const auto& v : proto.graph().value_info()) shapes[v.name()] = dims_text(v);
    for (const auto& v : proto.graph().input()) shapes[v.name()] = dims_text(v);
    for (const auto& v : proto.graph().output()) shapes[v.name()] = dims_text(v);
    return shapes;
}

const onnx::NodeProto& node_named(const onnx::ModelProto& proto, const std::string& name) {
    for (const auto& n : proto.graph().node())
        if (n.name() == name) return n;
    FAIL("no node named '" << name << "'");
    throw 0;  // unreachable
}

bool has_node(const onnx::ModelProto& proto, const std::string& name) {
    for (const auto& n : proto.graph().node())
        if (n.name() == name) return true;
    return false;
}

const onnx::AttributeProto& attribute(const onnx::NodeProto& node, const std::string& name) {
    for (const auto& a : node.attribute())
        if (a.name() == name) return a;
    FAIL("node '" << node.name() << "' has no attribute '" << name << "'");
    throw 0;
}

std::vector<std::int64_t> ints(const onnx::NodeProto& node, const std::string& name) {
    const auto& a = attribute(node, name);
    CHECK(a.type() == onnx::AttributeProto::INTS);
    return std::vector<std::int64_t>(a.ints().begin(), a.ints().end());
}

const onnx::TensorProto& initializer(const onnx::ModelProto& proto, const std::string& name) {
    for (const auto& t : proto.graph().initializer())
        if (t.name() == name) return t;
    FAIL("no initializer named '" << name << "'");
    throw 0;
}

std::vector<std::string> op_types(const onnx::ModelProto& proto) {
    std::vector<std::string> ops;
    for (const auto& n : proto.graph().node()) ops.push_back(n.op_type());
    return ops;
}

std::vector<std::string> inputs_of(const onnx::NodeProto& node) { return {node.input().begin(), node.input().end()}; }

// The initializer holds exactly `value` rounded to float32, in its shape, as raw little-endian bytes.
template <class T>
void check_weights(const onnx::TensorProto& t, const Tensor<T>& value) {
    CHECK(t.data_type() == onnx::TensorProto::FLOAT);
    CHECK(std::vector<std::int64_t>(t.dims().begin(), t.dims().end()) == value.shape().to_vector());
    std::vector<float> expected(static_cast<std::size_t>(value.numel()));
    for (std::int64_t i = 0; i < value.numel(); ++i) expected[static_cast<std::size_t>(i)] = static_cast<float>(value[i]);
    REQUIRE(t.raw_data().size() == expected.size() * sizeof(float));
    CHECK(std::memcmp(t.raw_data().data(), expected.data(), t.raw_data().size()) == 0);
}

// Conv+BatchNorm+ReLU, a convolution with GELU added back (residual), max pooling, a strided
// convolution with uneven explicit padding from the input, concatenated over channels, Dropout,
// global average pooling and Dense+softmax. The BatchNorm's statistics and affine parameters are
// set to values that a swapped or missing input would show.
template <class T>
Model<T> small_graph() {
    auto x = Input<T>({3, 10, 10});
    Conv2dOptions stem;
    stem.filters = 8;
    stem.kernel_size = {3, 3};
    stem.padding = Padding::same();
    stem.use_bias = false;
    Symbolic<T> h = ReLU<T>()(BatchNormalization<T>(BatchNormConvention::torch)(Conv2D<T>(stem)(x)));
    Symbolic<T> branch = Conv2D<T>(8, 3).padding("1,1,1,1").activation("gelu")(h);
    h = Add<T>()({branch, h});
    h = MaxPool2D<T>(2, 2)(h);                                                     // [8, 5, 5]
    Symbolic<T> side = Conv2D<T>(4, 3).strides(2, 2).padding("2,0,1,0")(x);        // [4, 5, 5]
    h = Concatenate<T>()({h, side});                                               // [12, 5, 5]
    h = Dropout<T>(0.5)(h);
    h = GlobalAveragePooling2D<T>()(h);
    Model<T> model(x, Dense<T>(5).activation("softmax")(h), /*seed=*/3, InitScheme::torch);
    for (auto& b : model.buffers()) {
        Tensor<T>& v = b.variable.value();
        for (std::int64_t c = 0; c < v.numel(); ++c)
            v[c] = b.name == "batch_normalization.running_mean" ? T(0.1) * T(c + 1) - T(0.3) : T(0.5) + T(0.25) * T(c);
    }
    for (auto& p : model.parameters()) {
        if (p.name.rfind("batch_normalization.", 0) != 0) continue;
        Tensor<T>& v = p.variable.value();
        for (std::int64_t c = 0; c < v.numel(); ++c)
            v[c] = p.name == "batch_normalization.weight" ? T(1) + T(0.1) * T(c) : T(-0.05) * T(c);
    }
    return model;
}

// A layer the exporter does not know.
template <class T>
class Doubling : public Layer<T> {
public:
    const char* type() const override { return "Doubling"; }
    const char* default_name() const override { return "doubling"; }
    Shape build(const Shape& input, const LayerInit&) override { return input; }
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override { return x; }
    std::unique_ptr<Layer<T>> clone_config() const override { return std::make_unique<Doubling>(); }
};

}  // namespace

TEST_CASE_TEMPLATE("the paper's network exports as a valid ONNX graph with its weights", T, float, double) {
    TempDir dir;
    const Sequential<T> model = fashion_mnist_cnn<T>(7);
    const std::string path = dir.file("paper.onnx");
    save_onnx(model, path);
    onnx::ModelProto proto = load(path);
    CHECK(proto.ir_version() == 8);
    REQUIRE(proto.opset_import_size() == 1);
    CHECK(proto.opset_import(0).domain().empty());
    CHECK(proto.opset_import(0).version() == 17);
    CHECK(proto.producer_name() == "cnnlite");
    REQUIRE_NOTHROW(validate(proto));

    // Dropout is gone; the fused activations are nodes of their own; predict's softmax is there.
    CHECK(op_types(proto) ==
          std::vector<std::string>{"Conv", "Relu", "MaxPool", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Softmax"});
    REQUIRE(proto.graph().input_size() == 1);
    REQUIRE(proto.graph().output_size() == 1);
    CHECK(proto.graph().input(0).name() == "input");
    CHECK(dims_text(proto.graph().input(0)) == "batch,1,28,28");
    CHECK(proto.graph().input(0).type().tensor_type().elem_type() == onnx::TensorProto::FLOAT);
    CHECK(proto.graph().output(0).name() == "output");
    CHECK(dims_text(proto.graph().output(0)) == "batch,10");

    const auto& conv = node_named(proto, "conv2d");
    CHECK(inputs_of(conv) == std::vector<std::string>{"input", "conv2d.weight", "conv2d.bias"});
    CHECK(ints(conv, "kernel_shape") == std::vector<std::int64_t>{2, 2});
    CHECK(ints(conv, "strides") == std::vector<std::int64_t>{1, 1});
    // 'same' for a 2x2 kernel pads one row at the bottom and one column at the right: ONNX's
    // order is [top, left, bottom, right].
    CHECK(ints(conv, "pads") == std::vector<std::int64_t>{0, 0, 1, 1});
    CHECK(ints(conv, "dilations") == std::vector<std::int64_t>{1, 1});
    CHECK(attribute(conv, "group").i() == 1);
    CHECK(node_named(proto, "conv2d/relu").op_type() == "Relu");
    const auto& pool = node_named(proto, "max_pooling2d_1");
    CHECK(inputs_of(pool) == std::vector<std::string>{"max_pooling2d"});  // dropout removed
    CHECK(ints(pool, "kernel_shape") == std::vector<std::int64_t>{2, 2});
    CHECK(ints(pool, "strides") == std::vector<std::int64_t>{2, 2});
    CHECK(ints(pool, "pads") == std::vector<std::int64_t>{0, 0, 0, 0});
    CHECK(attribute(node_named(proto, "flatten"), "axis").i() == 1);
    const auto& gemm = node_named(proto, "dense");
    CHECK(inputs_of(gemm) == std::vector<std::string>{"flatten", "dense.weight", "dense.bias"});
    CHECK(attribute(gemm, "transB").i() == 1);
    CHECK(inputs_of(node_named(proto, "dense_1")) == std::vector<std::string>{"dense", "dense_1.weight", "dense_1.bias"});
    const auto& softmax = node_named(proto, "dense_1/softmax");
    CHECK(attribute(softmax, "axis").i() == 1);
    CHECK(softmax.output(0) == "output");
    CHECK_FALSE(has_node(proto, "dropout"));

    // Exactly the model's weights, by hand for one Conv and one Gemm, and every tensor's shape.
    const auto& conv_layer = dynamic_cast<const Conv2D<T>&>(model.layer("conv2d"));
    check_weights(initializer(proto, "conv2d.weight"), conv_layer.weight().value());
    check_weights(initializer(proto, "conv2d.bias"), conv_layer.bias().value());
    const auto& dense_layer = dynamic_cast<const Dense<T>&>(model.layer("dense"));
    check_weights(initializer(proto, "dense.weight"), dense_layer.weight().value());
    CHECK(proto.graph().initializer_size() == 6);
    for (const auto& p : model.parameters()) check_weights(initializer(proto, p.name), p.variable.value());

    // Shape inference agrees with cnnlite's shape of every layer that is a node.
    const auto shapes = value_shapes(proto);
    for (std::size_t i = 0; i + 1 < model.size(); ++i) {
        const Layer<T>& layer = model.layer(i);
        if (std::string(layer.type()) == "Dropout") continue;
        CAPTURE(layer.name());
        REQUIRE(shapes.count(layer.name()));
        CHECK(shapes.at(layer.name()) == expected_dims(layer.output_shape()));
    }
    CHECK(shapes.at("output") == "batch,10");
}

TEST_CASE_TEMPLATE("a graph with BatchNorm, a residual Add and a Concatenate exports with its attributes", T, float,
                   double) {
    TempDir dir;
    const Model<T> model = small_graph<T>();
    const std::string path = dir.file("graph.onnx");
    save_onnx(model, path);
    onnx::ModelProto proto = load(path);
    REQUIRE_NOTHROW(validate(proto));

    CHECK(op_types(proto) == std::vector<std::string>{"Conv", "BatchNormalization", "Relu", "Conv",
                                                      // GELU, exact: x * 0.5 * (1 + erf(x / sqrt 2))
                                                      "Mul", "Erf", "Add", "Mul", "Mul",
                                                      "Add", "MaxPool", "Conv", "Concat", "GlobalAveragePool",
                                                      "Flatten", "Gemm", "Softmax"});
    CHECK(dims_text(proto.graph().input(0)) == "batch,3,10,10");
    CHECK(dims_text(proto.graph().output(0)) == "batch,5");

    // Conv without bias, 'same' padding; BatchNorm with its statistics and epsilon.
    CHECK(inputs_of(node_named(proto, "conv2d")) == std::vector<std::string>{"input", "conv2d.weight"});
    CHECK(ints(node_named(proto, "conv2d"), "pads") == std::vector<std::int64_t>{1, 1, 1, 1});
    const auto& bn = node_named(proto, "batch_normalization");
    CHECK(inputs_of(bn) == std::vector<std::string>{"conv2d", "batch_normalization.weight", "batch_normalization.bias",
                                                    "batch_normalization.running_mean",
                                                    "batch_normalization.running_var"});
    CHECK(attribute(bn, "epsilon").f() == static_cast<float>(1e-5));
    const auto& bn_layer = dynamic_cast<const BatchNormalization<T>&>(model.layer("batch_normalization"));
    check_weights(initializer(proto, "batch_normalization.running_mean"), bn_layer.running_mean());
    check_weights(initializer(proto, "batch_normalization.running_var"), bn_layer.running_var());
    check_weights(initializer(proto, "batch_normalization.weight"), bn_layer.gamma().value());
    check_weights(initializer(proto, "batch_normalization.bias"), bn_layer.beta().value());
    CHECK(bn_layer.running_var()[3] == T(1.25));  // not the trivial statistics

    // The residual Add reads the GELU branch and the ReLU; the strided, unevenly padded
    // convolution ("2,0,1,0" = top 2, bottom 0, left 1, right 0) reads the input.
    CHECK(node_named(proto, "conv2d_1/gelu").output(0) == "conv2d_1");
    CHECK(inputs_of(node_named(proto, "add")) == std::vector<std::string>{"conv2d_1", "re_lu"});
    const auto& side = node_named(proto, "conv2d_2");
    CHECK(inputs_of(side) == std::vector<std::string>{"input", "conv2d_2.weight", "conv2d_2.bias"});
    CHECK(ints(side, "kernel_shape") == std::vector<std::int64_t>{3, 3});
    CHECK(ints(side, "strides") == std::vector<std::int64_t>{2, 2});
    CHECK(ints(side, "pads") == std::vector<std::int64_t>{2, 1, 0, 0});
    CHECK(ints(side, "dilations") == std::vector<std::int64_t>{1, 1});
    CHECK(attribute(side, "group").i() == 1);
    const auto& side_layer = dynamic_cast<const Conv2D<T>&>(model.layer("conv2d_2"));
    check_weights(initializer(proto, "conv2d_2.weight"), side_layer.weight().value());

    // Concatenation over channels (axis 1 of NCHW, as cnnlite's default); Dropout removed.
    const auto& cat = node_named(proto, "concatenate");
    CHECK(inputs_of(cat) == std::vector<std::string>{"max_pooling2d", "conv2d_2"});
    CHECK(attribute(cat, "axis").i() == 1);
    CHECK(inputs_of(node_named(proto, "global_average_pooling2d")) == std::vector<std::string>{"concatenate"});
    const auto& gemm = node_named(proto, "dense");
    CHECK(attribute(gemm, "transB").i() == 1);
    const auto& dense_layer = dynamic_cast<const Dense<T>&>(model.layer("dense"));
    check_weights(initializer(proto, "dense.weight"), dense_layer.weight().value());
    CHECK(std::vector<std::int64_t>(initializer(proto, "dense.weight").dims().begin(),
                                    initializer(proto, "dense.weight").dims().end()) ==
          std::vector<std::int64_t>{5, 12});

    const auto shapes = value_shapes(proto);
    for (std::size_t i = 0; i + 1 < model.size(); ++i) {
        const Layer<T>& layer = model.layer(i);
        if (std::string(layer.type()) == "Dropout") continue;
        CAPTURE(layer.name());
        REQUIRE(shapes.count(layer.name()));
        CHECK(shapes.at(layer.name()) == expected_dims(layer.output_shape()));
    }
}

TEST_CASE("every supported layer and activation passes the checker and shape inference") {
    auto x = Input<float>({2, 9, 9});
    Symbolic<float> h = Conv2D<float>(4, 3).padding("same").activation("silu")(x);
    h = BatchNormalization<float>().center(false).scale(false)(h);
    h = LeakyReLU<float>(0.1)(h);
    h = ELU<float>(0.7)(h);
    h = SpatialDropout2D<float>(0.2)(h);
    h = AvgPool2D<float>(2, 2).padding("same")(h);                                  // [4, 5, 5]
    Symbolic<float> a = ActivationLayer<float>("gelu_tanh")(h);
    Symbolic<float> b = ActivationLayer<float>("softplus")(h);
    Symbolic<float> c = ActivationLayer<float>("tanh")(h);
    h = Add<float>()({a, b, c});
    Symbolic<float> g1 = GlobalMaxPooling2D<float>()(h);
    Symbolic<float> g2 = Flatten<float>()(MaxPool2D<float>(3, 3).strides(2, 2).padding("1,1,1,1")(h));
    h = Concatenate<float>(-1)({g1, g2});
    h = Dense<float>(6).activation("sigmoid")(h);
    h = Dense<float>(4).activation("elu")(h);
    h = ActivationLayer<float>("leaky_relu")(h);
    h = Softmax<float>()(Dense<float>(3).use_bias(false)(h));
    const Model<float> model(x, Dropout<float>(0.1)(h));

    TempDir dir;
    const std::string path = dir.file("zoo.onnx");
    save_onnx(model, path);
    onnx::ModelProto proto = load(path);
    REQUIRE_NOTHROW(validate(proto));
    const auto shapes = value_shapes(proto);
    CHECK(shapes.at("output") == "batch,3");
    for (std::size_t i = 0; i < model.size(); ++i) {
        const Layer<float>& layer = model.layer(i);
        const std::string type = layer.type();
        if (type == "Dropout" || type == "SpatialDropout2D") continue;
        CAPTURE(layer.name());
        REQUIRE(shapes.count(layer.name()));
        CHECK(shapes.at(layer.name()) == expected_dims(layer.output_shape()));
    }
    // Average pooling leaves padded cells out of the mean, as cnnlite does.
    CHECK(attribute(node_named(proto, "average_pooling2d"), "count_include_pad").i() == 0);
    CHECK(ints(node_named(proto, "average_pooling2d"), "pads") == std::vector<std::int64_t>{0, 0, 1, 1});
    CHECK(attribute(node_named(proto, "leaky_re_lu"), "alpha").f() == 0.1f);
    CHECK(attribute(node_named(proto, "elu"), "alpha").f() == 0.7f);
    CHECK(attribute(node_named(proto, "activation_3"), "alpha").f() == 0.2f);  // leaky_relu's default slope
    CHECK(attribute(node_named(proto, "concatenate"), "axis").i() == 1);        // -1 of [N, F]
    CHECK(node_named(proto, "conv2d/silu/sigmoid").op_type() == "Sigmoid");
    CHECK(node_named(proto, "conv2d/silu").op_type() == "Mul");
    // Without scale and center, BatchNormalization gets a gamma of ones and a beta of zeros.
    const auto& bn = node_named(proto, "batch_normalization");
    const auto& gamma = initializer(proto, bn.input(1));
    REQUIRE(gamma.raw_data().size() == 4 * sizeof(float));
    float ones[4];
    std::memcpy(ones, gamma.raw_data().data(), sizeof ones);
    CHECK(ones[0] == 1.0f);
    CHECK(ones[3] == 1.0f);
    // Three inputs: (a + b) + c, as add_n sums; a last Dropout leaves an Identity to "output".
    CHECK(inputs_of(node_named(proto, "add/add_1")) == std::vector<std::string>{"activation", "activation_1"});
    CHECK(inputs_of(node_named(proto, "add")) == std::vector<std::string>{"add/add_1", "activation_2"});
    CHECK(node_named(proto, "dropout/output").op_type() == "Identity");
    CHECK(node_named(proto, "dropout/output").output(0) == "output");
}

TEST_CASE("the checker and strict shape inference reject a broken export (controls)") {
    const onnx::ModelProto good = to_onnx(small_graph<float>());
    {
        onnx::ModelProto wrong_output = good;  // the declared output disagrees with inference
        wrong_output.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->mutable_shape()
            ->mutable_dim(1)->set_dim_value(6);
        CHECK_THROWS(validate(wrong_output));
    }
    {
        onnx::ModelProto missing = good;  // a node reads a value nobody makes
        missing.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
        CHECK_THROWS(validate(missing));
    }
    {
        onnx::ModelProto bad_weight = good;  // the Gemm's weight transposed: [12, 5] against 12 inputs
        for (auto& t : *bad_weight.mutable_graph()->mutable_initializer())
            if (t.name() == "dense.weight") t.set_dims(0, 12), t.set_dims(1, 5);
        CHECK_THROWS(validate(bad_weight));
    }
    {
        onnx::ModelProto old_opset = good;  // Erf did not exist before opset 9
        old_opset.mutable_opset_import(0)->set_version(7);
        CHECK_THROWS(validate(old_opset));
    }
    onnx::ModelProto copy = good;
    CHECK_NOTHROW(validate(copy));
}

TEST_CASE("an unsupported layer or activation is an error naming the layer, and the old file stays") {
    TempDir dir;
    const std::string path = dir.file("model.onnx");
    {
        std::ofstream(path) << "old content";
    }
    Sequential<float> custom({4});
    custom.add(Dense<float>(3));
    custom.add(Doubling<float>());
    try {
        save_onnx(custom, path);
        FAIL("save_onnx accepted a layer it cannot export");
    } catch (const Error& e) {
        const std::string message = e.what();
        CHECK(message.find("'doubling'") != std::string::npos);
        CHECK(message.find("Doubling") != std::string::npos);
        CHECK(message.find("no ONNX export") != std::string::npos);
    }
    CHECK(read_bytes(path) == "old content");
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);  // no temp file left

    Sequential<float> channels({1, 6, 6});
    channels.add(Conv2D<float>(2, 3).activation("softmax"));
    try {
        save_onnx(channels, path);
        FAIL("save_onnx accepted a softmax over channels");
    } catch (const Error& e) {
        const std::string message = e.what();
        CHECK(message.find("'conv2d'") != std::string::npos);
        CHECK(message.find("softmax") != std::string::npos);
    }
    CHECK(read_bytes(path) == "old content");
}

TEST_CASE("an unwritable path is an error naming the path") {
    const std::string path = "/nonexistent-cnnlite-folder/sub/model.onnx";
    try {
        save_onnx(fashion_mnist_cnn<float>(), path);
        FAIL("save_onnx wrote into a folder that does not exist");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
    TempDir dir;
    fs::create_directories(dir.path / "a_folder");
    CHECK_THROWS_WITH_AS(save_onnx(fashion_mnist_cnn<float>(), (dir.path / "a_folder").string()),
                         doctest::Contains((dir.path / "a_folder").string().c_str()), Error);
}

}  // namespace test_io_onnx

#endif  // CNNLITE_WITH_ONNX
