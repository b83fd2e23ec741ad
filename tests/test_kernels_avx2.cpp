// The hand-vectorised AVX2 kernels against their portable versions. Both build systems compile
// files named test_*_avx2.cpp with -mavx2 -mfma (and test_*_avx512.cpp with -mavx512f), so the
// vector code paths are tested even when the rest of the suite is built for a generic x86-64; on
// a CPU without the instruction set the cases are skipped.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/kernels/conv2d.hpp"
#include "cnnlite/kernels/conv_relu_pool.hpp"
#include "cnnlite/kernels/pooling.hpp"
#include "conv_relu_pool_cases.hpp"
#include "depthwise_cases.hpp"
#include "inference_model_cases.hpp"
#include "register_gemm_cases.hpp"
#include "train_threads_cases.hpp"
#include "winograd_cases.hpp"

using namespace cnnlite;
using conv_relu_pool_cases::ConvPoolCase;
using conv_relu_pool_cases::same_value;
using conv_relu_pool_cases::tricky_values;

namespace {

bool cpu_has_avx2() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

}  // namespace

TEST_CASE("AVX2 2x2 max pooling equals the portable loop: ties, NaNs, every row width") {
#ifndef __AVX2__
    MESSAGE("built without AVX2: nothing to compare");
    return;
#else
    if (!cpu_has_avx2()) {
        MESSAGE("this CPU has no AVX2: skipped");
        return;
    }
    for (std::int32_t ow = 1; ow <= 21; ++ow) {
        const std::int32_t in_w = 2 * ow + (ow % 3 == 0);  // odd widths too: the last column is never read
        const std::vector<float> in = tricky_values(static_cast<std::size_t>(2 * in_w), 100 + ow);
        for (bool room_after : {false, true}) {  // readable memory ends with the rows, or later
            std::vector<float> buffer = in;
            if (room_after) buffer.resize(in.size() + 32, 7.0f);
            const float* r0 = buffer.data();
            const float* end = buffer.data() + buffer.size();
            std::vector<float> fast(static_cast<std::size_t>(ow)), slow(fast.size());
            std::vector<std::int32_t> fast_arg(fast.size()), slow_arg(fast.size());
            kernels::detail::max_pool_2x2_row<false>(r0, r0 + in_w, ow, in_w, 40, fast.data(), fast_arg.data(), end);
            kernels::detail::max_pool_2x2_row<false, float>(r0, r0 + in_w, ow, in_w, 40, slow.data(), slow_arg.data(), end);
            for (std::int32_t i = 0; i < ow; ++i) {
                CAPTURE(ow);
                CAPTURE(i);
                CHECK(same_value(fast[static_cast<std::size_t>(i)], slow[static_cast<std::size_t>(i)]));
                CHECK(fast_arg[static_cast<std::size_t>(i)] == slow_arg[static_cast<std::size_t>(i)]);
            }
            kernels::detail::max_pool_2x2_row<true>(r0, r0 + in_w, ow, in_w, 0, fast.data(), fast_arg.data(), end);
            kernels::detail::max_pool_2x2_row<true, float>(r0, r0 + in_w, ow, in_w, 0, slow.data(), slow_arg.data(), end);
            for (std::int32_t i = 0; i < ow; ++i) {
                CHECK(same_value(fast[static_cast<std::size_t>(i)], slow[static_cast<std::size_t>(i)]));
                CHECK(fast_arg[static_cast<std::size_t>(i)] == slow_arg[static_cast<std::size_t>(i)]);
                CHECK(!(fast[static_cast<std::size_t>(i)] < 0));  // rectified
            }
        }
    }
#endif
}

TEST_CASE("AVX2 fused conv+ReLU+pool forward equals convolution, ReLU and the portable pooling") {
#ifndef __AVX2__
    MESSAGE("built without AVX2: nothing to compare");
    return;
#else
    if (!cpu_has_avx2()) {
        MESSAGE("this CPU has no AVX2: skipped");
        return;
    }
    const ConvPoolCase c{3, 1, 5, 14, 14, 2, 2};
    const kernels::ConvShape s = c.shape();
    const kernels::WindowGeometry pool = c.pool();
    const RandomStream rs(7, Purpose::user);
    std::vector<float> x(static_cast<std::size_t>(s.batch * 14 * 14)), w(static_cast<std::size_t>(s.out_channels * 4)),
        b(static_cast<std::size_t>(s.out_channels));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rs.normal(i));
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(rs.normal(1000 + i));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(rs.normal(2000 + i)) * 0.1f;
    x[17] = std::numeric_limits<float>::quiet_NaN();

    const std::int64_t Q = pool.out_h() * pool.out_w(), P = s.pixels();
    std::vector<float> workspace(static_cast<std::size_t>(kernels::conv_relu_pool_workspace_size(s)));
    std::vector<float> y(static_cast<std::size_t>(s.batch * s.out_channels * Q));
    std::vector<std::int32_t> arg(y.size());
    kernels::conv_relu_pool_forward(s, pool, x.data(), w.data(), b.data(), y.data(), arg.data(), workspace.data());

    std::vector<float> conv(static_cast<std::size_t>(s.batch * s.out_channels * P));
    std::vector<float> conv_ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(s)));
    kernels::conv2d_forward(s, x.data(), w.data(), b.data(), false, conv.data(), conv_ws.data());
    std::vector<float> pooled(y.size());
    std::vector<std::int32_t> pooled_arg(y.size());
    for (std::int64_t plane = 0; plane < s.batch * s.out_channels; ++plane)
        kernels::detail::max_pool_plane(conv.data() + plane * P, pool, pooled.data() + plane * Q, pooled_arg.data() + plane * Q);
    int nans = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        const float expected = pooled[i] <= 0 ? 0.0f : pooled[i];
        CHECK(same_value(y[i], expected));
        CHECK(arg[i] == pooled_arg[i]);
        nans += std::isnan(y[i]);
    }
    CHECK(nans > 0);  // the NaN pixel reached every channel's pooled output
#endif
}

TEST_CASE("AVX2 fused conv+ReLU+pool forward from window-major taps: the bits of the conv plane pooled row by row") {
    conv_relu_pool_cases::check_window_major_forward(cpu_has_avx2());
}

TEST_CASE("AVX2 small-patch convolution rows are in-order fused multiply-add chains, bit for bit, at every patch size") {
#ifndef __AVX2__
    MESSAGE("built without AVX2: nothing to compare");
    return;
#else
    if (!cpu_has_avx2()) {
        MESSAGE("this CPU has no AVX2: skipped");
        return;
    }
    // Each output is b, then + w[k] * col[k][p] for k = 0, 1, ... as one rounding each: the bits
    // of an optimised build at -O2 and -O3 alike (the loop must vectorise at both).
    const RandomStream rs(17, Purpose::user);
    for (std::int64_t K = 1; K <= kernels::direct_conv_max_patch; ++K)
        for (std::int64_t P : {1, 7, 8, 9, 31, 787}) {
            CAPTURE(K);
            CAPTURE(P);
            const std::int64_t O = 3;
            std::vector<float> w(static_cast<std::size_t>(O * K)), b(static_cast<std::size_t>(O)),
                col(static_cast<std::size_t>(K * P)), y(static_cast<std::size_t>(O * P));
            for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(rs.normal(i));
            for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(rs.normal(1000 + i));
            for (std::size_t i = 0; i < col.size(); ++i) col[i] = static_cast<float>(rs.normal(2000 + i));
            col[static_cast<std::size_t>(P / 2)] = std::numeric_limits<float>::quiet_NaN();
            for (const bool bias : {true, false}) {
                kernels::detail::small_patch_product(w.data(), bias ? b.data() : nullptr, col.data(), O, K, P,
                                                     y.data());
                for (std::int64_t o = 0; o < O; ++o)
                    for (std::int64_t p = 0; p < P; ++p) {
                        float acc = bias ? b[static_cast<std::size_t>(o)] : 0.0f;
                        for (std::int64_t k = 0; k < K; ++k)
                            acc = std::fma(w[static_cast<std::size_t>(o * K + k)],
                                           col[static_cast<std::size_t>(k * P + p)], acc);
                        REQUIRE(same_value(y[static_cast<std::size_t>(o * P + p)], acc));
                    }
            }
        }
#endif
}

TEST_CASE("AVX2 fused conv+ReLU+pool backward (2x2 windows) equals the portable winner loop") {
#ifndef __AVX2__
    MESSAGE("built without AVX2: nothing to compare");
    return;
#else
    if (!cpu_has_avx2()) {
        MESSAGE("this CPU has no AVX2: skipped");
        return;
    }
    // The paper's layer; odd conv planes (the last row and column belong to no window); fewer
    // windows than one vector; every patch size the blends are instantiated for up to 16.
    const ConvPoolCase cases[] = {{3, 1, 64, 28, 28, 2, 2}, {2, 1, 5, 15, 13, 3, 3}, {2, 1, 3, 4, 4, 2, 2},
                                  {1, 2, 7, 9, 11, 2, 2},  {2, 4, 3, 10, 6, 2, 2},  {1, 1, 2, 6, 5, 1, 1},
                                  {1, 3, 9, 7, 7, 1, 2}};
    for (const ConvPoolCase& c : cases) {
        CAPTURE(c.h);
        CAPTURE(c.w);
        CAPTURE(c.kh * c.kw * c.channels);
        const kernels::ConvShape s = c.shape();
        const kernels::WindowGeometry pool = c.pool();
        const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels, Q = pool.out_h() * pool.out_w();
        const RandomStream rs(static_cast<std::uint64_t>(c.h * 100 + K), Purpose::user);
        std::vector<float> x(static_cast<std::size_t>(c.batch * c.channels * c.h * c.w)), w(static_cast<std::size_t>(O * K)),
            b(static_cast<std::size_t>(O));
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rs.normal(i));
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(rs.normal(100000 + i));
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(rs.normal(200000 + i)) * 0.1f;
        std::vector<float> workspace(static_cast<std::size_t>(kernels::conv_relu_pool_workspace_size(s)));
        std::vector<float> y(static_cast<std::size_t>(c.batch * O * Q)), dy(y.size());
        std::vector<std::int32_t> arg(y.size());
        kernels::conv_relu_pool_forward(s, pool, x.data(), w.data(), b.data(), y.data(), arg.data(), workspace.data());
        for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = static_cast<float>(rs.normal(300000 + i));
        std::vector<float> dw(w.size()), db(b.size());
        kernels::conv_relu_pool_backward(s, pool, x.data(), w.data(), y.data(), arg.data(), dy.data(), dw.data(), db.data(),
                                         static_cast<float*>(nullptr), workspace.data());

        // The portable loop, image by image.
        std::vector<float> ref_w(w.size(), 0.0f), ref_b(b.size(), 0.0f), col(static_cast<std::size_t>(K * P)),
            g(static_cast<std::size_t>(Q));
        for (std::int64_t n = 0; n < c.batch; ++n) {
            kernels::im2col(x.data() + n * c.channels * c.h * c.w, c.channels, s.window, col.data());
            kernels::detail::winner_weight_grad(col.data(), K, P, y.data() + n * O * Q, dy.data() + n * O * Q,
                                                arg.data() + n * O * Q, O, Q, ref_w.data(), ref_b.data(), g.data());
        }
        int clamped = 0;
        for (float v : y) clamped += v == 0.0f;
        CHECK(clamped > 0);  // some windows carry no gradient
        for (std::size_t i = 0; i < dw.size(); ++i) CHECK(dw[i] == doctest::Approx(ref_w[i]).epsilon(1e-4).scale(1.0));
        for (std::size_t i = 0; i < db.size(); ++i) CHECK(db[i] == doctest::Approx(ref_b[i]).epsilon(1e-4).scale(1.0));

        // A NaN gradient under a positive output reaches its channel's weights and bias only;
        // one under a clamped output reaches nothing.
        std::size_t live = 0, dead = 0;
        while (!(y[live] > 0)) ++live;
        dead = live + 1;
        while (dead < y.size() && y[dead] > 0) ++dead;
        std::vector<float> dy_nan = dy;
        dy_nan[live] = std::numeric_limits<float>::quiet_NaN();
        if (dead < y.size()) dy_nan[dead] = std::numeric_limits<float>::infinity();
        kernels::conv_relu_pool_backward(s, pool, x.data(), w.data(), y.data(), arg.data(), dy_nan.data(), dw.data(),
                                         db.data(), static_cast<float*>(nullptr), workspace.data());
        const std::int64_t channel = (static_cast<std::int64_t>(live) / Q) % O;
        for (std::int64_t o = 0; o < O; ++o) {
            CHECK(std::isfinite(db[static_cast<std::size_t>(o)]) == (o != channel));
            for (std::int64_t k = 0; k < K; ++k)
                CHECK(std::isfinite(dw[static_cast<std::size_t>(o * K + k)]) == (o != channel));
        }
    }
#endif
}

TEST_CASE("AVX2 register_gemm equals the in-order fused multiply-add loop bit for bit, at every tile edge") {
    register_gemm_cases::check_register_gemm_bitwise(cpu_has_avx2());
}

TEST_CASE("AVX2 register_gemm reading a padded image in place equals the in-order loop bit for bit") {
    register_gemm_cases::check_register_gemm_padded_reads(cpu_has_avx2());
}

TEST_CASE("AVX2 register_gemm reading A's rows through run offsets equals the in-order loop bit for bit") {
    register_gemm_cases::check_register_gemm_run_reads(cpu_has_avx2());
}

TEST_CASE("AVX2 register_gemm's epilogue (bias, residual, ReLU) equals the in-order loop and the same additions bit for bit") {
    register_gemm_cases::check_register_gemm_epilogue(cpu_has_avx2());
}

TEST_CASE("AVX2 Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions equal the exact sums to rounding: odd shapes, every padding, residual and ReLU, any tile ranges") {
    winograd_cases::check_against_reference(cpu_has_avx2());
}

TEST_CASE("AVX2 Winograd convolutions: an image with a NaN, an infinity or a huge value takes the direct product; the others keep their bits") {
    winograd_cases::check_non_finite(cpu_has_avx2());
}

TEST_CASE("AVX2 Winograd convolutions run 3x3 stride-1 undilated ungrouped convolutions with enough channels") {
    winograd_cases::check_choice(cpu_has_avx2());
}

TEST_CASE("AVX2 Winograd convolutions of training's planes: forward and input gradient against exact sums, any padding up to 2, the same bits at 1-3 threads, non-finite values") {
    winograd_cases::check_planes(cpu_has_avx2());
}

TEST_CASE("AVX2 transposes between planes and channels-last rows equal the element-by-element loop") {
    register_gemm_cases::check_transposes(cpu_has_avx2());
}

TEST_CASE("AVX2 register_gemm: a NaN or infinity in A or B spreads to exactly the row or column it touches") {
    register_gemm_cases::check_register_gemm_non_finite(cpu_has_avx2());
}

TEST_CASE("AVX2 dense products equal the in-order fused multiply-add chains bit for bit: bias, ReLU, accumulation, NaN and infinity, 1-3 threads") {
    register_gemm_cases::check_dense_products(cpu_has_avx2());
}

TEST_CASE("AVX2 float convolutions on register_gemm equal the double Eigen path, at 1 and 2 threads") {
    register_gemm_cases::check_float_convolutions(cpu_has_avx2());
}

TEST_CASE("AVX2 build: training gives the same weights at 1, 2 and 3 threads (register_gemm convolutions, Eigen's AVX2 products)") {
    if (!cpu_has_avx2()) return;
    train_threads_cases::check_paper_network();
    train_threads_cases::check_residual_network();
}

TEST_CASE("AVX2 build: InferenceModel folds the batch norms and packs the filters once, with Model::predict's bits") {
    if (!cpu_has_avx2()) return;
    inference_model_cases::check_inference_model(cnnlite::kernels::register_gemm_available);
}

TEST_CASE("AVX2 build: InferenceModel runs the convolutions channels-last: Model::predict's outputs, the same bits at any batch and thread count") {
    if (!cpu_has_avx2()) return;
    inference_model_cases::check_channels_last(cnnlite::kernels::register_gemm_available);
}

TEST_CASE("AVX2 build: InferenceModel runs each chunk on the team or one thread, as its thread governor chooses, with the same outputs") {
    if (!cpu_has_avx2()) return;
    inference_model_cases::check_adaptive_threads();
}

TEST_CASE("AVX2 build: depthwise convolutions (8-float channel vectors on the blocks) equal the grouped unfold path; NaN, infinities, 1 and 2 threads") {
    depthwise_cases::check_all(cpu_has_avx2());
}
