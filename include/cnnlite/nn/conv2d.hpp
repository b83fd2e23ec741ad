// Conv2D layer: 2-D convolution over NCHW batches with Keras' options (filters, kernel size,
// strides, 'valid'/'same'/explicit padding, dilation, channel groups, bias, fused activation).
#pragma once

#include <limits>
#include <memory>
#include <string>

#include "cnnlite/core/init.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/nn/padding.hpp"
#include "cnnlite/ops/activation.hpp"
#include "cnnlite/ops/conv2d.hpp"

namespace cnnlite {

/// The options of a Conv2D layer, Keras' names and defaults.
struct Conv2dOptions {
    std::int64_t filters = 1;                ///< output channels
    Extent2 kernel_size{1, 1};               ///< window height and width
    Extent2 strides{1, 1};                   ///< step of the window
    Padding padding;                         ///< 'valid' by default
    bool use_bias = true;                    ///< a bias per filter
    Activation activation = Activation::none;  ///< applied to the output (relu fused into the op)
    Extent2 dilation_rate{1, 1};  ///< spacing of the kernel's taps (a 3x3 kernel at rate 2 spans 5x5)
    /// Channel groups: input channels and filters both split into `groups` parts, and each part
    /// of the filters sees only its part of the input (groups = input channels: depthwise).
    std::int64_t groups = 1;

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("filters", filters);
        v("kernel_size", kernel_size);
        v("strides", strides);
        v("padding", padding);
        v("use_bias", use_bias);
        v("activation", activation);
        v.optional("dilation_rate", dilation_rate);
        v.optional("groups", groups);
    }
};

template <class T>
class InferenceModel;

/// 2-D convolution layer (Keras' Conv2D) over NCHW batches: filters, kernel size, strides,
/// padding, dilation, channel groups, bias, fused activation.
template <class T = float>
class Conv2D : public LayerWithOptions<T, Conv2D<T>, Conv2dOptions> {
public:
    /// The layer's options type.
    using Options = Conv2dOptions;

    /// A convolution with all its options.
    explicit Conv2D(Conv2dOptions options) : LayerWithOptions<T, Conv2D<T>, Conv2dOptions>(options) {
        check(options.filters > 0 && options.kernel_size.h > 0 && options.kernel_size.w > 0,
              "Conv2D: filters and kernel size must be positive, got ", options.filters, " and ", options.kernel_size.h,
              "x", options.kernel_size.w);
        check(options.strides.h > 0 && options.strides.w > 0, "Conv2D: strides must be positive");
        check_dilation_and_groups(options.dilation_rate, options.groups);
    }
    /// `filters` output channels, kernel kh x kw.
    Conv2D(std::int64_t filters, std::int64_t kernel_h, std::int64_t kernel_w)
        : Conv2D(options_of(filters, kernel_h, kernel_w)) {}
    /// Square kernel.
    Conv2D(std::int64_t filters, std::int64_t kernel) : Conv2D(filters, kernel, kernel) {}

    /// Step of the window (default 1, 1).
    Conv2D& strides(std::int64_t sh, std::int64_t sw) {
        check(sh > 0 && sw > 0, "Conv2D: strides must be positive");
        this->options_.strides = {sh, sw};
        return *this;
    }
    /// Spacing of the kernel's taps (default 1, 1: adjacent). 'same' padding accounts for it.
    Conv2D& dilation_rate(std::int64_t dh, std::int64_t dw) {
        check_dilation_and_groups({dh, dw}, this->options_.groups);
        this->options_.dilation_rate = {dh, dw};
        return *this;
    }
    /// Channel groups (default 1); the input's channels and `filters` must both divide by it.
    /// groups = input channels is a depthwise convolution.
    Conv2D& groups(std::int64_t g) {
        check_dilation_and_groups(this->options_.dilation_rate, g);
        this->options_.groups = g;
        return *this;
    }
    /// Padding mode (default valid).
    Conv2D& padding(Padding p) { this->options_.padding = p; return *this; }
    /// Padding by name: "valid", "same" or "top,bottom,left,right".
    Conv2D& padding(const std::string& p) { this->options_.padding = Padding::parse(p); return *this; }
    /// Whether the layer adds a bias per filter (default true).
    Conv2D& use_bias(bool on) { this->options_.use_bias = on; return *this; }
    /// Activation applied to the output (fused into the convolution for relu).
    Conv2D& activation(Activation a) { this->options_.activation = a; return *this; }
    /// Activation by Keras name ("linear", "relu", "gelu", ...: see Activation).
    Conv2D& activation(const std::string& a) {
        this->options_.activation = parse_activation(a, this->label());
        return *this;
    }
    /// Sets the layer's name (default: conv2d, conv2d_1, ... in model order).
    Conv2D& name(std::string n) { this->set_name(std::move(n)); return *this; }
    /// Whether a 3x3 stride-1 float convolution may run by Winograd's transforms where they
    /// pay (default true; kernels/winograd_planes.hpp): 3-4x fewer multiplications in the
    /// forward, the input gradient and the weight gradient, sums exact to a few parts per
    /// million of their terms' magnitudes instead of the direct product's few parts in ten
    /// million. False: direct products. A way of computing rather than part of the model: model
    /// files do not keep it.
    Conv2D& winograd(bool on) { winograd_ = on; return *this; }
    /// Whether the layer may run by Winograd's transforms (winograd(bool)).
    bool winograd() const { return winograd_; }

    const char* type() const override { return "Conv2D"; }
    const char* default_name() const override { return "conv2d"; }
    bool ends_in_softmax() const override { return this->options_.activation == Activation::softmax; }

    Shape build(const Shape& in, const LayerInit& init) override {
        check(in.rank() == 3, "Conv2D '", this->name_, "': input must be [C, H, W], got ", in);
        const std::int64_t groups = this->options_.groups;
        const std::int64_t c = in[0];
        const std::int64_t filters = this->options_.filters;
        check(c % groups == 0 && filters % groups == 0, "Conv2D '", this->name_, "': ", groups,
              " groups must divide both the input's ", c, " channels and the ", filters, " filters");
        const std::int64_t kh = this->options_.kernel_size.h, kw = this->options_.kernel_size.w;
        window_ = make_window(in[1], in[2]);
        std::string label = "Conv2D '" + this->name_ + "'";
        const Extent2 d = this->options_.dilation_rate;
        if (d.h != 1 || d.w != 1)  // the window below is the dilated span: say where its size comes from
            label += " (kernel " + std::to_string(kh) + "x" + std::to_string(kw) + " at dilation_rate " + d.str() + ")";
        window_.validate(label.c_str());
        weight_ = Variable<T>(Tensor<T>(Shape{filters, c / groups, kh, kw}), true);
        // As PyTorch and Keras count them for a grouped kernel: each output sees c / groups channels.
        const std::int64_t fan_in = c / groups * kh * kw, fan_out = filters * kh * kw;
        if (init.scheme == InitScheme::keras)
            fill_glorot_uniform(weight_.value(), init.stream(0), fan_in, fan_out);
        else
            fill_torch_default(weight_.value(), init.stream(0), fan_in);
        if (this->options_.use_bias) {
            bias_ = Variable<T>(Tensor<T>(Shape{filters}), true);
            if (init.scheme == InitScheme::torch) fill_torch_default(bias_.value(), init.stream(1), fan_in);
        }
        return Shape{filters, window_.out_h(), window_.out_w()};
    }

    /// The convolution with its activation, [N, C, H, W] -> [N, filters, OH, OW].
    Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx) const override {
        Variable<T> y = forward_logits(x, ctx);
        return this->options_.activation == Activation::softmax ? softmax_channels(y) : y;
    }
    /// The convolution before a softmax activation; with any other activation, after it.
    Variable<T> forward_logits(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        const Activation a = this->options_.activation;
        Variable<T> y = conv2d(x, weight_, bias_, conv2d_args(), packed_filters_.defined() ? &packed_filters_ : nullptr);
        return a == Activation::none || a == Activation::relu || a == Activation::softmax ? y : apply_activation(y, a);
    }

    std::vector<NamedParameter<T>> parameters() const override {
        std::vector<NamedParameter<T>> p{{"weight", weight_}};
        if (this->options_.use_bias) p.push_back({"bias", bias_});
        return p;
    }

    /// The kernel, [filters, C / groups, kh, kw] (PyTorch's layout).
    const Variable<T>& weight() const { return weight_; }
    /// The bias, [filters]; undefined without bias.
    const Variable<T>& bias() const { return bias_; }
    /// The activation applied to the output.
    Activation activation() const { return this->options_.activation; }

    /// The arguments of the conv2d op for the built layer: strides, padding, dilation, groups,
    /// fused ReLU.
    Conv2dArgs conv2d_args() const {
        Conv2dArgs a;
        a.stride_h = this->options_.strides.h, a.stride_w = this->options_.strides.w;
        a.pad_top = window_.pad_top, a.pad_bottom = window_.pad_bottom;
        a.pad_left = window_.pad_left, a.pad_right = window_.pad_right;
        a.relu = this->options_.activation == Activation::relu;
        a.dilation_h = static_cast<std::int32_t>(this->options_.dilation_rate.h);
        a.dilation_w = static_cast<std::int32_t>(this->options_.dilation_rate.w);
        a.groups = static_cast<std::int32_t>(this->options_.groups);
        a.winograd = winograd_;
        return a;
    }

private:
    template <class>
    friend class InferenceModel;

    // The filters packed once for the forward (kernels::pack_conv2d_filters), for a layer whose
    // weights no longer change: only InferenceModel, which owns its layers and never changes
    // them, calls this. False for shapes whose kernels read the filters as they are.
    bool pack_filters() {
        const kernels::WindowGeometry& g = window_;
        const Shape w = weight_.shape();
        const kernels::ConvShape s =
            detail::conv_shape(Shape{1, w[1] * this->options_.groups, g.in_h, g.in_w}, w, conv2d_args());
        if (!kernels::conv2d_filters_packable<T>(s)) return false;
        packed_filters_ = Tensor<T>::uninitialized(w);
        kernels::pack_conv2d_filters(s, weight_.value().data(), packed_filters_.data());
        return true;
    }

    // The op keeps dilation and groups in 32 bits (Conv2dArgs).
    static void check_dilation_and_groups(const Extent2& dilation, std::int64_t groups) {
        constexpr std::int64_t limit = std::numeric_limits<std::int32_t>::max();
        check(dilation.h >= 1 && dilation.w >= 1 && dilation.h <= limit && dilation.w <= limit,
              "Conv2D: dilation_rate ", dilation.h, "x", dilation.w, " must be positive");
        check(groups >= 1 && groups <= limit, "Conv2D: groups ", groups, " must be positive");
    }

    static Conv2dOptions options_of(std::int64_t filters, std::int64_t kernel_h, std::int64_t kernel_w) {
        Conv2dOptions o;
        o.filters = filters;
        o.kernel_size = {kernel_h, kernel_w};
        return o;
    }
    kernels::WindowGeometry make_window(std::int64_t h, std::int64_t w) const {
        const Conv2dOptions& o = this->options_;
        const Padding& padding = o.padding;
        // The window a dilated kernel spans, which is what padding and the output size see.
        constexpr std::int64_t most = std::numeric_limits<std::int64_t>::max() / 2;
        check(o.kernel_size.h - 1 <= most / o.dilation_rate.h && o.kernel_size.w - 1 <= most / o.dilation_rate.w,
              "Conv2D '", this->name_, "': kernel ", o.kernel_size.h, "x", o.kernel_size.w, " at dilation_rate ",
              o.dilation_rate.h, "x", o.dilation_rate.w, " spans more than any input");
        const std::int64_t kh = kernels::dilated_extent(o.kernel_size.h, o.dilation_rate.h);
        const std::int64_t kw = kernels::dilated_extent(o.kernel_size.w, o.dilation_rate.w);
        const std::int64_t sh = o.strides.h, sw = o.strides.w;
        if (padding.mode == Padding::Mode::same) return kernels::WindowGeometry::same(h, w, kh, kw, sh, sw);
        kernels::WindowGeometry g = kernels::WindowGeometry::valid(h, w, kh, kw, sh, sw);
        if (padding.mode == Padding::Mode::explicit_) {
            g.pad_top = padding.top, g.pad_bottom = padding.bottom;
            g.pad_left = padding.left, g.pad_right = padding.right;
        }
        return g;
    }
    // Keras applies a softmax activation over the channel axis (its last axis).
    static Variable<T> softmax_channels(const Variable<T>&) {
        fail("Conv2D: a softmax activation over channels is not supported; add a Dense softmax layer");
    }

    kernels::WindowGeometry window_;  // of the dilated kernel: its span, the padding and the output size
    Variable<T> weight_, bias_;
    Tensor<T> packed_filters_;  // pack_filters(); undefined: formed at every call
    bool winograd_ = true;      // winograd(bool)
};

}  // namespace cnnlite
