// Inverted dropout masks drawn from a counter-based stream: element j of the sample with
// global index i keeps its value with probability 1 - rate, decided by 16 bits of draw
// i*ceil(features/4) + j/4 of the layer's stream for this step (one 64-bit draw serves four
// elements, bits 16*(j%4) and up). The keep probability is thus 1 - rate rounded to 1/65536.
// The mask depends only on (seed, layer, step, sample), never on the batch composition, the
// thread count or the process count. Spatial dropout draws one decision per channel the same way.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cnnlite/core/random.hpp"
#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

namespace detail {

/// Elements whose decisions are drawn at once: a multiple of 4, small enough for L1.
constexpr std::int64_t dropout_chunk = 1024;

/// The 16-bit decision values of elements [first, first + count) of a row whose draws start at
/// `base`: u[j] = bits 16*(j%4).. of draw base + j/4. One hash per four elements (a plain
/// vectorisable loop), then the split into 16-bit values. `first` is a multiple of 4.
inline void dropout_decisions(const RandomStream& stream, std::uint64_t base, std::int64_t first, std::int64_t count,
                              std::uint16_t* u) {
    std::uint64_t draws[dropout_chunk / 4];
    const std::int64_t n_draws = (count + 3) / 4;
    const std::uint64_t first_draw = base + static_cast<std::uint64_t>(first / 4);
#pragma omp simd
    for (std::int64_t d = 0; d < n_draws; ++d) draws[d] = stream.bits(first_draw + static_cast<std::uint64_t>(d));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    // Little-endian memory holds each draw's four 16-bit fields low field first, which is the
    // order of u: one copy, where the shift per element compiles to lane shuffles.
    std::memcpy(u, draws, static_cast<std::size_t>(count) * sizeof(std::uint16_t));
#else
    for (std::int64_t j = 0; j < count; ++j) u[j] = static_cast<std::uint16_t>(draws[j / 4] >> (16 * (j % 4)));
#endif
}

}  // namespace detail

/// mask = (u >= rate) / (1 - rate); y = x * mask. `sample_ids[r]` is the global index of row r.
template <class T>
void dropout_forward(const T* x, T* y, T* mask, std::int64_t rows, std::int64_t features,
                     const std::int64_t* sample_ids, const RandomStream& stream, double rate) {
    const T scale = static_cast<T>(1.0 / (1.0 - rate));
    // u = bits / 2^16 >= rate  <=>  bits >= ceil(rate * 2^16), compared in integers.
    const std::uint32_t threshold = static_cast<std::uint32_t>(std::ceil(rate * 65536.0));
    const std::uint64_t draws = static_cast<std::uint64_t>((features + 3) / 4);
#pragma omp parallel for schedule(static) if (rows * features >= parallel_threshold)
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::uint64_t base = static_cast<std::uint64_t>(sample_ids[r]) * draws;
        for (std::int64_t first = 0; first < features; first += detail::dropout_chunk) {
            const std::int64_t count = std::min(detail::dropout_chunk, features - first);
            std::uint16_t u[detail::dropout_chunk];
            detail::dropout_decisions(stream, base, first, count, u);
            const T* xr = x + r * features + first;
            T* yr = y + r * features + first;
            T* mr = mask + r * features + first;
#pragma omp simd
            for (std::int64_t j = 0; j < count; ++j) {
                const T m = u[j] >= threshold ? scale : T(0);
                mr[j] = m;
                yr[j] = xr[j] * m;
            }
        }
    }
}

/// dx = dy * mask over `n` elements, or dx += dy * mask when `accumulate`: the backward of
/// dropout_forward, split over the threads (elementwise, so the thread count changes nothing).
template <class T>
void dropout_backward(const T* dy, const T* mask, T* dx, std::int64_t n, bool accumulate) {
    constexpr std::int64_t block = 4096;
    const std::int64_t blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (n >= parallel_threshold)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t end = std::min(n, (b + 1) * block);
        if (accumulate) {
#pragma omp simd
            for (std::int64_t i = b * block; i < end; ++i) dx[i] += dy[i] * mask[i];
        } else {
#pragma omp simd
            for (std::int64_t i = b * block; i < end; ++i) dx[i] = dy[i] * mask[i];
        }
    }
}

/// Spatial dropout of NCHW tensors: whole channels are kept or dropped per sample. The mask of
/// [rows, channels] is exactly the one dropout_forward draws for a [rows, channels] tensor with
/// the same stream and sample ids; y = x * mask[r][c] over the `inner` (H*W) values of each
/// channel.
template <class T>
void spatial_dropout_forward(const T* x, T* y, T* mask, std::int64_t rows, std::int64_t channels, std::int64_t inner,
                             const std::int64_t* sample_ids, const RandomStream& stream, double rate) {
    const T scale = static_cast<T>(1.0 / (1.0 - rate));
    const std::uint32_t threshold = static_cast<std::uint32_t>(std::ceil(rate * 65536.0));
    const std::uint64_t draws = static_cast<std::uint64_t>((channels + 3) / 4);
#pragma omp parallel for schedule(static) if (rows * channels * inner >= parallel_threshold)
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::uint64_t base = static_cast<std::uint64_t>(sample_ids[r]) * draws;
        for (std::int64_t first = 0; first < channels; first += detail::dropout_chunk) {
            const std::int64_t count = std::min(detail::dropout_chunk, channels - first);
            std::uint16_t u[detail::dropout_chunk];
            detail::dropout_decisions(stream, base, first, count, u);
            for (std::int64_t j = 0; j < count; ++j) {
                const std::int64_t plane = r * channels + first + j;
                const T m = u[j] >= threshold ? scale : T(0);
                mask[plane] = m;
                const T* xp = x + plane * inner;
                T* yp = y + plane * inner;
#pragma omp simd
                for (std::int64_t i = 0; i < inner; ++i) yp[i] = xp[i] * m;
            }
        }
    }
}

/// dx = dy * mask[plane] over the `inner` values of each of `planes` planes (the backward of
/// spatial_dropout_forward), or dx += ... when `accumulate`.
template <class T>
void spatial_dropout_backward(const T* dy, const T* mask, T* dx, std::int64_t planes, std::int64_t inner,
                              bool accumulate) {
#pragma omp parallel for schedule(static) if (planes * inner >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const T m = mask[p];
        const T* g = dy + p * inner;
        T* d = dx + p * inner;
        if (accumulate) {
#pragma omp simd
            for (std::int64_t i = 0; i < inner; ++i) d[i] += g[i] * m;
        } else {
#pragma omp simd
            for (std::int64_t i = 0; i < inner; ++i) d[i] = g[i] * m;
        }
    }
}

}  // namespace cnnlite::kernels
