// Convolution, ReLU and max pooling fused, image by image: each image's convolution output is
// computed into a per-thread scratch buffer that stays in cache, rectified and pooled at once,
// so the full-resolution activation never travels through memory. With 2x2 windows of stride 2
// and a small patch (float, AVX2 or AVX-512) not even the conv plane is written: the image's
// taps are laid out window-major once, so that each window's four positions are four vectors of
// taps, and every channel's outputs are pooled in registers as they are made. Backward needs
// only the pooled values and the argmax of each window: the gradient reaches one conv output per
// window (and none where the pooled value was clamped to 0 by the ReLU).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "cnnlite/kernels/conv2d.hpp"
#include "cnnlite/kernels/parallel.hpp"
#include "cnnlite/kernels/pooling.hpp"

namespace cnnlite::kernels {

namespace detail {

/// Scratch of one thread (elements of T): an im2col buffer, then either one image's conv
/// output (or its gradient) or the window-major taps and window table of the 2x2 backward.
inline std::int64_t conv_relu_pool_thread_scratch(const ConvShape& s) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    return K * P + std::max(O * P, K * (P + 28) + P / 4 + 8);
}

/// Weight and bias gradients of one image's O channels, added to pw [O, K] and pb [O], when
/// only each pooling window's winner carries gradient (none where the ReLU clamped the
/// window's maximum): g = y > 0 ? dy : 0, pb += sum g, pw[k] += sum g * col[k][winner],
/// vectorised over the windows with a gather. `g` holds Q elements of scratch.
template <class T>
void winner_weight_grad(const T* col, std::int64_t K, std::int64_t P, const T* y, const T* dy, const std::int32_t* arg,
                        std::int64_t O, std::int64_t Q, T* pw, T* pb, T* g) {
    for (std::int64_t o = 0; o < O; ++o) {
        const T* yo = y + o * Q;
        const T* dyo = dy + o * Q;
        const std::int32_t* ao = arg + o * Q;
        T bias_sum = 0;
#pragma omp simd reduction(+ : bias_sum)
        for (std::int64_t q = 0; q < Q; ++q) {
            g[q] = yo[q] > T(0) ? dyo[q] : T(0);
            bias_sum += g[q];
        }
        pb[o] += bias_sum;
        for (std::int64_t k = 0; k < K; ++k) {
            const T* ck = col + k * P;
            T sum = 0;
#pragma omp simd reduction(+ : sum)
            for (std::int64_t q = 0; q < Q; ++q) sum += g[q] * ck[ao[q]];
            pw[o * K + k] += sum;
        }
    }
}

#ifdef __AVX2__
/// winner_weight_grad for 2x2, stride-2 windows over a conv plane `in_w` wide, eight windows
/// per step with AVX2. The winner is one of a window's four positions, so instead of gathering
/// its taps per channel, `taps` [K][4][Qp] holds the taps of all four positions window-major
/// (built once per image, shared by every channel; Qp = Q rounded up to 8, zero-padded) and
/// blends pick the winner's: the same products as the gather, without it. `base` [Qp] is each
/// window's top-left index in the plane.
template <int K>
void winner_weight_grad_2x2(const float* taps, const std::int32_t* base, std::int64_t Q, std::int32_t in_w,
                            const float* y, const float* dy, const std::int32_t* arg, std::int64_t O, float* pw,
                            float* pb) {
    const std::int64_t Qp = (Q + 7) / 8 * 8, full = Q / 8 * 8;
    const __m256i right = _mm256_set1_epi32(1), below = _mm256_set1_epi32(in_w),
                  below_right = _mm256_set1_epi32(in_w + 1);
    const auto hsum = [](__m256 v) {
        const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
        return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
    };
    for (std::int64_t o = 0; o < O; ++o) {
        __m256 acc[K];
        for (int k = 0; k < K; ++k) acc[k] = _mm256_setzero_ps();
        __m256 bias_acc = _mm256_setzero_ps();
        const auto eight = [&](const float* yq, const float* dyq, const std::int32_t* aq, std::int64_t q) {
            const __m256 g = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(yq), _mm256_setzero_ps(), _CMP_GT_OQ),
                                           _mm256_loadu_ps(dyq));
            bias_acc = _mm256_add_ps(bias_acc, g);
            const __m256i at = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(aq)),
                                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + q)));
            const __m256 m1 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, right));
            const __m256 m2 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, below));
            const __m256 m3 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, below_right));
            for (int k = 0; k < K; ++k) {
                const float* t = taps + 4 * k * Qp + q;
                __m256 v = _mm256_loadu_ps(t);
                v = _mm256_blendv_ps(v, _mm256_loadu_ps(t + Qp), m1);
                v = _mm256_blendv_ps(v, _mm256_loadu_ps(t + 2 * Qp), m2);
                v = _mm256_blendv_ps(v, _mm256_loadu_ps(t + 3 * Qp), m3);
                acc[k] = _mm256_fmadd_ps(g, v, acc[k]);
            }
        };
        const float* yo = y + o * Q;
        const float* dyo = dy + o * Q;
        const std::int32_t* ao = arg + o * Q;
        for (std::int64_t q = 0; q < full; q += 8) eight(yo + q, dyo + q, ao + q, q);
        if (full < Q) {  // the last windows from zero-padded copies (y = 0: no gradient)
            alignas(32) float yt[8] = {}, dyt[8] = {};
            alignas(32) std::int32_t at[8] = {};
            std::copy(yo + full, yo + Q, yt);
            std::copy(dyo + full, dyo + Q, dyt);
            std::copy(ao + full, ao + Q, at);
            eight(yt, dyt, at, full);
        }
        for (int k = 0; k < K; ++k) pw[o * K + k] += hsum(acc[k]);
        pb[o] += hsum(bias_acc);
    }
}

/// The forward of a 2x2, stride-2 pooling from the same window-major taps: for a vector of
/// windows at a time, each channel's conv output at the windows' four positions (the bias, then
/// one fused multiply-add per tap in tap order, as small_patch_row computes it), their maximum
/// with the winner of max_pool_2x2_row (the first maximum in row-major order; a NaN wins and
/// stays) and the ReLU, into y [O, Q] and arg [O, Q]. No conv plane is written and no lane is
/// shuffled: the windows' four positions are four vectors of taps. With AVX-512 a vector holds
/// 16 windows (masked loads and stores past the taps' 8-float padding); every lane computes
/// what the 8-wide version computes, so the two give the same bits.
template <int K>
void window_major_conv_relu_pool(const float* taps, const std::int32_t* base, std::int64_t Q, std::int32_t in_w,
                                 const float* w, const float* bias, std::int64_t O, float* y, std::int32_t* arg) {
    const std::int64_t Qp = (Q + 7) / 8 * 8;
#ifdef __AVX512F__
    const __m512i offsets[4] = {_mm512_setzero_si512(), _mm512_set1_epi32(1), _mm512_set1_epi32(in_w),
                                _mm512_set1_epi32(in_w + 1)};
    const auto lanes = [](std::int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u); };
    for (std::int64_t o = 0; o < O; ++o) {
        __m512 wk[K];
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) wk[k] = _mm512_set1_ps(w[o * K + k]);
        const __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
        float* yo = y + o * Q;
        std::int32_t* ao = arg + o * Q;
        for (std::int64_t q = 0; q < Qp; q += 16) {
            const __mmask16 load = lanes(Qp - q);  // the taps' rows are Qp long
            __m512 best = b;
            __m512i offset = offsets[0];
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) {
                __m512 v = b;
#pragma GCC unroll 16
                for (int k = 0; k < K; ++k)
                    v = _mm512_fmadd_ps(wk[k], _mm512_maskz_loadu_ps(load, taps + (4 * k + j) * Qp + q), v);
                if (j == 0) {
                    best = v;
                } else {
                    // v beats best: v > best or v is NaN, and best is not NaN (as max_pool_2x2_row).
                    const __mmask16 win =
                        _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(best, best, _CMP_ORD_Q), v, best, _CMP_NLE_UQ);
                    best = _mm512_mask_mov_ps(best, win, v);
                    offset = _mm512_mask_mov_epi32(offset, win, offsets[j]);
                }
            }
            best = _mm512_maskz_mov_ps(static_cast<__mmask16>(~_mm512_cmp_ps_mask(best, _mm512_setzero_ps(), _CMP_LE_OQ)),
                                       best);  // ReLU; NaN stays
            const __m512i index = _mm512_add_epi32(_mm512_maskz_loadu_epi32(load, base + q), offset);
            const __mmask16 store = lanes(Q - q);
            _mm512_mask_storeu_ps(yo + q, store, best);
            _mm512_mask_storeu_epi32(ao + q, store, index);
        }
    }
#else
    const __m256i offsets[4] = {_mm256_setzero_si256(), _mm256_set1_epi32(1), _mm256_set1_epi32(in_w),
                                _mm256_set1_epi32(in_w + 1)};
    // v beats best: v > best or v is NaN, and best is not NaN (as max_pool_2x2_row).
    const auto beats8 = [](__m256 v, __m256 best) {
        return _mm256_and_ps(_mm256_cmp_ps(v, best, _CMP_NLE_UQ), _mm256_cmp_ps(best, best, _CMP_ORD_Q));
    };
    for (std::int64_t o = 0; o < O; ++o) {
        __m256 wk[K];
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) wk[k] = _mm256_set1_ps(w[o * K + k]);
        const __m256 b = _mm256_set1_ps(bias ? bias[o] : 0.0f);
        float* yo = y + o * Q;
        std::int32_t* ao = arg + o * Q;
        for (std::int64_t q = 0; q < Qp; q += 8) {
            __m256 best = b;
            __m256i offset = offsets[0];
#pragma GCC unroll 4
            for (int j = 0; j < 4; ++j) {
                __m256 v = b;
#pragma GCC unroll 16
                for (int k = 0; k < K; ++k) v = _mm256_fmadd_ps(wk[k], _mm256_loadu_ps(taps + (4 * k + j) * Qp + q), v);
                if (j == 0) {
                    best = v;
                } else {
                    const __m256 win = beats8(v, best);
                    best = _mm256_blendv_ps(best, v, win);
                    offset = _mm256_blendv_epi8(offset, offsets[j], _mm256_castps_si256(win));
                }
            }
            best = _mm256_andnot_ps(_mm256_cmp_ps(best, _mm256_setzero_ps(), _CMP_LE_OQ), best);  // NaN stays
            const __m256i index =
                _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + q)), offset);
            if (q + 8 <= Q) {
                _mm256_storeu_ps(yo + q, best);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(ao + q), index);
            } else {  // the last windows: the lanes past Q hold the zero-padded taps' values
                alignas(32) float yt[8];
                alignas(32) std::int32_t at[8];
                _mm256_store_ps(yt, best);
                _mm256_store_si256(reinterpret_cast<__m256i*>(at), index);
                std::copy(yt, yt + (Q - q), yo + q);
                std::copy(at, at + (Q - q), ao + q);
            }
        }
    }
#endif
}

/// window_major_conv_relu_pool for a runtime K in [1, direct_conv_max_patch].
inline void window_major_conv_relu_pool(std::int64_t K, const float* taps, const std::int32_t* base, std::int64_t Q,
                                        std::int32_t in_w, const float* w, const float* bias, std::int64_t O, float* y,
                                        std::int32_t* arg) {
    using Fn = void (*)(const float*, const std::int32_t*, std::int64_t, std::int32_t, const float*, const float*,
                        std::int64_t, float*, std::int32_t*);
    static constexpr Fn fns[] = {nullptr,
                                 &window_major_conv_relu_pool<1>,  &window_major_conv_relu_pool<2>,
                                 &window_major_conv_relu_pool<3>,  &window_major_conv_relu_pool<4>,
                                 &window_major_conv_relu_pool<5>,  &window_major_conv_relu_pool<6>,
                                 &window_major_conv_relu_pool<7>,  &window_major_conv_relu_pool<8>,
                                 &window_major_conv_relu_pool<9>,  &window_major_conv_relu_pool<10>,
                                 &window_major_conv_relu_pool<11>, &window_major_conv_relu_pool<12>,
                                 &window_major_conv_relu_pool<13>, &window_major_conv_relu_pool<14>,
                                 &window_major_conv_relu_pool<15>, &window_major_conv_relu_pool<16>};
    static_assert(sizeof(fns) / sizeof(fns[0]) == direct_conv_max_patch + 1, "one instance per patch size");
    fns[K](taps, base, Q, in_w, w, bias, O, y, arg);
}

/// Lays out the taps of every 2x2 window's four positions window-major for
/// winner_weight_grad_2x2: taps[(4k + j) Qp + q] = col[k][base[q] + (j / 2) in_w + j % 2].
inline void window_major_taps(const float* col, std::int64_t K, std::int64_t P, std::int64_t in_w, std::int64_t out_h,
                              std::int64_t out_w, float* taps, std::int32_t* base) {
    const std::int64_t Q = out_h * out_w, Qp = (Q + 7) / 8 * 8;
    for (std::int64_t oy = 0; oy < out_h; ++oy)
        for (std::int64_t ox = 0; ox < out_w; ++ox) base[oy * out_w + ox] = static_cast<std::int32_t>(2 * oy * in_w + 2 * ox);
    std::fill(base + Q, base + Qp, 0);
    for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t j = 0; j < 4; ++j) {
            const float* src = col + k * P + (j / 2) * in_w + j % 2;
            float* dst = taps + (4 * k + j) * Qp;
            for (std::int64_t q = 0; q < Q; ++q) dst[q] = src[base[q]];
            std::fill(dst + Q, dst + Qp, 0.0f);
        }
}

/// winner_weight_grad_2x2 for a runtime K in [1, direct_conv_max_patch].
inline void winner_weight_grad_2x2(std::int64_t K, const float* taps, const std::int32_t* base, std::int64_t Q,
                                   std::int32_t in_w, const float* y, const float* dy, const std::int32_t* arg,
                                   std::int64_t O, float* pw, float* pb) {
    using Fn = void (*)(const float*, const std::int32_t*, std::int64_t, std::int32_t, const float*, const float*,
                        const std::int32_t*, std::int64_t, float*, float*);
    static constexpr Fn fns[] = {nullptr,
                                 &winner_weight_grad_2x2<1>,  &winner_weight_grad_2x2<2>,  &winner_weight_grad_2x2<3>,
                                 &winner_weight_grad_2x2<4>,  &winner_weight_grad_2x2<5>,  &winner_weight_grad_2x2<6>,
                                 &winner_weight_grad_2x2<7>,  &winner_weight_grad_2x2<8>,  &winner_weight_grad_2x2<9>,
                                 &winner_weight_grad_2x2<10>, &winner_weight_grad_2x2<11>, &winner_weight_grad_2x2<12>,
                                 &winner_weight_grad_2x2<13>, &winner_weight_grad_2x2<14>, &winner_weight_grad_2x2<15>,
                                 &winner_weight_grad_2x2<16>};
    static_assert(sizeof(fns) / sizeof(fns[0]) == direct_conv_max_patch + 1, "one instance per patch size");
    fns[K](taps, base, Q, in_w, y, dy, arg, O, pw, pb);
}
#endif

inline bool is_2x2_stride_2(const WindowGeometry& pool) {
    return pool.kernel_h == 2 && pool.kernel_w == 2 && pool.stride_h == 2 && pool.stride_w == 2 && pool.pad_top == 0 &&
           pool.pad_left == 0;
}

}  // namespace detail

/// Workspace (elements of T) for conv_relu_pool_forward/backward: per thread the scratch above,
/// then the partial weight/bias gradients of each slice of the batch (reduction_slices).
inline std::int64_t conv_relu_pool_workspace_size(const ConvShape& s) {
    return static_cast<std::int64_t>(num_threads()) * detail::conv_relu_pool_thread_scratch(s) +
           max_reduction_slices * s.out_channels * (s.patch() + 1);
}

/// y = max_pool(relu(conv(x, w) + b)) with `pool` windows over the conv output planes.
/// `argmax` receives, per pooled element, the index of the winner within its conv plane.
template <class T>
void conv_relu_pool_forward(const ConvShape& s, const WindowGeometry& pool, const T* x, const T* w, const T* bias, T* y,
                            std::int32_t* argmax, T* workspace) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t Q = pool.out_h() * pool.out_w();
    const std::int64_t per_thread = detail::conv_relu_pool_thread_scratch(s);
    const bool two_by_two = detail::is_2x2_stride_2(pool);
    [[maybe_unused]] const bool window_major = two_by_two && K <= direct_conv_max_patch;
#pragma omp parallel for schedule(static) if (s.batch * O * P * K >= parallel_threshold)
    for (std::int64_t n = 0; n < s.batch; ++n) {
        T* col = workspace + thread_index() * per_thread;
        T* plane = col + K * P;
        im2col(x + n * in_size, s.in_channels, s.window, col);
        T* yn = y + n * O * Q;
        std::int32_t* an = argmax + n * O * Q;
#ifdef __AVX2__
        if constexpr (std::is_same<T, float>::value) {
            if (window_major) {  // the conv outputs pooled as they are made, in registers
                const std::int64_t Qp = (Q + 7) / 8 * 8;
                auto* base = reinterpret_cast<std::int32_t*>(plane + 4 * K * Qp);
                detail::window_major_taps(col, K, P, pool.in_w, pool.out_h(), pool.out_w(), plane, base);
                detail::window_major_conv_relu_pool(K, plane, base, Q, static_cast<std::int32_t>(pool.in_w), w, bias, O,
                                                    yn, an);
                continue;
            }
        }
#endif
        if (K <= direct_conv_max_patch) {
            detail::small_patch_product(w, bias, col, O, K, P, plane);
        } else {
            Eigen::Map<detail::RowMajor<T>> out(plane, O, P);
            out.noalias() = Eigen::Map<const detail::RowMajor<T>>(w, O, K) * Eigen::Map<const detail::RowMajor<T>>(col, K, P);
            if (bias) out.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(bias, O);
        }
        // Pool every channel of this image (serially: we are inside the parallel loop). The ReLU
        // is applied to each window's maximum: max(relu(a), relu(b)) = relu(max(a, b)).
        for (std::int64_t o = 0; o < O; ++o) {
            if (two_by_two) {
                const std::int64_t iw = pool.in_w, ow = pool.out_w();
                for (std::int64_t oy = 0; oy < pool.out_h(); ++oy)
                    detail::max_pool_2x2_row<true>(plane + o * P + 2 * oy * iw, plane + o * P + (2 * oy + 1) * iw, ow,
                                                   static_cast<std::int32_t>(iw), static_cast<std::int32_t>(2 * oy * iw),
                                                   yn + o * Q + oy * ow, an + o * Q + oy * ow, plane + O * P);
            } else {
                detail::max_pool_plane(plane + o * P, pool, yn + o * Q, an + o * Q);
                for (std::int64_t q = 0; q < Q; ++q) yn[o * Q + q] = yn[o * Q + q] <= T(0) ? T(0) : yn[o * Q + q];
            }
        }
    }
}

/// Gradients of conv_relu_pool_forward given dy for the pooled output. dw [O, K] and db [O]
/// (null: no bias) are overwritten; dx (null: not needed) is overwritten. dw and db are summed
/// over fixed slices of the batch (reduction_slices): the same bits for any thread count.
template <class T>
void conv_relu_pool_backward(const ConvShape& s, const WindowGeometry& pool, const T* x, const T* w, const T* y,
                             const std::int32_t* argmax, const T* dy, T* dw, T* db, T* dx, T* workspace) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t Q = pool.out_h() * pool.out_w();
    const std::int64_t per_thread = detail::conv_relu_pool_thread_scratch(s);
    T* partial = workspace + num_threads() * per_thread;
    const bool sparse = K <= direct_conv_max_patch && dx == nullptr;
#ifdef __AVX2__
    const bool vector_2x2 = std::is_same<T, float>::value && sparse && detail::is_2x2_stride_2(pool);
#endif
    // One image, its partial sums into pw and pb = pw + O*K.
    const auto image = [&](std::int64_t n, T* col, T* pw) {
        T* g = col + K * P;
        T* pb = pw + O * K;
        const T* yn = y + n * O * Q;
        const T* dyn = dy + n * O * Q;
        const std::int32_t* an = argmax + n * O * Q;
        im2col(x + n * in_size, s.in_channels, s.window, col);
#ifdef __AVX2__
        if constexpr (std::is_same<T, float>::value) {
            if (vector_2x2) {
                const std::int64_t Qp = (Q + 7) / 8 * 8;
                auto* base = reinterpret_cast<std::int32_t*>(g + 4 * K * Qp);
                detail::window_major_taps(col, K, P, pool.in_w, pool.out_h(), pool.out_w(), g, base);
                detail::winner_weight_grad_2x2(K, g, base, Q, static_cast<std::int32_t>(pool.in_w), yn, dyn, an, O, pw,
                                               pb);
                return;
            }
        }
#endif
        if (sparse) {
            detail::winner_weight_grad(col, K, P, yn, dyn, an, O, Q, pw, pb, g);
            return;
        }
        std::fill(g, g + O * P, T(0));
        for (std::int64_t o = 0; o < O; ++o)
            for (std::int64_t q = 0; q < Q; ++q)
                if (yn[o * Q + q] > T(0)) g[o * P + an[o * Q + q]] += dyn[o * Q + q];
        for (std::int64_t o = 0; o < O; ++o) {
            T sum = 0;
            for (std::int64_t p = 0; p < P; ++p) sum += g[o * P + p];
            pb[o] += sum;
        }
        Eigen::Map<detail::RowMajor<T>>(pw, O, K).noalias() +=
            Eigen::Map<const detail::RowMajor<T>>(g, O, P) * Eigen::Map<const detail::RowMajor<T>>(col, K, P).transpose();
        if (dx) detail::image_gradient(s, w, g, col, dx + n * in_size);
    };
    const std::int64_t slices = detail::accumulate_in_slices(s.batch, s.batch * O * P * K >= parallel_threshold,
                                                             workspace, per_thread, partial, O * (K + 1), image);
    detail::sum_slice_partials(partial, slices, O, K, dw, db);
}

}  // namespace cnnlite::kernels
