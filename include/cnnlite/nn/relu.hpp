// ReLU as a stand-alone layer (Keras' ReLU layer).
#pragma once

#include <memory>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/activation.hpp"

namespace cnnlite {

/// ReLU as a layer of its own: max(x, 0) element-wise.
template <class T = float>
class ReLU : public LayerWithOptions<T, ReLU<T>, NoOptions> {
public:
    /// The layer's options type (it has none).
    using Options = NoOptions;

    ReLU() : LayerWithOptions<T, ReLU<T>, NoOptions>(NoOptions{}) {}
    /// The same, from its (empty) options.
    explicit ReLU(NoOptions) : ReLU() {}
    /// Sets the layer's name (default: re_lu, re_lu_1, ...).
    ReLU& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "ReLU"; }
    const char* default_name() const override { return "re_lu"; }
    Shape build(const Shape& in, const LayerInit&) override { return in; }
    /// max(x, 0) element-wise.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return relu(x);
    }
};

}  // namespace cnnlite
