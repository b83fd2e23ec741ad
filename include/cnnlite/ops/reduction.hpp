// Reductions to a scalar: sum and mean over all elements.
#pragma once

#include "cnnlite/autograd/variable.hpp"

namespace cnnlite {

namespace detail {
template <class T>
Variable<T> scaled_sum(const Variable<T>& a, double factor, const char* op) {
    Tensor<T> y = Tensor<T>::uninitialized(Shape{});
    y[0] = static_cast<T>(a.value().array().template cast<double>().sum() * factor);
    const bool record = should_record<T>({&a});
    Variable<T> out = make_result<T>(std::move(y), op, record, +[](Node<T>& n) {
        Tensor<T> g = Tensor<T>::full(n.input(0)->value.shape(), static_cast<T>(n.grad[0] * n.template args<double>()));
        accumulate_grad(n, 0, std::move(g));
    }, {&a});
    out.node()->set_args(factor);
    return out;
}
}  // namespace detail

/// Sum of all elements (a scalar of shape []), accumulated in double.
template <class T>
Variable<T> sum(const Variable<T>& a) {
    return detail::scaled_sum(a, 1.0, "sum");
}

/// Mean of all elements (a scalar of shape []).
template <class T>
Variable<T> mean(const Variable<T>& a) {
    check(a.value().numel() > 0, "mean: empty input of shape ", a.shape());
    return detail::scaled_sum(a, 1.0 / static_cast<double>(a.value().numel()), "mean");
}

}  // namespace cnnlite
