// Element-wise differentiable ops on variables of equal shape: add, sub, mul, scale.
#pragma once

#include "cnnlite/autograd/variable.hpp"

namespace cnnlite {

/// a + b (same shape).
template <class T>
Variable<T> add(const Variable<T>& a, const Variable<T>& b) {
    check_same_shape("add", a.value(), b.value());
    Tensor<T> y = Tensor<T>::uninitialized(a.shape());
    y.array() = a.value().array() + b.value().array();
    const bool record = detail::should_record<T>({&a, &b});
    return detail::make_result<T>(std::move(y), "add", record, +[](detail::Node<T>& n) {
        for (int i = 0; i < 2; ++i)
            if (detail::wants_grad(n, i)) detail::accumulate_grad(n, i, n.grad.clone());
    }, {&a, &b});
}

/// a - b (same shape).
template <class T>
Variable<T> sub(const Variable<T>& a, const Variable<T>& b) {
    check_same_shape("sub", a.value(), b.value());
    Tensor<T> y = Tensor<T>::uninitialized(a.shape());
    y.array() = a.value().array() - b.value().array();
    const bool record = detail::should_record<T>({&a, &b});
    return detail::make_result<T>(std::move(y), "sub", record, +[](detail::Node<T>& n) {
        if (detail::wants_grad(n, 0)) detail::accumulate_grad(n, 0, n.grad.clone());
        if (detail::wants_grad(n, 1)) {
            Tensor<T> g = Tensor<T>::uninitialized(n.grad.shape());
            g.array() = -n.grad.array();
            detail::accumulate_grad(n, 1, std::move(g));
        }
    }, {&a, &b});
}

/// a * b element-wise (same shape).
template <class T>
Variable<T> mul(const Variable<T>& a, const Variable<T>& b) {
    check_same_shape("mul", a.value(), b.value());
    Tensor<T> y = Tensor<T>::uninitialized(a.shape());
    y.array() = a.value().array() * b.value().array();
    const bool record = detail::should_record<T>({&a, &b});
    return detail::make_result<T>(std::move(y), "mul", record, +[](detail::Node<T>& n) {
        for (int i = 0; i < 2; ++i) {
            if (!detail::wants_grad(n, i)) continue;
            Tensor<T> g = Tensor<T>::uninitialized(n.grad.shape());
            g.array() = n.grad.array() * n.input(1 - i)->value.array();
            detail::accumulate_grad(n, i, std::move(g));
        }
    }, {&a, &b});
}

/// a * factor.
template <class T>
Variable<T> scale(const Variable<T>& a, double factor) {
    Tensor<T> y = Tensor<T>::uninitialized(a.shape());
    y.array() = a.value().array() * static_cast<T>(factor);
    const bool record = detail::should_record<T>({&a});
    Variable<T> out = detail::make_result<T>(std::move(y), "scale", record, +[](detail::Node<T>& n) {
        Tensor<T> g = Tensor<T>::uninitialized(n.grad.shape());
        g.array() = n.grad.array() * static_cast<T>(n.template args<double>());
        detail::accumulate_grad(n, 0, std::move(g));
    }, {&a});
    out.node()->set_args(factor);
    return out;
}

/// add(a, b).
template <class T>
Variable<T> operator+(const Variable<T>& a, const Variable<T>& b) { return add(a, b); }
/// sub(a, b).
template <class T>
Variable<T> operator-(const Variable<T>& a, const Variable<T>& b) { return sub(a, b); }
/// mul(a, b): the element-wise product.
template <class T>
Variable<T> operator*(const Variable<T>& a, const Variable<T>& b) { return mul(a, b); }

}  // namespace cnnlite
