// ONNX import: load_onnx() turns an ONNX inference graph (opsets 13 to 18, float32) into a
// cnnlite Model<T> made of cnnlite's own trainable layers, so that the imported network both
// predicts and fine-tunes. Optional, like io/onnx_export.hpp: usable only when cnnlite is built
// with ONNX (CMake -DCNNLITE_WITH_ONNX=ON, Meson -Donnx=enabled); otherwise calling load_onnx()
// stops the compilation with a message saying so. docs/model_format.md ("ONNX import") lists
// the operators and what is refused.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/files.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/nn/activation_layer.hpp"
#include "cnnlite/nn/add.hpp"
#include "cnnlite/nn/avg_pool2d.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/concatenate.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/elu.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/global_pooling2d.hpp"
#include "cnnlite/nn/leaky_relu.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/model.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/nn/softmax.hpp"

#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX

#include <onnx/onnx_pb.h>

#include "cnnlite/io/detail/onnx_constant_folding.hpp"
#include "cnnlite/io/detail/onnx_reading.hpp"

namespace cnnlite {

/// The oldest opset of the default ONNX domain load_onnx() reads.
constexpr std::int64_t onnx_import_min_opset = 13;
/// The newest opset of the default ONNX domain load_onnx() reads.
constexpr std::int64_t onnx_import_max_opset = 18;

namespace detail {

// Pads beyond this are refused: far more than any network uses, and it keeps padded sizes in
// the int32 range the convolution and pooling kernels index with.
constexpr std::int64_t onnx_max_pad = 1 << 16;

// Builds the model node by node in a topological order of the nodes the graph's output
// depends on (nodes it does not depend on are ignored). Each ONNX value the network computes
// is the output of one cnnlite layer (or the model's input), possibly seen through nodes that
// do not compute anything in cnnlite (Identity, an inference-only Dropout, a Flatten of an
// already flat value); constants (initialisers, Constant nodes) are kept apart and become
// weights, pads and shapes.
template <class T>
class OnnxImporter {
public:
    OnnxImporter(const onnx::ModelProto& proto, std::string source) : proto_(proto), source_(std::move(source)) {}

    Model<T> run() {
        try {
            return build();
        } catch (const Error& e) {
            fail("load_onnx: ", source_, ": ", e.what());
        }
    }

private:
    // A value the network computes: the cnnlite layer that holds it ("input" for the model's
    // input) and its per-sample ONNX shape. The two shapes differ only after a global pooling
    // ([C, 1, 1] in ONNX, [C] in cnnlite). A Pad before a convolution is folded into it, so a
    // padded value is the unpadded one plus the pending pads (top, left, bottom, right).
    struct Value {
        std::string layer;
        Shape shape;
        std::array<std::int64_t, 4> pads{0, 0, 0, 0};
        const onnx::NodeProto* pad_node = nullptr;
    };

    Model<T> build() {
        check_header();
        const onnx::GraphProto& g = proto_.graph();
        collect_constants_and_producers(g);
        const Value input = read_input(g);
        check(g.output_size() == 1, "the graph has ", g.output_size(), " outputs; cnnlite models have one");
        output_ = g.output(0).name();
        check(producer_.count(output_), "the graph's output '", output_, "' is not produced by any node");
        const std::vector<int> order = topological_order(g);

        model_ = std::make_unique<Model<T>>(input_shape_, 0, InitScheme::torch);
        values_[input_name_] = input;
        for (int index : order) import_node(g.node(index));

        const auto out = values_.find(output_);
        check(out != values_.end(), "the graph's output '", output_, "' is a constant, not computed from the input");
        check(out->second.pad_node == nullptr, "the graph's output '", output_, "' comes from a Pad");
        check(model_->size() > 0, "the graph's output is its input: there is no layer to run");
        check(out->second.layer == model_->layer(model_->size() - 1).name(), "the graph's output '", output_,
              "' is not the last value computed");
        model_->check_complete();
        return std::move(*model_);
    }

    // --- the model as a whole -------------------------------------------------------------

    void check_header() {
        check(proto_.has_graph(), "the file holds no graph (is it an ONNX model?)");
        bool found = false;
        for (const auto& op : proto_.opset_import()) {
            if (!op.domain().empty() && op.domain() != "ai.onnx") continue;  // other domains: checked per node
            check(!found, "the default ONNX domain is imported twice");
            found = true;
            check(op.version() >= onnx_import_min_opset && op.version() <= onnx_import_max_opset, "opset ",
                  op.version(), " of the default ONNX domain is not supported (", onnx_import_min_opset, " to ",
                  onnx_import_max_opset, ")");
        }
        check(found, "the model imports no opset of the default ONNX domain");
    }

    // Initialisers are read lazily (only those the network uses), but their names, like every
    // value's, must be unique.
    void collect_constants_and_producers(const onnx::GraphProto& g) {
        for (const auto& t : g.initializer()) {
            check(!t.name().empty(), "an initialiser has no name");
            check(initializers_.emplace(t.name(), &t).second, "duplicate value name '", t.name(),
                  "': two initialisers");
        }
        check(g.sparse_initializer_size() == 0, "sparse initialisers are not supported");
        for (int i = 0; i < g.node_size(); ++i) {
            const onnx::NodeProto& n = g.node(i);
            for (const auto& out : n.output()) {
                if (out.empty()) continue;  // an optional output left out
                check(!initializers_.count(out), onnx_node_label(n), ": duplicate value name '", out,
                      "': also an initialiser");
                const auto previous = producer_.emplace(out, i);
                check(previous.second, onnx_node_label(n), ": duplicate value name '", out, "': also an output of ",
                      onnx_node_label(g.node(previous.first->second)));
            }
        }
    }

    // The one graph input that is not an initialiser: float32 [batch, ...] with fixed
    // per-sample dimensions.
    Value read_input(const onnx::GraphProto& g) {
        const onnx::ValueInfoProto* info = nullptr;
        for (const auto& in : g.input()) {
            if (initializers_.count(in.name())) continue;  // IR < 4 lists initialisers as inputs too
            check(info == nullptr, "the graph has more than one input ('", info ? info->name() : "", "', '", in.name(),
                  "'); cnnlite models have one");
            info = &in;
        }
        check(info != nullptr, "the graph has no input");
        input_name_ = info->name();
        const auto clash = producer_.find(input_name_);
        if (clash != producer_.end())
            fail("duplicate value name '", input_name_, "': the graph's input is also an output of ",
                 onnx_node_label(g.node(clash->second)));
        const std::string what = "input '" + input_name_ + "'";
        check(info->type().has_tensor_type(), what, " is not a tensor");
        const auto& type = info->type().tensor_type();
        check(type.elem_type() == onnx::TensorProto::FLOAT, what, " has element type ",
              onnx_type_name(type.elem_type()), "; only FLOAT is supported");
        check(type.has_shape(), what, " has no shape");
        const int rank = type.shape().dim_size();
        check(rank == 2 || rank == 4, what, " has rank ", rank, "; supported: [batch, features] and [batch, C, H, W]");
        std::vector<std::int64_t> dims;
        for (int i = 1; i < rank; ++i) {
            const auto& d = type.shape().dim(i);
            check(d.has_dim_value(), what, ": dimension ", i, " is dynamic ('", d.dim_param(),
                  "'); only the batch dimension may be");
            check(d.dim_value() >= 1 && d.dim_value() <= std::numeric_limits<std::int32_t>::max(), what,
                  ": dimension ", i, " = ", d.dim_value(), " is out of range");
            dims.push_back(d.dim_value());
        }
        const auto& batch = type.shape().dim(0);
        check(!batch.has_dim_value() || batch.dim_value() >= 1, what, ": batch dimension ", batch.dim_value(),
              " is not positive");
        fixed_batch_ = batch.has_dim_value() ? batch.dim_value() : 0;
        check(onnx_element_count(dims, what) <= std::numeric_limits<std::int32_t>::max(), what,
              ": a sample has more than 2^31 - 1 values");
        input_shape_ = Shape(dims);
        return Value{model_input_name(), input_shape_};
    }

    // The nodes the output depends on, each after the nodes it reads (a depth-first search
    // without recursion, so that a hostile file cannot exhaust the stack); a cycle is an error.
    std::vector<int> topological_order(const onnx::GraphProto& g) {
        std::vector<int> order;
        std::vector<char> state(static_cast<std::size_t>(g.node_size()), 0);  // 0 new, 1 open, 2 done
        std::vector<std::pair<int, int>> stack{{producer_.at(output_), 0}};   // node, next input
        state[static_cast<std::size_t>(producer_.at(output_))] = 1;
        while (!stack.empty()) {
            auto& [node, next] = stack.back();
            const onnx::NodeProto& n = g.node(node);
            if (next == n.input_size()) {
                state[static_cast<std::size_t>(node)] = 2;
                order.push_back(node);
                stack.pop_back();
                continue;
            }
            const std::string& in = n.input(next++);
            if (in.empty()) continue;  // an optional input left out
            consumers_[in].push_back(node);
            const auto p = producer_.find(in);
            if (p == producer_.end()) {
                check(initializers_.count(in) || in == input_name_, onnx_node_label(n), " reads '", in,
                      "', which no node, initialiser or graph input provides (missing initialiser?)");
                continue;
            }
            char& s = state[static_cast<std::size_t>(p->second)];
            check(s != 1, onnx_node_label(n), " is on a cycle (through '", in, "')");
            if (s == 0) {
                s = 1;
                stack.emplace_back(p->second, 0);
            }
        }
        return order;
    }

    // --- nodes ------------------------------------------------------------------------------

    void import_node(const onnx::NodeProto& n) {
        check(n.domain().empty() || n.domain() == "ai.onnx", onnx_node_label(n), ": domain '", n.domain(),
              "' is not supported (only the default ONNX domain)");
        if (folded_.count(&n)) return;
        const std::string& op = n.op_type();
        if (op == "Constant") return import_constant(n);
        if (onnx_foldable(op) && constant_inputs(n)) return fold_constant(n);
        if (op == "Identity") return alias(n, 0);
        if (op == "Dropout") return import_dropout(n);
        if (op == "Conv") return import_conv(n);
        if (op == "Pad") return import_pad(n);
        if (op == "BatchNormalization") return import_batch_norm(n);
        if (op == "MaxPool" || op == "AveragePool") return import_pool(n);
        if (op == "GlobalAveragePool" || op == "GlobalMaxPool") return import_global_pool(n);
        if (op == "ReduceMean" || op == "ReduceMax") return import_reduce(n);
        if (op == "Greater") return import_greater(n);
        if (op == "Where") return import_where(n);
        if (op == "Flatten") return import_flatten(n);
        if (op == "Reshape") return import_reshape(n);
        if (op == "Gemm") return import_gemm(n);
        if (op == "MatMul") return import_matmul(n);
        if (op == "Add") return import_add(n);
        if (op == "Concat") return import_concat(n);
        if (op == "Softmax") return import_softmax(n);
        if (op == "Relu" || op == "LeakyRelu" || op == "Elu" || op == "Sigmoid" || op == "Tanh" || op == "Softplus")
            return import_activation(n);
        fail(onnx_node_label(n), ": operator ", op,
             " is not supported (supported: Conv, BatchNormalization, Relu, LeakyRelu, Elu, Sigmoid, Tanh, Softplus, "
             "x * Sigmoid(x), "
             "MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean and ReduceMax over H and W, Gemm, "
             "MatMul, Add, Concat, Flatten, Reshape, Pad, Softmax, Dropout, Identity, Constant)");
    }

    void import_constant(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"value", "value_float", "value_floats", "value_int", "value_ints"});
        check(n.output_size() == 1, onnx_node_label(n), ": expected one output");
        OnnxConstant c;
        if (a.has("value")) {
            c = a.tensor("value");
        } else if (a.has("value_float")) {
            c.floats = {static_cast<float>(a.real("value_float", 0))};
        } else if (const auto* fs = a.find("value_floats")) {
            c.floats.assign(fs->floats().begin(), fs->floats().end());
            c.dims = {static_cast<std::int64_t>(c.floats.size())};
            for (float v : c.floats) check(std::isfinite(v), onnx_node_label(n), ": a value is not finite");
        } else if (a.has("value_int")) {
            c.is_float = false, c.ints = {a.integer("value_int", 0)};
        } else if (const auto* is = a.find("value_ints")) {
            c.is_float = false, c.ints.assign(is->ints().begin(), is->ints().end());
            c.dims = {static_cast<std::int64_t>(c.ints.size())};
        } else {
            fail(onnx_node_label(n), ": no value (only value, value_float(s) and value_int(s) are supported)");
        }
        constants_[n.output(0)] = std::move(c);
    }

    // Whether every input `n` reads is a constant (a shape or pads being computed).
    bool constant_inputs(const onnx::NodeProto& n) {
        for (const auto& in : n.input())
            if (!in.empty() && !find_constant(in)) return false;
        return n.input_size() > 0;
    }

    void fold_constant(const onnx::NodeProto& n) {
        check_outputs(n, 1);
        std::vector<const OnnxConstant*> inputs;
        for (const auto& in : n.input()) inputs.push_back(find_constant(in));
        constants_[n.output(0)] = fold_onnx_constant(n, inputs);
    }

    void import_dropout(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"seed"});
        check_outputs(n, 1);
        double ratio = 0.5;
        if (n.input_size() > 1 && !n.input(1).empty()) {
            const OnnxConstant& r = constant(n, 1, "ratio");
            check(r.is_float && r.numel() == 1, onnx_node_label(n), ": ratio must be one float");
            ratio = r.floats[0];
        }
        if (n.input_size() > 2 && !n.input(2).empty()) {
            const OnnxConstant& mode = constant(n, 2, "training_mode");
            check(mode.numel() == 1 && (mode.is_float ? mode.floats[0] == 0 : mode.ints[0] == 0), onnx_node_label(n),
                  ": training_mode must be false (an inference graph)");
        }
        check(ratio >= 0 && ratio < 1, onnx_node_label(n), ": ratio ", ratio, " is outside [0, 1)");
        // Kept as a layer: the identity at inference, and it drops out again when fine-tuning.
        if (ratio == 0) return alias(n, 0);
        const Value& x = runtime(n, 0);
        add_layer(n, std::make_unique<Dropout<T>>(ratio), {x}, x.shape);
    }

    void import_conv(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
        check_outputs(n, 1);
        check(n.input_size() >= 2 && n.input_size() <= 3, onnx_node_label(n), ": expected 2 or 3 inputs");
        const Value& x = runtime(n, 0, /*padded=*/true);
        check_image(n, x);
        const OnnxConstant& w = float_constant(n, 1, "weight");
        const std::int64_t c = x.shape[0];
        const std::int64_t groups = a.integer("group", 1);
        check(groups >= 1 && groups <= c && c % groups == 0, onnx_node_label(n), ": group ", groups,
              " does not divide the input's ", c, " channels");
        check(w.dims.size() == 4 && w.dims[1] * groups == c && w.dims[0] >= 1 && w.dims[0] % groups == 0 &&
                  w.dims[2] >= 1 && w.dims[3] >= 1,
              onnx_node_label(n), ": weight ", w.dims_text(), " does not fit an input of ", c, " channels in ", groups,
              " group(s) (expected [O, ", c / groups, ", kh, kw] with O divisible by ", groups, ")");
        const std::vector<std::int64_t> kernel = a.integers("kernel_shape", 2, {w.dims[2], w.dims[3]});
        check(kernel[0] == w.dims[2] && kernel[1] == w.dims[3], onnx_node_label(n), ": kernel_shape [", kernel[0],
              ", ", kernel[1], "] disagrees with weight ", w.dims_text());
        const std::vector<std::int64_t> dilations = a.integers("dilations", 2, {1, 1});
        for (std::int64_t d : dilations)
            check(d >= 1 && d <= std::numeric_limits<std::int32_t>::max(), onnx_node_label(n), ": dilations [",
                  dilations[0], ", ", dilations[1], "] are not supported");
        const std::vector<std::int64_t> strides = a.integers("strides", 2, {1, 1});
        for (std::int64_t s : strides)
            check(s >= 1 && s <= std::numeric_limits<std::int32_t>::max(), onnx_node_label(n), ": strides [",
                  strides[0], ", ", strides[1], "] are not supported");

        Conv2dOptions o;
        o.filters = w.dims[0];
        o.kernel_size = {w.dims[2], w.dims[3]};
        o.strides = {strides[0], strides[1]};
        o.dilation_rate = {dilations[0], dilations[1]};
        o.groups = groups;
        // Padding sees the window the dilated kernel spans (ONNX's SAME_UPPER does too).
        o.padding = padding(n, a, x,
                            {kernels::dilated_extent(kernel[0], dilations[0]), kernels::dilated_extent(kernel[1], dilations[1])});
        const std::string bias_name = n.input_size() == 3 ? n.input(2) : std::string();
        o.use_bias = !bias_name.empty();
        const OnnxConstant* b = nullptr;
        if (o.use_bias) {
            b = &float_constant(n, 2, "bias");
            check(b->numel() == o.filters && b->dims.size() == 1, onnx_node_label(n), ": bias ", b->dims_text(),
                  " does not fit ", o.filters, " filters");
        }
        const onnx::NodeProto* relu = following_relu(n.output(0));
        if (relu) o.activation = Activation::relu;
        Layer<T>& layer = add_layer(n, std::make_unique<Conv2D<T>>(o), {x}, Shape{});
        auto& conv = dynamic_cast<Conv2D<T>&>(layer);
        copy(w.floats, conv.weight());
        if (b) copy(b->floats, conv.bias());
        values_[n.output(0)].shape = layer.output_shape();
        if (relu) fold_into(*relu, n.output(0));
    }

    // The padding of a convolution or pooling: its auto_pad or pads, plus a Pad folded into it.
    Padding padding(const onnx::NodeProto& n, const OnnxAttributes& a, const Value& x,
                    const std::vector<std::int64_t>& kernel) {
        const std::string auto_pad = a.text("auto_pad", "NOTSET");
        const bool padded = x.pad_node != nullptr;
        if (auto_pad == "SAME_UPPER") {
            check(!padded && !a.has("pads"), onnx_node_label(n), ": auto_pad SAME_UPPER with explicit pads");
            return Padding::same();  // the extra row and column at the bottom and right, as ONNX's SAME_UPPER
        }
        check(auto_pad == "NOTSET" || auto_pad == "VALID", onnx_node_label(n), ": auto_pad ", auto_pad,
              " is not supported (NOTSET, VALID, SAME_UPPER)");
        const std::vector<std::int64_t> p =
            auto_pad == "VALID" ? std::vector<std::int64_t>{0, 0, 0, 0} : a.integers("pads", 4, {0, 0, 0, 0});
        for (std::int64_t v : p)
            check(v >= 0 && v <= onnx_max_pad, onnx_node_label(n), ": pads value ", v, " is not supported (0 to ",
                  onnx_max_pad, ")");
        // ONNX: [top, left, bottom, right]; cnnlite: top, bottom, left, right.
        const std::int64_t top = p[0] + x.pads[0], left = p[1] + x.pads[1];
        const std::int64_t bottom = p[2] + x.pads[2], right = p[3] + x.pads[3];
        check(x.shape[1] + top + bottom >= kernel[0] && x.shape[2] + left + right >= kernel[1], onnx_node_label(n),
              ": the window ", kernel[0], "x", kernel[1], " is larger than the padded input");
        if (top == 0 && left == 0 && bottom == 0 && right == 0) return Padding::valid();
        return Padding::explicit_pad(top, bottom, left, right);
    }

    // A constant zero Pad of the two spatial axes, kept pending until the convolution that
    // reads it; anything else reading a padded value is refused (runtime()).
    void import_pad(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"mode"});
        check_outputs(n, 1);
        check(a.text("mode", "constant") == "constant", onnx_node_label(n), ": mode '", a.text("mode", ""),
              "' is not supported (only constant zero padding before a Conv)");
        check(n.input_size() >= 2 && n.input_size() <= 4, onnx_node_label(n), ": expected 2 to 4 inputs");
        check(n.input_size() < 4 || n.input(3).empty(), onnx_node_label(n), ": the axes input is not supported");
        Value x = runtime(n, 0);
        check_image(n, x);
        const OnnxConstant& pads = constant(n, 1, "pads");
        check(!pads.is_float && pads.numel() == 8, onnx_node_label(n), ": pads must be 8 int64 values for a 4-D input");
        const auto& p = pads.ints;  // [N, C, H, W begins, N, C, H, W ends]
        check(p[0] == 0 && p[1] == 0 && p[4] == 0 && p[5] == 0, onnx_node_label(n),
              ": only the two spatial axes may be padded");
        for (std::int64_t v : p)
            check(v >= 0 && v <= onnx_max_pad, onnx_node_label(n), ": pads value ", v, " is not supported (0 to ",
                  onnx_max_pad, ")");
        if (n.input_size() > 2 && !n.input(2).empty()) {
            const OnnxConstant& value = constant(n, 2, "constant_value");
            check(value.numel() <= 1 && (value.numel() == 0 || (value.is_float ? value.floats[0] == 0 : value.ints[0] == 0)),
                  onnx_node_label(n), ": only zero padding is supported");
        }
        for (const int consumer : consumers_[n.output(0)])
            check(proto_.graph().node(consumer).op_type() == "Conv", onnx_node_label(n), ": a Pad is supported only "
                  "before a Conv, into whose padding it folds (cnnlite's pooling pads with values that never win or "
                  "count, not zeros); it feeds ", onnx_node_label(proto_.graph().node(consumer)));
        x.pads = {x.pads[0] + p[2], x.pads[1] + p[3], x.pads[2] + p[6], x.pads[3] + p[7]};
        x.pad_node = &n;
        values_[n.output(0)] = x;
    }

    void import_batch_norm(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"epsilon", "momentum", "training_mode", "spatial"});
        check_outputs(n, 1);
        check(a.integer("training_mode", 0) == 0, onnx_node_label(n), ": training_mode must be 0 (inference)");
        check(a.integer("spatial", 1) == 1, onnx_node_label(n), ": spatial must be 1");
        check(n.input_size() == 5, onnx_node_label(n), ": expected 5 inputs");
        const Value& x = runtime(n, 0);
        check(x.shape.rank() == 3 || x.shape.rank() == 1, onnx_node_label(n), ": input ", x.shape,
              " per sample is not supported ([C, H, W] or [features])");
        const std::int64_t c = x.shape[0];
        const char* roles[] = {"scale", "bias", "mean", "var"};
        std::vector<const OnnxConstant*> t;
        for (int i = 1; i <= 4; ++i) {
            t.push_back(&float_constant(n, i, roles[i - 1]));
            check(t.back()->dims.size() == 1 && t.back()->numel() == c, onnx_node_label(n), ": ", roles[i - 1], " ",
                  t.back()->dims_text(), " does not fit ", c, " channels");
        }
        for (float v : t[3]->floats) check(v >= 0, onnx_node_label(n), ": a variance is negative (", v, ")");
        BatchNormOptions o = BatchNormOptions::for_convention(BatchNormConvention::torch);
        o.epsilon = a.real("epsilon", 1e-5);
        check(o.epsilon > 0, onnx_node_label(n), ": epsilon ", o.epsilon, " must be positive");
        // ONNX's momentum weighs the running statistics (0.9); PyTorch's, which the layer
        // follows, the batch's (0.1). Only fine-tuning uses it.
        const double m = 1 - a.real("momentum", 0.9);
        if (m >= 0 && m < 1) o.momentum = m;
        auto& bn = dynamic_cast<BatchNormalization<T>&>(
            add_layer(n, std::make_unique<BatchNormalization<T>>(o), {x}, x.shape));
        copy(t[0]->floats, bn.gamma());
        copy(t[1]->floats, bn.beta());
        copy(t[2]->floats, bn.running_mean());
        copy(t[3]->floats, bn.running_var());
    }

    void import_pool(const onnx::NodeProto& n) {
        const bool max = n.op_type() == "MaxPool";
        OnnxAttributes a = max ? OnnxAttributes(n, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                                    "storage_order", "strides"})
                               : OnnxAttributes(n, {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape",
                                                    "pads", "strides"});
        check_outputs(n, 1);
        const Value& x = runtime(n, 0);
        check_image(n, x);
        check(a.has("kernel_shape"), onnx_node_label(n), ": kernel_shape is missing");
        const std::vector<std::int64_t> kernel = a.integers("kernel_shape", 2, {});
        const std::vector<std::int64_t> strides = a.integers("strides", 2, {1, 1});
        for (int i = 0; i < 2; ++i)
            check(kernel[i] >= 1 && strides[i] >= 1 && kernel[i] <= x.shape[1 + i] + 2 * onnx_max_pad &&
                      strides[i] <= std::numeric_limits<std::int32_t>::max(),
                  onnx_node_label(n), ": kernel_shape [", kernel[0], ", ", kernel[1], "] or strides [", strides[0], ", ",
                  strides[1], "] not supported");
        check(a.integers("dilations", 2, {1, 1}) == std::vector<std::int64_t>{1, 1}, onnx_node_label(n),
              ": dilations other than 1 are not supported");
        check(a.integer("storage_order", 0) == 0, onnx_node_label(n), ": storage_order 1 is not supported");
        Pool2dOptions o;
        o.pool_size = {kernel[0], kernel[1]};
        o.strides = {strides[0], strides[1]};
        o.padding = padding(n, a, x, kernel);
        const auto pad_of = [&](int side) -> std::int64_t {  // 0 top, 1 left, 2 bottom, 3 right
            if (o.padding.mode != Padding::Mode::explicit_) return 0;
            const std::int64_t sides[] = {o.padding.top, o.padding.left, o.padding.bottom, o.padding.right};
            return sides[side];
        };
        if (!max && a.integer("count_include_pad", 0) != 0)
            check(o.padding.mode == Padding::Mode::valid, onnx_node_label(n),
                  ": count_include_pad = 1 with padding is not supported (cnnlite leaves padded cells out of the mean)");
        if (a.integer("ceil_mode", 0) != 0) {
            // Rounding up changes the output only when a last, partial window would start inside the input.
            check(o.padding.mode != Padding::Mode::same, onnx_node_label(n), ": ceil_mode with auto_pad SAME_UPPER");
            for (int i = 0; i < 2; ++i) {
                const std::int64_t span = x.shape[1 + i] + pad_of(i) + pad_of(i + 2) - kernel[i];
                check(span % strides[i] == 0, onnx_node_label(n),
                      ": ceil_mode = 1 adds a partial window here, which cnnlite's pooling does not compute");
            }
        }
        std::unique_ptr<Layer<T>> layer;
        if (max) layer = std::make_unique<MaxPool2D<T>>(o);
        else layer = std::make_unique<AvgPool2D<T>>(o);
        Layer<T>& l = add_layer(n, std::move(layer), {x}, Shape{});
        values_[n.output(0)].shape = l.output_shape();
    }

    void import_global_pool(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {});
        check_outputs(n, 1);
        const Value& x = runtime(n, 0);
        check_image(n, x);
        std::unique_ptr<Layer<T>> layer;
        if (n.op_type() == "GlobalAveragePool") layer = std::make_unique<GlobalAveragePooling2D<T>>();
        else layer = std::make_unique<GlobalMaxPooling2D<T>>();
        add_layer(n, std::move(layer), {x}, Shape{x.shape[0], 1, 1});  // cnnlite holds it as [C]
    }

    // A mean or maximum over H and W (what PyTorch's torch.export-based exporter writes for
    // adaptive pooling to 1 x 1 and x.mean((2, 3))): a global pooling.
    void import_reduce(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"axes", "keepdims", "noop_with_empty_axes"});
        check_outputs(n, 1);
        const Value& x = runtime(n, 0);
        check_image(n, x);
        std::vector<std::int64_t> axes;
        if (n.input_size() > 1 && !n.input(1).empty()) {
            const OnnxConstant& c = constant(n, 1, "axes");
            check(!c.is_float, onnx_node_label(n), ": axes must be int64");
            axes = c.ints;
        } else if (const auto* attr = a.find("axes")) {
            axes.assign(attr->ints().begin(), attr->ints().end());
        }
        for (std::int64_t& axis : axes) axis = axis < 0 ? axis + 4 : axis;
        std::sort(axes.begin(), axes.end());
        check(axes == std::vector<std::int64_t>{2, 3}, onnx_node_label(n), ": axes ", ints_text(axes),
              " are not supported (only H and W, [2, 3], of [batch, C, H, W])");
        const bool keep = a.integer("keepdims", 1) != 0;
        std::unique_ptr<Layer<T>> layer;
        if (n.op_type() == "ReduceMean") layer = std::make_unique<GlobalAveragePooling2D<T>>();
        else layer = std::make_unique<GlobalMaxPooling2D<T>>();
        add_layer(n, std::move(layer), {x}, keep ? Shape{x.shape[0], 1, 1} : Shape{x.shape[0]});
    }

    // Greater and Where only as PyTorch writes Softplus (threshold t): Where(x > t, x,
    // Softplus(x)). Beyond t = 15 the two branches differ by less than exp(-15) relative, so
    // it is Softplus; the comparison is remembered until the Where that reads it.
    void import_greater(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {});
        check_outputs(n, 1);
        check(n.input_size() == 2, onnx_node_label(n), ": expected 2 inputs");
        runtime(n, 0);
        const OnnxConstant& t = float_constant(n, 1, "threshold");
        check(t.numel() == 1 && t.floats[0] >= 15, onnx_node_label(n),
              ": a comparison is supported only as Softplus' threshold (one constant of at least 15)");
        comparisons_[n.output(0)] = n.input(0);
    }

    void import_where(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {});
        check_outputs(n, 1);
        check(n.input_size() == 3, onnx_node_label(n), ": expected 3 inputs");
        const auto compared = comparisons_.find(n.input(0));
        const auto softplus = producer_.find(n.input(2));
        const bool pattern = compared != comparisons_.end() && compared->second == n.input(1) &&
                             softplus != producer_.end() &&
                             proto_.graph().node(softplus->second).op_type() == "Softplus" &&
                             proto_.graph().node(softplus->second).input_size() == 1 &&
                             proto_.graph().node(softplus->second).input(0) == n.input(1);
        check(pattern, onnx_node_label(n), ": Where is supported only as Where(x > threshold, x, Softplus(x))");
        values_[n.output(0)] = runtime(n, 2);
    }

    void import_flatten(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"axis"});
        check_outputs(n, 1);
        const Value& x = runtime(n, 0);
        std::int64_t axis = a.integer("axis", 1);
        const std::int64_t rank = x.shape.rank() + 1;
        if (axis < 0) axis += rank;
        check(axis == 1, onnx_node_label(n), ": axis ", a.integer("axis", 1),
              " is not supported (only 1: [batch, features])");
        flatten(n, x);
    }

    // [batch, everything else]: no layer when cnnlite already holds the value flat.
    void flatten(const onnx::NodeProto& n, const Value& x) {
        if (cnnlite_shape(x).rank() == 1) {
            Value flat = x;
            flat.shape = Shape{x.shape.numel()};
            values_[n.output(0)] = flat;
            return;
        }
        add_layer(n, std::make_unique<Flatten<T>>(), {x}, Shape{x.shape.numel()});
    }

    // Only to [batch, features] (PyTorch's x.view(n, -1) with a constant shape) or to the
    // value's own shape.
    void import_reshape(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"allowzero"});
        check_outputs(n, 1);
        check(n.input_size() == 2, onnx_node_label(n), ": expected 2 inputs");
        const Value& x = runtime(n, 0);
        const OnnxConstant& s = constant(n, 1, "shape");
        check(!s.is_float && s.dims.size() == 1, onnx_node_label(n), ": the shape must be a 1-D int64 constant");
        const bool allowzero = a.integer("allowzero", 0) != 0;
        const std::int64_t features = x.shape.numel();
        std::vector<std::int64_t> target = s.ints;
        const bool batch_ok = !target.empty() && ((target[0] == 0 && !allowzero) || target[0] == -1 ||
                                                  (fixed_batch_ > 0 && target[0] == fixed_batch_));
        for (std::size_t i = 1; i < target.size() && !allowzero; ++i)
            if (target[i] == 0 && i <= static_cast<std::size_t>(x.shape.rank())) target[i] = x.shape[static_cast<int>(i) - 1];
        const bool to_flat = batch_ok && target.size() == 2 &&
                             (target[1] == features || (target[1] == -1 && target[0] != -1));
        bool same = batch_ok && target.size() == static_cast<std::size_t>(x.shape.rank()) + 1;
        for (std::size_t i = 1; same && i < target.size(); ++i) same = target[i] == x.shape[static_cast<int>(i) - 1];
        if (same) return alias(n, 0);
        check(to_flat, onnx_node_label(n), ": a reshape to ", s.dims_text(), " values ", ints_text(s.ints),
              " is not supported (only to [batch, features], a flatten)");
        flatten(n, x);
    }

    void import_gemm(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"alpha", "beta", "transA", "transB"});
        check_outputs(n, 1);
        check(n.input_size() == 2 || n.input_size() == 3, onnx_node_label(n), ": expected 2 or 3 inputs");
        check(a.integer("transA", 0) == 0, onnx_node_label(n), ": transA = 1 is not supported");
        const bool trans_b = a.integer("transB", 0) != 0;
        const Value& x = runtime(n, 0);
        const OnnxConstant& b = float_constant(n, 1, "B");
        check(b.dims.size() == 2, onnx_node_label(n), ": B ", b.dims_text(), " is not a matrix");
        const OnnxConstant* c = n.input_size() == 3 && !n.input(2).empty() ? &float_constant(n, 2, "C") : nullptr;
        dense(n, x, b, trans_b, a.real("alpha", 1.0), c, a.real("beta", 1.0), n.output(0));
    }

    // MatMul by a constant [in, units] matrix, with an Add of a constant [units] vector after
    // it (PyTorch's Linear as some exporters write it) folded in as the bias.
    void import_matmul(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {});
        check_outputs(n, 1);
        check(n.input_size() == 2, onnx_node_label(n), ": expected 2 inputs");
        const Value& x = runtime(n, 0);
        const OnnxConstant& b = float_constant(n, 1, "B");
        check(b.dims.size() == 2, onnx_node_label(n), ": B ", b.dims_text(), " is not a matrix");
        const OnnxConstant* bias = nullptr;
        std::string out = n.output(0);
        if (const onnx::NodeProto* add = sole_consumer(out); add && add->op_type() == "Add" && add->input_size() == 2 &&
                                                            add->attribute_size() == 0 && add->output_size() == 1) {
            const int other = add->input(0) == out ? 1 : 0;
            const OnnxConstant* c = find_constant(add->input(other));
            if (c && c->is_float && c->numel() == b.dims[1] && c->dims.size() <= 2 && c->dims.back() == b.dims[1]) {
                bias = c;
                folded_.insert(add);
                out = add->output(0);
            }
        }
        dense(n, x, b, false, 1.0, bias, 1.0, out);
    }

    // A Dense layer computing alpha x op(B) + beta C, op(B) = B^T when trans_b.
    void dense(const onnx::NodeProto& n, const Value& x, const OnnxConstant& b, bool trans_b, double alpha,
               const OnnxConstant* c, double beta, const std::string& out) {
        check(x.shape.rank() == 1 && cnnlite_shape(x).rank() == 1, onnx_node_label(n), ": input ", x.shape,
              " per sample is not flat (add a Flatten before it)");
        const std::int64_t in = x.shape[0];
        const std::int64_t units = trans_b ? b.dims[0] : b.dims[1];
        check((trans_b ? b.dims[1] : b.dims[0]) == in && units >= 1, onnx_node_label(n), ": B ", b.dims_text(),
              (trans_b ? " (transposed)" : ""), " does not fit ", in, " input features");
        if (c) {
            const bool fits = c->numel() == units || c->numel() == 1;
            check(fits && (c->dims.empty() || c->dims.back() == c->numel()), onnx_node_label(n), ": bias ",
                  c->dims_text(), " does not broadcast to [", units, "]");
        }
        DenseOptions o;
        o.units = units;
        o.use_bias = c != nullptr;
        const onnx::NodeProto* relu = following_relu(out);
        if (relu) o.activation = Activation::relu;
        auto& layer = dynamic_cast<Dense<T>&>(add_layer(n, std::make_unique<Dense<T>>(o), {x}, Shape{units}, out));
        // cnnlite's weight is [units, in], PyTorch's layout: B itself when transposed, else B^T.
        Tensor<T> weight = layer.weight().value();  // shares the layer's storage
        T* w = weight.data();
        for (std::int64_t u = 0; u < units; ++u)
            for (std::int64_t i = 0; i < in; ++i)
                w[u * in + i] = static_cast<T>(alpha * (trans_b ? b.floats[static_cast<std::size_t>(u * in + i)]
                                                                : b.floats[static_cast<std::size_t>(i * units + u)]));
        if (c) {
            Tensor<T> bias_tensor = layer.bias().value();
            T* bias = bias_tensor.data();
            for (std::int64_t u = 0; u < units; ++u)
                bias[u] = static_cast<T>(beta * c->floats[static_cast<std::size_t>(c->numel() == 1 ? 0 : u)]);
        }
        if (relu) fold_into(*relu, out);
    }

    void import_add(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {});
        check_outputs(n, 1);
        check(n.input_size() == 2, onnx_node_label(n), ": expected 2 inputs");
        for (int i = 0; i < 2; ++i)
            check(!find_constant(n.input(i)), onnx_node_label(n), ": adding the constant '", n.input(i),
                  "' is supported only as the bias right after a MatMul");
        const std::vector<Value> inputs = merge_inputs(n);
        check(inputs[0].shape == inputs[1].shape, onnx_node_label(n), ": inputs ", inputs[0].shape, " and ",
              inputs[1].shape, " differ (broadcasting is not supported)");
        add_layer(n, std::make_unique<Add<T>>(), inputs, inputs[0].shape);
    }

    void import_concat(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"axis"});
        check_outputs(n, 1);
        check(n.input_size() >= 2, onnx_node_label(n), ": expected two or more inputs");
        check(a.has("axis"), onnx_node_label(n), ": axis is missing");
        const std::vector<Value> inputs = merge_inputs(n);
        const std::int64_t rank = inputs[0].shape.rank() + 1;
        std::int64_t axis = a.integer("axis", 1);
        if (axis < 0) axis += rank;
        check(axis >= 1 && axis < rank, onnx_node_label(n), ": axis ", a.integer("axis", 1),
              " is not an axis of the inputs other than the batch axis");
        Shape out = inputs[0].shape;
        std::int64_t total = 0;
        for (const Value& v : inputs) {
            check(v.shape.rank() == out.rank() && cnnlite_shape(v).rank() == cnnlite_shape(inputs[0]).rank(),
                  onnx_node_label(n), ": inputs of different ranks");
            for (int d = 0; d < out.rank(); ++d)
                check(d == axis - 1 || v.shape[d] == out[d], onnx_node_label(n), ": inputs ", inputs[0].shape, " and ",
                      v.shape, " differ beyond axis ", axis);
            total += v.shape[static_cast<int>(axis - 1)];
        }
        // After a global pooling cnnlite holds [C] for ONNX's [C, 1, 1]: only channels can be joined.
        check(cnnlite_shape(inputs[0]).rank() == out.rank() || axis == 1, onnx_node_label(n),
              ": joining pooled [C, 1, 1] values along axis ", axis, " is not supported");
        std::vector<std::int64_t> dims = out.to_vector();
        dims[static_cast<std::size_t>(axis - 1)] = total;
        add_layer(n, std::make_unique<Concatenate<T>>(axis), inputs, Shape(dims));
    }

    void import_softmax(const onnx::NodeProto& n) {
        OnnxAttributes a(n, {"axis"});
        check_outputs(n, 1);
        const Value& x = runtime(n, 0);
        const std::int64_t rank = x.shape.rank() + 1;
        std::int64_t axis = a.integer("axis", -1);
        if (axis < 0) axis += rank;
        check(rank == 2 && axis == 1 && cnnlite_shape(x).rank() == 1, onnx_node_label(n), ": axis ",
              a.integer("axis", -1), " of a [batch, ", x.shape, "] input is not supported (only the features of "
              "[batch, features])");
        add_layer(n, std::make_unique<Softmax<T>>(), {x}, x.shape);
    }

    void import_activation(const onnx::NodeProto& n) {
        const std::string& op = n.op_type();
        OnnxAttributes a = op == "LeakyRelu" || op == "Elu" ? OnnxAttributes(n, {"alpha"}) : OnnxAttributes(n, {});
        check_outputs(n, 1);
        const Value& x = runtime(n, 0);
        if (const onnx::NodeProto* mul = silu_product(n)) {
            // x * Sigmoid(x), as PyTorch and cnnlite export SiLU: one layer, named after the Mul.
            folded_.insert(mul);
            add_layer(*mul, std::make_unique<ActivationLayer<T>>(Activation::silu), {x}, x.shape, mul->output(0));
            return;
        }
        std::unique_ptr<Layer<T>> layer;
        if (op == "Relu") layer = std::make_unique<ReLU<T>>();
        else if (op == "LeakyRelu") layer = std::make_unique<LeakyReLU<T>>(a.real("alpha", 0.01));
        else if (op == "Elu") layer = std::make_unique<ELU<T>>(a.real("alpha", 1.0));
        else if (op == "Sigmoid") layer = std::make_unique<ActivationLayer<T>>(Activation::sigmoid);
        else if (op == "Tanh") layer = std::make_unique<ActivationLayer<T>>(Activation::tanh);
        else layer = std::make_unique<ActivationLayer<T>>(Activation::softplus);
        add_layer(n, std::move(layer), {x}, x.shape);
    }

    // The Mul computing x * Sigmoid(x) when `sigmoid` is Sigmoid(x) and that Mul is its only
    // reader; otherwise null.
    const onnx::NodeProto* silu_product(const onnx::NodeProto& sigmoid) const {
        if (sigmoid.op_type() != "Sigmoid") return nullptr;
        const onnx::NodeProto* mul = sole_consumer(sigmoid.output(0));
        if (!mul || mul->op_type() != "Mul" || mul->input_size() != 2 || mul->output_size() != 1 ||
            mul->attribute_size() != 0 || (!mul->domain().empty() && mul->domain() != "ai.onnx"))
            return nullptr;
        const std::string& other = mul->input(0) == sigmoid.output(0) ? mul->input(1) : mul->input(0);
        return other == sigmoid.input(0) ? mul : nullptr;
    }

    // --- helpers ------------------------------------------------------------------------------

    // Connects `layer`, named after the node, to the layers holding `inputs`; its output is
    // the value `out` (the node's first output unless a later node was folded in), of
    // per-sample ONNX shape `shape` (the layer's own when empty).
    Layer<T>& add_layer(const onnx::NodeProto& n, std::unique_ptr<Layer<T>> layer, const std::vector<Value>& inputs,
                        const Shape& shape, const std::string& out = {}) {
        Layer<T>& added = connect(n, std::move(layer), inputs);
        Value v;
        v.layer = added.name();
        v.shape = shape.rank() == 0 ? added.output_shape() : shape;
        values_[out.empty() ? n.output(0) : out] = v;
        return added;
    }

    // Adds `layer` for node `n` (named after it, plus `suffix`), reading `inputs`.
    Layer<T>& connect(const onnx::NodeProto& n, std::unique_ptr<Layer<T>> layer, const std::vector<Value>& inputs,
                      const std::string& suffix = {}) {
        layer->set_name(layer_name(n, *layer, suffix));
        std::vector<std::string> names;
        for (const Value& v : inputs) names.push_back(v.layer);
        Layer<T>* added = nullptr;
        try {
            added = &model_->connect(std::move(layer), names);
        } catch (const Error& e) {
            fail(onnx_node_label(n), ": ", e.what());
        }
        check(added->output_shape().numel() <= std::numeric_limits<std::int32_t>::max(), onnx_node_label(n),
              ": the output has more than 2^31 - 1 values per sample");
        return *added;
    }

    // Inputs of a merge (Add, Concat) as cnnlite must see them: when some are pooled [C, 1, 1]
    // values cnnlite holds as [C] and others [C, 1, 1] values it holds as such (a MaxPool over
    // the whole plane, say), the latter are flattened to match.
    std::vector<Value> merge_inputs(const onnx::NodeProto& n) {
        std::vector<Value> inputs;
        bool flat = false;
        for (int i = 0; i < n.input_size(); ++i) {
            inputs.push_back(runtime(n, i));
            flat = flat || cnnlite_shape(inputs.back()).rank() == 1;
        }
        for (std::size_t i = 0; flat && i < inputs.size(); ++i) {
            const Shape& s = inputs[i].shape;
            if (cnnlite_shape(inputs[i]).rank() != 3 || s.rank() != 3 || s[1] != 1 || s[2] != 1) continue;
            inputs[i].layer = connect(n, std::make_unique<Flatten<T>>(), {inputs[i]}, "_flatten").name();
        }
        return inputs;
    }

    // The node's name made a cnnlite layer name (letters, digits, '_'; PyTorch's
    // "/features/conv/Conv" becomes "features_conv_Conv"), or the layer's default name,
    // plus `suffix`, made unique.
    std::string layer_name(const onnx::NodeProto& n, const Layer<T>& layer, const std::string& suffix = {}) {
        std::string base;
        for (char ch : n.name() + suffix) {
            const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
            if (ok) base += ch;
            else if (!base.empty() && base.back() != '_') base += '_';
        }
        while (!base.empty() && base.back() == '_') base.pop_back();
        if (base.empty() || base == model_input_name() || base.size() > 200) base = layer.default_name();
        std::string name = base;
        for (int k = 1; !names_.insert(name).second; ++k) name = base + "_" + std::to_string(k);
        return name;
    }

    // A Relu that is the only reader of `value` (and the value is not the graph's output),
    // to fuse into the layer computing it.
    const onnx::NodeProto* following_relu(const std::string& value) const {
        const onnx::NodeProto* next = sole_consumer(value);
        if (!next || next->op_type() != "Relu" || next->attribute_size() != 0 || next->output_size() != 1 ||
            (!next->domain().empty() && next->domain() != "ai.onnx"))
            return nullptr;
        return next;
    }

    // The one node reading `value`, when exactly one node reads it and it is not the output.
    const onnx::NodeProto* sole_consumer(const std::string& value) const {
        const auto c = consumers_.find(value);
        if (value == output_ || c == consumers_.end() || c->second.size() != 1) return nullptr;
        return &proto_.graph().node(c->second[0]);
    }

    // `node` computes nothing of its own any more: its output is `value`.
    void fold_into(const onnx::NodeProto& node, const std::string& value) {
        folded_.insert(&node);
        values_[node.output(0)] = values_.at(value);
    }

    void alias(const onnx::NodeProto& n, int input) {
        check(n.input_size() > input && n.output_size() >= 1, onnx_node_label(n), ": missing input");
        check_outputs(n, 1);
        if (const OnnxConstant* c = find_constant(n.input(input))) {
            constants_[n.output(0)] = *c;
            return;
        }
        values_[n.output(0)] = runtime(n, input, /*padded=*/true);
    }

    // Only the first output may be used (MaxPool's indices, Dropout's mask, BatchNormalization's
    // training statistics are not computed).
    void check_outputs(const onnx::NodeProto& n, int used) {
        check(n.output_size() >= 1 && !n.output(0).empty(), onnx_node_label(n), ": has no output");
        for (int i = used; i < n.output_size(); ++i)
            check(n.output(i).empty() || (!consumers_.count(n.output(i)) && n.output(i) != output_), onnx_node_label(n),
                  ": output ", i, " ('", n.output(i), "') is used, which is not supported");
    }

    // The computed value a node reads as input `i`.
    const Value& runtime(const onnx::NodeProto& n, int i, bool padded = false) {
        check(i < n.input_size() && !n.input(i).empty(), onnx_node_label(n), ": input ", i, " is missing");
        const auto v = values_.find(n.input(i));
        check(!comparisons_.count(n.input(i)), onnx_node_label(n), " reads the comparison '", n.input(i),
              "', which is supported only as Softplus' threshold in a Where");
        check(v != values_.end(), onnx_node_label(n), ": input '", n.input(i),
              "' is a constant; only weights, biases, shapes and pads may be");
        if (!padded && v->second.pad_node)
            fail(onnx_node_label(n), " reads the output of ", onnx_node_label(*v->second.pad_node),
                 ", which is supported only before a Conv");
        return v->second;
    }

    // Convolutions and pooling need [C, H, W] samples, held that way in cnnlite too.
    void check_image(const onnx::NodeProto& n, const Value& x) {
        check(x.shape.rank() == 3 && cnnlite_shape(x).rank() == 3, onnx_node_label(n), ": input ", x.shape,
              " per sample is not [C, H, W]");
    }

    Shape cnnlite_shape(const Value& v) const {
        return v.layer == model_input_name() ? input_shape_ : model_->layer(v.layer).output_shape();
    }

    const OnnxConstant* find_constant(const std::string& name) {
        if (name.empty()) return nullptr;
        const auto c = constants_.find(name);
        if (c != constants_.end()) return &c->second;
        const auto t = initializers_.find(name);
        if (t == initializers_.end()) return nullptr;
        return &(constants_[name] = read_onnx_tensor(*t->second, "initialiser '" + name + "'"));
    }

    const OnnxConstant& constant(const onnx::NodeProto& n, int i, const char* role) {
        check(i < n.input_size() && !n.input(i).empty(), onnx_node_label(n), ": input ", i, " (", role, ") is missing");
        const OnnxConstant* c = find_constant(n.input(i));
        check(c != nullptr, onnx_node_label(n), ": ", role, " '", n.input(i),
              "' is computed by the graph; only a constant (an initialiser or a Constant node) is supported");
        return *c;
    }

    const OnnxConstant& float_constant(const onnx::NodeProto& n, int i, const char* role) {
        const OnnxConstant& c = constant(n, i, role);
        check(c.is_float, onnx_node_label(n), ": ", role, " '", n.input(i), "' must be FLOAT");
        return c;
    }

    static void copy(const std::vector<float>& from, const Variable<T>& to) {
        Tensor<T> t = to.value();
        check(t.numel() == static_cast<std::int64_t>(from.size()), "load_onnx: ", from.size(), " values for a tensor of ",
              t.shape());
        T* out = t.data();
        for (std::size_t i = 0; i < from.size(); ++i) out[i] = static_cast<T>(from[i]);
    }
    static void copy(const std::vector<float>& from, const Tensor<T>& to) {
        check(to.numel() == static_cast<std::int64_t>(from.size()), "load_onnx: ", from.size(),
              " values for a tensor of ", to.shape());
        Tensor<T> t = to;  // shares the layer's storage
        T* out = t.data();
        for (std::size_t i = 0; i < from.size(); ++i) out[i] = static_cast<T>(from[i]);
    }

    static std::string ints_text(const std::vector<std::int64_t>& v) {
        std::string s = "[";
        for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
        return s + "]";
    }

    const onnx::ModelProto& proto_;
    std::string source_;
    std::unique_ptr<Model<T>> model_;
    Shape input_shape_;
    std::string input_name_, output_;
    std::int64_t fixed_batch_ = 0;                                   // 0: a symbolic batch dimension
    std::map<std::string, const onnx::TensorProto*> initializers_;  // read on first use
    std::map<std::string, OnnxConstant> constants_;
    std::map<std::string, int> producer_;                // value -> the node writing it
    std::map<std::string, std::vector<int>> consumers_;  // value -> the needed nodes reading it
    std::map<std::string, Value> values_;
    std::map<std::string, std::string> comparisons_;  // Greater's output -> the value it compares
    std::set<const onnx::NodeProto*> folded_;  // nodes computed by an earlier layer
    std::set<std::string> names_;              // layer names taken
};

}  // namespace detail

/// The cnnlite model of an ONNX inference graph `proto`: one trainable cnnlite layer per
/// operator (Conv -> Conv2D, Gemm -> Dense, BatchNormalization -> BatchNormalization in
/// PyTorch's convention, ...; a Relu after a Conv or Gemm is fused into it, a zero Pad into
/// the next Conv), named after the nodes. `source` names the model in errors. Anything cnnlite
/// cannot run is a cnnlite::Error naming the node and what is unsupported.
template <class T = float>
Model<T> from_onnx(const onnx::ModelProto& proto, const std::string& source = "ONNX model") {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "from_onnx: T must be float or double");
    return detail::OnnxImporter<T>(proto, source).run();
}

/// The cnnlite model of the serialised ONNX model `bytes` (see from_onnx()); bytes that do not
/// parse as an ONNX ModelProto are an error.
template <class T = float>
Model<T> load_onnx_bytes(const std::string& bytes, const std::string& source = "ONNX bytes") {
    check(bytes.size() <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "load_onnx: ", source, ": ",
          bytes.size(), " bytes are more than one protobuf message holds (2 GiB)");
    onnx::ModelProto proto;
    check(proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())), "load_onnx: ", source,
          ": not a valid ONNX protobuf (truncated or corrupt?)");
    return from_onnx<T>(proto, source);
}

/// The cnnlite model of the ONNX file `path` (see from_onnx()); errors name the path.
template <class T = float>
Model<T> load_onnx(const std::string& path) {
    const InputFile file(path, "load_onnx: ONNX file");
    const std::vector<std::uint8_t> bytes = file.read_all(static_cast<std::uint64_t>(std::numeric_limits<int>::max()));
    return load_onnx_bytes<T>(std::string(bytes.begin(), bytes.end()), "'" + path + "'");
}

}  // namespace cnnlite

#else  // without CNNLITE_WITH_ONNX

namespace cnnlite {

namespace detail {
template <class T>
constexpr bool onnx_import_enabled = false;
}  // namespace detail

/// Needs cnnlite's ONNX component: configure with -DCNNLITE_WITH_ONNX=ON (Meson: -Donnx=enabled).
template <class T = float>
Model<T> load_onnx(const std::string&) {
    static_assert(detail::onnx_import_enabled<T>,
                  "cnnlite::load_onnx needs the ONNX component: configure cnnlite with -DCNNLITE_WITH_ONNX=ON "
                  "(Meson: -Donnx=enabled), which links Debian's libonnx-dev and libprotobuf-dev");
}

}  // namespace cnnlite

#endif  // CNNLITE_WITH_ONNX
