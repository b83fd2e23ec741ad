// Dense layer: fully connected, weights in PyTorch's [out, in] layout, optional bias and fused
// activation (Keras' `activation=`). A softmax activation is applied after the product, and
// the fused loss bypasses it through forward_logits().
#pragma once

#include <memory>
#include <string>

#include "cnnlite/core/init.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/ops/activation.hpp"
#include "cnnlite/ops/linear.hpp"

namespace cnnlite {

/// Fully connected layer (Keras' Dense): y = activation(x W^T + b) for [N, in] inputs, W in PyTorch's [out, in] layout.
template <class T = float>
class Dense : public Layer<T> {
public:
    /// A dense layer of `units` outputs.
    explicit Dense(std::int64_t units) : units_(units) {
        check(units > 0, "Dense: units must be positive, got ", units);
    }
    /// Whether the layer adds a bias (default true).
    Dense& use_bias(bool on) { use_bias_ = on; return *this; }
    /// Activation applied to the output (relu is fused into the op).
    Dense& activation(Activation a) { activation_ = a; return *this; }
    /// Activation by Keras name: "linear", "relu" or "softmax".
    Dense& activation(const std::string& a) { activation_ = parse_activation(a); return *this; }
    /// Sets the layer's name (default: dense, dense_1, ... in model order).
    Dense& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "Dense"; }
    const char* default_name() const override { return "dense"; }
    bool ends_in_softmax() const override { return activation_ == Activation::softmax; }

    Shape build(const Shape& in, const LayerInit& init) override {
        check(in.rank() == 1, "Dense '", this->name_, "': input must be flat [features], got ", in,
              " (add a Flatten layer before it)");
        const std::int64_t fan_in = in[0];
        weight_ = Variable<T>(Tensor<T>(Shape{units_, fan_in}), true);
        if (init.scheme == InitScheme::keras)
            fill_glorot_uniform(weight_.value(), init.stream(0), fan_in, units_);
        else
            fill_torch_default(weight_.value(), init.stream(0), fan_in);
        if (use_bias_) {
            bias_ = Variable<T>(Tensor<T>(Shape{units_}), true);
            if (init.scheme == InitScheme::torch) fill_torch_default(bias_.value(), init.stream(1), fan_in);
        }
        return Shape{units_};
    }

    /// The layer's output, with its activation.
    Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx) const override {
        Variable<T> y = forward_logits(x, ctx);
        return activation_ == Activation::softmax ? softmax(y) : y;
    }
    /// The output before a softmax activation (the logits).
    Variable<T> forward_logits(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return linear(x, weight_, bias_, activation_ == Activation::relu);
    }

    std::vector<NamedParameter<T>> parameters() const override {
        std::vector<NamedParameter<T>> p{{"weight", weight_}};
        if (use_bias_) p.push_back({"bias", bias_});
        return p;
    }
    LayerConfig config() const override {
        return {type(), this->name_,
                {{"units", std::to_string(units_)}, {"use_bias", use_bias_ ? "true" : "false"},
                 {"activation", to_string(activation_)}}};
    }
    std::unique_ptr<Layer<T>> clone_config() const override {
        auto copy = std::make_unique<Dense>(units_);
        copy->use_bias(use_bias_).activation(activation_);
        copy->set_name(this->name_);
        return copy;
    }

    /// The weight, [units, in] (PyTorch's layout).
    const Variable<T>& weight() const { return weight_; }
    /// The bias, [units]; undefined without bias.
    const Variable<T>& bias() const { return bias_; }

private:
    std::int64_t units_;
    bool use_bias_ = true;
    Activation activation_ = Activation::none;
    Variable<T> weight_, bias_;
};

}  // namespace cnnlite
