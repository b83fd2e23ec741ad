// 2-D max pooling as a differentiable op (NCHW). Forward keeps each window's argmax; backward
// sends the gradient to it.
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/pooling.hpp"

namespace cnnlite {

/// Max over pool_h x pool_w windows moved by the strides ('valid': partial windows dropped).
template <class T>
Variable<T> max_pool2d(const Variable<T>& x, std::int64_t pool_h, std::int64_t pool_w, std::int64_t stride_h,
                       std::int64_t stride_w) {
    const Shape& xs = x.shape();
    check(xs.rank() == 4, "max_pool2d: input must be [N, C, H, W], got ", xs);
    const auto g = kernels::WindowGeometry::valid(xs[2], xs[3], pool_h, pool_w, stride_h, stride_w);
    g.validate("max_pool2d");
    const Shape ys{xs[0], xs[1], g.out_h(), g.out_w()};
    Tensor<T> y = Tensor<T>::uninitialized(ys);
    Tensor<std::int32_t> argmax = Tensor<std::int32_t>::uninitialized(ys);
    const std::int64_t planes = xs[0] * xs[1];
    if (pool_h == 2 && pool_w == 2 && stride_h == 2 && stride_w == 2)
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

}  // namespace cnnlite
