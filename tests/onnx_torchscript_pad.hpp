// The nodes PyTorch's TorchScript exporter (opset 17) writes for F.pad(x, (0, 1, 0, 1)): the
// pads, given in PyTorch's order (last axis first, begin and end), are turned into ONNX's by
// ConstantOfShape, Concat, Reshape, Slice, Transpose, Reshape and Cast, then fed to a Pad. Used
// by the ONNX import test (the constant folding must reduce them to a padding of the next Conv)
// and by the fuzz seeds. Needs the ONNX component.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace test_support {

/// Appends to `graph` the nodes that pad `input` by one row at the bottom and one column at the
/// right, as the TorchScript exporter writes them, producing `output`.
inline void add_torchscript_pad(onnx::GraphProto* graph, const std::string& input, const std::string& output) {
    auto node = [&](const char* op, const std::string& name, std::vector<std::string> inputs,
                    std::vector<std::string> outputs) -> onnx::NodeProto& {
        onnx::NodeProto* n = graph->add_node();
        n->set_op_type(op);
        n->set_name(name);
        for (const auto& i : inputs) n->add_input(i);
        for (const auto& o : outputs) n->add_output(o);
        return *n;
    };
    auto int64_tensor = [](onnx::AttributeProto* a, const std::vector<std::int64_t>& values) {
        a->set_name("value");
        a->set_type(onnx::AttributeProto::TENSOR);
        a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
        a->mutable_t()->add_dims(static_cast<std::int64_t>(values.size()));
        for (std::int64_t v : values) a->mutable_t()->add_int64_data(v);
    };
    auto constant = [&](const std::string& name, const std::vector<std::int64_t>& values) {
        int64_tensor(node("Constant", "/" + name, {}, {name}).add_attribute(), values);
    };
    auto ints = [](onnx::NodeProto& n, const char* name, const std::vector<std::int64_t>& values) {
        auto* a = n.add_attribute();
        a->set_name(name);
        if (values.size() == 1) {
            a->set_type(onnx::AttributeProto::INT);
            a->set_i(values[0]);
        } else {
            a->set_type(onnx::AttributeProto::INTS);
            for (std::int64_t v : values) a->add_ints(v);
        }
    };
    constant("four", {4});
    constant("torch_pads", {0, 1, 0, 1});
    int64_tensor(node("ConstantOfShape", "/ConstantOfShape", {"four"}, {"zeros"}).add_attribute(), {0});
    ints(node("Concat", "/Concat", {"torch_pads", "zeros"}, {"eight"}), "axis", {0});
    constant("pairs", {-1, 2});
    node("Reshape", "/Reshape", {"eight", "pairs"}, {"by_axis"});
    constant("zero", {0});
    constant("minus_one", {-1});
    constant("minus_inf", {-9223372036854775807LL});
    node("Slice", "/Slice", {"by_axis", "minus_one", "minus_inf", "zero", "minus_one"}, {"reversed"});
    ints(node("Transpose", "/Transpose", {"reversed"}, {"begins_ends"}), "perm", {1, 0});
    node("Reshape", "/Reshape_1", {"begins_ends", "minus_one"}, {"flat"});
    ints(node("Cast", "/Cast", {"flat"}, {"pads"}), "to", {onnx::TensorProto::INT64});
    node("Pad", "/Pad", {input, "pads", ""}, {output});
}

}  // namespace test_support
