// 2-D convolution as a differentiable op (NCHW input, [O, C / groups, kh, kw] weights), with
// optional bias, fused ReLU, dilation and channel groups (depthwise: groups = C). Forward and
// backward both run the batched im2col kernels.
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/conv2d.hpp"

namespace cnnlite {

/// Stride, padding, dilation and groups of a convolution; `relu` fuses max(., 0) into the output.
struct Conv2dArgs {
    std::int64_t stride_h = 1;    ///< vertical step of the window
    std::int64_t stride_w = 1;    ///< horizontal step of the window
    std::int64_t pad_top = 0;     ///< zero rows above the input
    std::int64_t pad_bottom = 0;  ///< zero rows below the input
    std::int64_t pad_left = 0;    ///< zero columns left of the input
    std::int64_t pad_right = 0;   ///< zero columns right of the input
    bool relu = false;            ///< apply max(., 0) to the output in the same pass
    /// Let a stride-1 3x3 float convolution run by Winograd's transforms where they pay
    /// (kernels/winograd_planes.hpp); false: direct products (kernels::ConvShape::winograd).
    bool winograd = true;
    // 32 bits keep the struct at 64 bytes, so that the fused conv + pool op's arguments fit a node.
    std::int32_t dilation_h = 1;  ///< vertical spacing of the kernel's taps
    std::int32_t dilation_w = 1;  ///< horizontal spacing of the kernel's taps
    std::int32_t groups = 1;      ///< channel groups (in and out channels divisible by it; C: depthwise)
};

namespace detail {
/// The input checks of the convolution ops (conv2d, conv2d_relu_max_pool2d), named `op` in
/// errors; returns the batched convolution's shape.
template <class T>
kernels::ConvShape checked_conv_shape(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias,
                                      const Conv2dArgs& args, const char* op);

inline kernels::ConvShape conv_shape(const Shape& x, const Shape& w, const Conv2dArgs& a) {
    kernels::ConvShape s;
    s.batch = x[0];
    s.in_channels = x[1];
    s.out_channels = w[0];
    s.window = kernels::WindowGeometry{x[2], x[3], w[2], w[3], a.stride_h, a.stride_w,
                                       a.pad_top, a.pad_bottom, a.pad_left, a.pad_right};
    s.dilation_h = a.dilation_h;
    s.dilation_w = a.dilation_w;
    s.groups = a.groups;
    s.winograd = a.winograd;
    return s;
}

template <class T>
kernels::ConvShape checked_conv_shape(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias,
                                      const Conv2dArgs& args, const char* op) {
    const Shape& xs = x.shape();
    const Shape& ws = weight.shape();
    check(xs.rank() == 4, op, ": input must be [N, C, H, W], got ", xs);
    check(ws.rank() == 4, op, ": weight must be [O, C / groups, kh, kw], got ", ws);
    check(args.groups >= 1, op, ": groups ", args.groups, " must be positive");
    check(args.dilation_h >= 1 && args.dilation_w >= 1, op, ": dilation ", args.dilation_h, "x", args.dilation_w,
          " must be positive");
    check(xs[1] == ws[1] * args.groups, op, ": input has ", xs[1], " channels but weight ", ws, " with ", args.groups,
          " group(s) expects ", ws[1] * args.groups);
    check(ws[0] % args.groups == 0, op, ": ", ws[0], " output channels of weight ", ws, " do not split into ",
          args.groups, " groups");
    check(!bias.defined() || bias.shape() == Shape{ws[0]}, op, ": bias shape ", bias.defined() ? bias.shape() : Shape{},
          " does not match ", ws[0], " output channels");
    const kernels::ConvShape s = conv_shape(xs, ws, args);
    s.dilated_window().validate(op);
    return s;
}
}  // namespace detail

/// y = [relu](conv2d(x, weight) + bias). `bias` may be an undefined Variable (no bias).
/// `packed_filters`, when given, holds kernels::pack_conv2d_filters of `weight`'s current
/// values, formed once by a caller whose weights do not change (InferenceModel); it is used
/// only where kernels::conv2d_filters_packable accepts the shape.
template <class T>
Variable<T> conv2d(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias, const Conv2dArgs& args,
                   const Tensor<T>* packed_filters = nullptr) {
    const kernels::ConvShape s = detail::checked_conv_shape(x, weight, bias, args, "conv2d");
    const T* packed = nullptr;
    if (packed_filters != nullptr && packed_filters->defined() && kernels::conv2d_filters_packable<T>(s)) {
        check(packed_filters->numel() == weight.value().numel(), "conv2d: packed filters of ", packed_filters->numel(),
              " values for a weight of shape ", weight.shape());
        packed = packed_filters->data();
    }

    Tensor<T> y = Tensor<T>::uninitialized(Shape{s.batch, s.out_channels, s.out_h(), s.out_w()});
    Tensor<T> workspace = Tensor<T>::uninitialized(Shape{kernels::conv2d_workspace_size<T>(s)});
    kernels::conv2d_forward(s, x.value().data(), weight.value().data(), bias.defined() ? bias.value().data() : nullptr,
                            args.relu, y.data(), workspace.data(), packed);

    const bool record = detail::should_record<T>({&x, &weight, &bias});
    Variable<T> out = detail::make_result<T>(std::move(y), args.relu ? "conv2d_relu" : "conv2d", record,
                                             +[](detail::Node<T>& n) {
        const auto& xv = n.input(0)->value;
        const auto& wv = n.input(1)->value;
        const auto a = n.template args<Conv2dArgs>();
        const kernels::ConvShape s = detail::conv_shape(xv.shape(), wv.shape(), a);
        const bool has_bias = n.input(2) != nullptr;

        Tensor<T> workspace = Tensor<T>::uninitialized(Shape{kernels::conv2d_workspace_size<T>(s)});
        // A frozen layer's weights (and the network's input) need no gradient: skip its product.
        Tensor<T> dw = detail::wants_grad(n, 1) ? Tensor<T>::uninitialized(wv.shape()) : Tensor<T>();
        Tensor<T> db = has_bias ? Tensor<T>::uninitialized(Shape{s.out_channels}) : Tensor<T>();
        Tensor<T> dx = detail::wants_grad(n, 0) ? Tensor<T>::uninitialized(xv.shape()) : Tensor<T>();
        kernels::conv2d_backward(s, xv.data(), wv.data(), n.value.data(), n.grad.data(), a.relu,
                                 dw.defined() ? dw.data() : nullptr,
                                 has_bias ? db.data() : nullptr, dx.defined() ? dx.data() : nullptr, workspace.data());
        if (dx.defined()) detail::accumulate_grad(n, 0, std::move(dx));
        if (dw.defined()) detail::accumulate_grad(n, 1, std::move(dw));
        if (has_bias && detail::wants_grad(n, 2)) detail::accumulate_grad(n, 2, std::move(db));
    }, {&x, &weight, &bias});
    if (record) out.node()->set_args(args);
    return out;
}

}  // namespace cnnlite
