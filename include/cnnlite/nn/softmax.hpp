// Softmax as a stand-alone layer (Keras' Softmax layer) over the last axis.
#pragma once

#include <memory>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/activation.hpp"

namespace cnnlite {

/// Softmax over the last axis. As the last layer of a model, the fused loss skips it.
template <class T = float>
class Softmax : public LayerWithOptions<T, Softmax<T>, NoOptions> {
public:
    /// The layer's options type (it has none).
    using Options = NoOptions;

    Softmax() : LayerWithOptions<T, Softmax<T>, NoOptions>(NoOptions{}) {}
    /// The same, from its (empty) options.
    explicit Softmax(NoOptions) : Softmax() {}
    /// Sets the layer's name (default: softmax, softmax_1, ...).
    Softmax& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "Softmax"; }
    const char* default_name() const override { return "softmax"; }
    bool ends_in_softmax() const override { return true; }
    Shape build(const Shape& in, const LayerInit&) override { return in; }
    /// Softmax over the last axis.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return softmax(x);
    }
    /// The input itself: the fused loss applies the softmax.
    Variable<T> forward_logits(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return x;
    }
};

}  // namespace cnnlite
