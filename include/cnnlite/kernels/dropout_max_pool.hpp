// Dropout followed by max pooling, fused sample by sample: each sample's dropped-out values
// and mask are made in a per-thread scratch row that stays in cache and are pooled at once, so
// neither the full-size dropout output nor its mask travels through memory (in the paper's
// network: two passes of 800,000 values in forward and two in backward). The values are those
// of dropout_forward and max pooling in a row, bit for bit; backward needs only each window's
// winner and the mask value there. Non-overlapping windows only (stride >= window), so that
// every input receives the gradient of at most one window, as the unfused pair computes it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cnnlite/core/random.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/dropout.hpp"
#include "cnnlite/kernels/parallel.hpp"
#include "cnnlite/kernels/pooling.hpp"

namespace cnnlite::kernels {

/// Scratch (elements of T) of dropout_max_pool_forward per thread: one sample's dropped-out
/// values and their mask, plus the 16 elements a vectorised pooling row may read past them.
inline std::int64_t dropout_max_pool_scratch(std::int64_t features) { return 2 * features + 16; }

/// y = max_pool(dropout(x)) for x [rows, planes, g.in_h, g.in_w]: the dropout of
/// dropout_forward (rows are samples with global indices `sample_ids`, keyed by `stream`),
/// then pooling with windows `g` (stride >= window, no padding). argmax receives each winner's
/// index within its input plane and `winner_mask` the mask value (0 or 1/(1-rate)) there.
/// `scratch` holds threads * dropout_max_pool_scratch(planes * in_h * in_w) elements.
template <class T>
void dropout_max_pool_forward(const T* x, std::int64_t rows, std::int64_t planes, const WindowGeometry& g,
                              const std::int64_t* sample_ids, const RandomStream& stream, double rate, T* y,
                              std::int32_t* argmax, T* winner_mask, T* scratch) {
    const std::int64_t in_size = g.in_h * g.in_w, out_size = g.out_h() * g.out_w();
    const std::int64_t features = planes * in_size;
    const T scale = static_cast<T>(1.0 / (1.0 - rate));
    const std::uint32_t threshold = static_cast<std::uint32_t>(std::ceil(rate * 65536.0));
    const std::uint64_t draws = static_cast<std::uint64_t>((features + 3) / 4);
    const bool two_by_two = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_top == 0 &&
                            g.pad_left == 0;
#pragma omp parallel for schedule(static) if (rows * features >= parallel_threshold)
    for (std::int64_t r = 0; r < rows; ++r) {
        const int thread = thread_index();
        T* values = scratch + thread * dropout_max_pool_scratch(features);
        T* mask = values + features;
        const T* xr = x + r * features;
        const std::uint64_t base = static_cast<std::uint64_t>(sample_ids[r]) * draws;
        for (std::int64_t first = 0; first < features; first += detail::dropout_chunk) {
            const std::int64_t count = std::min(detail::dropout_chunk, features - first);
            std::uint16_t u[detail::dropout_chunk];
            detail::dropout_decisions(stream, base, first, count, u);
#pragma omp simd
            for (std::int64_t j = 0; j < count; ++j) {
                const T m = u[j] >= threshold ? scale : T(0);  // as dropout_forward
                mask[first + j] = m;
                values[first + j] = xr[first + j] * m;
            }
        }
        for (std::int64_t p = 0; p < planes; ++p) {
            const T* in = values + p * in_size;
            T* yp = y + (r * planes + p) * out_size;
            std::int32_t* ap = argmax + (r * planes + p) * out_size;
            if (two_by_two) {
                const std::int64_t ow = g.out_w();
                for (std::int64_t oy = 0; oy < g.out_h(); ++oy)
                    detail::max_pool_2x2_row<false>(in + 2 * oy * g.in_w, in + (2 * oy + 1) * g.in_w, ow,
                                                    static_cast<std::int32_t>(g.in_w),
                                                    static_cast<std::int32_t>(2 * oy * g.in_w), yp + oy * ow, ap + oy * ow,
                                                    mask + features + 16);
            } else {
                detail::max_pool_plane(in, g, yp, ap);
            }
            T* wp = winner_mask + (r * planes + p) * out_size;
            const T* mp = mask + p * in_size;
            for (std::int64_t i = 0; i < out_size; ++i) wp[i] = mp[ap[i]];
        }
    }
}

/// Gradient of dropout_max_pool_forward: dx[winner] = dy * (its mask value), 0 elsewhere;
/// dx is overwritten when `overwrite`, else added to. `planes` counts rows * channels.
template <class T>
void dropout_max_pool_backward(const T* dy, const std::int32_t* argmax, const T* winner_mask, std::int64_t planes,
                               std::int64_t out_size, std::int64_t in_size, T* dx, bool overwrite) {
#pragma omp parallel for schedule(static) if (planes * in_size >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        T* d = dx + p * in_size;
        const T* g = dy + p * out_size;
        const T* m = winner_mask + p * out_size;
        const std::int32_t* arg = argmax + p * out_size;
        // (0 + g) * m: the pooling gradient (added to zeros) times the mask, as the unfused pair.
        if (overwrite) {
            std::fill(d, d + in_size, T(0));
            for (std::int64_t i = 0; i < out_size; ++i) d[arg[i]] = (T(0) + g[i]) * m[i];
        } else {
            for (std::int64_t i = 0; i < out_size; ++i) d[arg[i]] += (T(0) + g[i]) * m[i];
        }
    }
}

}  // namespace cnnlite::kernels
