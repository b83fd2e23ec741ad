// Pooling over NCHW planes. Max pooling: forward keeps the argmax of every window (as a flat
// index into the input plane) so that backward routes each gradient to exactly the element that
// won. Average pooling (padded cells counted in the divisor or not), and global average and max
// pooling of whole planes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

namespace detail {

/// Whether `v` replaces `best` as a window's maximum: when larger, or when it is a NaN and
/// `best` is not, so that a NaN anywhere in a window propagates instead of vanishing.
template <class T>
inline bool beats(T v, T best) {
    return v > best || (v != v && best == best);
}

/// One output row of 2x2, stride-2 max pooling from input rows r0 and r1 (width in_w):
/// out[ox] = max of r0[2ox], r0[2ox+1], r1[2ox], r1[2ox+1] (rectified when Relu: the ReLU of a
/// window's maximum is the maximum of its ReLUs) and arg[ox] = row_index + the winner's offset.
/// Winners and ties exactly as in max_pool_plane: the first maximum in row-major order, a NaN
/// wins and stays. Memory up to `readable_end` may be read (never used) past the rows.
template <bool Relu, class T>
inline void max_pool_2x2_row(const T* r0, const T* r1, std::int64_t ow, std::int32_t in_w, std::int32_t row_index,
                             T* out, std::int32_t* arg, const T* /*readable_end*/) {
    for (std::int64_t ox = 0; ox < ow; ++ox) {
        const std::int32_t base = row_index + 2 * static_cast<std::int32_t>(ox);
        T best = r0[2 * ox];
        std::int32_t index = base;
        if (beats(r0[2 * ox + 1], best)) best = r0[2 * ox + 1], index = base + 1;
        if (beats(r1[2 * ox], best)) best = r1[2 * ox], index = base + in_w;
        if (beats(r1[2 * ox + 1], best)) best = r1[2 * ox + 1], index = base + in_w + 1;
        out[ox] = Relu && best <= T(0) ? T(0) : best;  // NaN stays NaN
        arg[ox] = index;
    }
}

#ifdef __AVX2__
/// The float row with AVX2, eight windows at a time. A partial last block reads its 16 inputs
/// per row past the row's end when that memory is still readable (the lanes beyond the row are
/// computed and dropped), else it falls back to the scalar loop. On random data the scalar
/// version's comparisons mispredict about half the time; here they become blends.
template <bool Relu>
inline void max_pool_2x2_row(const float* r0, const float* r1, std::int64_t ow, std::int32_t in_w,
                             std::int32_t row_index, float* out, std::int32_t* arg, const float* readable_end) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // Even and odd elements of the 16 in (lo, hi), in order.
    const auto split = [](__m256 lo, __m256 hi, __m256& even, __m256& odd) {
        even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
        odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
    };
    // v beats best: v > best or v is NaN (not v <= best, unordered counts), and best is not NaN.
    const auto beats8 = [](__m256 v, __m256 best) {
        return _mm256_and_ps(_mm256_cmp_ps(v, best, _CMP_NLE_UQ), _mm256_cmp_ps(best, best, _CMP_ORD_Q));
    };
    std::int64_t ox = 0;
    for (; ox < ow; ox += 8) {
        const float* p0 = r0 + 2 * ox;
        const float* p1 = r1 + 2 * ox;
        const std::int64_t n = std::min<std::int64_t>(8, ow - ox);
        if (n < 8 && (p0 + 16 > readable_end || p1 + 16 > readable_end)) break;
        __m256 a, b, c, d;
        split(_mm256_loadu_ps(p0), _mm256_loadu_ps(p0 + 8), a, b);
        split(_mm256_loadu_ps(p1), _mm256_loadu_ps(p1 + 8), c, d);
        __m256 best = a;
        __m256i offset = _mm256_setzero_si256();
        __m256 win = beats8(b, best);
        best = _mm256_blendv_ps(best, b, win);
        offset = _mm256_blendv_epi8(offset, _mm256_set1_epi32(1), _mm256_castps_si256(win));
        win = beats8(c, best);
        best = _mm256_blendv_ps(best, c, win);
        offset = _mm256_blendv_epi8(offset, _mm256_set1_epi32(in_w), _mm256_castps_si256(win));
        win = beats8(d, best);
        best = _mm256_blendv_ps(best, d, win);
        offset = _mm256_blendv_epi8(offset, _mm256_set1_epi32(in_w + 1), _mm256_castps_si256(win));
        if (Relu) best = _mm256_andnot_ps(_mm256_cmp_ps(best, _mm256_setzero_ps(), _CMP_LE_OQ), best);  // NaN stays
        const __m256i index = _mm256_add_epi32(
            _mm256_add_epi32(_mm256_set1_epi32(row_index + 2 * static_cast<std::int32_t>(ox)), _mm256_add_epi32(lanes, lanes)),
            offset);
        if (n == 8) {
            _mm256_storeu_ps(out + ox, best);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(arg + ox), index);
        } else {  // 4-, 2- and 1-lane stores: masked stores are microcoded on AMD, a library copy slower still
            float* o = out + ox;
            std::int32_t* a = arg + ox;
            __m128 v = _mm256_castps256_ps128(best);
            __m128i i = _mm256_castsi256_si128(index);
            if (n >= 4) {
                _mm_storeu_ps(o, v);
                _mm_storeu_si128(reinterpret_cast<__m128i*>(a), i);
                v = _mm256_extractf128_ps(best, 1);
                i = _mm256_extracti128_si256(index, 1);
                o += 4, a += 4;
            }
            if (n & 2) {
                _mm_storel_pi(reinterpret_cast<__m64*>(o), v);
                _mm_storel_epi64(reinterpret_cast<__m128i*>(a), i);
                v = _mm_movehl_ps(v, v);
                i = _mm_unpackhi_epi64(i, i);
                o += 2, a += 2;
            }
            if (n & 1) {
                _mm_store_ss(o, v);
                *a = _mm_cvtsi128_si32(i);
            }
        }
    }
    if (ox < ow)
        max_pool_2x2_row<Relu, float>(r0 + 2 * ox, r1 + 2 * ox, ow - ox, in_w, row_index + 2 * static_cast<std::int32_t>(ox),
                                      out + ox, arg + ox, readable_end);
}
#endif

/// Max pooling of one plane: out[oy][ox] = max of the window, arg = the winner's index in the
/// plane. Ties go to the first element in row-major window order (as PyTorch); padding never
/// wins; a NaN wins and stays.
template <class T>
void max_pool_plane(const T* in, const WindowGeometry& g, T* out, std::int32_t* arg) {
    const std::int64_t oh = g.out_h(), ow = g.out_w();
    for (std::int64_t oy = 0; oy < oh; ++oy) {
        const std::int64_t y0 = std::max<std::int64_t>(oy * g.stride_h - g.pad_top, 0);
        const std::int64_t y1 = std::min<std::int64_t>(oy * g.stride_h - g.pad_top + g.kernel_h, g.in_h);
        for (std::int64_t ox = 0; ox < ow; ++ox) {
            const std::int64_t x0 = std::max<std::int64_t>(ox * g.stride_w - g.pad_left, 0);
            const std::int64_t x1 = std::min<std::int64_t>(ox * g.stride_w - g.pad_left + g.kernel_w, g.in_w);
            T best = -std::numeric_limits<T>::infinity();
            std::int64_t best_index = y0 * g.in_w + x0;
            for (std::int64_t iy = y0; iy < y1; ++iy)
                for (std::int64_t ix = x0; ix < x1; ++ix) {
                    const T v = in[iy * g.in_w + ix];
                    if (beats(v, best)) {
                        best = v;
                        best_index = iy * g.in_w + ix;
                    }
                }
            out[oy * ow + ox] = best;
            arg[oy * ow + ox] = static_cast<std::int32_t>(best_index);
        }
    }
}

}  // namespace detail

/// y[plane] = max pooling of x[plane] for `planes` planes; argmax holds each winner's index
/// within its plane.
template <class T>
void max_pool_forward(const T* x, std::int64_t planes, const WindowGeometry& g, T* y, std::int32_t* argmax) {
    const std::int64_t out_size = g.out_h() * g.out_w(), in_size = g.in_h * g.in_w;
#pragma omp parallel for schedule(static) if (planes * in_size >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p)
        detail::max_pool_plane(x + p * in_size, g, y + p * out_size, argmax + p * out_size);
}

/// Specialisation-free fast path for the common 2x2 window with stride 2 and no padding.
template <class T>
void max_pool_2x2_forward(const T* x, std::int64_t planes, std::int64_t in_h, std::int64_t in_w, T* y,
                          std::int32_t* argmax) {
    const std::int64_t oh = in_h / 2, ow = in_w / 2;
#pragma omp parallel for schedule(static) if (planes * in_h * in_w >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const T* in = x + p * in_h * in_w;
        for (std::int64_t oy = 0; oy < oh; ++oy)
            detail::max_pool_2x2_row<false>(in + 2 * oy * in_w, in + (2 * oy + 1) * in_w, ow,
                                            static_cast<std::int32_t>(in_w), static_cast<std::int32_t>(2 * oy * in_w),
                                            y + p * oh * ow + oy * ow, argmax + p * oh * ow + oy * ow,
                                            x + planes * in_h * in_w);
    }
}

/// dx = 0 everywhere except the argmax of each window, which receives dy (summed when windows
/// overlap). dx is overwritten when `overwrite`, else added to.
template <class T>
void max_pool_backward(const T* dy, const std::int32_t* argmax, std::int64_t planes, std::int64_t out_size,
                       std::int64_t in_size, T* dx, bool overwrite) {
#pragma omp parallel for schedule(static) if (planes * in_size >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        T* d = dx + p * in_size;
        if (overwrite) std::fill(d, d + in_size, T(0));
        const T* g = dy + p * out_size;
        const std::int32_t* arg = argmax + p * out_size;
        for (std::int64_t i = 0; i < out_size; ++i) d[arg[i]] += g[i];
    }
}

/// Average pooling of `planes` planes: y = the mean of each window. Padded cells add nothing to
/// the sum; the divisor counts them when `count_include_pad` (PyTorch's default) and only the
/// window's cells inside the plane otherwise (Keras' 'same', PyTorch's count_include_pad=False).
template <class T>
void avg_pool_forward(const T* x, std::int64_t planes, const WindowGeometry& g, bool count_include_pad, T* y) {
    const std::int64_t oh = g.out_h(), ow = g.out_w(), in_size = g.in_h * g.in_w;
#pragma omp parallel for schedule(static) if (planes * oh * ow * g.kernel_h * g.kernel_w >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const T* in = x + p * in_size;
        T* out = y + p * oh * ow;
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            const std::int64_t y0 = std::max<std::int64_t>(oy * g.stride_h - g.pad_top, 0);
            const std::int64_t y1 = std::min<std::int64_t>(oy * g.stride_h - g.pad_top + g.kernel_h, g.in_h);
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                const std::int64_t x0 = std::max<std::int64_t>(ox * g.stride_w - g.pad_left, 0);
                const std::int64_t x1 = std::min<std::int64_t>(ox * g.stride_w - g.pad_left + g.kernel_w, g.in_w);
                T sum = 0;
                for (std::int64_t iy = y0; iy < y1; ++iy)
                    for (std::int64_t ix = x0; ix < x1; ++ix) sum += in[iy * g.in_w + ix];
                const std::int64_t divisor = count_include_pad ? g.kernel_h * g.kernel_w : (y1 - y0) * (x1 - x0);
                out[oy * ow + ox] = sum / static_cast<T>(divisor);
            }
        }
    }
}

/// The backward of avg_pool_forward: every cell of a window receives dy / divisor (summed where
/// windows overlap). dx is overwritten when `overwrite`, else added to.
template <class T>
void avg_pool_backward(const T* dy, std::int64_t planes, const WindowGeometry& g, bool count_include_pad, T* dx,
                       bool overwrite) {
    const std::int64_t oh = g.out_h(), ow = g.out_w(), in_size = g.in_h * g.in_w;
#pragma omp parallel for schedule(static) if (planes * oh * ow * g.kernel_h * g.kernel_w >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        T* d = dx + p * in_size;
        if (overwrite) std::fill(d, d + in_size, T(0));
        const T* grad = dy + p * oh * ow;
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            const std::int64_t y0 = std::max<std::int64_t>(oy * g.stride_h - g.pad_top, 0);
            const std::int64_t y1 = std::min<std::int64_t>(oy * g.stride_h - g.pad_top + g.kernel_h, g.in_h);
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                const std::int64_t x0 = std::max<std::int64_t>(ox * g.stride_w - g.pad_left, 0);
                const std::int64_t x1 = std::min<std::int64_t>(ox * g.stride_w - g.pad_left + g.kernel_w, g.in_w);
                const std::int64_t divisor = count_include_pad ? g.kernel_h * g.kernel_w : (y1 - y0) * (x1 - x0);
                const T share = grad[oy * ow + ox] / static_cast<T>(divisor);
                for (std::int64_t iy = y0; iy < y1; ++iy)
                    for (std::int64_t ix = x0; ix < x1; ++ix) d[iy * g.in_w + ix] += share;
            }
        }
    }
}

/// y[p] = mean of plane p (`size` values each), summed in double.
template <class T>
void global_avg_pool_forward(const T* x, std::int64_t planes, std::int64_t size, T* y) {
#pragma omp parallel for schedule(static) if (planes * size >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const T* in = x + p * size;
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (std::int64_t i = 0; i < size; ++i) sum += static_cast<double>(in[i]);
        y[p] = static_cast<T>(sum / static_cast<double>(size));
    }
}

/// dx[p][i] = dy[p] / size (overwritten, or added to when `accumulate`).
template <class T>
void global_avg_pool_backward(const T* dy, std::int64_t planes, std::int64_t size, T* dx, bool accumulate) {
    const T inv = T(1) / static_cast<T>(size);
#pragma omp parallel for schedule(static) if (planes * size >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const T share = dy[p] * inv;
        T* d = dx + p * size;
        if (accumulate) {
#pragma omp simd
            for (std::int64_t i = 0; i < size; ++i) d[i] += share;
        } else {
            std::fill(d, d + size, share);
        }
    }
}

/// y[p] = max of plane p, argmax[p] = its index in the plane: the first maximum, a NaN wins.
/// The backward is max_pool_backward with one output per plane.
template <class T>
void global_max_pool_forward(const T* x, std::int64_t planes, std::int64_t size, T* y, std::int32_t* argmax) {
#pragma omp parallel for schedule(static) if (planes * size >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const T* in = x + p * size;
        T best = in[0];
        std::int64_t index = 0;
        for (std::int64_t i = 1; i < size; ++i)
            if (detail::beats(in[i], best)) best = in[i], index = i;
        y[p] = best;
        argmax[p] = static_cast<std::int32_t>(index);
    }
}

}  // namespace cnnlite::kernels
