// AvgPool2D layer (Keras' AveragePooling2D): the mean over pool windows, 'valid' or 'same'
// padding; with 'same', padded cells do not count in a window's mean (Keras, and PyTorch's
// count_include_pad=False).
#pragma once

#include <algorithm>
#include <memory>
#include <string>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/nn/pool2d_options.hpp"
#include "cnnlite/ops/avg_pool2d.hpp"

namespace cnnlite {

/// Average pooling layer (Keras' AveragePooling2D); the stride defaults to the window, the
/// padding to 'valid'; padded cells are left out of each mean.
template <class T = float>
class AvgPool2D : public LayerWithOptions<T, AvgPool2D<T>, AvgPool2dOptions> {
public:
    /// The layer's options type.
    using Options = AvgPool2dOptions;

    /// Average pooling with all its options.
    explicit AvgPool2D(AvgPool2dOptions options) : LayerWithOptions<T, AvgPool2D<T>, AvgPool2dOptions>(options) {
        detail::check_pool_options(options, "AvgPool2D");
    }
    /// Pool window ph x pw; the stride defaults to the window (Keras' default).
    AvgPool2D(std::int64_t pool_h = 2, std::int64_t pool_w = 2)
        : AvgPool2D(AvgPool2dOptions{{pool_h, pool_w}, {std::max<std::int64_t>(pool_h, 1), std::max<std::int64_t>(pool_w, 1)}, {}}) {}
    /// Step of the window (default: the pool size).
    AvgPool2D& strides(std::int64_t sh, std::int64_t sw) {
        check(sh > 0 && sw > 0, "AvgPool2D: strides must be positive");
        this->options_.strides = {sh, sw};
        return *this;
    }
    /// Padding mode (default valid).
    AvgPool2D& padding(Padding p) { this->options_.padding = p; return *this; }
    /// Padding by name: "valid", "same" or "top,bottom,left,right".
    AvgPool2D& padding(const std::string& p) { this->options_.padding = Padding::parse(p); return *this; }
    /// Sets the layer's name (default: average_pooling2d, average_pooling2d_1, ...).
    AvgPool2D& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "AveragePooling2D"; }
    const char* default_name() const override { return "average_pooling2d"; }

    Shape build(const Shape& in, const LayerInit&) override {
        args_ = detail::pool2d_args_for(this->options_, in, "AvgPool2D '" + this->name_ + "'");
        const kernels::WindowGeometry g{in[1], in[2], args_.pool_h, args_.pool_w, args_.stride_h, args_.stride_w,
                                        args_.pad_top, args_.pad_bottom, args_.pad_left, args_.pad_right};
        return Shape{in[0], g.out_h(), g.out_w()};
    }
    /// [N, C, H, W] -> [N, C, OH, OW], the mean of each window's input cells.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return avg_pool2d(x, args_);
    }

    /// The avg_pool2d arguments of the built layer.
    const Pool2dArgs& pool2d_args() const { return args_; }

private:
    Pool2dArgs args_;
};

}  // namespace cnnlite
