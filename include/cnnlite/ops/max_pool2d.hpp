// 2-D max pooling as a differentiable op (NCHW), optionally padded. Forward keeps each window's
// argmax; backward sends the gradient to it. Padded cells never win.
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/pooling.hpp"
#include "cnnlite/ops/pool2d_args.hpp"

namespace cnnlite {

/// Max over the windows of `args` (its count_include_pad is ignored). Padding is -infinity: it
/// never wins, and every window holds at least one input cell.
template <class T>
Variable<T> max_pool2d(const Variable<T>& x, const Pool2dArgs& args) {
    const Shape& xs = x.shape();
    const kernels::WindowGeometry g = detail::checked_pool_geometry(xs, args, "max_pool2d");
    const Shape ys{xs[0], xs[1], g.out_h(), g.out_w()};
    Tensor<T> y = Tensor<T>::uninitialized(ys);
    Tensor<std::int32_t> argmax = Tensor<std::int32_t>::uninitialized(ys);
    const std::int64_t planes = xs[0] * xs[1];
    const bool padded = args.pad_top || args.pad_bottom || args.pad_left || args.pad_right;
    if (!padded && args.pool_h == 2 && args.pool_w == 2 && args.stride_h == 2 && args.stride_w == 2)
        kernels::max_pool_2x2_forward(x.value().data(), planes, xs[2], xs[3], y.data(), argmax.data());
    else
        kernels::max_pool_forward(x.value().data(), planes, g, y.data(), argmax.data());

    const bool record = detail::should_record<T>({&x});
    Variable<T> out = detail::make_result<T>(std::move(y), "max_pool2d", record, +[](detail::Node<T>& n) {
        const Shape& in = n.input(0)->value.shape();
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::max_pool_backward(n.grad.data(), n.indices.data(), in[0] * in[1], n.value.shape()[2] * n.value.shape()[3],
                                   in[2] * in[3], dx->data(), fresh);
    }, {&x});
    if (record) out.node()->indices = std::move(argmax);
    return out;
}

/// Max over pool_h x pool_w windows moved by the strides ('valid': partial windows dropped).
template <class T>
Variable<T> max_pool2d(const Variable<T>& x, std::int64_t pool_h, std::int64_t pool_w, std::int64_t stride_h,
                       std::int64_t stride_w) {
    Pool2dArgs a;
    a.pool_h = pool_h, a.pool_w = pool_w, a.stride_h = stride_h, a.stride_w = stride_w;
    return max_pool2d(x, a);
}

}  // namespace cnnlite
