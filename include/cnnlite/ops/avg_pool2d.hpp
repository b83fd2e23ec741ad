// 2-D average pooling as a differentiable op (NCHW), with padding on each side; padded cells
// count in the divisor or not (Pool2dArgs::count_include_pad).
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/pooling.hpp"
#include "cnnlite/ops/pool2d_args.hpp"

namespace cnnlite {

/// Mean over the windows of `args`; padded cells add zero to a window's sum.
template <class T>
Variable<T> avg_pool2d(const Variable<T>& x, const Pool2dArgs& args) {
    const Shape& xs = x.shape();
    const kernels::WindowGeometry g = detail::checked_pool_geometry(xs, args, "avg_pool2d");
    Tensor<T> y = Tensor<T>::uninitialized(Shape{xs[0], xs[1], g.out_h(), g.out_w()});
    kernels::avg_pool_forward(x.value().data(), xs[0] * xs[1], g, args.count_include_pad, y.data());

    const bool record = detail::should_record<T>({&x});
    Variable<T> out = detail::make_result<T>(std::move(y), "avg_pool2d", record, +[](detail::Node<T>& n) {
        const Shape& in = n.input(0)->value.shape();
        const auto a = n.template args<Pool2dArgs>();
        const kernels::WindowGeometry g{in[2], in[3], a.pool_h, a.pool_w, a.stride_h, a.stride_w,
                                        a.pad_top, a.pad_bottom, a.pad_left, a.pad_right};
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::avg_pool_backward(n.grad.data(), in[0] * in[1], g, a.count_include_pad, dx->data(), fresh);
    }, {&x});
    if (record) out.node()->set_args(args);
    return out;
}

}  // namespace cnnlite
