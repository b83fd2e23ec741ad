// Transposes of a row-major plane: between a convolution's planes ([channels, pixels]) and its
// channels-last rows ([pixels, channels]), for the weight gradient's g^T and the indirect
// products (kernels/indirect_conv.hpp). In 16 x 16 blocks, so that both sides touch whole cache
// lines; where the build targets AVX-512F a whole block is transposed in 16 zmm registers
// (the usual four rounds of 32-, 64- and two 128-bit shuffles), where it targets AVX as four
// 8 x 8 blocks in ymm registers (32-bit, 64-bit and 128-bit shuffles), the edges element by
// element.
// A transpose moves values and never rounds them, so every path gives the same bits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

namespace cnnlite::kernels {

namespace detail {

constexpr std::int64_t transpose_block = 16;

#if defined(__AVX512F__)
/// r[j] = column j of the 16 x 16 block whose row i starts at src + i * ld. Its loops (and
/// transpose_block8's) are unrolled on request: at -O2 GCC keeps an array of vector registers
/// that a loop indexes in memory.
inline void transpose_block16(const float* src, std::int64_t ld, __m512 (&r)[16]) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ld);
    // Pairs of rows interleaved by 32 bits: t[2k] holds (r2k[0], r2k+1[0], r2k[1], r2k+1[1]) per 128-bit lane.
#pragma GCC unroll 16
    for (int k = 0; k < 8; ++k) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    // Quads of rows by 64 bits: each 128-bit lane of r[4q + m] now holds one column of rows 4q..4q+3.
#pragma GCC unroll 16
    for (int q = 0; q < 4; ++q) {
        const __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
        r[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // 128-bit lanes: rows 0-7 with rows 8-15's partners, then the halves brought together.
#pragma GCC unroll 16
    for (int m = 0; m < 4; ++m) {
        t[m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88);
        t[4 + m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xdd);
        t[8 + m] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
        t[12 + m] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xdd);
    }
#pragma GCC unroll 16
    for (int m = 0; m < 8; ++m) {
        r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xdd);
    }
}
#elif defined(__AVX__)
/// r[j] = column j of the 8 x 8 block whose row i starts at src + i * ld.
inline void transpose_block8(const float* src, std::int64_t ld, __m256 (&r)[8]) {
    __m256 t[8];
#pragma GCC unroll 16
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld);
    // Pairs of rows interleaved by 32 bits: t[2k] = (r2k[0], r2k+1[0], r2k[1], r2k+1[1]) per 128-bit lane.
#pragma GCC unroll 16
    for (int k = 0; k < 4; ++k) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    // Quads by 64 bits: r[4h + m] holds columns m (low lane) and m + 4 (high lane) of rows 4h..4h+3.
#pragma GCC unroll 16
    for (int h = 0; h < 2; ++h) {
        r[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        r[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xee);
        r[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        r[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xee);
    }
    // 128-bit lanes: rows 0-3 and rows 4-7 of each column brought together.
#pragma GCC unroll 16
    for (int m = 0; m < 4; ++m) {
        t[m] = _mm256_permute2f128_ps(r[m], r[4 + m], 0x20);
        t[4 + m] = _mm256_permute2f128_ps(r[m], r[4 + m], 0x31);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 8; ++j) r[j] = t[j];
}
#endif

}  // namespace detail

/// gT[row_of(c), r] = g[r, c] for a plane g[rows, cols]: the transpose with its rows put where
/// `row_of` says (a permutation of 0 .. cols-1; the filters' taps brought outermost). Only
/// columns [first_col, last_col) when given (first_col a multiple of 16), so that threads can
/// share one plane.
template <class T, class RowOf>
void transpose_plane_rows(const T* g, std::int64_t rows, std::int64_t cols, T* gT, RowOf row_of,
                          std::int64_t first_col = 0, std::int64_t last_col = -1) {
    constexpr std::int64_t block = detail::transpose_block;
    if (last_col < 0) last_col = cols;
    for (std::int64_t r0 = 0; r0 < rows; r0 += block)
        for (std::int64_t c0 = first_col; c0 < last_col; c0 += block) {
#if defined(__AVX512F__)
            if constexpr (std::is_same_v<T, float>) {
                if (r0 + block <= rows && c0 + block <= last_col) {
                    __m512 r[16];
                    detail::transpose_block16(g + r0 * cols + c0, cols, r);
#pragma GCC unroll 16
                    for (int j = 0; j < 16; ++j) _mm512_storeu_ps(gT + row_of(c0 + j) * rows + r0, r[j]);
                    continue;
                }
            }
#elif defined(__AVX__)
            if constexpr (std::is_same_v<T, float>) {
                if (r0 + block <= rows && c0 + block <= last_col) {
                    for (std::int64_t i = 0; i < block; i += 8)
                        for (std::int64_t j0 = 0; j0 < block; j0 += 8) {
                            __m256 r[8];
                            detail::transpose_block8(g + (r0 + i) * cols + c0 + j0, cols, r);
#pragma GCC unroll 16
                            for (int j = 0; j < 8; ++j) _mm256_storeu_ps(gT + row_of(c0 + j0 + j) * rows + r0 + i, r[j]);
                        }
                    continue;
                }
            }
#endif
            for (std::int64_t c = c0; c < std::min(last_col, c0 + block); ++c)
                for (std::int64_t r = r0; r < std::min(rows, r0 + block); ++r) gT[row_of(c) * rows + r] = g[r * cols + c];
        }
}

/// gT[cols, rows] = g[rows, cols]^T (only columns [first_col, last_col) when given, first_col a
/// multiple of 16).
template <class T>
void transpose_plane(const T* g, std::int64_t rows, std::int64_t cols, T* gT, std::int64_t first_col = 0,
                     std::int64_t last_col = -1) {
    transpose_plane_rows(g, rows, cols, gT, [](std::int64_t c) { return c; }, first_col, last_col);
}

/// y[c, p] = relu(yT[p, c] + bias[c]) for `pixels` rows of `channels` values: channels-last
/// rows back to planes, with the bias (may be null) and the ReLU when asked (v <= 0 becomes +0,
/// NaN stays NaN, as everywhere in cnnlite). Only pixels [first, last) when given (first a
/// multiple of 16).
inline void planes_with_bias_relu(const float* yT, std::int64_t pixels, std::int64_t channels, const float* bias,
                                  bool relu, float* y, std::int64_t first = 0, std::int64_t last = -1) {
    constexpr std::int64_t block = detail::transpose_block;
    if (last < 0) last = pixels;
    for (std::int64_t p0 = first; p0 < last; p0 += block)
        for (std::int64_t c0 = 0; c0 < channels; c0 += block) {
#if defined(__AVX512F__)
            if (p0 + block <= last && c0 + block <= channels) {
                __m512 r[16];
                detail::transpose_block16(yT + p0 * channels + c0, channels, r);
                const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 16
                for (int j = 0; j < 16; ++j) {
                    __m512 v = _mm512_add_ps(r[j], _mm512_set1_ps(bias ? bias[c0 + j] : 0.0f));  // -0 + 0 = +0, as below
                    if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), zero);
                    _mm512_storeu_ps(y + (c0 + j) * pixels + p0, v);
                }
                continue;
            }
#elif defined(__AVX__)
            if (p0 + block <= last && c0 + block <= channels) {
                const __m256 zero = _mm256_setzero_ps();
                for (std::int64_t i = 0; i < block; i += 8)
                    for (std::int64_t j0 = 0; j0 < block; j0 += 8) {
                        __m256 r[8];
                        detail::transpose_block8(yT + (p0 + i) * channels + c0 + j0, channels, r);
#pragma GCC unroll 16
                        for (int j = 0; j < 8; ++j) {
                            const std::int64_t c = c0 + j0 + j;
                            __m256 v = _mm256_add_ps(r[j], _mm256_set1_ps(bias ? bias[c] : 0.0f));  // -0 + 0 = +0, as below
                            if (relu) v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LE_OQ));
                            _mm256_storeu_ps(y + c * pixels + p0 + i, v);
                        }
                    }
                continue;
            }
#endif
            for (std::int64_t c = c0; c < std::min(channels, c0 + block); ++c) {
                const float add = bias ? bias[c] : 0.0f;
                for (std::int64_t p = p0; p < std::min(last, p0 + block); ++p) {
                    const float v = yT[p * channels + c] + add;
                    y[c * pixels + p] = relu && v <= 0.0f ? 0.0f : v;  // NaN stays NaN
                }
            }
        }
}

}  // namespace cnnlite::kernels
