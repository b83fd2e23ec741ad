// ONNX export: save_onnx() writes a cnnlite model (a Sequential or any graph Model<T>) as an
// ONNX inference graph, opset 17, built with the protobuf classes of Debian's libonnx and written
// atomically. Optional, like distributed/: usable only when cnnlite is built with ONNX (CMake
// -DCNNLITE_WITH_ONNX=ON, Meson -Donnx=enabled, which define CNNLITE_WITH_ONNX and link
// libonnx_proto and libprotobuf); otherwise calling save_onnx() stops the compilation with a
// message saying so. docs/model_format.md ("ONNX export") lists what each layer becomes.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/files.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/version.hpp"
#include "cnnlite/nn/activation.hpp"
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
#include "cnnlite/nn/spatial_dropout2d.hpp"

#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX

#include <onnx/onnx_pb.h>

namespace cnnlite {

/// The ONNX operator set save_onnx() writes (the default domain).
constexpr std::int64_t onnx_opset_version = 17;
/// The ONNX IR version save_onnx() writes (IR 8 goes with opset 17).
constexpr std::int64_t onnx_ir_version = 8;

namespace detail {

// Builds the graph layer by layer, in the model's topological order. Every layer's output
// value is named after the layer (the model's output is "output"); nodes and values a layer
// needs besides its main one are named "<layer>/<role>"; initialisers carry the names of the
// model file ("<layer>.weight", "<layer>.running_mean", ...).
template <class T>
class OnnxExporter {
public:
    explicit OnnxExporter(const Model<T>& model) : model_(model) {}

    onnx::ModelProto run() {
        model_.check_complete();
        onnx::ModelProto proto;
        proto.set_ir_version(onnx_ir_version);
        proto.set_producer_name("cnnlite");
        proto.set_producer_version(version());
        proto.set_doc_string("cnnlite model exported for inference: dropout removed, BatchNormalization with "
                             "its running statistics");
        auto* opset = proto.add_opset_import();
        opset->set_domain("");
        opset->set_version(onnx_opset_version);
        graph_ = proto.mutable_graph();
        graph_->set_name("cnnlite");

        values_[model_input_name()] = "input";
        used_.insert("input");
        used_.insert("output");
        set_value_info(graph_->add_input(), "input", model_.input_shape());

        for (std::size_t i = 0; i < model_.size(); ++i) export_layer(i);

        const Layer<T>& last = model_.layer(model_.size() - 1);
        // A removed last layer (Dropout) leaves its input as the model's value: name it "output".
        if (values_.at(last.name()) != "output") {
            add_node("Identity", last.name() + "/output", {values_.at(last.name())}, {"output"});
            values_[last.name()] = "output";
        }
        set_value_info(graph_->add_output(), "output", model_.output_shape());
        graph_ = nullptr;
        return proto;
    }

private:
    void export_layer(std::size_t index) {
        const Layer<T>& layer = model_.layer(index);
        const std::string& name = layer.name();
        std::vector<std::string> in;
        for (const auto& source : model_.inbound(index)) in.push_back(values_.at(source));
        const bool last = index + 1 == model_.size();
        const std::string out = last ? std::string("output") : fresh(name);
        const int rank = layer.output_shape().rank() + 1;  // with the batch axis

        if (dynamic_cast<const Dropout<T>*>(&layer) || dynamic_cast<const SpatialDropout2D<T>*>(&layer)) {
            values_[name] = in.at(0);  // the identity at inference: no node
            return;
        }
        if (const auto* conv = dynamic_cast<const Conv2D<T>*>(&layer)) {
            export_conv(*conv, in.at(0), out, rank);
        } else if (const auto* dense = dynamic_cast<const Dense<T>*>(&layer)) {
            export_dense(*dense, in.at(0), out, rank);
        } else if (const auto* bn = dynamic_cast<const BatchNormalization<T>*>(&layer)) {
            export_batch_norm(*bn, in.at(0), out);
        } else if (const auto* pool = dynamic_cast<const MaxPool2D<T>*>(&layer)) {
            export_pool(layer, "MaxPool", pool->pool2d_args(), in.at(0), out);
        } else if (const auto* avg = dynamic_cast<const AvgPool2D<T>*>(&layer)) {
            export_pool(layer, "AveragePool", avg->pool2d_args(), in.at(0), out);
        } else if (dynamic_cast<const GlobalAveragePooling2D<T>*>(&layer)) {
            export_global_pool(layer, "GlobalAveragePool", in.at(0), out);
        } else if (dynamic_cast<const GlobalMaxPooling2D<T>*>(&layer)) {
            export_global_pool(layer, "GlobalMaxPool", in.at(0), out);
        } else if (dynamic_cast<const Flatten<T>*>(&layer)) {
            add_int(add_node("Flatten", name, {in.at(0)}, {out}), "axis", 1);
        } else if (dynamic_cast<const ReLU<T>*>(&layer)) {
            add_node("Relu", name, {in.at(0)}, {out});
        } else if (const auto* leaky = dynamic_cast<const LeakyReLU<T>*>(&layer)) {
            add_float(add_node("LeakyRelu", name, {in.at(0)}, {out}), "alpha", leaky->alpha(), layer);
        } else if (const auto* elu = dynamic_cast<const ELU<T>*>(&layer)) {
            add_float(add_node("Elu", name, {in.at(0)}, {out}), "alpha", elu->alpha(), layer);
        } else if (const auto* act = dynamic_cast<const ActivationLayer<T>*>(&layer)) {
            const Activation a = act->activation();
            if (a == Activation::none)
                add_node("Identity", name, {in.at(0)}, {out});
            else
                activation(layer, a, default_activation_alpha(a), in.at(0), out, name, rank);
        } else if (dynamic_cast<const Softmax<T>*>(&layer)) {
            add_int(add_node("Softmax", name, {in.at(0)}, {out}), "axis", rank - 1);
        } else if (dynamic_cast<const Add<T>*>(&layer)) {
            check(in.size() >= 2, "save_onnx: layer '", name, "' (Add) has ", in.size(), " input(s)");
            // Left to right, as cnnlite's add_n sums: ((a + b) + c) + ...
            std::string sum = in[0];
            for (std::size_t k = 1; k < in.size(); ++k) {
                const bool final_add = k + 1 == in.size();
                const std::string node_name = final_add ? name : name + "/add_" + std::to_string(k);
                const std::string value = final_add ? out : fresh(node_name);
                add_node("Add", node_name, {sum, in[k]}, {value});
                sum = value;
            }
        } else if (const auto* cat = dynamic_cast<const Concatenate<T>*>(&layer)) {
            // Keras' axis counts the batch axis, as ONNX's does; negative counts from the last.
            const std::int64_t axis = cat->axis() < 0 ? cat->axis() + rank : cat->axis();
            check(axis >= 1 && axis < rank, "save_onnx: layer '", name, "' (Concatenate): axis ", cat->axis(),
                  " is not an axis of its rank-", rank, " inputs other than the batch axis");
            add_int(add_node("Concat", name, in, {out}), "axis", axis);
        } else {
            fail("save_onnx: layer '", name, "' (", layer.type(),
                 ") has no ONNX export (supported: Conv2D, Dense, BatchNormalization, MaxPooling2D, AveragePooling2D, "
                 "GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, ReLU, LeakyReLU, ELU, Activation, Softmax, Add, "
                 "Concatenate, and Dropout and SpatialDropout2D, which are removed)");
        }
        values_[name] = out;
    }

    void export_conv(const Conv2D<T>& conv, const std::string& x, const std::string& out, int rank) {
        const std::string& name = conv.Layer<T>::name();  // (Conv2D::name(n) hides it)
        const Activation a = conv.activation();
        check(a != Activation::softmax, "save_onnx: layer '", name,
              "' (Conv2D): a softmax activation over channels is not supported (cnnlite does not run it either)");
        const Conv2dArgs args = conv.conv2d_args();
        const Shape& w = conv.weight().shape();  // [O, C / groups, kh, kw]
        std::vector<std::string> inputs{x, initializer(name + ".weight", conv.weight().value())};
        if (conv.bias().defined()) inputs.push_back(initializer(name + ".bias", conv.bias().value()));
        const std::string y = a == Activation::none ? out : fresh(name + "/preactivation");
        onnx::NodeProto& node = add_node("Conv", name, inputs, {y});
        add_ints(node, "kernel_shape", {w[2], w[3]});
        add_ints(node, "strides", {args.stride_h, args.stride_w});
        add_ints(node, "pads", {args.pad_top, args.pad_left, args.pad_bottom, args.pad_right});
        add_ints(node, "dilations", {args.dilation_h, args.dilation_w});
        add_int(node, "group", args.groups);
        if (a != Activation::none) activation(conv, a, default_activation_alpha(a), y, out, name, rank);
    }

    void export_dense(const Dense<T>& dense, const std::string& x, const std::string& out, int rank) {
        const std::string& name = dense.Layer<T>::name();
        const Activation a = dense.options().activation;
        std::vector<std::string> inputs{x, initializer(name + ".weight", dense.weight().value())};
        if (dense.bias().defined()) inputs.push_back(initializer(name + ".bias", dense.bias().value()));
        const std::string y = a == Activation::none ? out : fresh(name + "/preactivation");
        // y = x W^T + b: the weight is stored [units, in] (PyTorch's layout).
        add_int(add_node("Gemm", name, inputs, {y}), "transB", 1);
        if (a != Activation::none) activation(dense, a, default_activation_alpha(a), y, out, name, rank);
    }

    void export_batch_norm(const BatchNormalization<T>& bn, const std::string& x, const std::string& out) {
        const std::string& name = bn.Layer<T>::name();
        const Shape channels{bn.running_mean().numel()};
        // Without scale or center the layer has no gamma or beta; ONNX needs both: 1 and 0.
        const std::string scale = bn.gamma().defined() ? initializer(name + ".weight", bn.gamma().value())
                                                       : initializer(name + "/scale", Tensor<T>::full(channels, T(1)));
        const std::string bias = bn.beta().defined() ? initializer(name + ".bias", bn.beta().value())
                                                     : initializer(name + "/bias", Tensor<T>::zeros(channels));
        const std::string mean = initializer(name + ".running_mean", bn.running_mean());
        const std::string var = initializer(name + ".running_var", bn.running_var());
        add_float(add_node("BatchNormalization", name, {x, scale, bias, mean, var}, {out}), "epsilon", bn.epsilon(), bn);
    }

    void export_pool(const Layer<T>& layer, const char* op, const Pool2dArgs& args, const std::string& x,
                     const std::string& out) {
        onnx::NodeProto& node = add_node(op, layer.name(), {x}, {out});
        add_ints(node, "kernel_shape", {args.pool_h, args.pool_w});
        add_ints(node, "strides", {args.stride_h, args.stride_w});
        add_ints(node, "pads", {args.pad_top, args.pad_left, args.pad_bottom, args.pad_right});
        // cnnlite's windows stop at the last one that starts inside the padded input (floor).
        add_int(node, "ceil_mode", 0);
        if (std::string(op) == "AveragePool") add_int(node, "count_include_pad", args.count_include_pad ? 1 : 0);
    }

    // cnnlite's global pooling gives [N, C]; ONNX's [N, C, 1, 1], hence the Flatten.
    void export_global_pool(const Layer<T>& layer, const char* op, const std::string& x, const std::string& out) {
        const std::string pooled = fresh(layer.name() + "/pooled");
        add_node(op, layer.name(), {x}, {pooled});
        add_int(add_node("Flatten", layer.name() + "/flatten", {pooled}, {out}), "axis", 1);
    }

    // Nodes computing activation `a` of x into `out`. Helper nodes are named
    // "<layer>/<function>/<step>"; the last node "<layer>/<function>" after a Conv2D or Dense
    // (their `activation=`), and "<layer>" for an Activation layer.
    void activation(const Layer<T>& layer, Activation a, double alpha, const std::string& x, const std::string& out,
                    const std::string& prefix, int rank) {
        const std::string p = prefix + "/" + to_string(a);
        const std::string last = dynamic_cast<const ActivationLayer<T>*>(&layer) ? layer.name() : p;
        switch (a) {
            case Activation::none: add_node("Identity", last, {x}, {out}); return;
            case Activation::relu: add_node("Relu", last, {x}, {out}); return;
            case Activation::sigmoid: add_node("Sigmoid", last, {x}, {out}); return;
            case Activation::tanh: add_node("Tanh", last, {x}, {out}); return;
            case Activation::softplus: add_node("Softplus", last, {x}, {out}); return;
            case Activation::softmax: add_int(add_node("Softmax", last, {x}, {out}), "axis", rank - 1); return;
            case Activation::leaky_relu: add_float(add_node("LeakyRelu", last, {x}, {out}), "alpha", alpha, layer); return;
            case Activation::elu: add_float(add_node("Elu", last, {x}, {out}), "alpha", alpha, layer); return;
            case Activation::silu: {
                const std::string s = fresh(p + "/sigmoid");
                add_node("Sigmoid", p + "/sigmoid", {x}, {s});
                add_node("Mul", last, {x, s}, {out});
                return;
            }
            case Activation::gelu: {
                // 0.5 x (1 + erf(x / sqrt(2))): opset 17 has no Gelu (it came in opset 20).
                const std::string scaled = fresh(p + "/scaled");
                add_node("Mul", p + "/scaled", {x, scalar(p + "/inv_sqrt2", 0.7071067811865476)}, {scaled});
                const std::string erf = fresh(p + "/erf");
                add_node("Erf", p + "/erf", {scaled}, {erf});
                gelu_tail(p, last, x, erf, out);
                return;
            }
            case Activation::gelu_tanh: {
                // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
                const std::string square = fresh(p + "/square");
                add_node("Mul", p + "/square", {x, x}, {square});
                const std::string cube = fresh(p + "/cube");
                add_node("Mul", p + "/cube", {square, x}, {cube});
                const std::string term = fresh(p + "/cubic_term");
                add_node("Mul", p + "/cubic_term", {cube, scalar(p + "/c", 0.044715)}, {term});
                const std::string inner = fresh(p + "/inner");
                add_node("Add", p + "/inner", {x, term}, {inner});
                const std::string scaled = fresh(p + "/scaled");
                add_node("Mul", p + "/scaled", {inner, scalar(p + "/k", 0.7978845608028654)}, {scaled});
                const std::string t = fresh(p + "/tanh");
                add_node("Tanh", p + "/tanh", {scaled}, {t});
                gelu_tail(p, last, x, t, out);
                return;
            }
        }
        fail("save_onnx: layer '", layer.name(), "' (", layer.type(), "): activation ", static_cast<int>(a),
             " has no ONNX export");
    }

    // out = 0.5 x (1 + g) for the GELU forms.
    void gelu_tail(const std::string& p, const std::string& last, const std::string& x, const std::string& g,
                   const std::string& out) {
        const std::string one_plus = fresh(p + "/one_plus");
        add_node("Add", p + "/one_plus", {g, scalar(p + "/one", 1.0)}, {one_plus});
        const std::string times_x = fresh(p + "/times_x");
        add_node("Mul", p + "/times_x", {x, one_plus}, {times_x});
        add_node("Mul", last, {times_x, scalar(p + "/half", 0.5)}, {out});
    }

    // A value name not used yet: `name`, else name_1, name_2, ...
    std::string fresh(const std::string& name) {
        std::string candidate = name;
        for (int k = 1; used_.count(candidate); ++k) candidate = name + "_" + std::to_string(k);
        used_.insert(candidate);
        return candidate;
    }

    onnx::NodeProto& add_node(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                              const std::vector<std::string>& outputs) {
        onnx::NodeProto* node = graph_->add_node();
        node->set_op_type(op);
        node->set_name(name);
        for (const auto& i : inputs) node->add_input(i);
        for (const auto& o : outputs) node->add_output(o);
        return *node;
    }

    static void add_int(onnx::NodeProto& node, const char* name, std::int64_t value) {
        onnx::AttributeProto* a = node.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(value);
    }
    static void add_ints(onnx::NodeProto& node, const char* name, const std::vector<std::int64_t>& values) {
        onnx::AttributeProto* a = node.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::INTS);
        for (std::int64_t v : values) a->add_ints(v);
    }
    static void add_float(onnx::NodeProto& node, const char* name, double value, const Layer<T>& layer) {
        check(std::isfinite(value) && std::abs(value) <= std::numeric_limits<float>::max(), "save_onnx: layer '",
              layer.name(), "' (", layer.type(), "): ", name, " = ", value, " does not fit a float32 attribute");
        onnx::AttributeProto* a = node.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::FLOAT);
        a->set_f(static_cast<float>(value));
    }

    // A float32 initialiser holding `tensor`'s values (rounded to float32 for a Model<double>).
    std::string initializer(const std::string& wanted, const Tensor<T>& tensor) {
        const std::string name = fresh(wanted);
        onnx::TensorProto* t = graph_->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        for (int i = 0; i < tensor.rank(); ++i) t->add_dims(tensor.dim(i));
        std::vector<float> values(static_cast<std::size_t>(tensor.numel()));
        for (std::int64_t i = 0; i < tensor.numel(); ++i) {
            const T v = tensor.data()[i];
            check(std::isfinite(static_cast<float>(v)), "save_onnx: tensor '", name, "' element ", i, " = ", v,
                  " is not finite in float32");
            values[static_cast<std::size_t>(i)] = static_cast<float>(v);
        }
        // raw_data is little-endian; so is every machine cnnlite runs on (safetensors assumes it too).
        t->set_raw_data(values.data(), values.size() * sizeof(float));
        return name;
    }

    std::string scalar(const std::string& wanted, double value) {
        const std::string name = fresh(wanted);
        onnx::TensorProto* t = graph_->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        t->add_float_data(static_cast<float>(value));
        return name;
    }

    static void set_value_info(onnx::ValueInfoProto* info, const std::string& name, const Shape& sample) {
        info->set_name(name);
        onnx::TypeProto_Tensor* type = info->mutable_type()->mutable_tensor_type();
        type->set_elem_type(onnx::TensorProto::FLOAT);
        onnx::TensorShapeProto* shape = type->mutable_shape();
        shape->add_dim()->set_dim_param("batch");
        for (int i = 0; i < sample.rank(); ++i) shape->add_dim()->set_dim_value(sample[i]);
    }

    const Model<T>& model_;
    onnx::GraphProto* graph_ = nullptr;
    std::map<std::string, std::string> values_;  // layer name ("input") -> its ONNX value
    std::set<std::string> used_;                 // value and initialiser names taken
};

}  // namespace detail

/// The ONNX inference graph of `model` (opset 17, float32), as save_onnx() writes it: one node
/// per layer, named after it (Conv2D's or Dense's `activation=` is a second node, "<layer>/relu",
/// ...), Dropout and SpatialDropout2D removed, BatchNormalization as ONNX BatchNormalization with
/// the running statistics and the layer's epsilon (inference mode; momentum is not written).
/// Input "input" [batch, C, H, W], output "output": what Model::predict returns (probabilities
/// when the model ends in softmax). Weights of a Model<double> are rounded to float32. A layer,
/// activation or option the exporter cannot write is a cnnlite::Error naming the layer.
template <class T>
onnx::ModelProto to_onnx(const Model<T>& model) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "to_onnx: T must be float or double");
    return detail::OnnxExporter<T>(model).run();
}

/// Writes to_onnx(model) to `path` atomically (temp file, fsync, rename). Errors (an unsupported
/// layer, an unwritable path, a model beyond protobuf's 2 GiB) name the layer or the path.
template <class T>
void save_onnx(const Model<T>& model, const std::string& path) {
    const onnx::ModelProto proto = to_onnx(model);
    const std::size_t size = proto.ByteSizeLong();
    check(size <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "save_onnx: '", path, "': the model is ",
          size, " bytes, more than one protobuf message holds (2 GiB; external data is not written)");
    std::string bytes;
    check(proto.SerializeToString(&bytes), "save_onnx: '", path, "': protobuf could not serialise the model");
    try {
        write_file_atomically(path, bytes);
    } catch (const Error& e) {
        fail("save_onnx: cannot write '", path, "': ", e.what());
    }
}

}  // namespace cnnlite

#else  // without CNNLITE_WITH_ONNX

namespace cnnlite {

namespace detail {
template <class T>
constexpr bool onnx_component_enabled = false;
}  // namespace detail

/// Needs cnnlite's ONNX component: configure with -DCNNLITE_WITH_ONNX=ON (Meson: -Donnx=enabled).
template <class T>
void save_onnx(const Model<T>&, const std::string&) {
    static_assert(detail::onnx_component_enabled<T>,
                  "cnnlite::save_onnx needs the ONNX component: configure cnnlite with -DCNNLITE_WITH_ONNX=ON "
                  "(Meson: -Donnx=enabled), which links Debian's libonnx-dev and libprotobuf-dev");
}

}  // namespace cnnlite

#endif  // CNNLITE_WITH_ONNX
