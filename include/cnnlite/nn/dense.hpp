// Dense layer: fully connected, weights in PyTorch's [out, in] layout, optional bias and fused
// activation (Keras' `activation=`). A softmax activation is applied after the product, and
// the fused loss bypasses it through forward_logits().
#pragma once

#include <memory>
#include <string>

#include "cnnlite/core/init.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/activation.hpp"
#include "cnnlite/ops/linear.hpp"

namespace cnnlite {

/// The options of a Dense layer, Keras' names and defaults.
struct DenseOptions {
    std::int64_t units = 1;                    ///< outputs
    bool use_bias = true;                      ///< a bias per output
    Activation activation = Activation::none;  ///< applied to the output (relu fused into the op)

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("units", units);
        v("use_bias", use_bias);
        v("activation", activation);
    }
};

/// Fully connected layer (Keras' Dense): y = activation(x W^T + b) for [N, in] inputs, W in PyTorch's [out, in] layout.
template <class T = float>
class Dense : public LayerWithOptions<T, Dense<T>, DenseOptions> {
public:
    /// The layer's options type.
    using Options = DenseOptions;

    /// A dense layer with all its options.
    explicit Dense(DenseOptions options) : LayerWithOptions<T, Dense<T>, DenseOptions>(options) {
        check(options.units > 0, "Dense: units must be positive, got ", options.units);
    }
    /// A dense layer of `units` outputs.
    explicit Dense(std::int64_t units) : Dense(options_of(units)) {}
    /// Whether the layer adds a bias (default true).
    Dense& use_bias(bool on) { this->options_.use_bias = on; return *this; }
    /// Activation applied to the output (relu is fused into the op).
    Dense& activation(Activation a) { this->options_.activation = a; return *this; }
    /// Activation by Keras name ("linear", "relu", "softmax", "gelu", ...: see Activation).
    Dense& activation(const std::string& a) {
        this->options_.activation = parse_activation(a, this->label());
        return *this;
    }
    /// Sets the layer's name (default: dense, dense_1, ... in model order).
    Dense& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "Dense"; }
    const char* default_name() const override { return "dense"; }
    bool ends_in_softmax() const override { return this->options_.activation == Activation::softmax; }

    Shape build(const Shape& in, const LayerInit& init) override {
        check(in.rank() == 1, "Dense '", this->name_, "': input must be flat [features], got ", in,
              " (add a Flatten layer before it)");
        const std::int64_t fan_in = in[0], units = this->options_.units;
        weight_ = Variable<T>(Tensor<T>(Shape{units, fan_in}), true);
        if (init.scheme == InitScheme::keras)
            fill_glorot_uniform(weight_.value(), init.stream(0), fan_in, units);
        else
            fill_torch_default(weight_.value(), init.stream(0), fan_in);
        if (this->options_.use_bias) {
            bias_ = Variable<T>(Tensor<T>(Shape{units}), true);
            if (init.scheme == InitScheme::torch) fill_torch_default(bias_.value(), init.stream(1), fan_in);
        }
        return Shape{units};
    }

    /// The layer's output, with its activation.
    Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx) const override {
        Variable<T> y = forward_logits(x, ctx);
        return this->options_.activation == Activation::softmax ? softmax(y) : y;
    }
    /// The output before a softmax activation (the logits); with any other activation, the output.
    Variable<T> forward_logits(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        const Activation a = this->options_.activation;
        Variable<T> y = linear(x, weight_, bias_, a == Activation::relu);
        return a == Activation::none || a == Activation::relu || a == Activation::softmax ? y : apply_activation(y, a);
    }

    std::vector<NamedParameter<T>> parameters() const override {
        std::vector<NamedParameter<T>> p{{"weight", weight_}};
        if (this->options_.use_bias) p.push_back({"bias", bias_});
        return p;
    }

    /// The weight, [units, in] (PyTorch's layout).
    const Variable<T>& weight() const { return weight_; }
    /// The bias, [units]; undefined without bias.
    const Variable<T>& bias() const { return bias_; }

private:
    static DenseOptions options_of(std::int64_t units) {
        DenseOptions o;
        o.units = units;
        return o;
    }

    Variable<T> weight_, bias_;
};

}  // namespace cnnlite
