// Winograd's transforms (kernels/winograd.hpp) for the convolutions of training and of
// Model::predict, whose activations are planes ([N, C, H, W]): the forward, the input gradient
// and the weight gradient of a stride-1 3x3 convolution.
//
// A group of four images is transposed channels-last, convolved by channels_last_winograd as
// prediction's groups are, and transposed back: the transposes move each value twice, against
// the 3-4x fewer multiplications of the products (ResNet-8's 3x3 layers sum 32-128 channels, so
// a value moved takes part in hundreds of multiply-adds).
//
// The input gradient of a stride-1 convolution is itself a stride-1 convolution: of the
// (ReLU-masked) output gradient with the filters turned by 180 degrees and their input and
// output channels exchanged, padded by 2 - p where the forward was padded by p,
//
//     dx[c, i, j] = sum over o, a, b of g[o, i + p_top - a, j + p_left - b] * w[o, c, a, b]
//                 = sum over o, a', b' of g[o, i - (2 - p_top) + a', ...] * w[o, c, 2 - a', 2 - b'],
//
// so the same transforms run it (input_gradient_conv_shape), where each padding is at most 2.
//
// The weight gradient sums the batch's transformed tiles: see weight_gradient_winograd_tile.
//
// In the forward and the input gradient each image's outputs depend on that image alone
// (channels_last_winograd): the same bits for any thread count and any batch; the weight
// gradient's sums run in an order fixed by the shape. An image holding a non-finite or huge
// value takes the direct product within the transforms' code (forward, input gradient) or sends
// the whole weight gradient to the direct path, and filters whose transforms are not finite make
// the caller take its direct path too (the functions below return false).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cnnlite/kernels/activation.hpp"
#include "cnnlite/kernels/channels_last.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/indirect_conv.hpp"
#include "cnnlite/kernels/parallel.hpp"
#include "cnnlite/kernels/register_gemm.hpp"
#include "cnnlite/kernels/transpose.hpp"
#include "cnnlite/kernels/winograd.hpp"

namespace cnnlite::kernels {

/// The input gradient of the stride-1 3x3 convolution `s` as a convolution: of the output
/// gradient ([O, OH, OW] per image) into [C, H, W], each padding 2 - p.
inline ConvShape input_gradient_conv_shape(const ConvShape& s) {
    ConvShape t = s;
    t.in_channels = s.out_channels;
    t.out_channels = s.in_channels;
    WindowGeometry& g = t.window;
    g.in_h = s.out_h();
    g.in_w = s.out_w();
    g.pad_top = 2 - s.window.pad_top;
    g.pad_bottom = 2 - s.window.pad_bottom;
    g.pad_left = 2 - s.window.pad_left;
    g.pad_right = 2 - s.window.pad_right;
    return t;
}

/// The tile size the forward of `s` runs with on planes (kernels::winograd_tile_for's choice),
/// or 0: the direct path. Float on register_gemm, the automatic algorithm, and `s.winograd`.
template <class T>
std::int64_t forward_winograd_tile(const ConvShape& s) {
    if constexpr (!(std::is_same_v<T, float> && register_gemm_available)) {
        (void)s;
        return 0;
    } else {
        if (!s.winograd || s.algorithm != ConvAlgorithm::automatic) return 0;
        return winograd_tile_for(s);
    }
}

/// The tile size the input gradient of `s` runs with (the choice for input_gradient_conv_shape),
/// or 0: the direct path. As forward_winograd_tile, and each padding of `s` at most 2.
template <class T>
std::int64_t input_gradient_winograd_tile(const ConvShape& s) {
    if constexpr (!(std::is_same_v<T, float> && register_gemm_available)) {
        (void)s;
        return 0;
    } else {
        const WindowGeometry& g = s.window;
        if (!s.winograd || s.algorithm != ConvAlgorithm::automatic || !winograd_fits(s)) return 0;
        if (g.pad_top > 2 || g.pad_bottom > 2 || g.pad_left > 2 || g.pad_right > 2) return 0;
        return winograd_tile_for(input_gradient_conv_shape(s));
    }
}

/// One thread's floats for planes_winograd of the convolution `c` (as run: input_gradient_conv_shape
/// for the input gradient) by tiles of `tile`: the group's input channels-last with its zeros,
/// the group's output, one input image (the masked gradient before its transpose), and
/// channels_last_winograd's scratch.
inline std::int64_t planes_winograd_per_thread(const ConvShape& c, std::int64_t tile) {
    const std::int64_t in_pixels = c.window.in_h * c.window.in_w;
    return channels_last_group_floats(in_pixels, c.in_channels) + channels_last_group * c.pixels() * c.out_channels +
           c.in_channels * in_pixels + winograd_scratch_floats(c, tile);
}

/// Floats of the filters planes_winograd reads, shared by the threads: the transformed filters
/// (U), the direct product's (forward_filters, for the images that take it), the filters turned
/// for the input gradient, and a zero bias.
inline std::int64_t planes_winograd_filter_floats(const ConvShape& s, std::int64_t tile) {
    const std::int64_t CO = s.in_channels * s.out_channels;
    return WinogradTiles(s, tile).points() * CO + 2 * 9 * CO + std::max(s.in_channels, s.out_channels);
}

/// The filters of a convolution run by planes_winograd, in the `filters` area
/// (planes_winograd_filter_floats of the layer's shape).
struct PlanesWinogradFilters {
    const float* u = nullptr;       ///< winograd_filters
    const float* direct = nullptr;  ///< forward_filters, for the images the transforms refuse
    const float* bias = nullptr;    ///< the bias, or zeros
};

/// Prepares the forward of `s` (filters `w` [O, C, 3, 3], `bias` or null) by tiles of `tile` in
/// `filters`; false when the transformed filters are not finite or huge (winograd_filters).
inline bool prepare_planes_winograd_forward(const ConvShape& s, std::int64_t tile, const float* w, const float* bias,
                                            float* filters, PlanesWinogradFilters& out) {
    const std::int64_t CO = s.in_channels * s.out_channels;
    float* u = filters;
    float* direct = u + WinogradTiles(s, tile).points() * CO;
    float* zeros = direct + 2 * 9 * CO;
    if (!winograd_filters(s, tile, w, u)) return false;
    forward_filters(s, w, direct);
    std::fill(zeros, zeros + s.out_channels, 0.0f);
    out = {u, direct, bias ? bias : zeros};
    return true;
}

/// Prepares the input gradient of `s` (forward filters `w`) by tiles of `tile`: the filters
/// turned by 180 degrees with in and out exchanged, w'[c, o, a, b] = w[o, c, 2 - a, 2 - b], then
/// as prepare_planes_winograd_forward for input_gradient_conv_shape(s).
inline bool prepare_planes_winograd_input_gradient(const ConvShape& s, std::int64_t tile, const float* w,
                                                   float* filters, PlanesWinogradFilters& out) {
    const ConvShape t = input_gradient_conv_shape(s);
    const std::int64_t C = s.in_channels, O = s.out_channels, CO = C * O;
    float* u = filters;
    float* direct = u + WinogradTiles(t, tile).points() * CO;
    float* turned = direct + 9 * CO;
    float* zeros = turned + 9 * CO;
    for (std::int64_t o = 0; o < O; ++o)
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t k = 0; k < 9; ++k) turned[(c * O + o) * 9 + k] = w[(o * C + c) * 9 + 8 - k];
    if (!winograd_filters(t, tile, turned, u)) return false;
    forward_filters(t, turned, direct);
    std::fill(zeros, zeros + C, 0.0f);
    out = {u, direct, zeros};
    return true;
}

/// y = relu(conv(x) + bias) for the planes of a batch ([c.batch, c.in_channels, H, W] into
/// [c.batch, c.out_channels, OH, OW]) by Winograd's F(tile x tile, 3x3), groups of four images
/// at a time; with `mask` (the forward's output, for an input gradient through a fused ReLU), x
/// is first masked where mask <= 0. `workspace` holds planes_winograd_per_thread(c, tile) floats
/// per thread. Groups go to threads whole; a batch of fewer groups than threads shares each
/// group's transposes and tiles among them (the same bits).
inline void planes_winograd(const ConvShape& c, std::int64_t tile, const float* x, const float* mask,
                            const PlanesWinogradFilters& f, bool relu, float* y, float* workspace) {
    const std::int64_t C = c.in_channels, O = c.out_channels, HW = c.window.in_h * c.window.in_w, P = c.pixels();
    const std::int64_t per_thread = planes_winograd_per_thread(c, tile);
    const std::int64_t groups = (c.batch + channels_last_group - 1) / channels_last_group;
    const std::int32_t* offsets = detail::cached_forward_run_offsets(c, channels_last_group);
    const std::int64_t group_in = channels_last_group_floats(HW, C), group_out = channels_last_group * P * O;
    // The group's input channels-last, its pixels [first, last) (image by image, masked first).
    const auto gather = [&](const float* xg, std::int64_t count, float* in, float* masked, std::int64_t first,
                            std::int64_t last) {
        for (std::int64_t b = 0; b < count; ++b) {
            const float* image = xg + b * C * HW;
            if (mask) {
                detail::masked_gradient(image, mask + (xg - x) + b * C * HW, C, HW, masked);
                image = masked;
            }
            transpose_plane(image, C, HW, in + b * HW * C, first, last);
        }
    };
    const bool parallel = c.batch * C * O * P * 9 >= parallel_threshold;
    if (!parallel || groups >= num_threads()) {
#pragma omp parallel for schedule(static) if (parallel)
        for (std::int64_t q = 0; q < groups; ++q) {
            float* in = workspace + thread_index() * per_thread;
            float* out = in + group_in;
            float* masked = out + group_out;
            float* scratch = masked + C * HW;
            const std::int64_t n0 = q * channels_last_group, count = std::min(channels_last_group, c.batch - n0);
            gather(x + n0 * C * HW, count, in, masked, 0, HW);
            channels_last_zeros(in, HW, C);
            const WinogradPart whole{0, count * WinogradTiles(c, tile).per_image(), 0, O};
            channels_last_winograd(c, tile, count, in, f.u, f.direct, offsets, f.bias, nullptr, relu, out, whole, scratch);
            channels_last_to_planes(out, count, P, O, y + n0 * O * P, 0, O);
        }
        return;
    }
    // Fewer groups than threads (a batch of a few images): the threads share each group, in
    // num_threads() parts however many threads the team has.
    float* in = workspace;  // the first part's group buffers, shared
    float* out = in + group_in;
    const std::int64_t parts = num_threads();
#pragma omp parallel
    for (std::int64_t q = 0; q < groups; ++q) {
        const std::int64_t n0 = q * channels_last_group, count = std::min(channels_last_group, c.batch - n0);
#pragma omp for schedule(static)
        for (std::int64_t part = 0; part < parts; ++part) {
            const auto [first, last] = IndirectForward::share(HW, part, parts);
            gather(x + n0 * C * HW, count, in, workspace + part * per_thread + group_in + group_out, first, last);
            if (part == 0) channels_last_zeros(in, HW, C);
        }
#pragma omp for schedule(static)
        for (std::int64_t part = 0; part < parts; ++part)
            channels_last_winograd(c, tile, count, in, f.u, f.direct, offsets, f.bias, nullptr, relu, out,
                                   winograd_share(c, tile, count, part, parts),
                                   workspace + part * per_thread + group_in + group_out + C * HW);
#pragma omp for schedule(static)
        for (std::int64_t part = 0; part < parts; ++part) {
            const auto [o0, o1] = IndirectForward::share(O, part, parts);
            channels_last_to_planes(out, count, P, O, y + n0 * O * P, o0, o1);
        }
    }
}

/// The tile size the weight gradient of `s` runs with (the forward's choice), or 0: the direct
/// path. The weight gradient is the forward's bilinear form read the other way: with
/// Y = A^T [U (.) V] A and U = G w G^T, the gradient of sum(dY * Y) with respect to w is
///
///     dw = G^T [ sum over tiles of (A dY A^T) (.) (B^T d B) ] G,
///
/// so the sums over the tiles and the batch are n^2 products M_xi[in, out] of the tiles'
/// transformed inputs and transformed output gradients, and G^T M G runs once per filter.
template <class T>
std::int64_t weight_gradient_winograd_tile(const ConvShape& s) {
    return forward_winograd_tile<T>(s);
}

/// Images whose tiles one block of the weight gradient transforms before multiplying them: at
/// least 256 tiles, so that each of the n^2 products sums that many terms per pass over its
/// output. By the shape alone: the sums' order, and so their bits, never depend on the threads.
inline std::int64_t winograd_weight_gradient_block_images(const ConvShape& s, std::int64_t tile) {
    const std::int64_t per_image = WinogradTiles(s, tile).per_image();
    return std::max<std::int64_t>(1, (256 + per_image - 1) / per_image);
}

/// Floats the threads share for planes_winograd_weight_gradient: the sums M [points][C][O], then
/// a block's transformed inputs [tiles][points][C] and output gradients [tiles][points][O].
inline std::int64_t planes_winograd_weight_gradient_shared(const ConvShape& s, std::int64_t tile) {
    const WinogradTiles t(s, tile);
    const std::int64_t tiles = std::min(s.batch, winograd_weight_gradient_block_images(s, tile)) * t.per_image();
    return t.points() * (s.in_channels * s.out_channels + tiles * (s.in_channels + s.out_channels));
}

/// One thread's floats for planes_winograd_weight_gradient: an image and its masked output
/// gradient channels-last, the masked gradient on planes, and a tile's inputs and output
/// gradient where it reaches past the image.
inline std::int64_t planes_winograd_weight_gradient_per_thread(const ConvShape& s, std::int64_t tile) {
    const std::int64_t HW = s.window.in_h * s.window.in_w, P = s.pixels();
    return HW * s.in_channels + 2 * P * s.out_channels + WinogradTiles(s, tile).points() * s.in_channels +
           tile * tile * s.out_channels;
}

namespace detail {

/// The n values A g of the m values at p, p + step, ...
template <int M>
inline void gradient_column(const float* p, std::int64_t step, float (&u)[M + 2]) {
    if constexpr (M == 2)
        Winograd<2>::gradient(p[0], p[step], u);
    else
        Winograd<4>::gradient(p[0], p[step], p[2 * step], p[3 * step], u);
}

/// A g A^T of one m x m tile of an output gradient for all `O` channels: g's cell (r, c) holds
/// its channels at g + r * row + c * O, the point xi goes to u + xi * O.
template <int M>
inline void winograd_gradient_tile(const float* g, std::int64_t row, std::int64_t O, float* u) {
    constexpr int n = M + 2;
    constexpr std::int64_t L = winograd_lanes;
    for (std::int64_t o0 = 0; o0 < O; o0 += L) {
        const std::int64_t lanes = std::min(L, O - o0);
        float t[M][n][L];  // g A^T: row r, point j
        for (int r = 0; r < M; ++r) {
            const float* p = g + r * row + o0;
#pragma omp simd
            for (std::int64_t l = 0; l < lanes; ++l) {
                float w[n];
                gradient_column<M>(p + l, O, w);
#pragma GCC unroll 16
                for (int j = 0; j < n; ++j) t[r][j][l] = w[j];
            }
        }
        for (int j = 0; j < n; ++j) {  // then A on every column j
            float* out = u + j * O + o0;
#pragma omp simd
            for (std::int64_t l = 0; l < lanes; ++l) {
                float w[n];
                gradient_column<M>(&t[0][j][l], n * L, w);
#pragma GCC unroll 16
                for (int i = 0; i < n; ++i) out[i * n * O + l] = w[i];
            }
        }
    }
}

template <int M>
inline bool planes_winograd_weight_gradient(const ConvShape& s, const float* x, const float* dy, const float* mask,
                                            float* dw, float* shared, float* workspace) {
    constexpr std::int64_t n = M + 2, points = n * n;
    const std::int64_t C = s.in_channels, O = s.out_channels, H = s.window.in_h, W = s.window.in_w, HW = H * W;
    const std::int64_t OH = s.out_h(), OW = s.out_w(), P = s.pixels();
    const WinogradTiles tiles(s, M);
    const std::int64_t per_image = tiles.per_image(), block = winograd_weight_gradient_block_images(s, M);
    const std::int64_t per_thread = planes_winograd_weight_gradient_per_thread(s, M);
    float* const sums = shared;
    float* const v = sums + points * C * O;
    float* const u = v + std::min(block, s.batch) * per_image * points * C;
    int usable = 1;
    const bool parallel = s.batch * C * O * P * 9 >= parallel_threshold;
    (void)parallel;  // read by the OpenMP pragmas only
#pragma omp parallel if (parallel)
    {
        float* const xT = workspace + thread_index() * per_thread;
        float* const gT = xT + HW * C;
        float* const masked = gT + P * O;
        float* const patch = masked + P * O;  // a tile's inputs, rows n * C apart
        float* const corner = patch + points * C;  // a tile's output gradient, rows M * O apart
        for (std::int64_t n0 = 0; n0 < s.batch; n0 += block) {
            const std::int64_t count = std::min(block, s.batch - n0);
            // Each image's tiles transformed, by the thread that takes the image.
#pragma omp for schedule(static)
            for (std::int64_t b = 0; b < count; ++b) {
                const float* xb = x + (n0 + b) * C * HW;
                masked_gradient(dy + (n0 + b) * O * P, mask ? mask + (n0 + b) * O * P : nullptr, O, P, masked);
                if (!winograd_image_usable(xb, 0, HW, C) || !winograd_image_usable(masked, 0, P, O)) {
#pragma omp atomic write
                    usable = 0;
                    continue;
                }
                transpose_plane(xb, C, HW, xT);
                transpose_plane(masked, O, P, gT);
                for (std::int64_t r = 0; r < per_image; ++r) {
                    const std::int64_t t = b * per_image + r;
                    const std::int64_t oy0 = r / tiles.columns * M, ox0 = r % tiles.columns * M;
                    const std::int64_t iy0 = oy0 - s.window.pad_top, ix0 = ox0 - s.window.pad_left;
                    float* tile_v = v + t * points * C;
                    if (iy0 >= 0 && iy0 + n <= H && ix0 >= 0 && ix0 + n <= W) {
                        winograd_input_tile<M>(xT + (iy0 * W + ix0) * C, W * C, C, tile_v);
                    } else {  // at the image's edge: the cells inside it, zeros around them
                        for (std::int64_t y = 0; y < n; ++y)
                            for (std::int64_t c = 0; c < n; ++c) {
                                const std::int64_t iy = iy0 + y, ix = ix0 + c;
                                float* to = patch + (y * n + c) * C;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W) std::copy(xT + (iy * W + ix) * C, xT + (iy * W + ix + 1) * C, to);
                                else std::fill(to, to + C, 0.0f);
                            }
                        winograd_input_tile<M>(patch, n * C, C, tile_v);
                    }
                    float* tile_u = u + t * points * O;
                    if (oy0 + M <= OH && ox0 + M <= OW) {
                        winograd_gradient_tile<M>(gT + (oy0 * OW + ox0) * O, OW * O, O, tile_u);
                    } else {  // past the last row or column: no gradient there
                        for (std::int64_t y = 0; y < M; ++y)
                            for (std::int64_t c = 0; c < M; ++c) {
                                float* to = corner + (y * M + c) * O;
                                const float* from = gT + ((oy0 + y) * OW + ox0 + c) * O;
                                if (oy0 + y < OH && ox0 + c < OW) std::copy(from, from + O, to);
                                else std::fill(to, to + O, 0.0f);
                            }
                        winograd_gradient_tile<M>(corner, M * O, O, tile_u);
                    }
                }
            }
            // Every thread reads `usable` after the loop's barrier and before any writes it again.
            int go_on;
#pragma omp atomic read
            go_on = usable;
            if (!go_on) break;
            // M_xi [C, O] (+)= V_xi^T U_xi over the block's tiles, one thread per point: summed
            // in block order, the same bits for any thread count.
#pragma omp for schedule(static)
            for (std::int64_t xi = 0; xi < points; ++xi) {
                GemmOperands p{C, O, count * per_image, v + xi * C, 1, points * C, u + xi * O, points * O,
                               sums + xi * C * O, O};
                register_gemm(p, n0 > 0);
            }
        }
    }
    if (!usable) return false;
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t o = 0; o < O; ++o)
        for (std::int64_t c = 0; c < C; ++c) {
            double t[3][n], column[n], r[3];  // G^T M, then (G^T M) G row by row
            for (std::int64_t j = 0; j < n; ++j) {
                for (std::int64_t i = 0; i < n; ++i) column[i] = sums[((i * n + j) * C + c) * O + o];
                Winograd<M>::weight(column, r);
                for (int a = 0; a < 3; ++a) t[a][j] = r[a];
            }
            for (int a = 0; a < 3; ++a) {
                Winograd<M>::weight(t[a], r);
                for (int b = 0; b < 3; ++b) dw[(o * C + c) * 9 + a * 3 + b] = static_cast<float>(r[b]);
            }
        }
    return true;
}

}  // namespace detail

/// dw [O, C, 3, 3] (overwritten) of the convolution `s` by F(`tile` x `tile`, 3x3): from the
/// images `x` and the output gradient `dy` (masked where `mask`, the forward's output through a
/// fused ReLU, is not positive), over the whole batch. `shared` holds
/// planes_winograd_weight_gradient_shared(s, tile) floats, `workspace`
/// planes_winograd_weight_gradient_per_thread(s, tile) per thread. Returns false, dw untouched,
/// where an image or its masked gradient holds a non-finite or huge value (the sum of its
/// squares at or above 2^80): the direct path then keeps IEEE's rules.
inline bool planes_winograd_weight_gradient(const ConvShape& s, std::int64_t tile, const float* x, const float* dy,
                                            const float* mask, float* dw, float* shared, float* workspace) {
    if (tile == 2) return detail::planes_winograd_weight_gradient<2>(s, x, dy, mask, dw, shared, workspace);
    return detail::planes_winograd_weight_gradient<4>(s, x, dy, mask, dw, shared, workspace);
}

}  // namespace cnnlite::kernels
