// Flatten layer: [N, C, H, W] -> [N, C*H*W] in C, H, W order (PyTorch's flatten order).
#pragma once

#include <memory>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/reshape.hpp"

namespace cnnlite {

/// Flatten layer: [N, C, H, W] -> [N, C*H*W] in C, H, W order (a view, no copy).
template <class T = float>
class Flatten : public LayerWithOptions<T, Flatten<T>, NoOptions> {
public:
    /// The layer's options type (it has none).
    using Options = NoOptions;

    Flatten() : LayerWithOptions<T, Flatten<T>, NoOptions>(NoOptions{}) {}
    /// The same, from its (empty) options.
    explicit Flatten(NoOptions) : Flatten() {}
    /// Sets the layer's name (default: flatten, flatten_1, ...).
    Flatten& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "Flatten"; }
    const char* default_name() const override { return "flatten"; }
    Shape build(const Shape& in, const LayerInit&) override { return Shape{in.numel()}; }
    /// [N, C, H, W] -> [N, C*H*W].
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return flatten(x);
    }
};

}  // namespace cnnlite
