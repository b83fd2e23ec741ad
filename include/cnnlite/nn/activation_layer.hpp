// The Activation layer (Keras' Activation("gelu")): any activation of nn/activation.hpp as a
// layer of its own, by name. The class is ActivationLayer because `Activation` already names
// the enum of activations; its type in model files and summaries is Keras' "Activation".
#pragma once

#include <memory>
#include <string>

#include "cnnlite/nn/activation.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"

namespace cnnlite {

/// The options of an Activation layer.
struct ActivationOptions {
    Activation activation = Activation::none;  ///< the function, by Keras name in files

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("activation", activation);
    }
};

/// An activation as a layer (Keras' Activation): element-wise, or softmax over the last axis
/// (which the fused loss skips when it ends the model). Parameterised activations take
/// default_activation_alpha(); LeakyReLU and ELU set their own.
template <class T = float>
class ActivationLayer : public LayerWithOptions<T, ActivationLayer<T>, ActivationOptions> {
public:
    /// The layer's options type.
    using Options = ActivationOptions;

    /// The activation of `options`.
    explicit ActivationLayer(ActivationOptions options)
        : LayerWithOptions<T, ActivationLayer<T>, ActivationOptions>(options) {}
    /// The activation `a`.
    explicit ActivationLayer(Activation a) : ActivationLayer(ActivationOptions{a}) {}
    /// The activation by Keras name: "relu", "gelu", "silu", "sigmoid", ... (see Activation).
    explicit ActivationLayer(const std::string& name) : ActivationLayer(parse_activation(name, "Activation layer")) {}
    /// The same, from a string literal.
    explicit ActivationLayer(const char* name) : ActivationLayer(std::string(name)) {}
    /// Sets the layer's name (default: activation, activation_1, ...).
    ActivationLayer& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "Activation"; }
    const char* default_name() const override { return "activation"; }
    bool ends_in_softmax() const override { return this->options_.activation == Activation::softmax; }
    Shape build(const Shape& in, const LayerInit&) override { return in; }
    /// The activation of x.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return apply_activation(x, this->options_.activation);
    }
    /// For softmax, the input itself (the fused loss applies it); otherwise forward().
    Variable<T> forward_logits(const Variable<T>& x, const ForwardContext& ctx) const override {
        if (this->options_.activation != Activation::softmax) return forward(x, ctx);
        this->check_input(x);
        return x;
    }
    /// The activation applied.
    Activation activation() const { return this->options_.activation; }
};

}  // namespace cnnlite
