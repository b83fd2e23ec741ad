// Gradient clipping by global norm, with the semantics of PyTorch's
// torch.nn.utils.clip_grad_norm_ (norm_type 2, error_if_nonfinite=False).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// The L2 norm of all gradients of `variables` taken together (variables without a gradient
/// count as none), summed in double in list and element order, so the result does not depend
/// on the thread count. 0 when no variable has a gradient. Squares of double gradients above
/// ~1e154 overflow, making the norm infinite.
template <class T>
double grad_norm(const std::vector<Variable<T>>& variables) {
    double sum = 0;
    for (const Variable<T>& v : variables) {
        if (!v.has_grad()) continue;
        const Tensor<T>& g = v.grad();
        const T* x = g.data();
        for (std::int64_t i = 0; i < g.numel(); ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    }
    return std::sqrt(sum);
}

/// Scales the gradients of `variables` in place so that their global L2 norm is at most
/// `max_norm` and returns the norm before clipping, as torch.nn.utils.clip_grad_norm_: with
/// norm = grad_norm(variables), every gradient is multiplied by max_norm / (norm + 1e-6) when
/// that is below 1, and left alone otherwise. Call it between backward and the optimiser step.
///
/// A non-finite norm does what PyTorch does with error_if_nonfinite=False: a NaN norm makes
/// every gradient NaN, an infinite one multiplies the gradients by 0 (infinite elements become
/// NaN). The returned norm says so; skip such a step (as mixed-precision loss scalers do).
/// `max_norm` must be > 0 (infinity: only measure).
template <class T>
double clip_grad_norm(const std::vector<Variable<T>>& variables, double max_norm) {
    check(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
    const double norm = grad_norm(variables);
    const double scale = max_norm / (norm + 1e-6);
    // Written so that a NaN scale (NaN norm) is applied too, as PyTorch's clamp(scale, max=1) does.
    if (!(scale >= 1.0)) {
        const T s = static_cast<T>(scale);
        for (Variable<T> v : variables) {  // a handle: its gradient is the variable's own
            if (!v.has_grad()) continue;
            Tensor<T>& g = v.grad();
            T* x = g.data();
            for (std::int64_t i = 0; i < g.numel(); ++i) x[i] *= s;
        }
    }
    return norm;
}

}  // namespace cnnlite
