// Views with another shape: reshape and flatten. No data moves forward or backward.
#pragma once

#include "cnnlite/autograd/variable.hpp"

namespace cnnlite {

/// The same elements seen with `shape` (one extent may be -1).
template <class T>
Variable<T> reshape(const Variable<T>& a, const Shape& shape) {
    Tensor<T> y = a.value().reshape(shape);
    const bool record = detail::should_record<T>({&a});
    return detail::make_result<T>(std::move(y), "reshape", record, +[](detail::Node<T>& n) {
        // Hand the buffer over instead of copying it (unless the gradient must stay visible).
        Tensor<T> g = n.grad.reshape(n.input(0)->value.shape());
        if (!n.retains_grad) n.grad = Tensor<T>();
        detail::accumulate_grad(n, 0, std::move(g));
    }, {&a});
}

/// [N, d1, d2, ...] -> [N, d1*d2*...], keeping the first axis (Keras' Flatten; C,H,W order).
template <class T>
Variable<T> flatten(const Variable<T>& a) {
    check(a.value().rank() >= 1, "flatten: input of shape ", a.shape(), " has no batch axis");
    return reshape(a, Shape{a.shape()[0], -1});
}

}  // namespace cnnlite
