// A register-blocked single-precision matrix product for the convolutions' im2col products:
//
//     C[M, N] (+)= A[M, K] B[K, N],   A(i, k) = a[i * a_row + k * a_col],
//
// with B's and C's rows contiguous along N. Reading A through two strides lets it be W, W^T or an
// im2col buffer without copying it; B is an im2col buffer or a gradient plane whose rows are
// already contiguous, so nothing is packed. The kernel keeps an MR x NR tile of C in vector
// registers over the whole K: each step loads NR / width vectors of one row of B and broadcasts
// MR values of A, so every loaded value feeds MR (or NR / width) fused multiply-adds. Eigen's
// general product packs both operands on every call and tiles for large matrices; at the
// convolutions' shapes (M 9-1152, N 32-784 per image, K 32-1152, each thread on its own images)
// that held ResNet-8's convolutions to 37-51% of the FMA peak (benchmarks/README.md, Roofline).
//
// B (or A) can also be read in place from a zero-padded image instead of an im2col buffer
// (GemmOperands' b_taps / a_taps; kernels/implicit_conv.hpp): row k of the unfolded matrix is
// a channel's padded plane shifted by the tap's offset, so the tile walks channels and taps (or
// output rows and pixels) instead of a stride. Or A's rows are read run by run through a table
// of offsets (GemmOperands' a_run_offsets; kernels/indirect_conv.hpp): an output pixel's row is
// its taps' runs of channels in a channels-last copy of the image.
//
// Built where the compiler targets AVX-512F (tiles of 8 x 48, 12 x 32 or 12 x 16 floats in
// 32 zmm registers) or AVX2 with FMA (6 x 16 or 6 x 8 in 16 ymm registers); elsewhere
// `register_gemm_available` is false and the callers keep Eigen. Every element of C is summed
// over k in order 0, 1, ..., K-1 with one rounding per fused multiply-add, so the result does not
// depend on the tiling, the thread count or where C's tile boundaries fall.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace cnnlite::kernels {

#if defined(__AVX512F__)
constexpr bool register_gemm_available = true;  ///< register_gemm is built for this target (AVX-512F)
constexpr int register_gemm_width = 16;         ///< floats per vector register it computes with
#elif defined(__AVX2__) && defined(__FMA__)
constexpr bool register_gemm_available = true;  ///< register_gemm is built for this target (AVX2 with FMA)
constexpr int register_gemm_width = 8;          ///< floats per vector register it computes with
#else
constexpr bool register_gemm_available = false;  ///< register_gemm is not built for this target
constexpr int register_gemm_width = 0;           ///< no vector registers: register_gemm is not built
#endif

/// The operands of one product C[M, N] (+)= A[M, K] B[K, N]; see the file's comment.
struct GemmOperands {
    std::int64_t m = 0;  ///< rows of C and A
    std::int64_t n = 0;  ///< columns of C and B
    std::int64_t k = 0;  ///< the summed dimension: columns of A, rows of B
    const float* a = nullptr;  ///< A, read through a_row and a_col
    std::int64_t a_row = 0;    ///< A(i, k) = a[i * a_row + k * a_col]
    std::int64_t a_col = 0;    ///< see a_row
    const float* b = nullptr;  ///< B, rows contiguous
    std::int64_t ldb = 0;      ///< B(k, j) = b[k * ldb + j]
    float* c = nullptr;        ///< C, rows contiguous
    std::int64_t ldc = 0;      ///< C(i, j) = c[i * ldc + j]

    // Optional in-place reads of a zero-padded image (implicit GEMM: a convolution without its
    // im2col copy). With `b_taps` > 0, B's row k is tap k % b_taps of channel k / b_taps (k a
    // whole number of channels):
    //     B(k, j) = b[(k / b_taps) * ldb + b_tap_offsets[k % b_taps] + j].
    // With `a_taps` > 0, A's row i is tap i % a_taps of channel i / a_taps and its column k the
    // output pixel k of rows `a_run` pixels long:
    //     A(i, k) = a[(i / a_taps) * a_row + a_tap_offsets[i % a_taps] + (k / a_run) * a_col + k % a_run].
    const std::int64_t* b_tap_offsets = nullptr;  ///< per tap, its offset into a channel's padded plane
    std::int64_t b_taps = 0;                      ///< taps per channel (0: B strided as above)
    const std::int64_t* a_tap_offsets = nullptr;  ///< per tap, its offset into a channel's padded plane
    std::int64_t a_taps = 0;                      ///< taps per channel (0: A strided as above)
    std::int64_t a_run = 0;                       ///< output pixels per row, when a_taps > 0
    // Optional indirect reads of A (kernels/indirect_conv.hpp): with `a_run_offsets`, A's row i
    // is a_taps runs of a_run contiguous values, run t starting at a + a_run_offsets[i * a_taps + t]:
    //     A(i, k) = a[a_run_offsets[i * a_taps + k / a_run] + k % a_run].
    const std::int32_t* a_run_offsets = nullptr;  ///< per row and run, where the run starts in a
    // Or A's columns through a table (the indirect weight gradient): with `a_column_offsets`,
    //     A(i, k) = a[i * a_row + a_column_offsets[k * a_column_stride]].
    const std::int32_t* a_column_offsets = nullptr;  ///< where column k starts, every a_column_stride entries
    std::int64_t a_column_stride = 1;                ///< see a_column_offsets

    // Optional epilogue, applied as each tile is stored (a convolution's bias, residual addition
    // and ReLU without another pass over C): after the sum s,
    //     C(i, j) = relu(s + column_bias[j] + residual[i * ldr + j]),
    // each term only where given, added in that order and each addition rounded, as separate
    // passes would. relu(v) = (v <= 0 ? 0 : v): NaN stays NaN, -0 becomes 0.
    const float* column_bias = nullptr;  ///< added to every row of C (N values)
    const float* residual = nullptr;     ///< added element by element, rows ldr apart
    std::int64_t ldr = 0;                ///< see residual
    bool relu = false;                   ///< see above

    /// Whether an epilogue is asked for.
    bool has_epilogue() const { return column_bias != nullptr || residual != nullptr || relu; }
    /// The epilogue applied to the sum `v` of element (i, j).
    float epilogue(float v, std::int64_t i, std::int64_t j) const {
        if (column_bias) v += column_bias[j];
        if (residual) v += residual[i * ldr + j];
        return relu && v <= 0.0f ? 0.0f : v;
    }

    /// The element A(i, k), whichever way A is read.
    float a_at(std::int64_t i, std::int64_t k) const {
        if (a_run_offsets) return a[a_run_offsets[i * a_taps + k / a_run] + k % a_run];
        if (a_column_offsets) return a[i * a_row + a_column_offsets[k * a_column_stride]];
        if (a_taps == 0) return a[i * a_row + k * a_col];
        return a[(i / a_taps) * a_row + a_tap_offsets[i % a_taps] + (k / a_run) * a_col + k % a_run];
    }
    /// The element B(k, j), whichever way B is read.
    float b_at(std::int64_t k, std::int64_t j) const {
        if (b_taps == 0) return b[k * ldb + j];
        return b[(k / b_taps) * ldb + b_tap_offsets[k % b_taps] + j];
    }
};

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))

namespace detail {

#if defined(__AVX512F__)
/// The vector type, its width and the tile shapes of the AVX-512 build.
struct GemmVector {
    using Reg = __m512;
    using Mask = __mmask16;
    static constexpr int width = register_gemm_width;
    static constexpr int max_vectors = 3;                        // NR = 48
    static constexpr int rows_for[max_vectors + 1] = {0, 12, 12, 8};  // MR by vectors per row
    static Mask tail_mask(int lanes) { return static_cast<Mask>(lanes >= width ? 0xFFFF : (1u << lanes) - 1u); }
    static Reg zero() { return _mm512_setzero_ps(); }
    static Reg broadcast(float v) { return _mm512_set1_ps(v); }
    static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
    static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
    static Reg relu(Reg v) { return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero(), _CMP_LE_OQ), zero()); }
    static Reg load(const float* p) { return _mm512_loadu_ps(p); }
    // Masked-off lanes are neither read nor written (AVX-512 suppresses their faults).
    static Reg load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
    static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
    static void store(float* p, Reg v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
};
#else
/// The vector type, its width and the tile shapes of the AVX2 build.
struct GemmVector {
    using Reg = __m256;
    using Mask = __m256i;
    static constexpr int width = register_gemm_width;
    static constexpr int max_vectors = 2;                // NR = 16
    static constexpr int rows_for[max_vectors + 1] = {0, 6, 6};
    static Mask tail_mask(int lanes) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(std::min(lanes, width)), lane);
    }
    static Reg zero() { return _mm256_setzero_ps(); }
    static Reg broadcast(float v) { return _mm256_set1_ps(v); }
    static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
    static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
    static Reg relu(Reg v) { return _mm256_blendv_ps(v, zero(), _mm256_cmp_ps(v, zero(), _CMP_LE_OQ)); }
    static Reg load(const float* p) { return _mm256_loadu_ps(p); }
    // vmaskmov neither reads nor writes the masked-off lanes.
    static Reg load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
    static void store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
    static void store(float* p, Reg v, Mask m) { _mm256_maskstore_ps(p, m, v); }
};
#endif

/// How a tile walks A and B along k (GemmOperands): both strided, B read from a padded image
/// (b_taps), A read from one (a_taps), A's rows read run by run (a_run_offsets), or A's columns
/// found through a table (a_column_offsets).
enum class Walk { strided, b_taps, a_taps, a_runs, a_columns };

/// One step of the sum: acc[i][v] += A(i, k) * B(k, v-th vector), with B's row at `bk` and A's
/// MR values at a_rows[i][a_offset].
template <int MR, int NV>
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
inline void tile_step(typename GemmVector::Reg (&acc)[MR][NV], const float* bk, typename GemmVector::Mask tail,
                      const float* const (&a_rows)[MR], std::int64_t a_offset) {
    using V = GemmVector;
    typename V::Reg bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = v + 1 < NV ? V::load(bk + v * V::width) : V::load(bk + v * V::width, tail);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
        const typename V::Reg ai = V::broadcast(a_rows[i][a_offset]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
    }
}

/// One MR x (NV vectors) tile of C over the whole K, k = 0, 1, ... in order; the last vector of
/// each row holds `tail_lanes` columns (masked).
template <int MR, int NV, Walk W>
void register_tile(const GemmOperands& g, std::int64_t i0, std::int64_t j0, int tail_lanes, bool accumulate) {
    using V = GemmVector;
    const typename V::Mask tail = V::tail_mask(tail_lanes);
    typename V::Reg acc[MR][NV];
    float* c = g.c + i0 * g.ldc + j0;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            if (!accumulate)
                acc[i][v] = V::zero();
            else
                acc[i][v] = v + 1 < NV ? V::load(c + i * g.ldc + v * V::width) : V::load(c + i * g.ldc + v * V::width, tail);
        }
    // Where A's rows start; a strided step then reads a_rows[i][k * a_col].
    const float* a_rows[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
        const std::int64_t row = i0 + i;
        a_rows[i] = W == Walk::a_taps     ? g.a + (row / g.a_taps) * g.a_row + g.a_tap_offsets[row % g.a_taps]
                    : W == Walk::a_runs ? g.a
                                            : g.a + row * g.a_row;
    }
    if constexpr (W == Walk::strided) {
        for (std::int64_t k = 0; k < g.k; ++k) tile_step<MR, NV>(acc, g.b + k * g.ldb + j0, tail, a_rows, k * g.a_col);
    } else if constexpr (W == Walk::b_taps) {
        // Channel by channel, and within one its taps: B's row is the padded plane shifted.
        std::int64_t k = 0;
        for (const float* plane = g.b + j0; k < g.k; plane += g.ldb)
            for (std::int64_t t = 0; t < g.b_taps; ++t, ++k)
                tile_step<MR, NV>(acc, plane + g.b_tap_offsets[t], tail, a_rows, k * g.a_col);
    } else if constexpr (W == Walk::a_columns) {
        const std::int32_t* column = g.a_column_offsets;
        for (std::int64_t k = 0; k < g.k; ++k, column += g.a_column_stride)
            tile_step<MR, NV>(acc, g.b + k * g.ldb + j0, tail, a_rows, *column);
    } else if constexpr (W == Walk::a_runs) {
        // Run by run: where each row's run t starts, then its a_run values in order. B's row
        // pointer steps by ldb rather than being recomputed from r: with twelve row pointers
        // live, a multiply for B's address left too few general registers, and the compiler
        // kept some pointers in vector registers, moving them back on the FMA port every step.
        const std::int64_t run = g.a_run, ldb = g.ldb;
        const float* bt = g.b + j0;
        for (std::int64_t t = 0; t < g.a_taps; ++t) {
#pragma GCC unroll 16
            for (int i = 0; i < MR; ++i) a_rows[i] = g.a + g.a_run_offsets[(i0 + i) * g.a_taps + t];
            for (std::int64_t r = 0; r < run; ++r, bt += ldb) tile_step<MR, NV>(acc, bt, tail, a_rows, r);
        }
    } else {
        // Output row by output row, and within one its pixels: A's column is the pixel's offset.
        std::int64_t k = 0;
        for (std::int64_t row_start = 0; k < g.k; row_start += g.a_col)
            for (std::int64_t x = 0; x < g.a_run && k < g.k; ++x, ++k)
                tile_step<MR, NV>(acc, g.b + k * g.ldb + j0, tail, a_rows, row_start + x);
    }
    if (g.has_epilogue()) {
        // Masked loads of the last vector: lanes beyond N are neither read nor stored.
        const auto lanes = [&](const float* p, int v) { return v + 1 < NV ? V::load(p) : V::load(p, tail); };
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) {
                if (g.column_bias) acc[i][v] = V::add(acc[i][v], lanes(g.column_bias + j0 + v * V::width, v));
                if (g.residual) acc[i][v] = V::add(acc[i][v], lanes(g.residual + (i0 + i) * g.ldr + j0 + v * V::width, v));
                if (g.relu) acc[i][v] = V::relu(acc[i][v]);
            }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            if (v + 1 < NV)
                V::store(c + i * g.ldc + v * V::width, acc[i][v]);
            else
                V::store(c + i * g.ldc + v * V::width, acc[i][v], tail);
        }
}

// The mask travels as a lane count: a vector type in a function pointer's signature loses its
// alignment attribute inside std::array (GCC's -Wignored-attributes).
using TileFunction = void (*)(const GemmOperands&, std::int64_t, std::int64_t, int, bool);

/// tiles[NV - 1][rows - 1]: the tile of `rows` rows (1 .. rows_for[NV]) and NV vectors per row.
template <int NV, Walk W, std::size_t... R>
constexpr auto tile_row(std::index_sequence<R...>) {
    return std::array<TileFunction, sizeof...(R)>{&register_tile<static_cast<int>(R) + 1, NV, W>...};
}

template <int NV, Walk W>
const TileFunction* tiles_of_width() {
    static constexpr auto row = tile_row<NV, W>(std::make_index_sequence<GemmVector::rows_for[NV]>{});
    return row.data();
}

template <Walk W>
const TileFunction* tiles_for(int vectors) {
    return vectors == 1 ? tiles_of_width<1, W>() : vectors == 2 ? tiles_of_width<2, W>() : tiles_of_width<GemmVector::max_vectors, W>();
}

}  // namespace detail

/// C (+)= A B for float operands: `accumulate` adds to C, otherwise C is overwritten; then the
/// epilogue, if any (GemmOperands::column_bias, residual, relu). Single-threaded: callers run
/// one product per thread (one image each).
inline void register_gemm(const GemmOperands& g, bool accumulate) {
    using V = detail::GemmVector;
    if (g.k == 0) {  // nothing to sum, and A and B may be empty (null): C is zero or unchanged
        if (!accumulate && g.n > 0)
            for (std::int64_t i = 0; i < g.m; ++i) std::fill(g.c + i * g.ldc, g.c + i * g.ldc + g.n, 0.0f);
        if (g.has_epilogue())
            for (std::int64_t i = 0; i < g.m; ++i)
                for (std::int64_t j = 0; j < g.n; ++j) g.c[i * g.ldc + j] = g.epilogue(g.c[i * g.ldc + j], i, j);
        return;
    }
    constexpr int panel = V::max_vectors * V::width;
    for (std::int64_t j0 = 0, cols = 0; j0 < g.n; j0 += cols) {
        cols = std::min<std::int64_t>(panel, g.n - j0);
        // A last vector on its own would make a one-vector tile, whose broadcasts each feed a
        // single multiply-add: two two-vector panels do the last few columns instead.
        if (V::max_vectors == 3 && g.n - j0 > panel && g.n - j0 <= panel + V::width) cols = 2 * V::width;
        const int vectors = static_cast<int>((cols + V::width - 1) / V::width);
        const int tail_lanes = static_cast<int>(cols - (vectors - 1) * V::width);
        const int rows = V::rows_for[vectors];
        const detail::TileFunction* tiles = g.b_taps > 0   ? detail::tiles_for<detail::Walk::b_taps>(vectors)
                                            : g.a_run_offsets ? detail::tiles_for<detail::Walk::a_runs>(vectors)
                                            : g.a_column_offsets ? detail::tiles_for<detail::Walk::a_columns>(vectors)
                                            : g.a_taps > 0 ? detail::tiles_for<detail::Walk::a_taps>(vectors)
                                                           : detail::tiles_for<detail::Walk::strided>(vectors);
        for (std::int64_t i0 = 0; i0 < g.m; i0 += rows) {
            const std::int64_t m = std::min<std::int64_t>(rows, g.m - i0);
            tiles[m - 1](g, i0, j0, tail_lanes, accumulate);
        }
    }
}

#else

/// Not built for this target (no AVX-512F or AVX2+FMA): declared so that callers compile, never
/// defined, so that a call not guarded by `register_gemm_available` fails to link.
void register_gemm(const GemmOperands&, bool);

#endif

}  // namespace cnnlite::kernels
