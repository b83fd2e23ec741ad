// ReLU as a stand-alone layer (Keras' ReLU layer).
#pragma once

#include <memory>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/ops/activation.hpp"

namespace cnnlite {

/// ReLU as a layer of its own: max(x, 0) element-wise.
template <class T = float>
class ReLU : public Layer<T> {
public:
    ReLU() = default;
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
    std::unique_ptr<Layer<T>> clone_config() const override {
        auto copy = std::make_unique<ReLU>();
        copy->set_name(this->name_);
        return copy;
    }
};

}  // namespace cnnlite
