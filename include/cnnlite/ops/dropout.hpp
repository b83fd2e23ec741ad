// Inverted dropout as a differentiable op: y = x * mask with mask in {0, 1/(1-rate)}.
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/dropout.hpp"

namespace cnnlite {

/// Drops each element with probability `rate`, keyed by `stream` and the rows' global
/// `sample_ids` (one per row of the first axis). A rate of 0 returns x unchanged.
template <class T>
Variable<T> dropout(const Variable<T>& x, double rate, const RandomStream& stream, const std::int64_t* sample_ids) {
    check(rate >= 0.0 && rate < 1.0, "dropout: rate ", rate, " outside [0, 1)");
    check(x.value().rank() >= 1, "dropout: input of shape ", x.shape(), " has no batch axis");
    if (rate == 0.0) return x;
    check(sample_ids != nullptr, "dropout: sample indices are required in training mode");
    const std::int64_t rows = x.shape()[0];
    const std::int64_t features = rows ? x.value().numel() / rows : 0;
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    Tensor<T> mask = Tensor<T>::uninitialized(x.shape());
    kernels::dropout_forward(x.value().data(), y.data(), mask.data(), rows, features, sample_ids, stream, rate);
    const bool record = detail::should_record<T>({&x});
    Variable<T> out = detail::make_result<T>(std::move(y), "dropout", record, +[](detail::Node<T>& n) {
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::dropout_backward(n.grad.data(), n.saved[0].data(), dx->data(), n.grad.numel(), !fresh);
    }, {&x});
    if (record) out.node()->saved[0] = std::move(mask);
    return out;
}

}  // namespace cnnlite
