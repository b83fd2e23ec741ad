// MaxPool2D layer (Keras' MaxPooling2D): max over pool windows, 'valid' padding.
#pragma once

#include <memory>
#include <string>

#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/ops/max_pool2d.hpp"

namespace cnnlite {

/// Max pooling layer (Keras' MaxPooling2D) with 'valid' padding; the stride defaults to the window.
template <class T = float>
class MaxPool2D : public Layer<T> {
public:
    /// Pool window ph x pw; the stride defaults to the window (Keras' default).
    MaxPool2D(std::int64_t pool_h = 2, std::int64_t pool_w = 2) : ph_(pool_h), pw_(pool_w), sh_(pool_h), sw_(pool_w) {
        check(pool_h > 0 && pool_w > 0, "MaxPool2D: pool size must be positive, got ", pool_h, "x", pool_w);
    }
    /// Step of the window (default: the pool size).
    MaxPool2D& strides(std::int64_t sh, std::int64_t sw) {
        check(sh > 0 && sw > 0, "MaxPool2D: strides must be positive");
        sh_ = sh, sw_ = sw;
        return *this;
    }
    /// Sets the layer's name (default: max_pooling2d, max_pooling2d_1, ...).
    MaxPool2D& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "MaxPooling2D"; }
    const char* default_name() const override { return "max_pooling2d"; }

    Shape build(const Shape& in, const LayerInit&) override {
        check(in.rank() == 3, "MaxPool2D '", this->name_, "': input must be [C, H, W], got ", in);
        const auto g = kernels::WindowGeometry::valid(in[1], in[2], ph_, pw_, sh_, sw_);
        g.validate(("MaxPool2D '" + this->name_ + "'").c_str());
        return Shape{in[0], g.out_h(), g.out_w()};
    }
    /// [N, C, H, W] -> [N, C, OH, OW], the max of each window.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return max_pool2d(x, ph_, pw_, sh_, sw_);
    }
    LayerConfig config() const override {
        return {type(), this->name_,
                {{"pool_size", std::to_string(ph_) + "," + std::to_string(pw_)},
                 {"strides", std::to_string(sh_) + "," + std::to_string(sw_)}}};
    }
    std::unique_ptr<Layer<T>> clone_config() const override {
        auto copy = std::make_unique<MaxPool2D>(ph_, pw_);
        copy->strides(sh_, sw_);
        copy->set_name(this->name_);
        return copy;
    }

    /// Window height.
    std::int64_t pool_h() const { return ph_; }
    /// Window width.
    std::int64_t pool_w() const { return pw_; }
    /// Vertical step.
    std::int64_t stride_h() const { return sh_; }
    /// Horizontal step.
    std::int64_t stride_w() const { return sw_; }

private:
    std::int64_t ph_, pw_, sh_, sw_;
};

}  // namespace cnnlite
