// Activations kept channels-last between layers, for prediction (nn/channels_last_plan.hpp).
// The indirect convolution (kernels/indirect_conv.hpp) reads its input channels-last and
// writes its product channels-last; between layers that work on planes it must transpose both
// ways, and for ResNet-8 at batch 256 those transposes, with the bias and ReLU pass, took a
// sixth of a prediction. Here a network's activations stay channels-last from the input to
// the global pooling, a few images at a time:
//
//     a group = channels_last_group images [image][pixel][channel], then a run of C zeros,
//
// so that each convolution reads its input group in place through one table of offsets
// (the padding's taps point at the zeros after the group, the same offset for every group),
// and writes its output group with the bias, a residual addition and the ReLU applied as the
// product's tiles are stored; pooling reads and writes groups too. A whole group passes
// through every layer while its activations are still in the core's cache.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/indirect_conv.hpp"
#include "cnnlite/kernels/register_gemm.hpp"
#include "cnnlite/kernels/transpose.hpp"

namespace cnnlite::kernels {

/// Images per group: the most one indirect product takes. Four 7x7 maps make 196 rows, which the
/// 12-row tiles cut with little waste, where one image's 49 rows would end in a one-row tile.
constexpr std::int64_t channels_last_group = indirect_max_images;

/// Floats one group of images with `pixels` pixels of `channels` channels takes: the images,
/// then a run of `channels` zeros.
inline std::int64_t channels_last_group_floats(std::int64_t pixels, std::int64_t channels) {
    return channels_last_group * pixels * channels + channels;
}

/// The run of zeros after a group whose images have `pixels` pixels of `channels` channels.
inline void channels_last_zeros(float* group, std::int64_t pixels, std::int64_t channels) {
    float* zeros = group + channels_last_group * pixels * channels;
    std::fill(zeros, zeros + channels, 0.0f);
}

/// `count` images of planes ([count, channels, pixels], at `x`) into a group, channels-last,
/// pixels [first, last) only (first a multiple of 16), so that threads can share the work.
inline void planes_to_channels_last(const float* x, std::int64_t count, std::int64_t channels, std::int64_t pixels,
                                    float* group, std::int64_t first, std::int64_t last) {
    for (std::int64_t b = 0; b < count; ++b)
        transpose_plane(x + b * channels * pixels, channels, pixels, group + b * pixels * channels, first, last);
}

/// A group's `count` images back to planes ([count, channels, pixels], at `y`), channels
/// [first, last) only (first a multiple of 16).
inline void channels_last_to_planes(const float* group, std::int64_t count, std::int64_t pixels,
                                    std::int64_t channels, float* y, std::int64_t first, std::int64_t last) {
    for (std::int64_t b = 0; b < count; ++b)
        transpose_plane(group + b * pixels * channels, pixels, channels, y + b * channels * pixels, first, last);
}

/// The convolution `s` of a group, output rows [begin, end) (row b * P + p: output pixel p of
/// image b) and output channels [first, last) (last < 0: all): y = relu(conv + bias +
/// residual), each only where given (`residual` a group of the output's shape). `wf` holds
/// forward_filters(s, w), `offsets` forward_run_offsets(s, channels_last_group, the group's
/// zeros). Each row's sums are those of the indirect forward, in the same order: the same bits,
/// whichever group, row range or channel range the output falls in.
inline void channels_last_conv(const ConvShape& s, const float* x, const float* wf, const std::int32_t* offsets,
                               const float* bias, const float* residual, bool relu, float* y, std::int64_t begin,
                               std::int64_t end, std::int64_t first = 0, std::int64_t last = -1) {
    const std::int64_t T = s.window.kernel_h * s.window.kernel_w, O = s.out_channels;
    if (last < 0) last = O;
    GemmOperands p{end - begin, last - first, T * s.in_channels, x, 0, 0, wf + first, O, y + begin * O + first, O};
    p.a_run_offsets = offsets + begin * T;
    p.a_taps = T;
    p.a_run = s.in_channels;
    p.column_bias = bias + first;
    p.residual = residual ? residual + begin * O + first : nullptr;
    p.ldr = O;
    p.relu = relu;
    register_gemm(p, false);  // links only where register_gemm is built: callers check register_gemm_available
}

/// y = relu(xs[0] + xs[1] + ... + xs[n-1]) (the ReLU when asked) over elements [begin, end),
/// added in input order as add_n_forward adds them. y may be one of the inputs.
inline void channels_last_sum(const float* const* xs, std::int64_t n, bool relu, float* y, std::int64_t begin,
                              std::int64_t end) {
#pragma omp simd
    for (std::int64_t i = begin; i < end; ++i) {
        float v = xs[0][i];
        for (std::int64_t k = 1; k < n; ++k) v += xs[k][i];
        y[i] = relu && v <= 0.0f ? 0.0f : v;  // NaN stays NaN
    }
}

namespace detail {

/// Output pixel `row` (b * OH*OW + p) of a pooling window `g` over a group: its image and the
/// window's cells inside the image, rows [y0, y1) and columns [x0, x1).
struct PoolWindow {
    std::int64_t image, y0, y1, x0, x1;
    PoolWindow(const WindowGeometry& g, std::int64_t row) {
        const std::int64_t oh = g.out_h(), ow = g.out_w(), oy = row % (oh * ow) / ow, ox = row % ow;
        image = row / (oh * ow);
        y0 = std::max<std::int64_t>(oy * g.stride_h - g.pad_top, 0);
        y1 = std::min<std::int64_t>(oy * g.stride_h - g.pad_top + g.kernel_h, g.in_h);
        x0 = std::max<std::int64_t>(ox * g.stride_w - g.pad_left, 0);
        x1 = std::min<std::int64_t>(ox * g.stride_w - g.pad_left + g.kernel_w, g.in_w);
    }
    /// Cell (iy, ix)'s channels in the group.
    const float* cell(const float* x, const WindowGeometry& g, std::int64_t iy, std::int64_t ix,
                      std::int64_t channels) const {
        return x + ((image * g.in_h + iy) * g.in_w + ix) * channels;
    }
};

}  // namespace detail

/// Max pooling of a group (window `g`, `channels` channels), output pixels [begin, end) of its
/// `count` images (row b * OH*OW + p): each channel's maximum over the window's cells inside
/// the image, in max_pool_plane's order and with its rules (the first maximum wins, a NaN wins
/// and stays, padding never wins): the same values.
inline void channels_last_max_pool(const float* x, const WindowGeometry& g, std::int64_t channels, float* y,
                                   std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
        const detail::PoolWindow w(g, r);
        float* best = y + r * channels;
        std::fill(best, best + channels, -std::numeric_limits<float>::infinity());
        for (std::int64_t iy = w.y0; iy < w.y1; ++iy)
            for (std::int64_t ix = w.x0; ix < w.x1; ++ix) {
                const float* v = w.cell(x, g, iy, ix, channels);
#pragma omp simd
                for (std::int64_t c = 0; c < channels; ++c)
                    best[c] = v[c] > best[c] || (v[c] != v[c] && best[c] == best[c]) ? v[c] : best[c];
            }
    }
}

/// Average pooling of a group, as channels_last_max_pool: each channel's sum over the window's
/// cells inside the image in avg_pool_forward's order, divided by the window's size
/// (`count_include_pad`) or by its cells inside the image: the same bits.
inline void channels_last_avg_pool(const float* x, const WindowGeometry& g, bool count_include_pad,
                                   std::int64_t channels, float* y, std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
        const detail::PoolWindow w(g, r);
        float* sum = y + r * channels;
        std::fill(sum, sum + channels, 0.0f);
        for (std::int64_t iy = w.y0; iy < w.y1; ++iy)
            for (std::int64_t ix = w.x0; ix < w.x1; ++ix) {
                const float* v = w.cell(x, g, iy, ix, channels);
#pragma omp simd
                for (std::int64_t c = 0; c < channels; ++c) sum[c] += v[c];
            }
        const std::int64_t cells = count_include_pad ? g.kernel_h * g.kernel_w : (w.y1 - w.y0) * (w.x1 - w.x0);
        const float divisor = static_cast<float>(cells);
#pragma omp simd
        for (std::int64_t c = 0; c < channels; ++c) sum[c] /= divisor;
    }
}

/// y[b * channels + c] = the mean over the pixels of channel c of image b, for the group's
/// `count` images and channels [first, last): as global_avg_pool_forward, summed in double.
inline void channels_last_global_average(const float* group, std::int64_t count, std::int64_t pixels,
                                         std::int64_t channels, float* y, std::int64_t first, std::int64_t last) {
    constexpr std::int64_t block = 64;  // channels summed side by side
    for (std::int64_t b = 0; b < count; ++b)
        for (std::int64_t c0 = first; c0 < last; c0 += block) {
            const std::int64_t width = std::min(block, last - c0);
            double sums[block] = {};
            for (std::int64_t p = 0; p < pixels; ++p) {
                const float* row = group + (b * pixels + p) * channels + c0;
#pragma omp simd
                for (std::int64_t j = 0; j < width; ++j) sums[j] += static_cast<double>(row[j]);
            }
            for (std::int64_t j = 0; j < width; ++j)
                y[b * channels + c0 + j] = static_cast<float>(sums[j] / static_cast<double>(pixels));
        }
}

}  // namespace cnnlite::kernels
