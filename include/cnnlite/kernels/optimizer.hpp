// Fused optimiser updates on raw arrays (Adam/AdamW, SGD with momentum/Nesterov): one pass over
// memory reads param, grad and the state buffers and writes param and state, instead of the
// three to five passes that array expressions take. The optimiser step is memory-bound, so
// passes are what it costs.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__SSE2__) || defined(__AVX__)
#include <immintrin.h>
#endif

namespace cnnlite::kernels {

/// Where Adam adds epsilon. Keras (2.x, the cnnlite default):
/// p -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps).
/// PyTorch: p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
enum class AdamEpsilon { keras, pytorch };

/// Per-step constants of a fused Adam update, worked out once per step in double and rounded
/// to T (see adam_coefficients()).
template <class T>
struct AdamCoefficients {
    AdamEpsilon placement = AdamEpsilon::keras;  ///< formula (and rounding order) to follow
    T beta1 = 0;            ///< decay of the first moment
    T beta2 = 0;            ///< decay of the second moment
    T one_minus_beta1 = 0;  ///< 1 - beta1, rounded once as the references do
    T one_minus_beta2 = 0;  ///< 1 - beta2
    T step_size = 0;        ///< Keras: lr sqrt(1 - beta2^t) / (1 - beta1^t); PyTorch: lr / (1 - beta1^t)
    T inv_sqrt_bias2 = 1;   ///< PyTorch only: 1 / sqrt(1 - beta2^t)
    T epsilon = 0;          ///< added to the denominator
    T weight_decay = 0;     ///< L2 penalty folded into the gradient: g + weight_decay * p
    T param_scale = 1;      ///< decoupled decay (AdamW): p * (1 - lr * decay) before the update
};

/// The constants of Adam's update number `t` (1-based) with learning rate `lr`. `weight_decay`
/// is the coupled L2 penalty (PyTorch Adam), `decoupled_weight_decay` the AdamW one.
template <class T>
AdamCoefficients<T> adam_coefficients(double lr, double beta1, double beta2, double epsilon, std::int64_t t,
                                      AdamEpsilon placement, double weight_decay = 0,
                                      double decoupled_weight_decay = 0) {
    const double bias1 = 1.0 - std::pow(beta1, static_cast<double>(t));
    const double bias2 = 1.0 - std::pow(beta2, static_cast<double>(t));
    AdamCoefficients<T> c;
    c.placement = placement;
    c.beta1 = static_cast<T>(beta1);
    c.beta2 = static_cast<T>(beta2);
    c.one_minus_beta1 = static_cast<T>(1.0 - beta1);
    c.one_minus_beta2 = static_cast<T>(1.0 - beta2);
    if (placement == AdamEpsilon::keras) {
        c.step_size = static_cast<T>(lr * std::sqrt(bias2) / bias1);
    } else {
        c.step_size = static_cast<T>(lr / bias1);
        c.inv_sqrt_bias2 = static_cast<T>(1.0 / std::sqrt(bias2));
    }
    c.epsilon = static_cast<T>(epsilon);
    c.weight_decay = static_cast<T>(weight_decay);
    c.param_scale = static_cast<T>(1.0 - lr * decoupled_weight_decay);
    return c;
}

/// Per-step constants of a fused SGD update (PyTorch semantics).
template <class T>
struct SgdCoefficients {
    T learning_rate = 0;        ///< step along the (momentum) direction
    T momentum = 0;             ///< 0: plain SGD, no buffer
    T one_minus_dampening = 1;  ///< weight of the new gradient in the momentum buffer
    T weight_decay = 0;         ///< L2 penalty folded into the gradient: g + weight_decay * p
    bool nesterov = false;      ///< step along g + momentum * buf instead of buf
    bool first_step = false;    ///< the buffer starts as the gradient itself (PyTorch's clone)
};

namespace detail {

/// Elements per block. Blocks are the unit of parallel work, and their boundaries depend only on
/// the array length, so every element goes through the same instructions whatever the thread
/// count (results are bitwise identical even where the compiler contracts a*b+c into an FMA in
/// the vector body but not in a scalar remainder).
inline constexpr std::int64_t optimizer_block = 1024;

/// Blocks below which the update runs serially: under ~32K elements, waking a second thread
/// costs more than it saves.
inline constexpr std::int64_t optimizer_parallel_min_blocks = 32;

/// Compile-time block length, so that GCC's -O2 cost model (which will not add a scalar
/// remainder loop) still vectorises SGD's full blocks.
using FullBlock = std::integral_constant<std::int64_t, optimizer_block>;

/// Calls block(offset, length) over [0, n): full blocks (split among threads when there are
/// enough of them) with a FullBlock length, then the remainder with a runtime length.
template <class BlockFn>
void for_each_block(std::int64_t n, BlockFn&& block) {
    const std::int64_t full = n / optimizer_block;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (full >= optimizer_parallel_min_blocks)
#endif
    for (std::int64_t b = 0; b < full; ++b) block(b * optimizer_block, FullBlock{});
    const std::int64_t done = full * optimizer_block;
    if (done < n) block(done, n - done);
}

// Adam needs a square root per element, and compilers vectorise a std::sqrt loop only under
// -fno-math-errno (sqrt of a negative must set errno), which a header cannot impose on its
// users. So Adam's loop is written over SIMD lanes: GCC and Clang give __m256/__m128 the
// ordinary arithmetic operators, and the one update function below serves both the vector body
// (Lanes) and the scalar remainder (ScalarLanes). Vector sqrt and division are correctly rounded
// like the scalar ones. AVX-512 CPUs use the AVX lanes: the step is memory-bound.

/// One element at a time: the portable fallback and the remainder of every vector loop.
template <class T>
struct ScalarLanes {
    using type = T;
    static constexpr std::int64_t width = 1;
    static T load(const T* x) { return *x; }
    static void store(T* x, T value) { *x = value; }
    static T broadcast(T value) { return value; }
    static T sqrt(T value) { return std::sqrt(value); }
};

#if defined(__AVX__)
template <class T>
struct Lanes : ScalarLanes<T> {};
template <>
struct Lanes<float> {
    using type = __m256;
    static constexpr std::int64_t width = 8;
    static type load(const float* x) { return _mm256_loadu_ps(x); }
    static void store(float* x, type value) { _mm256_storeu_ps(x, value); }
    static type broadcast(float value) { return _mm256_set1_ps(value); }
    static type sqrt(type value) { return _mm256_sqrt_ps(value); }
};
template <>
struct Lanes<double> {
    using type = __m256d;
    static constexpr std::int64_t width = 4;
    static type load(const double* x) { return _mm256_loadu_pd(x); }
    static void store(double* x, type value) { _mm256_storeu_pd(x, value); }
    static type broadcast(double value) { return _mm256_set1_pd(value); }
    static type sqrt(type value) { return _mm256_sqrt_pd(value); }
};
#elif defined(__SSE2__)
template <class T>
struct Lanes : ScalarLanes<T> {};
template <>
struct Lanes<float> {
    using type = __m128;
    static constexpr std::int64_t width = 4;
    static type load(const float* x) { return _mm_loadu_ps(x); }
    static void store(float* x, type value) { _mm_storeu_ps(x, value); }
    static type broadcast(float value) { return _mm_set1_ps(value); }
    static type sqrt(type value) { return _mm_sqrt_ps(value); }
};
template <>
struct Lanes<double> {
    using type = __m128d;
    static constexpr std::int64_t width = 2;
    static type load(const double* x) { return _mm_loadu_pd(x); }
    static void store(double* x, type value) { _mm_storeu_pd(x, value); }
    static type broadcast(double value) { return _mm_set1_pd(value); }
    static type sqrt(type value) { return _mm_sqrt_pd(value); }
};
#else
template <class T>
struct Lanes : ScalarLanes<T> {};
#endif

// Adam over [0, count) with lanes L, whole lane groups only; returns how many elements it did.
// The moments follow each reference's rounding order (PyTorch: beta*m + (1-beta)*g; Keras:
// m + (g-m)*(1-beta)), then the parameter update of the chosen epsilon placement.
template <class L, bool Keras, bool Coupled, class T>
std::int64_t adam_lanes(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                        std::int64_t count, const AdamCoefficients<T>& c) {
    using V = typename L::type;
    const V b1 = L::broadcast(c.beta1), b2 = L::broadcast(c.beta2);
    const V c1 = L::broadcast(c.one_minus_beta1), c2 = L::broadcast(c.one_minus_beta2);
    const V step = L::broadcast(c.step_size), inv_bias2 = L::broadcast(c.inv_sqrt_bias2);
    const V eps = L::broadcast(c.epsilon), wd = L::broadcast(c.weight_decay), scale = L::broadcast(c.param_scale);
    const std::int64_t end = count - count % L::width;
    for (std::int64_t i = 0; i < end; i += L::width) {
        V gi = L::load(g + i);
        const V pi = L::load(p + i);
        V mi = L::load(m + i), vi = L::load(v + i);
        if constexpr (Coupled) gi = gi + wd * pi;
        if constexpr (Keras) {
            mi = mi + (gi - mi) * c1;
            vi = vi + (gi * gi - vi) * c2;
            L::store(p + i, pi * scale - (mi * step) / (L::sqrt(vi) + eps));
        } else {
            mi = b1 * mi + c1 * gi;
            vi = b2 * vi + c2 * (gi * gi);
            L::store(p + i, pi * scale - step * (mi / (L::sqrt(vi) * inv_bias2 + eps)));
        }
        L::store(m + i, mi);
        L::store(v + i, vi);
    }
    return end;
}

template <bool Keras, bool Coupled, class T>
void adam_blocks(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamCoefficients<T>& c) {
    for_each_block(n, [&](std::int64_t o, auto length) {
        const std::int64_t done = adam_lanes<Lanes<T>, Keras, Coupled>(p + o, g + o, m + o, v + o, length, c);
        adam_lanes<ScalarLanes<T>, Keras, Coupled>(p + o + done, g + o + done, m + o + done, v + o + done,
                                                   length - done, c);
    });
}

enum class SgdKind { plain, momentum, nesterov };

// One block of SGD, PyTorch's order: d = g + wd*p; buf = momentum*buf + (1-dampening)*d
// (buf = d on the first step); d = nesterov ? d + momentum*buf : buf; p -= lr*d.
template <SgdKind Kind, bool Coupled, class T, class Length>
void sgd_block(T* __restrict p, const T* __restrict g, T* __restrict buf, Length length,
               const SgdCoefficients<T>& c) {
    // On the first step momentum*buf + 1*d with momentum = 0 gives d exactly: no branch needed.
    const T mu = c.first_step ? T(0) : c.momentum;
    const T keep = c.first_step ? T(1) : c.one_minus_dampening;
    const T lr = c.learning_rate, wd = c.weight_decay, nesterov_mu = c.momentum;
    for (std::int64_t i = 0; i < length; ++i) {
        T d = g[i];
        if constexpr (Coupled) d += wd * p[i];
        if constexpr (Kind != SgdKind::plain) {
            const T b = mu * buf[i] + keep * d;
            buf[i] = b;
            if constexpr (Kind == SgdKind::nesterov) {
                d += nesterov_mu * b;
            } else {
                d = b;
            }
        }
        p[i] -= lr * d;
    }
}

template <SgdKind Kind, bool Coupled, class T>
void sgd_blocks(T* p, const T* g, T* buf, std::int64_t n, const SgdCoefficients<T>& c) {
    for_each_block(n, [&](std::int64_t o, auto length) {
        sgd_block<Kind, Coupled>(p + o, g + o, Kind == SgdKind::plain ? buf : buf + o, length, c);
    });
}

}  // namespace detail

/// One fused Adam/AdamW update of `n` elements: reads param, grad, m, v once and writes param,
/// m, v once. OpenMP-parallel above ~32K elements; bitwise identical for any thread count.
/// The four arrays must not overlap.
template <class T>
void adam_update(T* param, const T* grad, T* m, T* v, std::int64_t n, const AdamCoefficients<T>& c) {
    static_assert(std::is_floating_point<T>::value, "adam_update: needs float or double");
    const bool keras = c.placement == AdamEpsilon::keras;
    const bool coupled = c.weight_decay != T(0);
    if (keras) {
        if (coupled) detail::adam_blocks<true, true>(param, grad, m, v, n, c);
        else detail::adam_blocks<true, false>(param, grad, m, v, n, c);
    } else {
        if (coupled) detail::adam_blocks<false, true>(param, grad, m, v, n, c);
        else detail::adam_blocks<false, false>(param, grad, m, v, n, c);
    }
}

/// One fused SGD update of `n` elements (PyTorch semantics); `momentum_buffer` may be null when
/// c.momentum is 0. OpenMP-parallel above ~32K elements; bitwise identical for any thread count.
template <class T>
void sgd_update(T* param, const T* grad, T* momentum_buffer, std::int64_t n, const SgdCoefficients<T>& c) {
    static_assert(std::is_floating_point<T>::value, "sgd_update: needs float or double");
    using detail::SgdKind;
    const SgdKind kind = c.momentum == T(0) ? SgdKind::plain : c.nesterov ? SgdKind::nesterov : SgdKind::momentum;
    const bool coupled = c.weight_decay != T(0);
    T* buf = momentum_buffer;
    if (kind == SgdKind::plain) {
        if (coupled) detail::sgd_blocks<SgdKind::plain, true>(param, grad, buf, n, c);
        else detail::sgd_blocks<SgdKind::plain, false>(param, grad, buf, n, c);
    } else if (kind == SgdKind::momentum) {
        if (coupled) detail::sgd_blocks<SgdKind::momentum, true>(param, grad, buf, n, c);
        else detail::sgd_blocks<SgdKind::momentum, false>(param, grad, buf, n, c);
    } else {
        if (coupled) detail::sgd_blocks<SgdKind::nesterov, true>(param, grad, buf, n, c);
        else detail::sgd_blocks<SgdKind::nesterov, false>(param, grad, buf, n, c);
    }
}

/// One step of an exponential moving average over `n` elements: average += weight * (value -
/// average), which is decay * average + (1 - decay) * value for weight = 1 - decay, written so
/// that a value that stays put is kept exactly. OpenMP-parallel above ~32K elements; bitwise
/// identical for any thread count. The arrays must not overlap.
template <class T>
void ema_update(T* average, const T* value, std::int64_t n, T weight) {
    static_assert(std::is_floating_point<T>::value, "ema_update: needs float or double");
    detail::for_each_block(n, [&](std::int64_t o, auto length) {
        T* __restrict a = average + o;
        const T* __restrict v = value + o;
        for (std::int64_t i = 0; i < length; ++i) a[i] += weight * (v[i] - a[i]);
    });
}

}  // namespace cnnlite::kernels
