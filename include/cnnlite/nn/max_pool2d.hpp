// MaxPool2D layer (Keras' MaxPooling2D): max over pool windows, 'valid' or 'same' padding
// (padded cells never win).
#pragma once

#include <algorithm>
#include <memory>
#include <string>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/nn/pool2d_options.hpp"
#include "cnnlite/ops/max_pool2d.hpp"

namespace cnnlite {

/// Max pooling layer (Keras' MaxPooling2D); the stride defaults to the window, the padding to 'valid'.
template <class T = float>
class MaxPool2D : public LayerWithOptions<T, MaxPool2D<T>, MaxPool2dOptions> {
public:
    /// The layer's options type.
    using Options = MaxPool2dOptions;

    /// Max pooling with all its options.
    explicit MaxPool2D(MaxPool2dOptions options) : LayerWithOptions<T, MaxPool2D<T>, MaxPool2dOptions>(options) {
        detail::check_pool_options(options, "MaxPool2D");
    }
    /// Pool window ph x pw; the stride defaults to the window (Keras' default).
    MaxPool2D(std::int64_t pool_h = 2, std::int64_t pool_w = 2)
        : MaxPool2D(MaxPool2dOptions{{pool_h, pool_w}, {std::max<std::int64_t>(pool_h, 1), std::max<std::int64_t>(pool_w, 1)}, {}}) {}
    /// Step of the window (default: the pool size).
    MaxPool2D& strides(std::int64_t sh, std::int64_t sw) {
        check(sh > 0 && sw > 0, "MaxPool2D: strides must be positive");
        this->options_.strides = {sh, sw};
        return *this;
    }
    /// Padding mode (default valid).
    MaxPool2D& padding(Padding p) { this->options_.padding = p; return *this; }
    /// Padding by name: "valid", "same" or "top,bottom,left,right".
    MaxPool2D& padding(const std::string& p) { this->options_.padding = Padding::parse(p); return *this; }
    /// Sets the layer's name (default: max_pooling2d, max_pooling2d_1, ...).
    MaxPool2D& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "MaxPooling2D"; }
    const char* default_name() const override { return "max_pooling2d"; }

    Shape build(const Shape& in, const LayerInit&) override {
        args_ = detail::pool2d_args_for(this->options_, in, "MaxPool2D '" + this->name_ + "'");
        const kernels::WindowGeometry g{in[1], in[2], args_.pool_h, args_.pool_w, args_.stride_h, args_.stride_w,
                                        args_.pad_top, args_.pad_bottom, args_.pad_left, args_.pad_right};
        return Shape{in[0], g.out_h(), g.out_w()};
    }
    /// [N, C, H, W] -> [N, C, OH, OW], the max of each window.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return max_pool2d(x, args_);
    }

    /// Window height.
    std::int64_t pool_h() const { return this->options_.pool_size.h; }
    /// Window width.
    std::int64_t pool_w() const { return this->options_.pool_size.w; }
    /// Vertical step.
    std::int64_t stride_h() const { return this->options_.strides.h; }
    /// Horizontal step.
    std::int64_t stride_w() const { return this->options_.strides.w; }
    /// Whether the built layer pads its input (the fused pooling ops do not).
    bool padded() const { return args_.pad_top || args_.pad_bottom || args_.pad_left || args_.pad_right; }
    /// The max_pool2d arguments of the built layer.
    const Pool2dArgs& pool2d_args() const { return args_; }

private:
    Pool2dArgs args_;
};

}  // namespace cnnlite
