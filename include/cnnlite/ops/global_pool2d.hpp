// Global pooling as differentiable ops: the mean or the maximum of every plane of an NCHW
// tensor, [N, C, H, W] -> [N, C] (Keras' GlobalAveragePooling2D / GlobalMaxPooling2D).
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/pooling.hpp"

namespace cnnlite {

namespace detail {
/// The input checks of the global pooling ops; returns the plane size H*W.
inline std::int64_t checked_plane_size(const Shape& xs, const char* op) {
    check(xs.rank() == 4, op, ": input must be [N, C, H, W], got ", xs);
    check(xs[2] > 0 && xs[3] > 0, op, ": empty planes in input ", xs);
    return xs[2] * xs[3];
}
}  // namespace detail

/// The mean of every H x W plane: [N, C, H, W] -> [N, C].
template <class T>
Variable<T> global_avg_pool2d(const Variable<T>& x) {
    const Shape& xs = x.shape();
    const std::int64_t size = detail::checked_plane_size(xs, "global_avg_pool2d");
    Tensor<T> y = Tensor<T>::uninitialized(Shape{xs[0], xs[1]});
    kernels::global_avg_pool_forward(x.value().data(), xs[0] * xs[1], size, y.data());
    const bool record = detail::should_record<T>({&x});
    return detail::make_result<T>(std::move(y), "global_avg_pool2d", record, +[](detail::Node<T>& n) {
        const Shape& in = n.input(0)->value.shape();
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::global_avg_pool_backward(n.grad.data(), in[0] * in[1], in[2] * in[3], dx->data(), !fresh);
    }, {&x});
}

/// The maximum of every H x W plane: [N, C, H, W] -> [N, C]. The gradient goes to the first
/// maximum; a NaN wins and stays.
template <class T>
Variable<T> global_max_pool2d(const Variable<T>& x) {
    const Shape& xs = x.shape();
    const std::int64_t size = detail::checked_plane_size(xs, "global_max_pool2d");
    Tensor<T> y = Tensor<T>::uninitialized(Shape{xs[0], xs[1]});
    Tensor<std::int32_t> argmax = Tensor<std::int32_t>::uninitialized(Shape{xs[0], xs[1]});
    kernels::global_max_pool_forward(x.value().data(), xs[0] * xs[1], size, y.data(), argmax.data());
    const bool record = detail::should_record<T>({&x});
    Variable<T> out = detail::make_result<T>(std::move(y), "global_max_pool2d", record, +[](detail::Node<T>& n) {
        const Shape& in = n.input(0)->value.shape();
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::max_pool_backward(n.grad.data(), n.indices.data(), in[0] * in[1], 1, in[2] * in[3], dx->data(), fresh);
    }, {&x});
    if (record) out.node()->indices = std::move(argmax);
    return out;
}

}  // namespace cnnlite
