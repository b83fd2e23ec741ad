// Convolution + ReLU + max pooling as one op, for a Conv2D(activation=relu) followed by a
// MaxPool2D whose conv output nobody needs to see: the same values as the three ops in a row,
// without the full-resolution activation ever being stored.
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/conv_relu_pool.hpp"
#include "cnnlite/ops/conv2d.hpp"

namespace cnnlite {

namespace detail {
/// What the fused op's backward needs: the convolution's and the pooling's geometry.
struct Conv2dMaxPoolArgs {
    Conv2dArgs conv;                ///< strides and padding of the convolution
    std::int64_t pool_h = 2;        ///< pooling window height
    std::int64_t pool_w = 2;        ///< pooling window width
    std::int64_t pool_stride_h = 2; ///< pooling step, vertical
    std::int64_t pool_stride_w = 2; ///< pooling step, horizontal
};
}  // namespace detail

/// max_pool2d(conv2d(x, weight, bias, args with relu), pool, stride). `args.relu` is implied.
template <class T>
Variable<T> conv2d_relu_max_pool2d(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias,
                                   const Conv2dArgs& args, std::int64_t pool_h, std::int64_t pool_w, std::int64_t stride_h,
                                   std::int64_t stride_w) {
    const kernels::ConvShape s = detail::checked_conv_shape(x, weight, bias, args, "conv2d_relu_max_pool2d");
    check(s.plain(), "conv2d_relu_max_pool2d: dilation ", args.dilation_h, "x", args.dilation_w, " and groups ",
          args.groups, " are not fused; use conv2d and max_pool2d");
    const auto pool = kernels::WindowGeometry::valid(s.window.out_h(), s.window.out_w(), pool_h, pool_w, stride_h, stride_w);
    pool.validate("conv2d_relu_max_pool2d (pooling)");

    const Shape ys{s.batch, s.out_channels, pool.out_h(), pool.out_w()};
    Tensor<T> y = Tensor<T>::uninitialized(ys);
    Tensor<std::int32_t> argmax = Tensor<std::int32_t>::uninitialized(ys);
    Tensor<T> workspace = Tensor<T>::uninitialized(Shape{kernels::conv_relu_pool_workspace_size(s)});
    kernels::conv_relu_pool_forward(s, pool, x.value().data(), weight.value().data(),
                                    bias.defined() ? bias.value().data() : nullptr, y.data(), argmax.data(), workspace.data());

    const bool record = detail::should_record<T>({&x, &weight, &bias});
    Variable<T> out = detail::make_result<T>(std::move(y), "conv2d_relu_max_pool2d", record, +[](detail::Node<T>& n) {
        const auto& xv = n.input(0)->value;
        const auto& wv = n.input(1)->value;
        const auto a = n.template args<detail::Conv2dMaxPoolArgs>();
        const kernels::ConvShape s = detail::conv_shape(xv.shape(), wv.shape(), a.conv);
        const auto pool = kernels::WindowGeometry::valid(s.window.out_h(), s.window.out_w(), a.pool_h, a.pool_w,
                                                         a.pool_stride_h, a.pool_stride_w);
        const bool has_bias = n.input(2) != nullptr;
        Tensor<T> workspace = Tensor<T>::uninitialized(Shape{kernels::conv_relu_pool_workspace_size(s)});
        Tensor<T> dw = Tensor<T>::uninitialized(wv.shape());
        Tensor<T> db = has_bias ? Tensor<T>::uninitialized(Shape{s.out_channels}) : Tensor<T>();
        Tensor<T> dx = detail::wants_grad(n, 0) ? Tensor<T>::uninitialized(xv.shape()) : Tensor<T>();
        kernels::conv_relu_pool_backward(s, pool, xv.data(), wv.data(), n.value.data(), n.indices.data(), n.grad.data(),
                                         dw.data(), has_bias ? db.data() : nullptr, dx.defined() ? dx.data() : nullptr,
                                         workspace.data());
        if (dx.defined()) detail::accumulate_grad(n, 0, std::move(dx));
        if (detail::wants_grad(n, 1)) detail::accumulate_grad(n, 1, std::move(dw));
        if (has_bias && detail::wants_grad(n, 2)) detail::accumulate_grad(n, 2, std::move(db));
    }, {&x, &weight, &bias});
    if (record) {
        out.node()->set_args(detail::Conv2dMaxPoolArgs{args, pool_h, pool_w, stride_h, stride_w});
        out.node()->indices = std::move(argmax);
    }
    return out;
}

}  // namespace cnnlite
