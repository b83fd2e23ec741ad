// Element-wise activation functions and their derivatives on raw buffers: ReLU, leaky ReLU, ELU,
// GELU (exact and tanh approximation), SiLU, sigmoid, tanh and softplus. Each function is a
// template parameter of the loop, so that the switch on the kind happens once per call, not
// per element. Sigmoid, SiLU and softplus use exp(-|x|) only, so they never overflow.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

/// The element-wise activations of activation_forward/activation_backward.
enum class Activation {
    leaky_relu,  ///< x > 0 ? x : alpha * x
    elu,         ///< x > 0 ? x : alpha * (exp(x) - 1)
    gelu,        ///< x * Phi(x), Phi the standard normal CDF
    gelu_tanh,   ///< 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    silu,        ///< x * sigmoid(x) (swish)
    sigmoid,     ///< 1 / (1 + exp(-x))
    tanh,        ///< tanh(x)
    softplus,    ///< log(1 + exp(x))
};

namespace detail {

/// 1 / (1 + exp(-x)) from exp(-|x|), which cannot overflow; NaN stays NaN.
template <class T>
inline T stable_sigmoid(T x) {
    const T e = std::exp(-std::fabs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

constexpr double gelu_tanh_k = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double gelu_tanh_c = 0.044715;
constexpr double inv_sqrt2 = 0.7071067811865476;
constexpr double inv_sqrt_2pi = 0.3989422804014327;

/// The activation A of x.
template <Activation A, class T>
inline T activate(T x, T alpha) {
    if constexpr (A == Activation::leaky_relu) {
        return x > T(0) ? x : alpha * x;
    } else if constexpr (A == Activation::elu) {
        return x > T(0) ? x : alpha * std::expm1(x);
    } else if constexpr (A == Activation::gelu) {
        return T(0.5) * x * (T(1) + std::erf(x * T(inv_sqrt2)));
    } else if constexpr (A == Activation::gelu_tanh) {
        return T(0.5) * x * (T(1) + std::tanh(T(gelu_tanh_k) * (x + T(gelu_tanh_c) * x * x * x)));
    } else if constexpr (A == Activation::silu) {
        return x * stable_sigmoid(x);
    } else if constexpr (A == Activation::sigmoid) {
        return stable_sigmoid(x);
    } else if constexpr (A == Activation::tanh) {
        return std::tanh(x);
    } else {
        // max(x, 0) + log(1 + exp(-|x|)): exact for large |x| where log(1 + exp(x)) overflows.
        return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::fabs(x)));
    }
}

/// dA/dx at x, given y = A(x) (some derivatives are cheapest from the output).
template <Activation A, class T>
inline T derivative(T x, T y, T alpha) {
    if constexpr (A == Activation::leaky_relu) {
        return x > T(0) ? T(1) : alpha;
    } else if constexpr (A == Activation::elu) {
        return x > T(0) ? T(1) : alpha * std::exp(x);
    } else if constexpr (A == Activation::gelu) {
        return T(0.5) * (T(1) + std::erf(x * T(inv_sqrt2))) + x * T(inv_sqrt_2pi) * std::exp(T(-0.5) * x * x);
    } else if constexpr (A == Activation::gelu_tanh) {
        const T t = std::tanh(T(gelu_tanh_k) * (x + T(gelu_tanh_c) * x * x * x));
        const T sech2 = T(1) - t * t;
        // sech2 == 0 far out, where x^2 may overflow and 0 * inf would give NaN.
        const T inner = sech2 == T(0) ? T(0)
                                      : T(0.5) * x * sech2 * T(gelu_tanh_k) * (T(1) + T(3 * gelu_tanh_c) * x * x);
        return T(0.5) * (T(1) + t) + inner;
    } else if constexpr (A == Activation::silu) {
        const T s = stable_sigmoid(x);
        return s * (T(1) + x * (T(1) - s));
    } else if constexpr (A == Activation::sigmoid) {
        return y * (T(1) - y);
    } else if constexpr (A == Activation::tanh) {
        return T(1) - y * y;
    } else {
        return stable_sigmoid(x);
    }
}

/// Elements per block of the parallel loops: blocks depend only on n, never on the threads.
constexpr std::int64_t activation_block = 4096;

template <Activation A, class T>
void activation_forward_as(T alpha, const T* x, T* y, std::int64_t n) {
    const std::int64_t blocks = (n + activation_block - 1) / activation_block;
#pragma omp parallel for schedule(static) if (n >= parallel_threshold)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t end = std::min(n, (b + 1) * activation_block);
        for (std::int64_t i = b * activation_block; i < end; ++i) y[i] = activate<A>(x[i], alpha);
    }
}

template <Activation A, class T>
void activation_backward_as(T alpha, const T* x, const T* y, const T* dy, T* dx, std::int64_t n, bool accumulate) {
    const std::int64_t blocks = (n + activation_block - 1) / activation_block;
#pragma omp parallel for schedule(static) if (n >= parallel_threshold)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t end = std::min(n, (b + 1) * activation_block);
        if (accumulate) {
            for (std::int64_t i = b * activation_block; i < end; ++i) dx[i] += dy[i] * derivative<A>(x[i], y[i], alpha);
        } else {
            for (std::int64_t i = b * activation_block; i < end; ++i) dx[i] = dy[i] * derivative<A>(x[i], y[i], alpha);
        }
    }
}

/// Calls f with the activation as a compile-time constant.
template <class F>
void with_activation(Activation a, F&& f) {
    switch (a) {
    case Activation::leaky_relu: return f(std::integral_constant<Activation, Activation::leaky_relu>{});
    case Activation::elu: return f(std::integral_constant<Activation, Activation::elu>{});
    case Activation::gelu: return f(std::integral_constant<Activation, Activation::gelu>{});
    case Activation::gelu_tanh: return f(std::integral_constant<Activation, Activation::gelu_tanh>{});
    case Activation::silu: return f(std::integral_constant<Activation, Activation::silu>{});
    case Activation::sigmoid: return f(std::integral_constant<Activation, Activation::sigmoid>{});
    case Activation::tanh: return f(std::integral_constant<Activation, Activation::tanh>{});
    case Activation::softplus: return f(std::integral_constant<Activation, Activation::softplus>{});
    }
}

}  // namespace detail

/// y[i] = a(x[i]) for n elements; `alpha` is the slope of leaky_relu and the scale of elu.
template <class T>
void activation_forward(Activation a, T alpha, const T* x, T* y, std::int64_t n) {
    detail::with_activation(a, [&](auto kind) { detail::activation_forward_as<decltype(kind)::value>(alpha, x, y, n); });
}

/// dx[i] = dy[i] * a'(x[i]) (y = a(x) from the forward pass), or dx[i] += ... when `accumulate`.
template <class T>
void activation_backward(Activation a, T alpha, const T* x, const T* y, const T* dy, T* dx, std::int64_t n,
                         bool accumulate) {
    detail::with_activation(a, [&](auto kind) {
        detail::activation_backward_as<decltype(kind)::value>(alpha, x, y, dy, dx, n, accumulate);
    });
}

/// y[i] = max(x[i], 0) for n elements (a NaN stays NaN, as std::max(x, 0) keeps it).
template <class T>
void relu_forward(const T* x, T* y, std::int64_t n) {
    const std::int64_t blocks = (n + detail::activation_block - 1) / detail::activation_block;
#pragma omp parallel for schedule(static) if (n >= parallel_threshold)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t end = std::min(n, (b + 1) * detail::activation_block);
#pragma omp simd
        for (std::int64_t i = b * detail::activation_block; i < end; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
    }
}

/// ReLU's gradient from its output: dx[i] = y[i] > 0 ? dy[i] : 0 (0 where y is 0 or NaN), or
/// dx[i] += ... when `accumulate`. A branch-free select, so random signs cost no mispredictions.
template <class T>
void relu_backward(const T* y, const T* dy, T* dx, std::int64_t n, bool accumulate) {
    const std::int64_t blocks = (n + detail::activation_block - 1) / detail::activation_block;
#pragma omp parallel for schedule(static) if (n >= parallel_threshold)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t begin = b * detail::activation_block;
        const std::int64_t end = std::min(n, begin + detail::activation_block);
        if (accumulate) {
#pragma omp simd
            for (std::int64_t i = begin; i < end; ++i) dx[i] += y[i] > T(0) ? dy[i] : T(0);
        } else {
#pragma omp simd
            for (std::int64_t i = begin; i < end; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
        }
    }
}

namespace detail {

/// ReLU's gradient for O rows of P outputs, serially (for kernels that fuse the ReLU and run it
/// inside their own parallel loops): g = dy where the ReLU let the output through (y > 0; all
/// of dy when `y` is null). Rows of g are `ld` apart (0: P).
template <class T>
void masked_gradient(const T* dyn, const T* yn, std::int64_t O, std::int64_t P, T* g, std::int64_t ld = 0) {
    if (ld == 0) ld = P;
    for (std::int64_t o = 0; o < O; ++o) {
        T* go = g + o * ld;
        const T* dyo = dyn + o * P;
        if (yn) {
            const T* yo = yn + o * P;
#pragma omp simd
            for (std::int64_t p = 0; p < P; ++p) go[p] = yo[p] > T(0) ? dyo[p] : T(0);
        } else {
            std::memcpy(go, dyo, static_cast<std::size_t>(P) * sizeof(T));
        }
    }
}

}  // namespace detail

}  // namespace cnnlite::kernels
