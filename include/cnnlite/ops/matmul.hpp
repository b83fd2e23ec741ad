// Matrix product of two rank-2 variables: [m, k] x [k, n] -> [m, n].
#pragma once

#include "cnnlite/autograd/variable.hpp"

namespace cnnlite {

/// The matrix product a b of [m, k] and [k, n] variables; backward: dA = dY B^T, dB = A^T dY.
template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b) {
    check(a.value().rank() == 2 && b.value().rank() == 2 && a.shape()[1] == b.shape()[0], "matmul: shapes ",
          a.shape(), " and ", b.shape(), " cannot be multiplied");
    const std::int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
    Tensor<T> y = Tensor<T>::uninitialized(Shape{m, n});
    y.matrix().noalias() = a.value().matrix() * b.value().matrix();
    const bool record = detail::should_record<T>({&a, &b});
    (void)k;
    return detail::make_result<T>(std::move(y), "matmul", record, +[](detail::Node<T>& n) {
        const auto& A = n.input(0)->value;
        const auto& B = n.input(1)->value;
        Tensor<T>* g = nullptr;
        if (detail::wants_grad(n, 0)) {  // dA = dY B^T
            if (detail::grad_buffer(n, 0, g)) g->matrix().noalias() = n.grad.matrix() * B.matrix().transpose();
            else g->matrix().noalias() += n.grad.matrix() * B.matrix().transpose();
        }
        if (detail::wants_grad(n, 1)) {  // dB = A^T dY
            if (detail::grad_buffer(n, 1, g)) g->matrix().noalias() = A.matrix().transpose() * n.grad.matrix();
            else g->matrix().noalias() += A.matrix().transpose() * n.grad.matrix();
        }
    }, {&a, &b});
}

}  // namespace cnnlite
