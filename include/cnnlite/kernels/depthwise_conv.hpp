// Depthwise convolutions (groups = input channels, MobileNet's), computed on the planes
// directly. Each output channel o reads one input plane, o / (O / C) (O / C is the channel
// multiplier), through its own kh x kw filter, so its product has a single row of kh*kw taps:
// unfolding the plane for it (im2col, as the grouped path does) writes kh*kw copies of every
// pixel to multiply each by one weight. Here each input plane is copied once, zero-padded, into
// its stride phases (plane (a, b) holds the padded pixels at rows a, a + stride_h, ... and
// columns b, b + stride_w, ...), where every tap of every output row reads consecutive values at
// any stride: tap (i, j) of output (oy, ox) is value (oy + i*dh / sh, ox + j*dw / sw) of phase
// (i*dh % sh, j*dw % sw). The forward adds each tap's weight times its shifted phase over the
// whole output plane in one vector loop, on a grid as wide as a phase row (the columns past the
// output's are computed and dropped); the input gradient adds each tap's weight times the output
// gradient, laid on the same grid with zeros past each row, into the phases of a zeroed padded
// plane; the weight gradient is each tap's dot product of its phase with that grid (with the
// rows' own columns only where the plane holds a NaN or an infinity, which the zeros would
// otherwise meet).
// Shapes of one output channel per input and a multiple of 16 channels run on blocks of channels
// instead (kernels/depthwise_blocked.hpp), where a small plane still fills whole vectors.
// Forward, input gradient and weight gradient are side by side below. Every output and input
// gradient element is formed by one thread in a fixed order, and the weight gradient sums
// fixed slices of the batch in slice order (kernels/parallel.hpp), so the results are the same
// bits at any thread count. Every tap counts, the padding's too (w * 0), as in the unfolded
// product, so NaN and infinities in the input reach the outputs and weight gradients they reach
// there. One difference: an infinite weight times the grid's zeros makes input gradients NaN at
// the starts of rows where the unfolded product may give an infinity (the network has diverged
// by then either way).
#pragma once

#include <algorithm>
#include <cstdint>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/activation.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/depthwise_blocked.hpp"
#include "cnnlite/kernels/finite.hpp"
#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

/// Whether conv2d runs `s` with the depthwise kernels: one input channel per group (and more
/// than one group), the automatic algorithm.
inline bool depthwise_conv(const ConvShape& s) {
    return s.groups > 1 && s.groups == s.in_channels && s.algorithm == ConvAlgorithm::automatic;
}

namespace detail {

/// The sizes every depthwise kernel walks: the padded plane's stride phases, and where each tap
/// reads in them.
struct DepthwiseGeometry {
    std::int64_t C, O, multiplier, in_h, in_w, out_h, out_w, kh, kw, taps;
    std::int64_t sh, sw, dh, dw, top, left;
    std::int64_t phase_rows, phase_cols;  ///< a phase's rows and columns (ceil(padded / stride))
    std::int64_t phase_size;              ///< floats per phase: one spare row for the grid's last reads

    explicit DepthwiseGeometry(const ConvShape& s)
        : C(s.in_channels), O(s.out_channels), multiplier(s.out_channels / s.in_channels), in_h(s.window.in_h),
          in_w(s.window.in_w), out_h(s.out_h()), out_w(s.out_w()), kh(s.window.kernel_h), kw(s.window.kernel_w),
          taps(s.window.kernel_h * s.window.kernel_w), sh(s.window.stride_h), sw(s.window.stride_w), dh(s.dilation_h),
          dw(s.dilation_w), top(s.window.pad_top), left(s.window.pad_left) {
        const std::int64_t padded_h = in_h + s.window.pad_top + s.window.pad_bottom;
        const std::int64_t padded_w = in_w + s.window.pad_left + s.window.pad_right;
        phase_rows = (padded_h + sh - 1) / sh;
        phase_cols = (padded_w + sw - 1) / sw;
        phase_size = (phase_rows + 1) * phase_cols;
    }
    /// Floats of all the phases of one plane.
    std::int64_t phases_size() const { return sh * sw * phase_size; }
    /// Where a padded row or column `at` (index `at` of `stride` phases) lies: phase at % stride,
    /// position at / stride in it.
    static void split(std::int64_t at, std::int64_t stride, std::int64_t& phase, std::int64_t& position) {
        phase = at % stride;
        position = at / stride;
    }
};

/// Floats of scratch each thread needs: one plane's phases, an output plane on the grid of
/// phase-row width, and one output row (the weight gradient's column sums).
inline std::int64_t depthwise_per_thread(const DepthwiseGeometry& d) {
    return d.phases_size() + d.out_h * d.phase_cols + d.out_w;
}

// Calls visit(t, offset) for each tap t = i * kw + j in order, with where its reads start in
// the phases (the read of output (0, 0)); the phases and shifts are stepped, not divided, per tap.
template <class Visit>
void for_each_tap(const DepthwiseGeometry& d, const Visit& visit) {
    std::int64_t row_phase = 0, row_shift = 0;  // (i * dh) % sh and / sh
    for (std::int64_t i = 0; i < d.kh; ++i) {
        std::int64_t col_phase = 0, col_shift = 0;
        for (std::int64_t j = 0; j < d.kw; ++j) {
            visit(i * d.kw + j, (row_phase * d.sw + col_phase) * d.phase_size + row_shift * d.phase_cols + col_shift);
            for (col_phase += d.dw; col_phase >= d.sw; col_phase -= d.sw) ++col_shift;
        }
        for (row_phase += d.dh; row_phase >= d.sh; row_phase -= d.sh) ++row_shift;
    }
}

// Calls visit(first, at, count, r) for each column phase and each row r of the plane: the row's
// columns first, first + sw, ... (count of them) land one apart from `at` in the phases.
template <class Visit>
void for_each_phase_run(const DepthwiseGeometry& d, const Visit& visit) {
    for (std::int64_t first = 0; first < std::min(d.sw, d.in_w); ++first) {
        std::int64_t col_phase = 0, col = 0;
        DepthwiseGeometry::split(first + d.left, d.sw, col_phase, col);
        const std::int64_t count = (d.in_w - first + d.sw - 1) / d.sw;
        std::int64_t row_phase = 0, row = 0;
        DepthwiseGeometry::split(d.top, d.sh, row_phase, row);
        for (std::int64_t r = 0; r < d.in_h; ++r) {
            visit(first, (row_phase * d.sw + col_phase) * d.phase_size + row * d.phase_cols + col, count, r);
            if (++row_phase == d.sh) {
                row_phase = 0;
                ++row;
            }
        }
    }
}

// The plane `x` into its zero-padded stride phases.
template <class T>
void to_phases(const DepthwiseGeometry& d, const T* x, T* phases) {
    std::fill(phases, phases + d.phases_size(), T(0));
    for_each_phase_run(d, [&](std::int64_t first, std::int64_t at, std::int64_t count, std::int64_t r) {
        const T* from = x + r * d.in_w + first;
        for (std::int64_t k = 0; k < count; ++k) phases[at + k] = from[k * d.sw];
    });
}

// The plane's pixels back out of the phases (the padding dropped).
template <class T>
void from_phases(const DepthwiseGeometry& d, const T* phases, T* x) {
    for_each_phase_run(d, [&](std::int64_t first, std::int64_t at, std::int64_t count, std::int64_t r) {
        T* to = x + r * d.in_w + first;
        for (std::int64_t k = 0; k < count; ++k) to[k * d.sw] = phases[at + k];
    });
}

}  // namespace detail

/// Floats of scratch per thread that depthwise_conv_forward and _backward need.
inline std::int64_t depthwise_conv_per_thread(const ConvShape& s) {
    if (depthwise_blocked(s)) return depthwise_blocked_per_thread(s);
    return detail::depthwise_per_thread(detail::DepthwiseGeometry(s));
}

/// y = act(depthwise_conv(x, w) + b) for a shape that depthwise_conv() accepts: x [N, C, H, W],
/// w [O, 1, kh, kw], bias [O] or null, y [N, O, OH, OW]. Each output element sums its taps in
/// the filter's order, from 0, then adds the bias. `workspace` holds num_threads() *
/// `per_thread` (>= depthwise_conv_per_thread(s)) floats.
template <class T>
void depthwise_conv_forward(const ConvShape& s, const T* x, const T* w, const T* bias, bool relu, T* y, T* workspace,
                            std::int64_t per_thread) {
    if (depthwise_blocked(s)) return depthwise_blocked_forward(s, x, w, bias, relu, y, workspace, per_thread);
    const detail::DepthwiseGeometry d(s);
    const std::int64_t planes = s.batch * d.C, out_plane = d.out_h * d.out_w, grid = d.out_h * d.phase_cols;
#pragma omp parallel for schedule(static) if (planes * d.multiplier * out_plane * d.taps >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const std::int64_t n = p / d.C, c = p % d.C;
        T* phases = workspace + thread_index() * per_thread;
        T* sums = phases + d.phases_size();
        detail::to_phases(d, x + p * d.in_h * d.in_w, phases);
        for (std::int64_t o = c * d.multiplier; o < (c + 1) * d.multiplier; ++o) {
            const T* wo = w + o * d.taps;
            std::fill(sums, sums + grid, T(0));
            detail::for_each_tap(d, [&](std::int64_t t, std::int64_t offset) {
                const T* from = phases + offset;
                const T wt = wo[t];
#pragma omp simd
                for (std::int64_t q = 0; q < grid; ++q) sums[q] += wt * from[q];
            });
            const T b = bias ? bias[o] : T(0);
            T* yo = y + (n * d.O + o) * out_plane;
            for (std::int64_t oy = 0; oy < d.out_h; ++oy) {
                const T* row = sums + oy * d.phase_cols;
                T* yr = yo + oy * d.out_w;
#pragma omp simd
                for (std::int64_t ox = 0; ox < d.out_w; ++ox) {
                    const T v = row[ox] + b;
                    yr[ox] = relu && v <= T(0) ? T(0) : v;  // NaN stays NaN
                }
            }
        }
    }
}

/// Gradients of depthwise_conv_forward (`y` its output, read for the ReLU's mask when `relu`):
/// dx [N, C, H, W], dw [O, 1, kh, kw] and db [O] are overwritten, each may be null. `workspace`
/// holds num_threads() * `per_thread` (>= depthwise_conv_per_thread(s)) floats of scratch, then
/// max_reduction_slices * O * (kh*kw + 1) for the slices' partial sums.
template <class T>
void depthwise_conv_backward(const ConvShape& s, const T* x, const T* w, const T* y, const T* dy, bool relu, T* dw,
                             T* db, T* dx, T* workspace, std::int64_t per_thread) {
    if (depthwise_blocked(s)) return depthwise_blocked_backward(s, x, w, y, dy, relu, dw, db, dx, workspace, per_thread);
    const detail::DepthwiseGeometry d(s);
    const std::int64_t out_plane = d.out_h * d.out_w, in_plane = d.in_h * d.in_w;
    const bool parallel = s.batch * d.O * out_plane * d.taps >= parallel_threshold;
    (void)parallel;  // read by the pragmas only
    // The input gradient, plane by plane: each of its output channels' gradient rows added back
    // through every tap into the phases of the padded plane, whose pixels are then dx.
    if (dx) {
        const std::int64_t planes = s.batch * d.C, grid = d.out_h * d.phase_cols;
#pragma omp parallel for schedule(static) if (parallel)
        for (std::int64_t p = 0; p < planes; ++p) {
            const std::int64_t n = p / d.C, c = p % d.C;
            T* phases = workspace + thread_index() * per_thread;
            T* g = phases + d.phases_size();  // the output gradient on the grid, 0 past each row's end
            std::fill(phases, phases + d.phases_size() + grid, T(0));
            for (std::int64_t o = c * d.multiplier; o < (c + 1) * d.multiplier; ++o) {
                const std::int64_t out = (n * d.O + o) * out_plane;
                detail::masked_gradient(dy + out, relu ? y + out : nullptr, d.out_h, d.out_w, g, d.phase_cols);
                const T* wo = w + o * d.taps;
                detail::for_each_tap(d, [&](std::int64_t t, std::int64_t offset) {
                    T* to = phases + offset;
                    const T wt = wo[t];
#pragma omp simd
                    for (std::int64_t q = 0; q < grid; ++q) to[q] += wt * g[q];
                });
            }
            detail::from_phases(d, phases, dx + p * in_plane);
        }
    }
    if (!dw && !db) return;
    // The weight and bias gradients: per image and input plane, each tap's products of the output
    // gradient's rows with the phase rows the tap read, into the image's slice of the batch.
    T* partials = workspace + num_threads() * per_thread;
    const auto image = [&](std::int64_t n, T* phases, T* partial) {
        T* g = phases + d.phases_size();         // the output gradient on the grid, 0 past each row's end
        T* column = g + d.out_h * d.phase_cols;  // one tap's products summed down each column
        const std::int64_t grid = d.out_h * d.phase_cols;
        std::fill(g, g + grid, T(0));
        for (std::int64_t c = 0; c < d.C; ++c) {
            const T* plane = x + (n * d.C + c) * in_plane;
            // A tap's products over the whole grid in one loop also multiply the zeros past each
            // row's end by pixels (0 * inf is NaN): planes with a NaN or an infinity take the
            // rows' own columns only.
            const bool whole_grid = dw && all_finite(plane, in_plane);
            if (dw) detail::to_phases(d, plane, phases);
            for (std::int64_t o = c * d.multiplier; o < (c + 1) * d.multiplier; ++o) {
                const std::int64_t out = (n * d.O + o) * out_plane;
                detail::masked_gradient(dy + out, relu ? y + out : nullptr, d.out_h, d.out_w, g, d.phase_cols);
                T bias_sum = 0;  // over the whole grid in one loop: its columns past the rows' ends are 0
#pragma omp simd reduction(+ : bias_sum)
                for (std::int64_t q = 0; q < grid; ++q) bias_sum += g[q];
                partial[d.O * d.taps + o] += bias_sum;
                if (!dw) continue;
                if (whole_grid) {
                    // Four taps at a time, so that each value of the grid is loaded once for
                    // four products (1.3x one tap at a time at 28x28).
                    std::int64_t taps[4] = {}, offsets[4] = {};
                    int filled = 0;
                    const auto flush = [&] {
                        const T* f[4];
                        for (int k = 0; k < 4; ++k) f[k] = phases + offsets[k < filled ? k : 0];
                        T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
                        for (std::int64_t q = 0; q < grid; ++q) {
                            s0 += g[q] * f[0][q];
                            s1 += g[q] * f[1][q];
                            s2 += g[q] * f[2][q];
                            s3 += g[q] * f[3][q];
                        }
                        const T sums[4] = {s0, s1, s2, s3};
                        for (int k = 0; k < filled; ++k) partial[o * d.taps + taps[k]] += sums[k];
                        filled = 0;
                    };
                    detail::for_each_tap(d, [&](std::int64_t t, std::int64_t offset) {
                        taps[filled] = t;
                        offsets[filled] = offset;
                        if (++filled == 4) flush();
                    });
                    if (filled > 0) flush();
                    continue;
                }
                detail::for_each_tap(d, [&](std::int64_t t, std::int64_t offset) {
                    const T* from = phases + offset;
                    std::fill(column, column + d.out_w, T(0));
                    for (std::int64_t oy = 0; oy < d.out_h; ++oy) {
                        const T* gr = g + oy * d.phase_cols;
                        const T* xr = from + oy * d.phase_cols;
#pragma omp simd
                        for (std::int64_t ox = 0; ox < d.out_w; ++ox) column[ox] += gr[ox] * xr[ox];
                    }
                    T sum = 0;
#pragma omp simd reduction(+ : sum)
                    for (std::int64_t ox = 0; ox < d.out_w; ++ox) sum += column[ox];
                    partial[o * d.taps + t] += sum;
                });
            }
        }
    };
    const std::int64_t slices = detail::accumulate_in_slices(s.batch, parallel, workspace, per_thread, partials,
                                                             d.O * (d.taps + 1), image);
    detail::sum_slice_partials(partials, slices, d.O, d.taps, dw, db);
}

}  // namespace cnnlite::kernels
