// Winograd's minimal filtering F(m x m, 3x3) (Lavin and Gray 2016) for the channels-last groups
// of prediction (kernels/channels_last.hpp). A 3x3 convolution of stride 1 computes each m x m
// block of outputs (a tile) from the n x n block of inputs under it (n = m + 2) as
//
//     Y = A^T [ U (.) V ] A,   U = G g G^T (per filter, once),   V = B^T d B (per tile),
//
// where (.) multiplies element by element: n^2 multiplications per tile and channel pair
// where the direct convolution takes 9 m^2. F(2x2, 3x3) takes 16 for 4 outputs (2.25x fewer),
// F(4x4, 3x3) 36 for 16 (4x fewer; its transforms' coefficients up to 8 cost a few more bits
// of rounding). Summed over the input channels, the element products become n^2 matrix
// products, one per point xi of the transform,
//
//     M_xi[tiles, out] = V_xi[tiles, in] U_xi[in, out],
//
// which register_gemm runs as it runs the direct convolutions' products. A block of tiles at a
// time is transformed, multiplied and transformed back while its values are in cache:
//
//     V [tile][xi][in]  --n^2 products-->  M [tile][xi][out]  --A^T M A-->  y, with the bias,
//     the residual and the ReLU applied as the m x m outputs are stored.
//
// The transforms add and subtract values that the direct convolution only multiplies: an
// infinity in a tile's inputs becomes inf - inf = NaN in outputs where the direct sum gives
// +-inf, and huge values may overflow where its sum does not. An image holding a non-finite or
// huge value (the sum of its squares at or above 2^80) therefore takes the direct product
// (channels_last_conv) instead, and a convolution whose transformed filters hold one is not run
// this way. Each image's outputs so depend on that image alone: the same bits whichever group,
// block or thread its tiles fall in. Elsewhere they equal the direct convolution's to rounding
// (tests/test_kernels.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cnnlite/kernels/channels_last.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/parallel.hpp"
#include "cnnlite/kernels/register_gemm.hpp"

namespace cnnlite::kernels {

/// Inputs and transformed filters must stay below this magnitude (2^40) for the products'
/// sums to stay far from float's range: see the file's comment.
constexpr double winograd_largest_value = 1099511627776.0;

/// Whether the convolution `s` has the form F(m x m, 3x3) computes: a 3x3 window, stride 1, no
/// dilation, one group (any padding).
inline bool winograd_fits(const ConvShape& s) {
    return s.plain() && s.window.kernel_h == 3 && s.window.kernel_w == 3 && s.window.stride_h == 1 &&
           s.window.stride_w == 1 && s.out_h() > 0 && s.out_w() > 0;
}

/// Multiplications per input and output channel pair over a whole output plane: by the direct
/// product (tile 0) or by F(tile x tile, 3x3), whose tiles cover the plane rounded up to
/// whole tiles.
inline std::int64_t winograd_multiplications(const ConvShape& s, std::int64_t tile) {
    if (tile == 0) return 9 * s.out_h() * s.out_w();
    const std::int64_t rows = (s.out_h() + tile - 1) / tile, columns = (s.out_w() + tile - 1) / tile;
    return (tile + 2) * (tile + 2) * rows * columns;
}

/// The tile size (outputs per side) a convolution runs with, or 0: the direct product. The
/// table of bench_kernels' `winograd/` measurements (batch 64; the direct product's time over
/// the transforms' at 1 / 2 threads; benchmarks/README.md, "Winograd convolutions"), with each
/// way's multiplications as a share of the direct product's:
///
///     channels  output  F(4x4)               F(2x2)               chosen
///     8         28x28   0.61 / 0.54 (0.25)   0.49 / 0.39 (0.44)   direct: too few channels
///     16        28x28   1.27 / 1.22 (0.25)   0.82 / 0.81 (0.44)   F(4x4)
///     32        28x28   2.13 / 2.09 (0.25)   1.32 / 1.32 (0.44)   F(4x4)
///     64        14x14   1.92 / 1.88 (0.33)   1.46 / 1.45 (0.44)   F(4x4)
///     32        7x7     1.57 / 1.44 (0.33)   0.94 / 0.90 (0.58)   F(4x4)
///     128       7x7     1.44 / 1.59 (0.33)   1.26 / 1.29 (0.58)   F(4x4)
///     64        6x6     1.43 / 1.52 (0.44)   1.39 / 1.40 (0.44)   F(4x4)
///     64        5x5     1.02 / 1.01 (0.64)   1.03 / 1.02 (0.64)   direct
///     64        4x4     2.15 / 1.85 (0.25)   1.47 / 1.43 (0.44)   F(4x4)
///     256       4x4     1.93 / 1.91 (0.25)   2.44 / 2.34 (0.44)   F(4x4)
///
/// So: with at least 16 input and output channels, the way with the fewest multiplications
/// (F(4x4) on a tie), if it needs at most half the direct product's. The rule misses one
/// shape of the table (256 channels at 4x4, where F(2x2)'s four tiles per image feed the
/// products better than F(4x4)'s one).
inline std::int64_t winograd_tile_for(const ConvShape& s) {
    if (!winograd_fits(s) || s.in_channels < 16 || s.out_channels < 16) return 0;
    const std::int64_t tile = winograd_multiplications(s, 4) <= winograd_multiplications(s, 2) ? 4 : 2;
    return 2 * winograd_multiplications(s, tile) <= winograd_multiplications(s, 0) ? tile : 0;
}

namespace detail {

/// Channels transformed side by side: the transforms' intermediate rows are arrays of this
/// many lanes, which stay in L1 and leave every loop a fixed-width vector body.
constexpr std::int64_t winograd_lanes = 16;

/// F(m x m, 3x3): the one-dimensional transforms of one tile, applied to its columns and then
/// its rows; for `M` = 2 (interpolation points 0, 1, -1 and infinity) and 4 (0, 1, -1, 2, -2
/// and infinity).
template <int M>
struct Winograd;

template <>
struct Winograd<2> {
    static constexpr int m = 2, n = 4;
    /// G g for one column (g0, g1, g2) of a filter: n values at u.
    static void filter(const double* g, double* u) {
        u[0] = g[0];
        u[1] = (g[0] + g[1] + g[2]) / 2;
        u[2] = (g[0] - g[1] + g[2]) / 2;
        u[3] = g[2];
    }
    /// B^T d for one column (d0 .. d3): rows d0 - d2, d1 + d2, d2 - d1, d1 - d3.
    static void input(float d0, float d1, float d2, float d3, float (&w)[n]) {
        w[0] = d0 - d2;
        w[1] = d1 + d2;
        w[2] = d2 - d1;
        w[3] = d1 - d3;
    }
    /// A^T x for one column (x0 .. x3): x0 + x1 + x2, x1 - x2 - x3.
    static void output(float x0, float x1, float x2, float x3, float (&y)[m]) {
        y[0] = x0 + x1 + x2;
        y[1] = x1 - x2 - x3;
    }
    /// A g for one column (g0, g1) of an output gradient (the weight gradient): g0, g0 + g1,
    /// g0 - g1, -g1.
    static void gradient(float g0, float g1, float (&u)[n]) {
        u[0] = g0;
        u[1] = g0 + g1;
        u[2] = g0 - g1;
        u[3] = -g1;
    }
    /// G^T x for one column (x0 .. x3) of the weight gradient's sums: x0 + (x1 + x2) / 2,
    /// (x1 - x2) / 2, (x1 + x2) / 2 + x3.
    static void weight(const double* x, double* r) {
        r[0] = x[0] + (x[1] + x[2]) / 2;
        r[1] = (x[1] - x[2]) / 2;
        r[2] = (x[1] + x[2]) / 2 + x[3];
    }
};

template <>
struct Winograd<4> {
    static constexpr int m = 4, n = 6;
    /// G g: g0 / 4, -(g0 + g1 + g2) / 6, -(g0 - g1 + g2) / 6, g0 / 24 + g1 / 12 + g2 / 6,
    /// g0 / 24 - g1 / 12 + g2 / 6, g2.
    /// (Multiplied by 1/6 rather than divided by 6: training transforms its filters at every
    /// step, and the divisions had taken a quarter of a 7x7 layer's forward.)
    static void filter(const double* g, double* u) {
        constexpr double sixth = 1.0 / 6;
        u[0] = g[0] / 4;
        u[1] = -(g[0] + g[1] + g[2]) * sixth;
        u[2] = -(g[0] - g[1] + g[2]) * sixth;
        u[3] = (g[0] / 4 + g[1] / 2 + g[2]) * sixth;
        u[4] = (g[0] / 4 - g[1] / 2 + g[2]) * sixth;
        u[5] = g[2];
    }
    /// B^T d: 4 d0 - 5 d2 + d4, -4 (d1 + d2) + d3 + d4, 4 (d1 - d2) + d4 - d3,
    /// -2 (d1 - d3) + d4 - d2, 2 (d1 - d3) + d4 - d2, 4 d1 - 5 d3 + d5.
    static void input(float d0, float d1, float d2, float d3, float d4, float d5, float (&w)[n]) {
        const float even = d4 - d2, odd = d1 - d3;
        w[0] = 4 * d0 - 5 * d2 + d4;
        w[1] = (d3 + d4) - 4 * (d1 + d2);
        w[2] = (d4 - d3) + 4 * (d1 - d2);
        w[3] = even - 2 * odd;
        w[4] = even + 2 * odd;
        w[5] = 4 * d1 - 5 * d3 + d5;
    }
    /// A^T x: x0 + (x1 + x2) + (x3 + x4), (x1 - x2) + 2 (x3 - x4), (x1 + x2) + 4 (x3 + x4),
    /// (x1 - x2) + 8 (x3 - x4) + x5.
    static void output(float x0, float x1, float x2, float x3, float x4, float x5, float (&y)[m]) {
        const float a = x1 + x2, b = x1 - x2, c = x3 + x4, e = x3 - x4;
        y[0] = x0 + a + c;
        y[1] = b + 2 * e;
        y[2] = a + 4 * c;
        y[3] = b + 8 * e + x5;
    }
    /// A g for one column (g0 .. g3): g0, g0 + g1 + g2 + g3, g0 - g1 + g2 - g3,
    /// g0 + 2 g1 + 4 g2 + 8 g3, g0 - 2 g1 + 4 g2 - 8 g3, g3.
    static void gradient(float g0, float g1, float g2, float g3, float (&u)[n]) {
        const float even = g0 + g2, odd = g1 + g3, even4 = g0 + 4 * g2, odd8 = 2 * g1 + 8 * g3;
        u[0] = g0;
        u[1] = even + odd;
        u[2] = even - odd;
        u[3] = even4 + odd8;
        u[4] = even4 - odd8;
        u[5] = g3;
    }
    /// G^T x for one column (x0 .. x5): x0 / 4 - (x1 + x2) / 6 + (x3 + x4) / 24,
    /// (x2 - x1) / 6 + (x3 - x4) / 12, (x3 + x4 - x1 - x2) / 6 + x5.
    static void weight(const double* x, double* r) {
        constexpr double sixth = 1.0 / 6;
        r[0] = x[0] / 4 + ((x[3] + x[4]) / 4 - (x[1] + x[2])) * sixth;
        r[1] = ((x[2] - x[1]) + (x[3] - x[4]) / 2) * sixth;
        r[2] = (x[3] + x[4] - x[1] - x[2]) * sixth + x[5];
    }
};

/// The n values at p, p + step, ..., as the arguments of Winograd<M>::input / output.
template <int M, class F, class... Out>
inline void apply_column(F f, const float* p, std::int64_t step, Out&... out) {
    if constexpr (M == 2)
        f(p[0], p[step], p[2 * step], p[3 * step], out...);
    else
        f(p[0], p[step], p[2 * step], p[3 * step], p[4 * step], p[5 * step], out...);
}

/// V = B^T d B of one tile for all `C` channels: d's cell (r, c) holds its channels at
/// d + r * row + c * C, V's point xi goes to v + xi * C. The loops over a column's points
/// inside the vector loops are unrolled on request (here and in the other tile transforms):
/// GCC does it by itself at -O3 only, and at -O2 left the vector loops scalar.
template <int M>
inline void winograd_input_tile(const float* d, std::int64_t row, std::int64_t C, float* v) {
    using F = Winograd<M>;
    constexpr int n = F::n;
    constexpr std::int64_t L = winograd_lanes;
    for (std::int64_t c0 = 0; c0 < C; c0 += L) {
        const std::int64_t lanes = std::min(L, C - c0);
        float t[n][n][L];  // d B: row r, point j
        for (int r = 0; r < n; ++r) {
            const float* p = d + r * row + c0;
#pragma omp simd
            for (std::int64_t l = 0; l < lanes; ++l) {
                float w[n];
                apply_column<M>(F::input, p + l, C, w);
#pragma GCC unroll 16
                for (int j = 0; j < n; ++j) t[r][j][l] = w[j];
            }
        }
        for (int j = 0; j < n; ++j) {  // then B^T on every column j
            float* out = v + j * C + c0;
#pragma omp simd
            for (std::int64_t l = 0; l < lanes; ++l) {
                float w[n];
                apply_column<M>(F::input, &t[0][j][l], n * L, w);
#pragma GCC unroll 16
                for (int i = 0; i < n; ++i) out[i * n * C + l] = w[i];
            }
        }
    }
}

/// Y = A^T M A of one tile (M's point xi at mx + xi * O), output channels [first, last), then
/// the bias, the residual (with `Residual`; its output (r, c) at residual + r * row + c * O)
/// and the ReLU (with `Relu`), stored at y + r * row + c * O: as register_gemm's epilogue adds
/// them.
template <int M, bool Residual, bool Relu>
inline void winograd_output_tile(const float* mx, std::int64_t O, std::int64_t first, std::int64_t last,
                                 const float* bias, const float* residual, float* y, std::int64_t row) {
    using F = Winograd<M>;
    constexpr int n = F::n, m = F::m;
    constexpr std::int64_t L = winograd_lanes;
    for (std::int64_t o0 = first; o0 < last; o0 += L) {
        const std::int64_t lanes = std::min(L, last - o0);
        float s[n][m][L];  // M A: row r, output column j
        for (int r = 0; r < n; ++r) {
            const float* p = mx + r * n * O + o0;
#pragma omp simd
            for (std::int64_t l = 0; l < lanes; ++l) {
                float w[m];
                apply_column<M>(F::output, p + l, O, w);
#pragma GCC unroll 16
                for (int j = 0; j < m; ++j) s[r][j][l] = w[j];
            }
        }
        for (int j = 0; j < m; ++j) {  // then A^T on every column j
            float* out = y + j * O + o0;
            const float* res = Residual ? residual + j * O + o0 : nullptr;
#pragma omp simd
            for (std::int64_t l = 0; l < lanes; ++l) {
                float w[m];
                apply_column<M>(F::output, &s[0][j][l], m * L, w);
#pragma GCC unroll 16
                for (int i = 0; i < m; ++i) {
                    float v = w[i] + bias[o0 + l];
                    if constexpr (Residual) v += res[i * row + l];
                    if constexpr (Relu) v = v <= 0.0f ? 0.0f : v;
                    out[i * row + l] = v;
                }
            }
        }
    }
}

template <int M>
inline void winograd_output_tile(const float* mx, std::int64_t O, std::int64_t first, std::int64_t last,
                                 const float* bias, const float* residual, bool relu, float* y, std::int64_t row) {
    if (residual && relu) winograd_output_tile<M, true, true>(mx, O, first, last, bias, residual, y, row);
    else if (residual) winograd_output_tile<M, true, false>(mx, O, first, last, bias, residual, y, row);
    else if (relu) winograd_output_tile<M, false, true>(mx, O, first, last, bias, residual, y, row);
    else winograd_output_tile<M, false, false>(mx, O, first, last, bias, residual, y, row);
}

/// Whether image `image` of a group (`pixels` pixels of `channels` channels each) can take the
/// transforms: the sum of its squares is finite and below winograd_largest_value^2.
inline bool winograd_image_usable(const float* group, std::int64_t image, std::int64_t pixels, std::int64_t channels) {
    const float* x = group + image * pixels * channels;
    const std::int64_t count = pixels * channels;
    constexpr std::int64_t L = winograd_lanes;  // partial sums side by side: no horizontal sum per element
    float sums[L] = {};
    std::int64_t i = 0;
    for (; i + L <= count; i += L)
#pragma omp simd
        for (std::int64_t l = 0; l < L; ++l) sums[l] += x[i + l] * x[i + l];
    for (std::int64_t l = 0; i < count; ++i, ++l) sums[l] += x[i] * x[i];
    float total = 0;
    for (float v : sums) total += v;
    return total < static_cast<float>(winograd_largest_value * winograd_largest_value);  // false for NaN
}

}  // namespace detail

/// Tiles of m x m outputs over one image: ceil(out / m) along each side.
struct WinogradTiles {
    std::int64_t m = 2;        ///< outputs per tile side
    std::int64_t rows = 0;     ///< tiles down an image
    std::int64_t columns = 0;  ///< tiles across an image
    /// The tiles of `tile` x `tile` outputs over the output plane of `s`.
    WinogradTiles(const ConvShape& s, std::int64_t tile)
        : m(tile), rows((s.out_h() + tile - 1) / tile), columns((s.out_w() + tile - 1) / tile) {}
    /// Tiles per image.
    std::int64_t per_image() const { return rows * columns; }
    /// Points of the transforms, (m + 2)^2: products per block.
    std::int64_t points() const { return (m + 2) * (m + 2); }
};

/// Tiles transformed and multiplied together: V and M of a block take at most about 512 KB,
/// a quarter of the L2 of the cores measured, and a block is a multiple of 24 tiles (every
/// register_gemm tile height ends there).
inline std::int64_t winograd_block_tiles(const ConvShape& s, std::int64_t tile) {
    const std::int64_t fit = (std::int64_t(1) << 17) / (WinogradTiles(s, tile).points() * (s.in_channels + s.out_channels));
    return std::max<std::int64_t>(24, fit / 24 * 24);
}

/// Floats of working memory one thread needs for channels_last_winograd: a block's V and M, and
/// a tile's inputs and outputs where it reaches past the image (copied with zeros around).
inline std::int64_t winograd_scratch_floats(const ConvShape& s, std::int64_t tile) {
    const std::int64_t points = WinogradTiles(s, tile).points();
    return winograd_block_tiles(s, tile) * points * (s.in_channels + s.out_channels) + points * s.in_channels +
           2 * tile * tile * s.out_channels;
}

namespace detail {

/// winograd_filters for F(M x M, 3x3): input channel by input channel, so that the stores run
/// along the output channels (U's rows) instead of jumping C * O floats at every point.
template <int M>
inline bool winograd_filters(const ConvShape& s, const float* w, float* u) {
    constexpr int n = M + 2;
    const std::int64_t C = s.in_channels, O = s.out_channels;
    int unusable = 0;
#pragma omp parallel for schedule(static) reduction(+ : unusable) if (O * C * n * n >= parallel_threshold)
    for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t o = 0; o < O; ++o) {
            const float* g = w + (o * C + c) * 9;
            double gg[n][3], row[n];  // G g, then (G g) G^T row by row
            for (int j = 0; j < 3; ++j) {
                const double column[3] = {g[j], g[3 + j], g[6 + j]};
                double out[n];
                Winograd<M>::filter(column, out);
                for (int i = 0; i < n; ++i) gg[i][j] = out[i];
            }
            for (int i = 0; i < n; ++i) {
                Winograd<M>::filter(gg[i], row);
                for (int j = 0; j < n; ++j) {
                    const float v = static_cast<float>(row[j]);
                    unusable += std::abs(v) < winograd_largest_value ? 0 : 1;  // NaN too
                    u[((i * n + j) * C + c) * O + o] = v;
                }
            }
        }
    return unusable == 0;
}

}  // namespace detail

/// The transformed filters U[xi][in][out] = (G g G^T)[xi] of the filters `w` [out][in][3][3]
/// for tiles of `tile` x `tile` outputs (2 or 4; `u`: points * in * out floats), computed in
/// double and rounded once. Returns whether every value is finite and below
/// winograd_largest_value (else the convolution must not use them). Training transforms its
/// filters at every step (128 x 128 channels: 16,384 filters), so the threads share them.
inline bool winograd_filters(const ConvShape& s, std::int64_t tile, const float* w, float* u) {
    return tile == 2 ? detail::winograd_filters<2>(s, w, u) : detail::winograd_filters<4>(s, w, u);
}

/// The part of a Winograd convolution one call computes: tiles [tiles_begin, tiles_end) of a
/// group (tile t: image t / per_image, then row by row), output channels [out_first,
/// out_last). Threads that share a group split its tiles, or its output channels when the
/// tiles are too few to split (one 7x7 image has 4 tiles of 4x4): every output is computed the
/// same way whichever part it falls in.
struct WinogradPart {
    std::int64_t tiles_begin = 0;  ///< first tile of the group
    std::int64_t tiles_end = 0;    ///< one past the last tile
    std::int64_t out_first = 0;    ///< first output channel
    std::int64_t out_last = 0;     ///< one past the last output channel
};

/// Part `part` of `parts` of the Winograd convolution of a group of `count` images: tiles split
/// where each part gets at least a register tile's 12 rows of them, else output channels, in
/// multiples of 16.
inline WinogradPart winograd_share(const ConvShape& s, std::int64_t tile, std::int64_t count, std::int64_t part,
                                   std::int64_t parts) {
    const std::int64_t tiles = count * WinogradTiles(s, tile).per_image(), O = s.out_channels;
    if (tiles >= 12 * parts) {
        const auto [begin, end] = IndirectForward::share(tiles, part, parts, 1);
        return {begin, end, 0, O};
    }
    const auto [first, last] = IndirectForward::share(O, part, parts, 16);
    return {0, tiles, first, last};
}

namespace detail {

template <int M>
inline void channels_last_winograd(const ConvShape& s, std::int64_t count, const float* x, const float* u,
                                   const float* wf, const std::int32_t* offsets, const float* bias,
                                   const float* residual, bool relu, float* y, WinogradPart part, float* scratch) {
    constexpr std::int64_t n = M + 2, points = n * n;
    const std::int64_t C = s.in_channels, O = s.out_channels, H = s.window.in_h, W = s.window.in_w;
    const std::int64_t OH = s.out_h(), OW = s.out_w();
    const WinogradTiles tiles(s, M);
    const std::int64_t per_image = tiles.per_image(), block = winograd_block_tiles(s, M);
    const std::int64_t begin = part.tiles_begin, end = std::min(part.tiles_end, count * per_image);
    const std::int64_t first = part.out_first, last = part.out_last;
    if (begin >= end || first >= last) return;
    const float* zeros = x + channels_last_group * H * W * C;
    float* const v = scratch;
    float* const mx = v + block * points * C;
    float* const patch = mx + block * points * O;          // a tile's inputs, rows n * C apart
    float* const corner = patch + points * C;               // a tile's outputs, rows M * O apart
    float* const corner_residual = corner + M * M * O;      // and its residual
    std::fill(corner_residual, corner_residual + M * M * O, 0.0f);  // cells past the image stay 0

    // Which images of [begin, end) take the transforms.
    bool usable[channels_last_group];
    const std::int64_t first_image = begin / per_image, last_image = (end - 1) / per_image;
    for (std::int64_t b = first_image; b <= last_image; ++b) usable[b] = winograd_image_usable(x, b, H * W, C);

    for (std::int64_t t0 = begin; t0 < end; t0 += block) {
        const std::int64_t t1 = std::min(end, t0 + block);
        for (std::int64_t t = t0; t < t1; ++t) {
            const std::int64_t image = t / per_image;
            const std::int64_t iy0 = t % per_image / tiles.columns * M - s.window.pad_top,
                               ix0 = t % tiles.columns * M - s.window.pad_left;
            const float* image_x = x + image * H * W * C;
            float* tile_v = v + (t - t0) * points * C;
            if (iy0 >= 0 && iy0 + n <= H && ix0 >= 0 && ix0 + n <= W) {
                winograd_input_tile<M>(image_x + (iy0 * W + ix0) * C, W * C, C, tile_v);
                continue;
            }
            // At the image's edge: the cells inside it, zeros around them.
            for (std::int64_t r = 0; r < n; ++r)
                for (std::int64_t c = 0; c < n; ++c) {
                    const std::int64_t iy = iy0 + r, ix = ix0 + c;
                    const float* from = iy >= 0 && iy < H && ix >= 0 && ix < W ? image_x + (iy * W + ix) * C : zeros;
                    std::copy(from, from + C, patch + (r * n + c) * C);
                }
            winograd_input_tile<M>(patch, n * C, C, tile_v);
        }
        for (std::int64_t xi = 0; xi < points; ++xi) {
            GemmOperands p{t1 - t0, last - first, C, v + xi * C, points * C, 1, u + xi * C * O + first, O,
                           mx + xi * O + first, points * O};
            register_gemm(p, false);
        }
        for (std::int64_t t = t0; t < t1; ++t) {
            const std::int64_t image = t / per_image;
            if (!usable[image]) continue;
            const std::int64_t oy0 = t % per_image / tiles.columns * M, ox0 = t % tiles.columns * M;
            const std::int64_t at = ((image * OH + oy0) * OW + ox0) * O;
            const float* tile_m = mx + (t - t0) * points * O;
            if (oy0 + M <= OH && ox0 + M <= OW) {
                winograd_output_tile<M>(tile_m, O, first, last, bias, residual ? residual + at : nullptr, relu, y + at,
                                        OW * O);
                continue;
            }
            // Past the image's last row or column: the whole tile into `corner`, then the
            // outputs inside, pixel by pixel (this part's channels only).
            const std::int64_t rows = std::min<std::int64_t>(M, OH - oy0), columns = std::min<std::int64_t>(M, OW - ox0);
            if (residual)
                for (std::int64_t r = 0; r < rows; ++r)
                    std::copy(residual + at + r * OW * O, residual + at + r * OW * O + columns * O, corner_residual + r * M * O);
            winograd_output_tile<M>(tile_m, O, first, last, bias, residual ? corner_residual : nullptr, relu, corner, M * O);
            for (std::int64_t r = 0; r < rows; ++r)
                for (std::int64_t c = 0; c < columns; ++c)
                    std::copy(corner + (r * M + c) * O + first, corner + (r * M + c) * O + last,
                              y + at + (r * OW + c) * O + first);
        }
    }

    // The images that do not take the transforms: their tiles' outputs through the direct
    // product, a tile row's outputs row by row.
    for (std::int64_t b = first_image; b <= last_image; ++b) {
        if (usable[b]) continue;
        for (std::int64_t t = std::max(begin, b * per_image), stop = std::min(end, (b + 1) * per_image); t < stop;) {
            const std::int64_t ty = t % per_image / tiles.columns, tx = t % tiles.columns;
            const std::int64_t run = std::min(tiles.columns - tx, stop - t);  // tiles left in this tile row
            for (std::int64_t oy = ty * M; oy < std::min(ty * M + M, OH); ++oy) {
                const std::int64_t row = (b * OH + oy) * OW;
                channels_last_conv(s, x, wf, offsets, bias, residual, relu, y, row + tx * M,
                                   row + std::min((tx + run) * M, OW), first, last);
            }
            t += run;
        }
    }
}

}  // namespace detail

/// The convolution `s` (winograd_fits) of a channels-last group `x` of `count` images, by
/// F(`tile` x `tile`, 3x3) (2 or 4), the outputs of `part`: y = relu(conv + bias + residual),
/// the residual only where given, as channels_last_conv computes it. `u` holds
/// winograd_filters(s, tile, w); `wf` and `offsets` are channels_last_conv's, for the images
/// that take the direct product; `scratch` winograd_scratch_floats(s, tile) floats of this
/// thread.
inline void channels_last_winograd(const ConvShape& s, std::int64_t tile, std::int64_t count, const float* x,
                                   const float* u, const float* wf, const std::int32_t* offsets, const float* bias,
                                   const float* residual, bool relu, float* y, WinogradPart part, float* scratch) {
    if (tile == 2)
        detail::channels_last_winograd<2>(s, count, x, u, wf, offsets, bias, residual, relu, y, part, scratch);
    else
        detail::channels_last_winograd<4>(s, count, x, u, wf, offsets, bias, residual, relu, y, part, scratch);
}

}  // namespace cnnlite::kernels
