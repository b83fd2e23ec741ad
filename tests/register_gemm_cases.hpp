// The register-blocked float product (kernels/register_gemm.hpp) and the float convolutions and
// dense-layer products built on it, against portable references: the bodies of test cases that
// test_kernels_avx2.cpp and test_kernels_avx512.cpp declare. Those files are compiled for their instruction sets
// whatever the build targets, so that both vector paths are tested on a machine that has them;
// each case takes whether the CPU has the instruction set.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/conv2d.hpp"
#include "cnnlite/kernels/dense.hpp"
#include "cnnlite/kernels/register_gemm.hpp"

namespace register_gemm_cases {

using namespace cnnlite;

inline std::vector<float> normal_values(std::size_t n, std::uint64_t seed) {
    const RandomStream rs(seed, Purpose::user);
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(rs.normal(i));
    return v;
}

inline bool same_bits(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

/// What register_gemm promises, element by element: c = fma(a, b, c) for k = 0, 1, ... in order.
inline void fma_reference(const kernels::GemmOperands& g, bool accumulate, std::vector<float>& c) {
    for (std::int64_t i = 0; i < g.m; ++i)
        for (std::int64_t j = 0; j < g.n; ++j) {
            float acc = accumulate ? c[static_cast<std::size_t>(i * g.ldc + j)] : 0.0f;
            for (std::int64_t k = 0; k < g.k; ++k) acc = std::fma(g.a_at(i, k), g.b_at(k, j), acc);
            c[static_cast<std::size_t>(i * g.ldc + j)] = acc;
        }
}

/// Runs register_gemm on `g` with C in `c` and reports whether every element of `c` equals
/// fma_reference's, bit for bit (false where register_gemm is not built).
inline bool equals_reference(kernels::GemmOperands g, bool accumulate, std::vector<float>& c) {
    if constexpr (kernels::register_gemm_available) {
        std::vector<float> expected = c;
        kernels::GemmOperands ge = g;
        ge.c = expected.data();
        fma_reference(ge, accumulate, expected);
        g.c = c.data();
        kernels::register_gemm(g, accumulate);
        return c == expected;
    } else {
        return false;
    }
}

/// register_gemm equals the in-order fused multiply-add loop bit for bit, at every tile edge.
inline void check_register_gemm_bitwise(bool cpu_has_simd) {
    if (!kernels::register_gemm_available || !cpu_has_simd) {
        MESSAGE("register_gemm not built for this target, or the CPU lacks it: skipped");
        return;
    }
    if constexpr (kernels::register_gemm_available) {
        int cases = 0;
        // Rows 1-25 cross every row tile (6, 8 and 12 rows); columns cross every vector and panel
        // boundary of both widths (8, 16, 32, 48); K = 0 leaves C zero or untouched.
        for (std::int64_t m : {1, 2, 5, 6, 7, 8, 9, 12, 13, 25})
            for (std::int64_t n : {1, 3, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 65, 97})
                for (std::int64_t k : {0, 1, 4, 19})
                    for (bool transposed_a : {false, true})
                        for (bool accumulate : {false, true}) {
                            CAPTURE(m);
                            CAPTURE(n);
                            CAPTURE(k);
                            CAPTURE(transposed_a);
                            CAPTURE(accumulate);
                            const std::int64_t ldb = n + 3, ldc = n + 5;  // rows longer than the product: gaps must stay
                            const std::vector<float> a = normal_values(static_cast<std::size_t>(m * k), 11 + m * 1000 + k);
                            const std::vector<float> b = normal_values(static_cast<std::size_t>(k * ldb), 12 + n * 1000 + k);
                            std::vector<float> c = normal_values(static_cast<std::size_t>(m * ldc), 13 + m + n);
                            const kernels::GemmOperands g{m,        n, k,   a.data(), transposed_a ? 1 : k, transposed_a ? m : 1,
                                                          b.data(), ldb, c.data(), ldc};
                            CHECK(equals_reference(g, accumulate, c));
                            ++cases;
                        }
        CHECK(cases == 10 * 15 * 4 * 4);
    }
}

/// register_gemm reading B (b_taps) or A (a_taps) in place from zero-padded planes equals the
/// in-order loop over the same elements bit for bit, for tap counts 1 to 25, rows and columns
/// crossing every tile edge, and output rows shorter than the padded ones.
inline void check_register_gemm_padded_reads(bool cpu_has_simd) {
    if (!kernels::register_gemm_available || !cpu_has_simd) {
        MESSAGE("register_gemm not built for this target, or the CPU lacks it: skipped");
        return;
    }
    if constexpr (kernels::register_gemm_available) {
        int cases = 0;
        struct Window {
            std::int64_t kh, kw;
        };
        for (const Window win : {Window{1, 1}, Window{3, 3}, Window{2, 3}, Window{5, 5}, Window{1, 4}})
            for (std::int64_t channels : {1, 3, 7})
                for (std::int64_t out_w : {1, 5, 14, 17})
                    for (std::int64_t other : {1, 9, 13, 33})  // B mode: rows of C (filters); A mode: columns of C
                        for (bool accumulate : {false, true}) {
                            CAPTURE(win.kh);
                            CAPTURE(win.kw);
                            CAPTURE(channels);
                            CAPTURE(out_w);
                            CAPTURE(other);
                            const std::int64_t out_h = 3, width = out_w + win.kw - 1 + 2;  // padded rows longer than needed
                            const std::int64_t height = out_h + win.kh - 1, plane = height * width, T = win.kh * win.kw;
                            std::vector<std::int64_t> taps(static_cast<std::size_t>(T));
                            for (std::int64_t i = 0; i < win.kh; ++i)
                                for (std::int64_t j = 0; j < win.kw; ++j) taps[static_cast<std::size_t>(i * win.kw + j)] = i * width + j;
                            const std::vector<float> image =
                                normal_values(static_cast<std::size_t>(channels * plane), 41 + T + channels);
                            const std::int64_t K = channels * T, wide = (out_h - 1) * width + out_w;
                            // B in place: C[other, wide] = A[other, K] B(k, j).
                            {
                                const std::vector<float> a = normal_values(static_cast<std::size_t>(other * K), 42 + other);
                                std::vector<float> c = normal_values(static_cast<std::size_t>(other * wide), 43);
                                kernels::GemmOperands g{other, wide, K, a.data(), K, 1, image.data(), plane, c.data(), wide};
                                g.b_tap_offsets = taps.data();
                                g.b_taps = T;
                                CHECK(equals_reference(g, accumulate, c));
                            }
                            // A in place: C[K, other] = A(i, pixel) B[pixels, other].
                            {
                                const std::int64_t pixels = out_h * out_w;
                                const std::vector<float> b = normal_values(static_cast<std::size_t>(pixels * other), 44 + other);
                                std::vector<float> c = normal_values(static_cast<std::size_t>(K * other), 45);
                                kernels::GemmOperands g{K, other, pixels, image.data(), plane, width, b.data(), other, c.data(), other};
                                g.a_tap_offsets = taps.data();
                                g.a_taps = T;
                                g.a_run = out_w;
                                CHECK(equals_reference(g, accumulate, c));
                            }
                            ++cases;
                        }
        CHECK(cases == 5 * 3 * 4 * 4 * 2);
    }
}

/// register_gemm reading A's rows run by run through a table of offsets (a_run_offsets, the
/// indirect convolutions of kernels/indirect_conv.hpp) equals the in-order loop over the same elements bit for bit: runs of
/// 1 to 37 values, 1 to 9 runs per row, runs shared by several rows (a zero run, as the padding
/// is), rows and columns crossing every tile edge.
inline void check_register_gemm_run_reads(bool cpu_has_simd) {
    if (!kernels::register_gemm_available || !cpu_has_simd) {
        MESSAGE("register_gemm not built for this target, or the CPU lacks it: skipped");
        return;
    }
    if constexpr (kernels::register_gemm_available) {
        int cases = 0;
        for (std::int64_t run : {1, 3, 16, 37})
            for (std::int64_t runs : {1, 4, 9})
                for (std::int64_t m : {1, 7, 12, 13, 50})
                    for (std::int64_t n : {5, 16, 33, 64, 128})
                        for (bool accumulate : {false, true}) {
                            CAPTURE(run);
                            CAPTURE(runs);
                            CAPTURE(m);
                            CAPTURE(n);
                            const std::int64_t source_runs = 11, K = runs * run;
                            const std::vector<float> a = normal_values(static_cast<std::size_t>(source_runs * run), 51 + run);
                            std::vector<std::int32_t> offsets(static_cast<std::size_t>(m * runs));
                            for (std::size_t i = 0; i < offsets.size(); ++i)  // scattered, repeated, never in order
                                offsets[i] = static_cast<std::int32_t>(((i * 7 + i / 3) % source_runs) * run);
                            const std::vector<float> b = normal_values(static_cast<std::size_t>(K * n), 52 + n);
                            std::vector<float> c = normal_values(static_cast<std::size_t>(m * n), 53 + m);
                            kernels::GemmOperands g{m, n, K, a.data(), 0, 0, b.data(), n, c.data(), n};
                            g.a_run_offsets = offsets.data();
                            g.a_taps = runs;
                            g.a_run = run;
                            CHECK(equals_reference(g, accumulate, c));
                            ++cases;
                        }
        CHECK(cases == 4 * 3 * 5 * 5 * 2);
    }
}

/// register_gemm's epilogue (a bias per column, a residual, the ReLU) equals the in-order loop
/// followed by the same additions and max, bit for bit: with and without each term, at every
/// tile edge, reading A strided and through run offsets, and with -0, NaN and infinities.
inline void check_register_gemm_epilogue(bool cpu_has_simd) {
    if (!kernels::register_gemm_available || !cpu_has_simd) {
        MESSAGE("register_gemm not built for this target, or the CPU lacks it: skipped");
        return;
    }
    if constexpr (kernels::register_gemm_available) {
        int cases = 0;
        for (std::int64_t m : {1, 7, 12, 25})
            for (std::int64_t n : {5, 16, 33, 49, 128})
                for (std::int64_t k : {0, 3, 18})
                    for (int terms = 1; terms < 8; ++terms)  // bit 0: bias, 1: residual, 2: ReLU
                        for (bool runs : {false, true}) {
                            CAPTURE(m);
                            CAPTURE(n);
                            CAPTURE(k);
                            CAPTURE(terms);
                            CAPTURE(runs);
                            const std::int64_t ldc = n + 3, ldr = n + 7;
                            const std::vector<float> a = normal_values(static_cast<std::size_t>(m * k + 1), 61 + m + k);
                            const std::vector<float> b = normal_values(static_cast<std::size_t>(k * n + 1), 62 + n);
                            std::vector<float> bias = normal_values(static_cast<std::size_t>(n), 63 + n);
                            std::vector<float> residual = normal_values(static_cast<std::size_t>(m * ldr), 64 + m);
                            // Special values where the sums land: -0 stays -0 without a ReLU, NaN
                            // and infinities pass through it as they are.
                            bias[0] = -0.0f;
                            residual[0] = std::numeric_limits<float>::quiet_NaN();
                            residual[static_cast<std::size_t>((m - 1) * ldr + n - 1)] = -std::numeric_limits<float>::infinity();
                            // Three runs per row, anywhere in A (scattered, repeated).
                            const std::int64_t starts = m * k + 1 - k / 3;
                            std::vector<std::int32_t> offsets(static_cast<std::size_t>(m * 3));
                            for (std::size_t i = 0; i < offsets.size(); ++i)
                                offsets[i] = static_cast<std::int32_t>(static_cast<std::int64_t>(i * 5) % starts);
                            std::vector<float> c = normal_values(static_cast<std::size_t>(m * ldc), 65);
                            kernels::GemmOperands g{m, n, k, a.data(), k, 1, b.data(), n, c.data(), ldc};
                            if (runs && k % 3 == 0) {
                                g.a_run_offsets = offsets.data();
                                g.a_taps = 3;
                                g.a_run = k / 3;
                            }
                            if (terms & 1) g.column_bias = bias.data();
                            if (terms & 2) g.residual = residual.data(), g.ldr = ldr;
                            g.relu = (terms & 4) != 0;
                            std::vector<float> expected = c;
                            kernels::GemmOperands plain = g;
                            plain.column_bias = nullptr, plain.residual = nullptr, plain.relu = false;
                            plain.c = expected.data();
                            fma_reference(plain, false, expected);
                            for (std::int64_t i = 0; i < m; ++i)
                                for (std::int64_t j = 0; j < n; ++j) {
                                    float& v = expected[static_cast<std::size_t>(i * ldc + j)];
                                    if (terms & 1) v += bias[static_cast<std::size_t>(j)];
                                    if (terms & 2) v += residual[static_cast<std::size_t>(i * ldr + j)];
                                    if ((terms & 4) && v <= 0.0f) v = 0.0f;
                                }
                            kernels::register_gemm(g, false);
                            bool same = true;
                            for (std::size_t i = 0; i < c.size(); ++i)
                                same = same && same_bits(c[i], expected[i]) && std::signbit(c[i]) == std::signbit(expected[i]);
                            CHECK(same);
                            ++cases;
                        }
        CHECK(cases == 4 * 5 * 3 * 7 * 2);
    }
}

/// The transposes between planes and channels-last rows equal the element-by-element loop bit
/// for bit, whole 16 x 16 blocks and edges alike, with the bias and the ReLU (-0, NaN).
inline void check_transposes(bool cpu_has_simd) {
    if (!cpu_has_simd) {
        MESSAGE("this CPU lacks the instruction set: skipped");
        return;
    }
    int cases = 0;
    for (std::int64_t rows : {1, 15, 16, 17, 33, 49})
        for (std::int64_t cols : {1, 7, 16, 32, 47})
            for (int finish = 0; finish < 4; ++finish) {  // no bias and no ReLU, bias, ReLU, both
                CAPTURE(rows);
                CAPTURE(cols);
                CAPTURE(finish);
                std::vector<float> src = normal_values(static_cast<std::size_t>(rows * cols), 61 + rows * 100 + cols);
                src[0] = -0.0f;
                src[src.size() / 2] = std::numeric_limits<float>::quiet_NaN();
                std::vector<float> bias = normal_values(static_cast<std::size_t>(cols), 62);
                bias[0] = 0.0f;
                const bool with_bias = finish & 1, relu = finish & 2;
                std::vector<float> got(src.size(), 7.0f), want(src.size(), 8.0f);
                kernels::planes_with_bias_relu(src.data(), rows, cols, with_bias ? bias.data() : nullptr, relu, got.data());
                for (std::int64_t p = 0; p < rows; ++p)
                    for (std::int64_t c = 0; c < cols; ++c) {
                        const float v = src[static_cast<std::size_t>(p * cols + c)] + (with_bias ? bias[static_cast<std::size_t>(c)] : 0.0f);
                        want[static_cast<std::size_t>(c * rows + p)] = relu && v <= 0.0f ? 0.0f : v;
                    }
                bool same = true;
                for (std::size_t i = 0; i < got.size(); ++i)
                    same = same && same_bits(got[i], want[i]) && std::signbit(got[i]) == std::signbit(want[i]);
                CHECK(same);
                if (finish == 0) {  // the plain transpose keeps -0
                    std::vector<float> t(src.size(), 9.0f);
                    kernels::transpose_plane(src.data(), rows, cols, t.data());
                    bool exact = true;
                    for (std::int64_t r = 0; r < rows; ++r)
                        for (std::int64_t c = 0; c < cols; ++c) {
                            const float a = t[static_cast<std::size_t>(c * rows + r)], b = src[static_cast<std::size_t>(r * cols + c)];
                            exact = exact && same_bits(a, b) && std::signbit(a) == std::signbit(b);
                        }
                    CHECK(exact);
                }
                ++cases;
            }
    CHECK(cases == 6 * 5 * 4);
}

/// A NaN or infinity in A or B spreads to exactly the row or column it touches.
inline void check_register_gemm_non_finite(bool cpu_has_simd) {
    if (!kernels::register_gemm_available || !cpu_has_simd) {
        MESSAGE("register_gemm not built for this target, or the CPU lacks it: skipped");
        return;
    }
    if constexpr (kernels::register_gemm_available) {
        const std::int64_t m = 13, n = 37, k = 9;
        std::vector<float> a = normal_values(static_cast<std::size_t>(m * k), 21);
        std::vector<float> b = normal_values(static_cast<std::size_t>(k * n), 22);
        a[static_cast<std::size_t>(4 * k + 2)] = std::numeric_limits<float>::quiet_NaN();  // row 4
        b[static_cast<std::size_t>(3 * n + 20)] = std::numeric_limits<float>::infinity();  // column 20
        b[static_cast<std::size_t>(5 * n + 7)] = 0.0f;
        a[static_cast<std::size_t>(9 * k + 5)] = std::numeric_limits<float>::infinity();  // row 9 meets the zero: inf * 0
        std::vector<float> c(static_cast<std::size_t>(m * n), 1.0f);
        kernels::register_gemm({m, n, k, a.data(), k, 1, b.data(), n, c.data(), n}, false);
        for (std::int64_t i = 0; i < m; ++i)
            for (std::int64_t j = 0; j < n; ++j) {
                CAPTURE(i);
                CAPTURE(j);
                const float v = c[static_cast<std::size_t>(i * n + j)];
                if (i == 4 || (i == 9 && j == 7))
                    CHECK(std::isnan(v));
                else if (j == 20 || i == 9)
                    CHECK(!std::isfinite(v));  // an infinity, or NaN where two infinities of opposite signs meet
                else
                    CHECK(std::isfinite(v));
            }
    }
}

/// The float convolutions (on register_gemm where it is built) equal the double Eigen path, at 1
/// and 2 threads.
inline void check_float_convolutions(bool cpu_has_simd) {
    if (!cpu_has_simd) {
        MESSAGE("this CPU lacks the instruction set: skipped");
        return;
    }
    struct Case {
        std::int64_t batch, c, o, h, w, kh, kw, stride, pad_top, pad_bottom, pad_left, pad_right;
        bool relu, bias;
    };
    // ResNet-8's shapes scaled down (3x3 'same', stride 2), the stem (K = 9: the forward takes the
    // direct loop, the backward register_gemm), 1x1, 5x5, asymmetric padding, odd planes.
    const Case cases[] = {{3, 3, 5, 7, 9, 3, 3, 1, 1, 1, 1, 1, true, true},      {2, 4, 17, 9, 7, 3, 3, 2, 1, 1, 1, 1, false, false},
                          {3, 1, 32, 28, 28, 3, 3, 1, 1, 1, 1, 1, true, false},  {2, 8, 20, 6, 5, 5, 5, 1, 2, 2, 2, 2, true, true},
                          {2, 16, 33, 7, 7, 3, 3, 1, 1, 1, 1, 1, false, true},   {2, 19, 13, 5, 6, 1, 1, 1, 0, 0, 0, 0, false, true},
                          {2, 6, 9, 8, 11, 3, 2, 2, 0, 2, 1, 0, true, true},     {5, 32, 64, 14, 14, 3, 3, 2, 0, 1, 0, 1, true, false},
                          // Wide enough to read the image in place (implicit_conv.hpp): 'same', 'valid',
                          // asymmetric padding, 5x5, a 1x1 and a 3x2 kernel, odd widths.
                          {3, 16, 24, 14, 14, 3, 3, 1, 1, 1, 1, 1, true, true},  {2, 5, 7, 17, 16, 3, 3, 1, 0, 0, 0, 0, false, true},
                          {2, 6, 9, 15, 19, 3, 2, 1, 0, 2, 1, 0, true, false},   {2, 4, 11, 16, 15, 5, 5, 1, 2, 2, 2, 2, false, false},
                          {2, 20, 13, 14, 18, 1, 1, 1, 0, 0, 0, 0, true, true},  {5, 3, 33, 28, 28, 3, 3, 1, 1, 1, 1, 1, true, true},
                          // ... and strided: TensorFlow's 'same' at stride 2 (1 row/column of padding at the
                          // bottom/right), a 5x4 kernel with uneven padding, a 2x2 kernel at stride 2.
                          {3, 8, 16, 28, 28, 3, 3, 2, 0, 1, 0, 1, true, true},   {2, 5, 6, 30, 29, 5, 4, 2, 2, 2, 1, 2, false, false},
                          {2, 7, 12, 29, 31, 2, 2, 2, 1, 0, 0, 1, true, false},
                          // Strides that leave input pixels no tap at all (the indirect input gradient's
                          // empty phases): a 1x1 projection at stride 2, a 2x2 kernel at stride 3.
                          {2, 24, 20, 9, 8, 1, 1, 2, 0, 0, 0, 0, false, true},   {2, 9, 17, 10, 11, 2, 2, 3, 0, 0, 0, 0, true, true}};
    const int threads_before = num_threads();
    int in_place_cases = 0, indirect_cases = 0, packed_cases = 0;
    for (const Case& t : cases)
    for (kernels::ConvAlgorithm algorithm : {kernels::ConvAlgorithm::automatic, kernels::ConvAlgorithm::indirect})
    for (bool infinite_weight : {false, true}) {  // the input gradient multiplies the weights
        CAPTURE(infinite_weight);
        CAPTURE(static_cast<int>(algorithm));
        CAPTURE(t.c);
        CAPTURE(t.o);
        CAPTURE(t.h);
        CAPTURE(t.kh);
        CAPTURE(t.stride);
        kernels::ConvShape s;
        s.batch = t.batch;
        s.in_channels = t.c;
        s.out_channels = t.o;
        s.window = kernels::WindowGeometry{t.h, t.w, t.kh, t.kw, t.stride, t.stride, t.pad_top, t.pad_bottom, t.pad_left, t.pad_right};
        s.algorithm = algorithm;
        indirect_cases += kernels::forward_indirect<float>(s) && algorithm == kernels::ConvAlgorithm::indirect;
        const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
        const std::size_t nx = static_cast<std::size_t>(t.batch * t.c * t.h * t.w), ny = static_cast<std::size_t>(t.batch * O * P);
        std::vector<float> x = normal_values(nx, 31 + K), w = normal_values(static_cast<std::size_t>(O * K), 32 + K),
                           b = normal_values(static_cast<std::size_t>(O), 33), dy = normal_values(ny, 34 + P);
        x[nx / 3] = std::numeric_limits<float>::quiet_NaN();      // reaches the outputs whose windows cover it
        dy[ny / 2] = std::numeric_limits<float>::infinity();      // reaches dx and one channel's dw
        if (infinite_weight) w[w.size() / 2] = -std::numeric_limits<float>::infinity();
        auto to_double = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
        const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), dyd = to_double(dy);
        const float* bias = t.bias ? b.data() : nullptr;
        const double* bias_d = t.bias ? bd.data() : nullptr;

        struct Result {
            std::vector<float> y, dw, db, dx;
        };
        auto run = [&](int threads) {
            set_num_threads(threads);
            Result r{std::vector<float>(ny), std::vector<float>(w.size()), std::vector<float>(b.size()), std::vector<float>(nx)};
            std::vector<float> ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(s)));
            kernels::conv2d_forward(s, x.data(), w.data(), bias, t.relu, r.y.data(), ws.data());
            kernels::conv2d_backward(s, x.data(), w.data(), r.y.data(), dy.data(), t.relu, r.dw.data(),
                                     t.bias ? r.db.data() : static_cast<float*>(nullptr), r.dx.data(), ws.data());
            return r;
        };
        const Result one = run(1), two = run(2), three = run(3);

        // Filters packed once by the caller (InferenceModel) give the forward's bits.
        if (kernels::conv2d_filters_packable<float>(s)) {
            ++packed_cases;
            std::vector<float> packed(w.size()), y_packed(ny);
            kernels::pack_conv2d_filters(s, w.data(), packed.data());
            std::vector<float> ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(s)));
            for (int threads : {1, 2}) {
                set_num_threads(threads);
                kernels::conv2d_forward(s, x.data(), w.data(), bias, t.relu, y_packed.data(), ws.data(), packed.data());
                bool same = true;
                for (std::size_t i = 0; i < ny; ++i) same = same && same_bits(y_packed[i], one.y[i]);
                CHECK(same);
            }
        }

        set_num_threads(1);
        std::vector<double> yd(ny), dwd(w.size()), dbd(b.size()), dxd(nx);
        std::vector<double> wsd(static_cast<std::size_t>(kernels::conv2d_workspace_size<double>(s)));
        kernels::conv2d_forward(s, xd.data(), wd.data(), bias_d, t.relu, yd.data(), wsd.data());
        kernels::conv2d_backward(s, xd.data(), wd.data(), yd.data(), dyd.data(), t.relu, dwd.data(),
                                 t.bias ? dbd.data() : static_cast<double*>(nullptr), dxd.data(), wsd.data());

        // Each element against double, relative to the size of what was summed into it.
        auto compare = [](const std::vector<float>& got, const std::vector<double>& want, double scale, const std::string& what) {
            CAPTURE(what);
            int nonfinite = 0, mismatches = 0;
            for (std::size_t i = 0; i < got.size(); ++i) {
                if (!std::isfinite(want[i])) {
                    ++nonfinite;
                    mismatches += std::isnan(want[i]) != std::isnan(got[i]) || (!std::isnan(want[i]) && got[i] != want[i]);
                } else {
                    mismatches += !(std::abs(got[i] - want[i]) <= 2e-5 * scale);
                }
            }
            CHECK(mismatches == 0);
            return nonfinite;
        };
        const double sum_scale = std::sqrt(static_cast<double>(K)) * 4, dw_scale = std::sqrt(static_cast<double>(t.batch * P)) * 4;
        CHECK(compare(one.y, yd, sum_scale, "y") > 0);  // the NaN pixel reached some outputs
        compare(one.dx, dxd, std::sqrt(static_cast<double>(O * t.kh * t.kw)) * 4, "dx");
        CHECK(compare(one.dw, dwd, dw_scale, "dw") > 0);  // the NaN pixel and the infinite gradient reached dw
        if (t.bias) compare(one.db, dbd, dw_scale, "db");

        // Every output is the same bits at any thread count: the forward and the input gradient
        // are per image, the weight and bias gradients sums over fixed slices of the batch.
        for (const Result* other : {&two, &three}) {
            bool same = true;
            for (std::size_t i = 0; i < ny; ++i) same = same && same_bits(one.y[i], other->y[i]);
            for (std::size_t i = 0; i < nx; ++i) same = same && same_bits(one.dx[i], other->dx[i]);
            for (std::size_t i = 0; i < w.size(); ++i) same = same && same_bits(one.dw[i], other->dw[i]);
            for (std::size_t i = 0; i < b.size(); ++i) same = same && same_bits(one.db[i], other->db[i]);
            CHECK(same);
        }

        // Read in place, the forward equals the unfold path bit for bit, and so does the weight
        // gradient where the unfold path takes one image per product (the same slices); the input
        // gradient sums in another order (compared with double above). An infinite weight sends
        // the input gradient to the unfold path: compared with double above as well. The weight
        // gradient of an indirect convolution is the unfold path's or the in-place one's.
        if (kernels::runs_in_place<float>(s)) {
            in_place_cases += algorithm == kernels::ConvAlgorithm::automatic;
            kernels::ConvShape in_place = s, unfold = s;
            in_place.algorithm = kernels::ConvAlgorithm::in_place;
            unfold.algorithm = kernels::ConvAlgorithm::unfold;
            CHECK(!kernels::runs_in_place<float>(unfold));
            set_num_threads(2);
            auto forward_and_dw = [&](const kernels::ConvShape& shape, std::vector<float>& y2, std::vector<float>& dw2) {
                std::vector<float> ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(shape)));
                kernels::conv2d_forward(shape, x.data(), w.data(), bias, t.relu, y2.data(), ws.data());
                kernels::conv2d_backward(shape, x.data(), w.data(), y2.data(), dy.data(), t.relu, dw2.data(),
                                         static_cast<float*>(nullptr), static_cast<float*>(nullptr), ws.data());
            };
            std::vector<float> y_in_place(ny), dw_in_place(w.size()), y_unfold(ny), dw_unfold(w.size());
            forward_and_dw(in_place, y_in_place, dw_in_place);
            forward_and_dw(unfold, y_unfold, dw_unfold);
            bool same_y = true, same_dw = true, same_dw_here = true;
            for (std::size_t i = 0; i < ny; ++i) same_y = same_y && same_bits(y_in_place[i], y_unfold[i]);
            for (std::size_t i = 0; i < w.size(); ++i) {
                same_dw = same_dw && same_bits(dw_in_place[i], dw_unfold[i]);
                same_dw_here = same_dw_here && same_bits(one.dw[i], dw_in_place[i]);
            }
            CHECK(same_y);
            if (kernels::detail::images_per_product<float>(unfold) == 1) {  // the same slices
                CHECK(same_dw);
                CHECK(same_dw_here);
            }
        }

        // The indirect weight gradient sums what im2col's product sums, in the same order, over
        // the same products of images: the same bits.
        if (kernels::weight_gradient_indirect<float>(s) && algorithm == kernels::ConvAlgorithm::indirect) {
            kernels::ConvShape unfold = s;
            unfold.algorithm = kernels::ConvAlgorithm::unfold;
            set_num_threads(2);
            std::vector<float> dw_unfold(w.size());
            std::vector<float> ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(unfold)));
            kernels::conv2d_backward(unfold, x.data(), w.data(), one.y.data(), dy.data(), t.relu, dw_unfold.data(),
                                     static_cast<float*>(nullptr), static_cast<float*>(nullptr), ws.data());
            bool same_dw = true;
            for (std::size_t i = 0; i < w.size(); ++i) same_dw = same_dw && same_bits(one.dw[i], dw_unfold[i]);
            CHECK(same_dw);
        }

        // Asked for one gradient only (a frozen layer's weights, or the network's input), the
        // backward computes that one, with the same bits.
        {
            set_num_threads(2);
            std::vector<float> ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(s)));
            std::vector<float> dx_only(nx, 42.0f), dw_only(w.size(), 42.0f);
            kernels::conv2d_backward(s, x.data(), w.data(), two.y.data(), dy.data(), t.relu, static_cast<float*>(nullptr),
                                     static_cast<float*>(nullptr), dx_only.data(), ws.data());
            kernels::conv2d_backward(s, x.data(), w.data(), two.y.data(), dy.data(), t.relu, dw_only.data(),
                                     static_cast<float*>(nullptr), static_cast<float*>(nullptr), ws.data());
            bool alone = true;
            for (std::size_t i = 0; i < nx; ++i) alone = alone && same_bits(dx_only[i], two.dx[i]);
            for (std::size_t i = 0; i < w.size(); ++i) alone = alone && same_bits(dw_only[i], two.dw[i]);
            CHECK(alone);
        }
    }
    set_num_threads(threads_before);
    if (kernels::register_gemm_available) {
        CHECK(in_place_cases == 2 * 9);  // the nine wide cases, finite and infinite weight
        CHECK(indirect_cases == 2 * 18);  // every case but the stem (9 taps of one channel: the direct loop)
        CHECK(packed_cases == 2 * 2 * 18);  // the same cases, each also at the automatic choice
    }
}

/// The dense layer's float products on register_gemm (kernels/dense.hpp): every output is the
/// in-order chain of fused multiply-adds over k (from the old value when accumulating), then the
/// bias and the ReLU, bit for bit, so the same at 1, 2 and 3 threads and for an image at any
/// batch size and position; a NaN in x and an infinity in W go exactly where those chains take
/// them. Batches around the forward's blocks of two vectors of images (16 with AVX2, 32 with
/// AVX-512), widths that are no multiple of a vector.
inline void check_dense_products(bool cpu_has_simd) {
    if (!kernels::register_gemm_available || !cpu_has_simd) {
        MESSAGE("register_gemm not built for this target, or the CPU lacks it: skipped");
        return;
    }
    const int threads_before = num_threads();
    struct Dims {
        std::int64_t batch, in, out;
    };
    const Dims dims[] = {{1, 1, 1},     {3, 37, 5},   {15, 300, 33}, {16, 9, 70},
                         {17, 130, 10}, {31, 45, 18}, {33, 70, 20},  {64, 1030, 40}};
    const auto same = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
    const auto at = [](std::int64_t i, std::int64_t ld, std::int64_t j) { return static_cast<std::size_t>(i * ld + j); };
    int cases = 0;
    for (const Dims& d : dims) {
        CAPTURE(d.batch);
        CAPTURE(d.in);
        CAPTURE(d.out);
        std::vector<float> x = normal_values(at(d.batch, d.in, 0), 31), w = normal_values(at(d.out, d.in, 0), 32);
        const std::vector<float> b = normal_values(static_cast<std::size_t>(d.out), 33),
                                 g = normal_values(at(d.batch, d.out, 0), 34),
                                 old_dx = normal_values(at(d.batch, d.in, 0), 35),
                                 old_dw = normal_values(at(d.out, d.in, 0), 36);
        if (d.batch > 2 && d.out > 3) {
            x[at(2, d.in, d.in - 1)] = std::numeric_limits<float>::quiet_NaN();
            w[at(3, d.in, 0)] = std::numeric_limits<float>::infinity();
        }
        for (bool relu : {false, true})
            for (bool bias : {false, true}) {
                std::vector<float> want(at(d.batch, d.out, 0));
                for (std::int64_t i = 0; i < d.batch; ++i)
                    for (std::int64_t j = 0; j < d.out; ++j) {
                        float s = 0.0f;
                        for (std::int64_t k = 0; k < d.in; ++k) s = std::fma(x[at(i, d.in, k)], w[at(j, d.in, k)], s);
                        if (bias) s += b[static_cast<std::size_t>(j)];
                        want[at(i, d.out, j)] = relu && s <= 0.0f ? 0.0f : s;
                    }
                for (int threads : {1, 2, 3}) {
                    CAPTURE(threads);
                    CAPTURE(relu);
                    CAPTURE(bias);
                    set_num_threads(threads);
                    std::vector<float> workspace(static_cast<std::size_t>(kernels::dense_forward_workspace<float>(d.in, d.out)));
                    std::vector<float> y(want.size(), -7.0f);
                    kernels::dense_forward(x.data(), w.data(), bias ? b.data() : nullptr, y.data(), d.batch, d.in, d.out, relu,
                                           workspace.data());
                    bool equal = true;
                    for (std::size_t i = 0; i < y.size(); ++i) equal = equal && same(y[i], want[i]);
                    CHECK(equal);
                    ++cases;
                }
            }
        for (bool add : {false, true}) {
            std::vector<float> want_dx(at(d.batch, d.in, 0)), want_dw(at(d.out, d.in, 0));
            for (std::int64_t i = 0; i < d.batch; ++i)
                for (std::int64_t k = 0; k < d.in; ++k) {
                    float s = add ? old_dx[at(i, d.in, k)] : 0.0f;
                    for (std::int64_t j = 0; j < d.out; ++j) s = std::fma(g[at(i, d.out, j)], w[at(j, d.in, k)], s);
                    want_dx[at(i, d.in, k)] = s;
                }
            for (std::int64_t j = 0; j < d.out; ++j)
                for (std::int64_t k = 0; k < d.in; ++k) {
                    float s = add ? old_dw[at(j, d.in, k)] : 0.0f;
                    for (std::int64_t i = 0; i < d.batch; ++i) s = std::fma(g[at(i, d.out, j)], x[at(i, d.in, k)], s);
                    want_dw[at(j, d.in, k)] = s;
                }
            for (int threads : {1, 2, 3}) {
                CAPTURE(threads);
                CAPTURE(add);
                set_num_threads(threads);
                std::vector<float> dx = old_dx, dw = old_dw;
                kernels::dense_backward(g.data(), x.data(), w.data(), dx.data(), add, dw.data(), add, d.batch, d.in, d.out);
                bool equal_dx = true, equal_dw = true;
                for (std::size_t i = 0; i < dx.size(); ++i) equal_dx = equal_dx && same(dx[i], want_dx[i]);
                for (std::size_t i = 0; i < dw.size(); ++i) equal_dw = equal_dw && same(dw[i], want_dw[i]);
                CHECK(equal_dx);
                CHECK(equal_dw);
                ++cases;
            }
        }
        if (d.batch > 2 && d.out > 3) {  // the NaN reached y's row 2 and dW's last column, the infinity y's column 3
            std::vector<float> workspace(static_cast<std::size_t>(kernels::dense_forward_workspace<float>(d.in, d.out)));
            std::vector<float> y(at(d.batch, d.out, 0));
            kernels::dense_forward(x.data(), w.data(), static_cast<const float*>(nullptr), y.data(), d.batch, d.in, d.out,
                                   false, workspace.data());
            CHECK(std::isnan(y[at(2, d.out, 0)]));
            CHECK(!std::isfinite(y[at(0, d.out, 3)]));
            CHECK(std::isfinite(y[at(0, d.out, 0)]));
        }
    }
    set_num_threads(threads_before);
    CHECK(cases == 8 * (4 * 3 + 2 * 3));
}

}  // namespace register_gemm_cases
