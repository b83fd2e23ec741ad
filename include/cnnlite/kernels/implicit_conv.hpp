// Float convolutions without im2col ("implicit GEMM"): each image is copied once into a
// zero-padded plane per channel, and register_gemm reads the unfolded matrix's rows straight
// from it. Described here for stride 1; a larger stride splits each padded plane into its
// stride_h x stride_w phases (PaddedPlanes), in which every tap's rows are contiguous again.
//
// Row (c, tap) of im2col is the padded plane of channel c shifted by the tap's offset, if the
// product's columns run over a "wide" grid of output rows as long as the padded rows
// (Wp = W + pad_left + pad_right): wide column oh * Wp + ow reads padded pixel
// (oh + kh) * Wp + ow + kw. The Wp - OW columns at the end of each row are wasted work (for a
// 3x3 kernel 7% more multiply-adds at 28x28, 13% at 14x14, 24% at 7x7), dropped when the result
// is copied out; the unfolded copy im2col writes (kh * kw times the image) is never made.
//
// - Forward: y_wide[O, (OH-1) Wp + OW] = W[O, K] x (padded image, read by tap), then the valid
//   columns copied out with the bias and ReLU. Every output sums the same products in the same
//   order as the im2col path: the same bits.
// - Weight gradient: dW^T[K, O] += (padded image, row (c, tap), column = the pixel's offset) x
//   g^T[P, O]. Only the valid pixels are summed, in order, as im2col's columns: the same bits.
// - Input gradient: a stride-1 convolution of the output gradient, zero-padded by kernel - 1 -
//   pad on each side, with the filters flipped and their channel roles swapped:
//   dx[c, ih, iw] = sum over (o, kh', kw') of W[o, c, KH-1-kh', KW-1-kw'] gpad[o, ih + kh', iw + kw'].
//   Its sums run over (o, tap) in one chain, not as im2col's W^T g followed by col2im's additions,
//   so its bits differ from the unfold path's (the tests compare both with double). Products with
//   the padding's zeros stand where col2im drops contributions: equal for finite weights, but an
//   infinite weight would turn 0 * inf into NaN at the border, so non-finite weights take the
//   unfold path (conv2d.hpp). A strided convolution's input gradient is an indirect product
//   (indirect_conv.hpp), as are the forward and input gradient of shapes where that measured
//   faster.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/register_gemm.hpp"

namespace cnnlite::kernels {

/// Most taps (kernel_h * kernel_w) the in-place path takes: their offsets live on the stack.
constexpr std::int64_t max_in_place_taps = 49;

/// Narrowest output the in-place path takes in `ConvAlgorithm::automatic` (measured with
/// bench_kernels, benchmarks/README.md "Convolutions without im2col"): at 7x7 the wide grid adds
/// 24% to a 3x3 product's multiply-adds, and the unfold path puts four images in one product.
constexpr std::int64_t in_place_min_width = 14;

/// Whether a convolution can read its images in place (float on register_gemm, one group, no
/// dilation, a stride no larger than the kernel, padding smaller than the kernel on each side, a
/// kernel of at most max_in_place_taps taps, and more than a handful of taps per product), and
/// whether it does for `s.algorithm`: its weight gradient does, and its forward and input
/// gradient unless they run as indirect products (indirect_conv.hpp).
template <class T>
bool runs_in_place(const ConvShape& s) {
    if constexpr (!(std::is_same_v<T, float> && register_gemm_available)) {
        (void)s;
        return false;
    } else {
        const WindowGeometry& g = s.window;
        const bool possible = s.plain() && g.stride_h <= g.kernel_h && g.stride_w <= g.kernel_w &&
                              g.pad_top < g.kernel_h && g.pad_bottom < g.kernel_h && g.pad_left < g.kernel_w &&
                              g.pad_right < g.kernel_w && g.kernel_h * g.kernel_w <= max_in_place_taps &&
                              s.patch() > direct_conv_max_patch;
        if (!possible || s.algorithm == ConvAlgorithm::unfold || s.algorithm == ConvAlgorithm::indirect) return false;
        return s.algorithm == ConvAlgorithm::in_place || s.out_w() >= in_place_min_width;
    }
}

/// Whether the input gradient, too, is a convolution read in place (stride 1); strided
/// convolutions unfold it, in a pass of its own (conv2d.hpp).
inline bool input_gradient_in_place(const ConvShape& s) { return s.window.stride_h == 1 && s.window.stride_w == 1; }

namespace detail {

/// A zero-padded copy of an image's planes (`channels` planes of height x width, the source
/// `top`/`left` rows/columns in), split by a stride into its phases: phase (py, px) holds the
/// padded pixels (i * stride_h + py, j * stride_w + px). A tap (kh, kw) of output (oh, ow) then
/// reads phase (kh % stride_h, kw % stride_w) at (oh + kh / stride_h, ow + kw / stride_w): rows
/// the wide grid walks contiguously. Stride 1 has one phase, the padded plane itself.
struct PaddedPlanes {
    std::int64_t channels, height, width, top, left;
    std::int64_t stride_h = 1, stride_w = 1;
    std::int64_t phase_h() const { return (height + stride_h - 1) / stride_h; }  ///< rows of a phase
    std::int64_t row() const { return (width + stride_w - 1) / stride_w; }       ///< a phase's row length
    std::int64_t phase() const { return phase_h() * row(); }
    std::int64_t plane() const { return stride_h * stride_w * phase(); }  ///< one channel's phases
    std::int64_t size() const { return channels * plane(); }
    /// Copies `src` ([channels, h, w]) into `dst` (size() elements), zeros around it.
    void fill(const float* src, std::int64_t h, std::int64_t w, float* dst) const {
        if (stride_h == 1 && stride_w == 1) return fill_unstrided(src, h, w, dst);
        for (std::int64_t c = 0; c < channels; ++c)
            for (std::int64_t py = 0; py < stride_h; ++py)
                for (std::int64_t px = 0; px < stride_w; ++px)
                    for (std::int64_t i = 0; i < phase_h(); ++i) {
                        float* out = dst + c * plane() + (py * stride_w + px) * phase() + i * row();
                        const std::int64_t r = i * stride_h + py - top;
                        if (r < 0 || r >= h) {
                            std::fill(out, out + row(), 0.0f);
                            continue;
                        }
                        const float* in = src + (c * h + r) * w;
                        for (std::int64_t j = 0; j < row(); ++j) {
                            const std::int64_t x = j * stride_w + px - left;
                            out[j] = x >= 0 && x < w ? in[x] : 0.0f;
                        }
                    }
    }
    /// Offsets of a kh x kw window's taps in a channel's phases, row by row (the weights' order).
    void tap_offsets(std::int64_t kh, std::int64_t kw, std::int64_t* offsets) const {
        for (std::int64_t i = 0; i < kh; ++i)
            for (std::int64_t j = 0; j < kw; ++j)
                offsets[i * kw + j] = ((i % stride_h) * stride_w + j % stride_w) * phase() + i / stride_h * row() + j / stride_w;
    }
    /// Columns of the wide grid a product over `rows` x `cols` outputs spans: (rows - 1) * row() + cols.
    std::int64_t wide_columns(std::int64_t rows, std::int64_t cols) const { return (rows - 1) * row() + cols; }

private:
    void fill_unstrided(const float* src, std::int64_t h, std::int64_t w, float* dst) const {
        for (std::int64_t c = 0; c < channels; ++c) {
            float* p = dst + c * plane();
            std::fill(p, p + top * width, 0.0f);
            for (std::int64_t r = 0; r < h; ++r) {
                float* line = p + (top + r) * width;
                std::fill(line, line + left, 0.0f);
                std::memcpy(line + left, src + (c * h + r) * w, static_cast<std::size_t>(w) * sizeof(float));
                std::fill(line + left + w, line + width, 0.0f);
            }
            std::fill(p + (top + h) * width, p + plane(), 0.0f);
        }
    }
};

/// The input image's padded planes (forward and weight gradient).
inline PaddedPlanes padded_input(const ConvShape& s) {
    const WindowGeometry& g = s.window;
    return {s.in_channels, g.in_h + g.pad_top + g.pad_bottom, g.in_w + g.pad_left + g.pad_right, g.pad_top, g.pad_left,
            g.stride_h, g.stride_w};
}

/// The output gradient's padded planes (input gradient): kernel - 1 - pad on each side.
inline PaddedPlanes padded_output_gradient(const ConvShape& s) {
    const WindowGeometry& g = s.window;
    const std::int64_t top = g.kernel_h - 1 - g.pad_top, bottom = g.kernel_h - 1 - g.pad_bottom;
    const std::int64_t left = g.kernel_w - 1 - g.pad_left, right = g.kernel_w - 1 - g.pad_right;
    return {s.out_channels, s.out_h() + top + bottom, s.out_w() + left + right, top, left};
}

/// Copies `channels` blocks of h rows of w values into `dst` ([channels, h, w]), adding
/// `bias[c]` (may be null) and applying the ReLU when asked: source channel c starts at
/// src + c * channel_stride and its rows are `row_stride` apart. The valid columns of a wide
/// result, or one image's columns of a product over several; `dst` may be `src` itself.
inline void copy_with_bias_relu(const float* src, std::int64_t channels, std::int64_t channel_stride,
                                std::int64_t row_stride, std::int64_t h, std::int64_t w, const float* bias, bool relu,
                                float* dst) {
    for (std::int64_t c = 0; c < channels; ++c) {
        const float add = bias ? bias[c] : 0.0f;
        for (std::int64_t r = 0; r < h; ++r) {
            const float* in = src + c * channel_stride + r * row_stride;
            float* out = dst + (c * h + r) * w;
#pragma omp simd
            for (std::int64_t x = 0; x < w; ++x) {
                const float v = in[x] + add;
                out[x] = relu && v <= 0.0f ? 0.0f : v;  // NaN stays NaN
            }
        }
    }
}

}  // namespace detail

/// Scratch (floats) one thread needs for the in-place forward of one image: the padded image and
/// the wide product.
inline std::int64_t in_place_forward_scratch(const ConvShape& s) {
    const detail::PaddedPlanes in = detail::padded_input(s);
    return in.size() + s.out_channels * in.wide_columns(s.out_h(), s.out_w());
}

/// Scratch (floats) one thread needs for the in-place gradients of one image, next to the masked
/// gradient and its transpose: the padded image (weight gradient), or the padded output gradient
/// and the wide input gradient (input gradient, stride 1), whichever is larger. (An input
/// gradient unfolded instead needs the unfold path's columns: conv2d_per_thread covers them.)
inline std::int64_t in_place_backward_scratch(const ConvShape& s) {
    const detail::PaddedPlanes in = detail::padded_input(s);
    if (!input_gradient_in_place(s)) return in.size();
    const detail::PaddedPlanes gp = detail::padded_output_gradient(s);
    const WindowGeometry& g = s.window;
    return std::max(in.size(), gp.size() + s.in_channels * gp.wide_columns(g.in_h, g.in_w));
}

/// y of one image (`xn` [C, H, W] into `yn` [O, OH, OW]) read in place: see the file's comment.
/// `scratch` holds in_place_forward_scratch(s) floats.
inline void in_place_forward(const ConvShape& s, const float* xn, const float* w, const float* bias, bool relu,
                             float* yn, float* scratch) {
    const detail::PaddedPlanes in = detail::padded_input(s);
    const std::int64_t T = s.window.kernel_h * s.window.kernel_w, K = s.patch(), O = s.out_channels;
    const std::int64_t wide = in.wide_columns(s.out_h(), s.out_w());
    std::int64_t taps[max_in_place_taps];
    in.tap_offsets(s.window.kernel_h, s.window.kernel_w, taps);
    float* padded = scratch;
    float* product = scratch + in.size();
    in.fill(xn, s.window.in_h, s.window.in_w, padded);
    GemmOperands g{O, wide, K, w, K, 1, padded, in.plane(), product, wide};
    g.b_tap_offsets = taps;
    g.b_taps = T;
    register_gemm(g, false);
    detail::copy_with_bias_relu(product, O, wide, in.row(), s.out_h(), s.out_w(), bias, relu, yn);
}

/// dW^T [K, O] += the weight gradient of one image, read in place: `gT` is its masked output
/// gradient transposed ([P, O]). `scratch` holds the padded image (padded_input(s).size()).
inline void in_place_weight_gradient(const ConvShape& s, const float* xn, const float* gT, float* dwT, float* scratch) {
    const detail::PaddedPlanes in = detail::padded_input(s);
    const std::int64_t T = s.window.kernel_h * s.window.kernel_w, K = s.patch(), O = s.out_channels;
    std::int64_t taps[max_in_place_taps];
    in.tap_offsets(s.window.kernel_h, s.window.kernel_w, taps);
    in.fill(xn, s.window.in_h, s.window.in_w, scratch);
    GemmOperands g{K, O, s.pixels(), scratch, in.plane(), in.row(), gT, O, dwT, O};
    g.a_tap_offsets = taps;
    g.a_taps = T;
    g.a_run = s.out_w();
    register_gemm(g, true);
}

/// The input gradient's filters: flipped[c][o * T + t] = w[o][c][T - 1 - t], T taps (the
/// kernel turned by 180 degrees, output and input channels swapped).
inline void flip_filters(const ConvShape& s, const float* w, float* flipped) {
    const std::int64_t T = s.window.kernel_h * s.window.kernel_w, C = s.in_channels, O = s.out_channels;
    for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t o = 0; o < O; ++o)
            for (std::int64_t t = 0; t < T; ++t) flipped[(c * O + o) * T + t] = w[(o * C + c) * T + (T - 1 - t)];
}

/// dx of one image (`dxn` [C, H, W], overwritten) from its masked output gradient `g` [O, OH, OW]
/// and the flipped filters (flip_filters). `scratch` holds in_place_backward_scratch(s) floats.
inline void in_place_input_gradient(const ConvShape& s, const float* g, const float* flipped, float* dxn,
                                    float* scratch) {
    const detail::PaddedPlanes gp = detail::padded_output_gradient(s);
    const WindowGeometry& geo = s.window;
    const std::int64_t T = geo.kernel_h * geo.kernel_w, O = s.out_channels, C = s.in_channels;
    const std::int64_t wide = gp.wide_columns(geo.in_h, geo.in_w);
    std::int64_t taps[max_in_place_taps];
    gp.tap_offsets(geo.kernel_h, geo.kernel_w, taps);
    float* padded = scratch;
    float* product = scratch + gp.size();
    gp.fill(g, s.out_h(), s.out_w(), padded);
    GemmOperands p{C, wide, O * T, flipped, O * T, 1, padded, gp.plane(), product, wide};
    p.b_tap_offsets = taps;
    p.b_taps = T;
    register_gemm(p, false);
    detail::copy_with_bias_relu(product, C, wide, gp.row(), geo.in_h, geo.in_w, nullptr, false, dxn);
}

}  // namespace cnnlite::kernels
