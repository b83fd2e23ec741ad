// MaxPool2D layer (Keras' MaxPooling2D): max over pool windows, 'valid' padding.
#pragma once

#include <algorithm>
#include <memory>
#include <string>

#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/max_pool2d.hpp"

namespace cnnlite {

/// The options of a MaxPool2D layer (Keras' MaxPooling2D), its names and defaults.
struct MaxPool2dOptions {
    Extent2 pool_size{2, 2};  ///< window height and width
    Extent2 strides{2, 2};    ///< step of the window (Keras: the pool size)

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("pool_size", pool_size);
        v("strides", strides);
    }
};

/// Max pooling layer (Keras' MaxPooling2D) with 'valid' padding; the stride defaults to the window.
template <class T = float>
class MaxPool2D : public LayerWithOptions<T, MaxPool2D<T>, MaxPool2dOptions> {
public:
    /// The layer's options type.
    using Options = MaxPool2dOptions;

    /// Max pooling with all its options.
    explicit MaxPool2D(MaxPool2dOptions options) : LayerWithOptions<T, MaxPool2D<T>, MaxPool2dOptions>(options) {
        check(options.pool_size.h > 0 && options.pool_size.w > 0, "MaxPool2D: pool size must be positive, got ",
              options.pool_size.h, "x", options.pool_size.w);
        check(options.strides.h > 0 && options.strides.w > 0, "MaxPool2D: strides must be positive");
    }
    /// Pool window ph x pw; the stride defaults to the window (Keras' default).
    MaxPool2D(std::int64_t pool_h = 2, std::int64_t pool_w = 2)
        : MaxPool2D(MaxPool2dOptions{{pool_h, pool_w}, {std::max<std::int64_t>(pool_h, 1), std::max<std::int64_t>(pool_w, 1)}}) {}
    /// Step of the window (default: the pool size).
    MaxPool2D& strides(std::int64_t sh, std::int64_t sw) {
        check(sh > 0 && sw > 0, "MaxPool2D: strides must be positive");
        this->options_.strides = {sh, sw};
        return *this;
    }
    /// Sets the layer's name (default: max_pooling2d, max_pooling2d_1, ...).
    MaxPool2D& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "MaxPooling2D"; }
    const char* default_name() const override { return "max_pooling2d"; }

    Shape build(const Shape& in, const LayerInit&) override {
        check(in.rank() == 3, "MaxPool2D '", this->name_, "': input must be [C, H, W], got ", in);
        const auto g = kernels::WindowGeometry::valid(in[1], in[2], pool_h(), pool_w(), stride_h(), stride_w());
        g.validate(("MaxPool2D '" + this->name_ + "'").c_str());
        return Shape{in[0], g.out_h(), g.out_w()};
    }
    /// [N, C, H, W] -> [N, C, OH, OW], the max of each window.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return max_pool2d(x, pool_h(), pool_w(), stride_h(), stride_w());
    }

    /// Window height.
    std::int64_t pool_h() const { return this->options_.pool_size.h; }
    /// Window width.
    std::int64_t pool_w() const { return this->options_.pool_size.w; }
    /// Vertical step.
    std::int64_t stride_h() const { return this->options_.strides.h; }
    /// Horizontal step.
    std::int64_t stride_w() const { return this->options_.strides.w; }
};

}  // namespace cnnlite
