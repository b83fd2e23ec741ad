// ONNX graphs written by hand for the ONNX import tests and the fuzz seeds: a builder of one
// float input [batch, sample...], nodes, initialisers and outputs; attribute setters; and the
// nodes PyTorch's TorchScript exporter writes for F.pad. Needs the ONNX component.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace test_support {

/// The values 0.1 * (i % 7 - 3) * scale + offset for i < n: weights that are neither zero nor
/// alike.
inline std::vector<float> range(std::int64_t n, float scale = 0.1f, float offset = 0) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = offset + scale * static_cast<float>(i % 7 - 3);
    return v;
}

/// A graph written by hand: one float input "x" [batch, sample...], nodes, initialisers, outputs.
struct GraphBuilder {
    onnx::ModelProto proto;
    onnx::GraphProto* g;

    explicit GraphBuilder(const std::vector<std::int64_t>& sample, std::int64_t opset = 17) {
        proto.set_ir_version(8);
        auto* op = proto.add_opset_import();
        op->set_domain("");
        op->set_version(opset);
        g = proto.mutable_graph();
        g->set_name("test");
        auto* in = g->add_input();
        in->set_name("x");
        auto* type = in->mutable_type()->mutable_tensor_type();
        type->set_elem_type(onnx::TensorProto::FLOAT);
        type->mutable_shape()->add_dim()->set_dim_param("batch");
        for (std::int64_t d : sample) type->mutable_shape()->add_dim()->set_dim_value(d);
    }
    onnx::NodeProto& node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs) {
        auto* n = g->add_node();
        n->set_op_type(op);
        n->set_name(name);
        for (const auto& i : inputs) n->add_input(i);
        for (const auto& o : outputs) n->add_output(o);
        return *n;
    }
    /// A float initialiser of `dims` holding `v` (the pattern of range() when `v` is empty).
    onnx::TensorProto& weights(const std::string& name, const std::vector<std::int64_t>& dims,
                               std::vector<float> v = {}) {
        auto* t = g->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        std::int64_t n = 1;
        for (auto d : dims) t->add_dims(d), n *= d;
        if (v.empty()) v = range(n);
        t->set_raw_data(v.data(), v.size() * sizeof(float));
        return *t;
    }
    /// An int64 initialiser of one dimension.
    onnx::TensorProto& ints(const std::string& name, const std::vector<std::int64_t>& v) {
        auto* t = g->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::INT64);
        t->add_dims(static_cast<std::int64_t>(v.size()));
        for (auto x : v) t->add_int64_data(x);
        return *t;
    }
    /// A Constant node `name` whose output `output` is the int64 vector `v`.
    onnx::NodeProto& constant_ints(const std::string& name, const std::string& output, const std::vector<std::int64_t>& v) {
        auto& n = node("Constant", name, {}, {output});
        auto* value = n.add_attribute();
        value->set_name("value");
        value->set_type(onnx::AttributeProto::TENSOR);
        value->mutable_t()->set_data_type(onnx::TensorProto::INT64);
        value->mutable_t()->add_dims(static_cast<std::int64_t>(v.size()));
        for (auto x : v) value->mutable_t()->add_int64_data(x);
        return n;
    }
    void output(const std::string& name) { g->add_output()->set_name(name); }
};

inline void set_ints(onnx::NodeProto& n, const char* name, const std::vector<std::int64_t>& values) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto v : values) a->add_ints(v);
}
inline void set_int(onnx::NodeProto& n, const char* name, std::int64_t value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
}
inline void set_float(onnx::NodeProto& n, const char* name, float value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
}
inline void set_text(onnx::NodeProto& n, const char* name, const std::string& value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(value);
}

/// The nodes PyTorch's TorchScript exporter (opset 17) writes for F.pad(x, (0, 1, 0, 1)): the
/// pads in PyTorch's order (last axis first) turned into ONNX's by ConstantOfShape, Concat,
/// Reshape, Slice, Transpose, Reshape and Cast, then a Pad of `input` into `output`.
inline void add_torchscript_pad(GraphBuilder& b, const std::string& input, const std::string& output) {
    b.constant_ints("/four", "four", {4});
    b.constant_ints("/torch_pads", "torch_pads", {0, 1, 0, 1});
    auto* fill = b.node("ConstantOfShape", "/ConstantOfShape", {"four"}, {"zeros"}).add_attribute();
    fill->set_name("value");
    fill->set_type(onnx::AttributeProto::TENSOR);
    fill->mutable_t()->set_data_type(onnx::TensorProto::INT64);
    fill->mutable_t()->add_dims(1);
    fill->mutable_t()->add_int64_data(0);
    set_int(b.node("Concat", "/Concat", {"torch_pads", "zeros"}, {"eight"}), "axis", 0);
    b.constant_ints("/pairs", "pairs", {-1, 2});
    b.node("Reshape", "/Reshape", {"eight", "pairs"}, {"by_axis"});
    b.constant_ints("/zero", "zero", {0});
    b.constant_ints("/minus_one", "minus_one", {-1});
    b.constant_ints("/minus_inf", "minus_inf", {-9223372036854775807LL});
    b.node("Slice", "/Slice", {"by_axis", "minus_one", "minus_inf", "zero", "minus_one"}, {"reversed"});
    set_ints(b.node("Transpose", "/Transpose", {"reversed"}, {"begins_ends"}), "perm", {1, 0});
    b.node("Reshape", "/Reshape_1", {"begins_ends", "minus_one"}, {"flat"});
    set_int(b.node("Cast", "/Cast", {"flat"}, {"pads"}), "to", onnx::TensorProto::INT64);
    b.node("Pad", "/Pad", {input, "pads", ""}, {output});
}

}  // namespace test_support
