// Conv2D layer: 2-D convolution over NCHW batches with Keras' options (filters, kernel size,
// strides, 'valid'/'same'/explicit padding, bias, fused activation).
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "cnnlite/core/init.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/ops/activation.hpp"
#include "cnnlite/ops/conv2d.hpp"
#include "cnnlite/ops/conv2d_relu_max_pool2d.hpp"

namespace cnnlite {

/// Padding of a convolution.
struct Padding {
    /// How the padding is chosen: valid (none), same (keep the size), explicit_ (the four values below).
    enum class Mode { valid, same, explicit_ } mode = Mode::valid;
    /// \var mode
    /// The mode of this padding.

    /// Zero rows above (explicit_ only).
    std::int64_t top = 0, bottom = 0, left = 0, right = 0;  ///< for explicit_ only
    /// \var bottom
    /// Zero rows below (explicit_ only).
    /// \var left
    /// Zero columns on the left (explicit_ only).

    /// No padding: the window stays inside the input.
    static Padding valid() { return {}; }
    /// Output size ceil(in / stride); an odd total padding puts the extra row/column at the
    /// bottom/right (TensorFlow and PyTorch agree).
    static Padding same() { return {Mode::same}; }
    /// The given zero rows and columns on each side.
    static Padding explicit_pad(std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right) {
        return {Mode::explicit_, top, bottom, left, right};
    }
    /// "valid", "same", or "top,bottom,left,right".
    static Padding parse(const std::string& s) {
        if (s == "valid") return valid();
        if (s == "same") return same();
        long long t = -1, b = -1, l = -1, r = -1;
        check(std::sscanf(s.c_str(), "%lld,%lld,%lld,%lld", &t, &b, &l, &r) == 4 && t >= 0 && b >= 0 && l >= 0 && r >= 0,
              "unknown padding '", s, "' (use valid, same or top,bottom,left,right)");
        return explicit_pad(t, b, l, r);
    }
    /// "valid", "same" or "top,bottom,left,right" (what parse() reads).
    std::string str() const {
        if (mode == Mode::valid) return "valid";
        if (mode == Mode::same) return "same";
        return std::to_string(top) + "," + std::to_string(bottom) + "," + std::to_string(left) + "," + std::to_string(right);
    }
};

/// 2-D convolution layer (Keras' Conv2D) over NCHW batches: filters, kernel size, strides, padding, bias, fused activation.
template <class T = float>
class Conv2D : public Layer<T> {
public:
    /// `filters` output channels, kernel kh x kw.
    Conv2D(std::int64_t filters, std::int64_t kernel_h, std::int64_t kernel_w) : filters_(filters), kh_(kernel_h), kw_(kernel_w) {
        check(filters > 0 && kernel_h > 0 && kernel_w > 0, "Conv2D: filters and kernel size must be positive, got ",
              filters, " and ", kernel_h, "x", kernel_w);
    }
    /// Square kernel.
    Conv2D(std::int64_t filters, std::int64_t kernel) : Conv2D(filters, kernel, kernel) {}

    /// Step of the window (default 1, 1).
    Conv2D& strides(std::int64_t sh, std::int64_t sw) {
        check(sh > 0 && sw > 0, "Conv2D: strides must be positive");
        sh_ = sh, sw_ = sw;
        return *this;
    }
    /// Padding mode (default valid).
    Conv2D& padding(Padding p) { padding_ = p; return *this; }
    /// Padding by name: "valid", "same" or "top,bottom,left,right".
    Conv2D& padding(const std::string& p) { padding_ = Padding::parse(p); return *this; }
    /// Whether the layer adds a bias per filter (default true).
    Conv2D& use_bias(bool on) { use_bias_ = on; return *this; }
    /// Activation applied to the output (fused into the convolution for relu).
    Conv2D& activation(Activation a) { activation_ = a; return *this; }
    /// Activation by Keras name: "linear", "relu" or "softmax".
    Conv2D& activation(const std::string& a) { activation_ = parse_activation(a); return *this; }
    /// Sets the layer's name (default: conv2d, conv2d_1, ... in model order).
    Conv2D& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "Conv2D"; }
    const char* default_name() const override { return "conv2d"; }
    bool ends_in_softmax() const override { return activation_ == Activation::softmax; }

    Shape build(const Shape& in, const LayerInit& init) override {
        check(in.rank() == 3, "Conv2D '", this->name_, "': input must be [C, H, W], got ", in);
        const std::int64_t c = in[0];
        window_ = make_window(in[1], in[2]);
        window_.validate(("Conv2D '" + this->name_ + "'").c_str());
        weight_ = Variable<T>(Tensor<T>(Shape{filters_, c, kh_, kw_}), true);
        const std::int64_t fan_in = c * kh_ * kw_, fan_out = filters_ * kh_ * kw_;
        if (init.scheme == InitScheme::keras)
            fill_glorot_uniform(weight_.value(), init.stream(0), fan_in, fan_out);
        else
            fill_torch_default(weight_.value(), init.stream(0), fan_in);
        if (use_bias_) {
            bias_ = Variable<T>(Tensor<T>(Shape{filters_}), true);
            if (init.scheme == InitScheme::torch) fill_torch_default(bias_.value(), init.stream(1), fan_in);
        }
        return Shape{filters_, window_.out_h(), window_.out_w()};
    }

    /// The convolution with its activation, [N, C, H, W] -> [N, filters, OH, OW].
    Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx) const override {
        Variable<T> y = forward_logits(x, ctx);
        return activation_ == Activation::softmax ? softmax_channels(y) : y;
    }
    /// The convolution before a softmax activation (with relu, after it).
    Variable<T> forward_logits(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return conv2d(x, weight_, bias_, args());
    }

    /// Conv2D(relu) followed by MaxPool2D runs as one fused op.
    Variable<T> forward_fused(const Variable<T>& x, const Layer<T>& next, const ForwardContext&) const override {
        const auto* pool = dynamic_cast<const MaxPool2D<T>*>(&next);
        if (pool == nullptr || activation_ != Activation::relu) return Variable<T>();
        this->check_input(x);
        return conv2d_relu_max_pool2d(x, weight_, bias_, args(), pool->pool_h(), pool->pool_w(), pool->stride_h(),
                                      pool->stride_w());
    }

    std::vector<NamedParameter<T>> parameters() const override {
        std::vector<NamedParameter<T>> p{{"weight", weight_}};
        if (use_bias_) p.push_back({"bias", bias_});
        return p;
    }
    LayerConfig config() const override {
        return {type(), this->name_,
                {{"filters", std::to_string(filters_)}, {"kernel_size", std::to_string(kh_) + "," + std::to_string(kw_)},
                 {"strides", std::to_string(sh_) + "," + std::to_string(sw_)}, {"padding", padding_.str()},
                 {"use_bias", use_bias_ ? "true" : "false"}, {"activation", to_string(activation_)}}};
    }
    std::unique_ptr<Layer<T>> clone_config() const override {
        auto copy = std::make_unique<Conv2D>(filters_, kh_, kw_);
        copy->strides(sh_, sw_).padding(padding_).use_bias(use_bias_).activation(activation_);
        copy->set_name(this->name_);
        return copy;
    }

    /// The kernel, [filters, C, kh, kw] (PyTorch's layout).
    const Variable<T>& weight() const { return weight_; }
    /// The bias, [filters]; undefined without bias.
    const Variable<T>& bias() const { return bias_; }

private:
    Conv2dArgs args() const {
        Conv2dArgs a;
        a.stride_h = sh_, a.stride_w = sw_;
        a.pad_top = window_.pad_top, a.pad_bottom = window_.pad_bottom;
        a.pad_left = window_.pad_left, a.pad_right = window_.pad_right;
        a.relu = activation_ == Activation::relu;
        return a;
    }
    kernels::WindowGeometry make_window(std::int64_t h, std::int64_t w) const {
        if (padding_.mode == Padding::Mode::same) return kernels::WindowGeometry::same(h, w, kh_, kw_, sh_, sw_);
        kernels::WindowGeometry g = kernels::WindowGeometry::valid(h, w, kh_, kw_, sh_, sw_);
        if (padding_.mode == Padding::Mode::explicit_) {
            g.pad_top = padding_.top, g.pad_bottom = padding_.bottom;
            g.pad_left = padding_.left, g.pad_right = padding_.right;
        }
        return g;
    }
    // Keras applies a softmax activation over the channel axis (its last axis).
    static Variable<T> softmax_channels(const Variable<T>&) {
        fail("Conv2D: a softmax activation over channels is not supported; add a Dense softmax layer");
    }

    std::int64_t filters_, kh_, kw_, sh_ = 1, sw_ = 1;
    Padding padding_;
    bool use_bias_ = true;
    Activation activation_ = Activation::none;
    kernels::WindowGeometry window_;
    Variable<T> weight_, bias_;
};

}  // namespace cnnlite
