// Activations: relu, and row-wise softmax / log-softmax over the last axis.
#pragma once

#include <algorithm>
#include <cmath>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/softmax.hpp"

namespace cnnlite {

/// max(x, 0) element-wise; the gradient at 0 is taken as 0.
template <class T>
Variable<T> relu(const Variable<T>& x) {
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    y.array() = x.value().array().max(T(0));
    const bool record = detail::should_record<T>({&x});
    return detail::make_result<T>(std::move(y), "relu", record, +[](detail::Node<T>& n) {
        Tensor<T> g = Tensor<T>::uninitialized(n.grad.shape());
        g.array() = (n.value.array() > T(0)).select(n.grad.array(), T(0));
        detail::accumulate_grad(n, 0, std::move(g));
    }, {&x});
}

/// Softmax over the last axis of x viewed as [rows, classes].
template <class T>
Variable<T> softmax(const Variable<T>& x) {
    const std::int64_t classes = x.shape()[-1];
    const std::int64_t rows = classes ? x.value().numel() / classes : 0;
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    kernels::softmax_rows(x.value().data(), y.data(), rows, classes);
    const bool record = detail::should_record<T>({&x});
    return detail::make_result<T>(std::move(y), "softmax", record, +[](detail::Node<T>& n) {
        // dx = y * (dy - sum(dy * y)) per row.
        const std::int64_t c = n.value.shape()[-1];
        const std::int64_t r = c ? n.value.numel() / c : 0;
        Tensor<T> g = Tensor<T>::uninitialized(n.value.shape());
        auto y = n.value.matrix(r, c).array();
        auto dy = n.grad.matrix(r, c).array();
        auto dot = (dy * y).rowwise().sum();
        g.matrix(r, c).array() = y * (dy.colwise() - dot);
        detail::accumulate_grad(n, 0, std::move(g));
    }, {&x});
}

/// log(softmax(x)) over the last axis, computed stably as x - logsumexp(x).
template <class T>
Variable<T> log_softmax(const Variable<T>& x) {
    const std::int64_t classes = x.shape()[-1];
    const std::int64_t rows = classes ? x.value().numel() / classes : 0;
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    kernels::log_softmax_rows(x.value().data(), y.data(), rows, classes);
    const bool record = detail::should_record<T>({&x});
    return detail::make_result<T>(std::move(y), "log_softmax", record, +[](detail::Node<T>& n) {
        // dx = dy - softmax(x) * sum(dy) per row.
        const std::int64_t c = n.value.shape()[-1];
        const std::int64_t r = c ? n.value.numel() / c : 0;
        Tensor<T> g = Tensor<T>::uninitialized(n.value.shape());
        auto p = n.value.matrix(r, c).array().exp();
        auto dy = n.grad.matrix(r, c).array();
        auto total = dy.rowwise().sum();
        g.matrix(r, c).array() = dy - p * total.replicate(1, c);
        detail::accumulate_grad(n, 0, std::move(g));
    }, {&x});
}

}  // namespace cnnlite
