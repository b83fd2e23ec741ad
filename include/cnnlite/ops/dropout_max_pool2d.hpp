// Dropout followed by max pooling as one op, for a Dropout layer in training followed by a
// MaxPool2D with non-overlapping windows: the values and gradients of dropout() and
// max_pool2d() in a row, without the dropout's output and mask ever being stored.
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/dropout_max_pool.hpp"

namespace cnnlite {

/// max_pool2d(dropout(x, rate, stream, sample_ids), pool, stride) for x [N, C, H, W], with
/// stride >= pool (windows do not overlap) and 0 < rate < 1.
template <class T>
Variable<T> dropout_max_pool2d(const Variable<T>& x, double rate, const RandomStream& stream,
                               const std::int64_t* sample_ids, std::int64_t pool_h, std::int64_t pool_w,
                               std::int64_t stride_h, std::int64_t stride_w) {
    const Shape& xs = x.shape();
    check(xs.rank() == 4, "dropout_max_pool2d: input must be [N, C, H, W], got ", xs);
    check(rate > 0.0 && rate < 1.0, "dropout_max_pool2d: rate ", rate, " outside (0, 1)");
    check(sample_ids != nullptr, "dropout_max_pool2d: sample indices are required");
    check(stride_h >= pool_h && stride_w >= pool_w, "dropout_max_pool2d: overlapping windows (pool ", pool_h, "x",
          pool_w, ", stride ", stride_h, "x", stride_w, ") are not supported");
    const auto g = kernels::WindowGeometry::valid(xs[2], xs[3], pool_h, pool_w, stride_h, stride_w);
    g.validate("dropout_max_pool2d");
    const Shape ys{xs[0], xs[1], g.out_h(), g.out_w()};
    Tensor<T> y = Tensor<T>::uninitialized(ys);
    Tensor<std::int32_t> argmax = Tensor<std::int32_t>::uninitialized(ys);
    Tensor<T> winner_mask = Tensor<T>::uninitialized(ys);
    const std::int64_t features = xs[1] * xs[2] * xs[3];
    Tensor<T> scratch =
        Tensor<T>::uninitialized(Shape{num_threads() * kernels::dropout_max_pool_scratch(features)});
    kernels::dropout_max_pool_forward(x.value().data(), xs[0], xs[1], g, sample_ids, stream, rate, y.data(),
                                      argmax.data(), winner_mask.data(), scratch.data());

    const bool record = detail::should_record<T>({&x});
    Variable<T> out = detail::make_result<T>(std::move(y), "dropout_max_pool2d", record, +[](detail::Node<T>& n) {
        const Shape& in = n.input(0)->value.shape();
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::dropout_max_pool_backward(n.grad.data(), n.indices.data(), n.saved[0].data(), in[0] * in[1],
                                           n.value.shape()[2] * n.value.shape()[3], in[2] * in[3], dx->data(), fresh);
    }, {&x});
    if (record) {
        out.node()->indices = std::move(argmax);
        out.node()->saved[0] = std::move(winner_mask);
    }
    return out;
}

}  // namespace cnnlite
