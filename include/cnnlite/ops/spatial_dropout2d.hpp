// Spatial dropout as a differentiable op (Keras' SpatialDropout2D): whole channels of an NCHW
// tensor are dropped per sample, so that neighbouring pixels, which are strongly correlated,
// cannot stand in for a dropped one. Masks are keyed like dropout's.
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/dropout.hpp"

namespace cnnlite {

/// Drops each (sample, channel) of x ([N, C, H, W]) with probability `rate` and scales the kept
/// ones by 1 / (1 - rate). The decisions are keyed by `stream` and the samples' global
/// `sample_ids` (one per sample) exactly as dropout keys those of an [N, C] input. A rate of 0
/// returns x unchanged.
template <class T>
Variable<T> spatial_dropout2d(const Variable<T>& x, double rate, const RandomStream& stream,
                              const std::int64_t* sample_ids) {
    check(rate >= 0.0 && rate < 1.0, "spatial_dropout2d: rate ", rate, " outside [0, 1)");
    const Shape& xs = x.shape();
    check(xs.rank() == 4, "spatial_dropout2d: input must be [N, C, H, W], got ", xs);
    if (rate == 0.0) return x;
    check(sample_ids != nullptr, "spatial_dropout2d: sample indices are required in training mode");
    Tensor<T> y = Tensor<T>::uninitialized(xs);
    Tensor<T> mask = Tensor<T>::uninitialized(Shape{xs[0], xs[1]});
    kernels::spatial_dropout_forward(x.value().data(), y.data(), mask.data(), xs[0], xs[1], xs[2] * xs[3], sample_ids,
                                     stream, rate);
    const bool record = detail::should_record<T>({&x});
    Variable<T> out = detail::make_result<T>(std::move(y), "spatial_dropout2d", record, +[](detail::Node<T>& n) {
        const Shape& s = n.value.shape();
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::spatial_dropout_backward(n.grad.data(), n.saved[0].data(), dx->data(), s[0] * s[1], s[2] * s[3], !fresh);
    }, {&x});
    if (record) out.node()->saved[0] = std::move(mask);
    return out;
}

}  // namespace cnnlite
