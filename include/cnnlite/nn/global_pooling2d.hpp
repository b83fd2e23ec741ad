// Global pooling layers (Keras' GlobalAveragePooling2D and GlobalMaxPooling2D): each channel's
// H x W plane to one value, [N, C, H, W] -> [N, C], the usual head of a convolutional network
// before its Dense classifier.
#pragma once

#include <memory>
#include <string>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/global_pool2d.hpp"

namespace cnnlite {

namespace detail {
/// The per-sample output [C] of a global pooling layer on [C, H, W]; `label` names the layer.
inline Shape global_pool_shape(const Shape& in, const std::string& label) {
    check(in.rank() == 3 && in[1] > 0 && in[2] > 0, label, ": input must be [C, H, W] with non-empty planes, got ",
          in);
    return Shape{in[0]};
}
}  // namespace detail

/// The mean of each channel's plane (Keras' GlobalAveragePooling2D): [N, C, H, W] -> [N, C].
template <class T = float>
class GlobalAveragePooling2D : public LayerWithOptions<T, GlobalAveragePooling2D<T>, NoOptions> {
public:
    /// The layer's options type (it has none).
    using Options = NoOptions;

    GlobalAveragePooling2D() : LayerWithOptions<T, GlobalAveragePooling2D<T>, NoOptions>(NoOptions{}) {}
    /// The same, from its (empty) options.
    explicit GlobalAveragePooling2D(NoOptions) : GlobalAveragePooling2D() {}
    /// Sets the layer's name (default: global_average_pooling2d, ..._1, ...).
    GlobalAveragePooling2D& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "GlobalAveragePooling2D"; }
    const char* default_name() const override { return "global_average_pooling2d"; }
    Shape build(const Shape& in, const LayerInit&) override { return detail::global_pool_shape(in, this->label()); }
    /// [N, C, H, W] -> [N, C], each plane's mean.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return global_avg_pool2d(x);
    }
};

/// The maximum of each channel's plane (Keras' GlobalMaxPooling2D): [N, C, H, W] -> [N, C].
template <class T = float>
class GlobalMaxPooling2D : public LayerWithOptions<T, GlobalMaxPooling2D<T>, NoOptions> {
public:
    /// The layer's options type (it has none).
    using Options = NoOptions;

    GlobalMaxPooling2D() : LayerWithOptions<T, GlobalMaxPooling2D<T>, NoOptions>(NoOptions{}) {}
    /// The same, from its (empty) options.
    explicit GlobalMaxPooling2D(NoOptions) : GlobalMaxPooling2D() {}
    /// Sets the layer's name (default: global_max_pooling2d, ..._1, ...).
    GlobalMaxPooling2D& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "GlobalMaxPooling2D"; }
    const char* default_name() const override { return "global_max_pooling2d"; }
    Shape build(const Shape& in, const LayerInit&) override { return detail::global_pool_shape(in, this->label()); }
    /// [N, C, H, W] -> [N, C], each plane's maximum (the gradient goes to the first maximum).
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return global_max_pool2d(x);
    }
};

}  // namespace cnnlite
