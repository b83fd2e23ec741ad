// Batch normalisation over the channels of an [N, C, inner] layout (inner = H*W for images, 1
// for [N, C] features). Statistics are accumulated in double, channel by channel, and the
// variance is formed from squared deviations about the mean (a second pass), never as
// E[x^2] - E[x]^2, so that channels with a large mean and a small spread stay accurate.
// Every channel is summed by one thread in a fixed order: results do not depend on the
// thread count. A ReLU after the normalisation can run inside it: applied in the same pass as
// the normalisation, and its mask read by the backward passes (batch_norm_relu in ops/).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

/// Layout of a batch-normalised tensor: `batch` blocks of `channels` runs of `inner` values.
struct BatchNormShape {
    std::int64_t batch = 0;     ///< N
    std::int64_t channels = 0;  ///< C
    std::int64_t inner = 1;     ///< values per (sample, channel): H*W, or 1

    std::int64_t numel() const { return batch * channels * inner; }  ///< N*C*inner
    std::int64_t per_channel() const { return batch * inner; }       ///< values per channel
};

/// sum[c] = sum of channel c's values, in double.
template <class T>
void batch_norm_channel_sums(const BatchNormShape& s, const T* x, double* sum) {
#pragma omp parallel for schedule(static) if (s.numel() >= parallel_threshold)
    for (std::int64_t c = 0; c < s.channels; ++c) {
        double acc = 0;
        for (std::int64_t n = 0; n < s.batch; ++n) {
            const T* p = x + (n * s.channels + c) * s.inner;
#pragma omp simd reduction(+ : acc)
            for (std::int64_t i = 0; i < s.inner; ++i) acc += static_cast<double>(p[i]);
        }
        sum[c] = acc;
    }
}

/// squares[c] = sum over channel c of (x - mean[c])^2, in double.
template <class T>
void batch_norm_channel_squares(const BatchNormShape& s, const T* x, const double* mean, double* squares) {
#pragma omp parallel for schedule(static) if (s.numel() >= parallel_threshold)
    for (std::int64_t c = 0; c < s.channels; ++c) {
        const double m = mean[c];
        double acc = 0;
        for (std::int64_t n = 0; n < s.batch; ++n) {
            const T* p = x + (n * s.channels + c) * s.inner;
#pragma omp simd reduction(+ : acc)
            for (std::int64_t i = 0; i < s.inner; ++i) {
                const double d = static_cast<double>(p[i]) - m;
                acc += d * d;
            }
        }
        squares[c] = acc;
    }
}

/// y = (x - mean[c]) * scale[c] + shift[c], where scale = gamma / sqrt(var + eps) and
/// shift = beta, then max(y, 0) when `relu` (as kernels::relu_forward: NaN stays NaN), in the
/// same pass. Subtracting the mean first keeps float outputs accurate for large means.
template <class T>
void batch_norm_apply(const BatchNormShape& s, const T* x, const T* mean, const T* scale, const T* shift, T* y,
                      bool relu = false) {
    const std::int64_t planes = s.batch * s.channels;
#pragma omp parallel for schedule(static) if (s.numel() >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const std::int64_t c = p % s.channels;
        const T m = mean[c], a = scale[c], b = shift[c];
        const T* xp = x + p * s.inner;
        T* yp = y + p * s.inner;
        if (relu) {
#pragma omp simd
            for (std::int64_t i = 0; i < s.inner; ++i) {
                const T v = (xp[i] - m) * a + b;
                yp[i] = v < T(0) ? T(0) : v;
            }
        } else {
#pragma omp simd
            for (std::int64_t i = 0; i < s.inner; ++i) yp[i] = (xp[i] - m) * a + b;
        }
    }
}

namespace detail {
/// value where key > 0, else +0 (NaN keys give 0; a NaN value where the key is positive stays
/// NaN): relu_backward's select, as a bit mask so that GCC vectorises it inside the double
/// reductions of batch_norm_grad_sums, where a select is "control flow in loop" to it.
template <class T>
inline T keep_if_positive(T key, T value) {
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    const Bits mask = Bits(0) - static_cast<Bits>(key > T(0));
    return __builtin_bit_cast(T, static_cast<Bits>(__builtin_bit_cast(Bits, value) & mask));
}
}  // namespace detail

/// Per channel: sum_dy[c] = sum of dy and sum_dy_xhat[c] = sum of dy * (x - mean[c]) * invstd[c],
/// in double (the gradients of beta and gamma, and the two terms the input gradient needs).
/// With `relu_y` (the output of a fused ReLU; null: none), dy is first masked by relu_y > 0.
template <class T>
void batch_norm_grad_sums(const BatchNormShape& s, const T* x, const T* dy, const T* mean, const T* invstd,
                          double* sum_dy, double* sum_dy_xhat, const T* relu_y = nullptr) {
#pragma omp parallel for schedule(static) if (s.numel() >= parallel_threshold)
    for (std::int64_t c = 0; c < s.channels; ++c) {
        const T m = mean[c], is = invstd[c];
        double a = 0, b = 0;
        for (std::int64_t n = 0; n < s.batch; ++n) {
            const std::int64_t offset = (n * s.channels + c) * s.inner;
            const T* xp = x + offset;
            const T* gp = dy + offset;
            const T* yp = relu_y ? relu_y + offset : nullptr;
            if (yp) {  // behind a fused ReLU: dy where its output is > 0, as relu_backward
#pragma omp simd reduction(+ : a, b)
                for (std::int64_t i = 0; i < s.inner; ++i) {
                    const T g = detail::keep_if_positive(yp[i], gp[i]);
                    a += static_cast<double>(g);
                    b += static_cast<double>(g) * static_cast<double>((xp[i] - m) * is);
                }
            } else {
#pragma omp simd reduction(+ : a, b)
                for (std::int64_t i = 0; i < s.inner; ++i) {
                    a += static_cast<double>(gp[i]);
                    b += static_cast<double>(gp[i]) * static_cast<double>((xp[i] - m) * is);
                }
            }
        }
        sum_dy[c] = a;
        sum_dy_xhat[c] = b;
    }
}

/// Input gradient of training-mode batch normalisation (through the batch statistics):
/// dx = scale[c] * (dy - mean_dy[c] - xhat * mean_dy_xhat[c]), xhat = (x - mean[c]) * invstd[c],
/// where scale = gamma * invstd and mean_dy, mean_dy_xhat are the sums above divided by the
/// number of values per channel. dx is overwritten, or added to when `accumulate`. With
/// `relu_y`, dy is masked by relu_y > 0 first, as in batch_norm_grad_sums.
template <class T>
void batch_norm_train_dx(const BatchNormShape& s, const T* x, const T* dy, const T* mean, const T* invstd,
                         const T* scale, const T* mean_dy, const T* mean_dy_xhat, T* dx, bool accumulate,
                         const T* relu_y = nullptr) {
    const std::int64_t planes = s.batch * s.channels;
#pragma omp parallel for schedule(static) if (s.numel() >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const std::int64_t c = p % s.channels;
        const T m = mean[c], is = invstd[c], a = scale[c], g0 = mean_dy[c], g1 = mean_dy_xhat[c];
        const T* xp = x + p * s.inner;
        const T* gp = dy + p * s.inner;
        T* dp = dx + p * s.inner;
        if (relu_y) {  // behind a fused ReLU: dy where its output is > 0
            const T* yp = relu_y + p * s.inner;
            if (accumulate) {
#pragma omp simd
                for (std::int64_t i = 0; i < s.inner; ++i)
                    dp[i] += a * (detail::keep_if_positive(yp[i], gp[i]) - g0 - (xp[i] - m) * is * g1);
            } else {
#pragma omp simd
                for (std::int64_t i = 0; i < s.inner; ++i)
                    dp[i] = a * (detail::keep_if_positive(yp[i], gp[i]) - g0 - (xp[i] - m) * is * g1);
            }
        } else if (accumulate) {
#pragma omp simd
            for (std::int64_t i = 0; i < s.inner; ++i) dp[i] += a * (gp[i] - g0 - (xp[i] - m) * is * g1);
        } else {
#pragma omp simd
            for (std::int64_t i = 0; i < s.inner; ++i) dp[i] = a * (gp[i] - g0 - (xp[i] - m) * is * g1);
        }
    }
}

/// Input gradient of inference-mode batch normalisation (an affine map per channel):
/// dx = dy * scale[c], overwritten or added to when `accumulate`.
template <class T>
void batch_norm_affine_dx(const BatchNormShape& s, const T* dy, const T* scale, T* dx, bool accumulate) {
    const std::int64_t planes = s.batch * s.channels;
#pragma omp parallel for schedule(static) if (s.numel() >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const T a = scale[p % s.channels];
        const T* gp = dy + p * s.inner;
        T* dp = dx + p * s.inner;
        if (accumulate) {
#pragma omp simd
            for (std::int64_t i = 0; i < s.inner; ++i) dp[i] += gp[i] * a;
        } else {
#pragma omp simd
            for (std::int64_t i = 0; i < s.inner; ++i) dp[i] = gp[i] * a;
        }
    }
}

/// Batch normalisation with fixed statistics folded into the convolution before it, for
/// inference: for each output channel o, with s = gamma[o] / sqrt(var[o] + epsilon), the
/// o-th filter's `filter_size` weights become w * s and its bias (bias[o] - mean[o]) * s +
/// beta[o]. `bias`, `gamma` and `beta` may be null (0, 1 and 0). Each value is formed in double
/// and rounded once. The variances must not be negative (the caller checks, naming the layer).
template <class T>
void fold_batch_norm(std::int64_t out_channels, std::int64_t filter_size, const T* w, const T* bias, const T* gamma,
                     const T* beta, const T* mean, const T* var, double epsilon, T* w_out, T* b_out) {
    for (std::int64_t o = 0; o < out_channels; ++o) {
        const double g = gamma != nullptr ? static_cast<double>(gamma[o]) : 1.0;
        const double s = g / std::sqrt(static_cast<double>(var[o]) + epsilon);
        const T* wo = w + o * filter_size;
        T* wf = w_out + o * filter_size;
        for (std::int64_t i = 0; i < filter_size; ++i) wf[i] = static_cast<T>(static_cast<double>(wo[i]) * s);
        const double b = bias != nullptr ? static_cast<double>(bias[o]) : 0.0;
        const double shift = beta != nullptr ? static_cast<double>(beta[o]) : 0.0;
        b_out[o] = static_cast<T>((b - static_cast<double>(mean[o])) * s + shift);
    }
}

}  // namespace cnnlite::kernels
