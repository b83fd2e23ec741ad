// Depthwise convolutions (kernels/depthwise_conv.hpp on the planes, kernels/depthwise_blocked.hpp
// on blocks of 16 channels) against the grouped unfold path, which ConvAlgorithm::unfold forces:
// strides, dilation, padding, multipliers, float and double; NaN and infinities; the same bits at
// 1 and 2 threads. Shared by the portable test binary and the AVX2 and AVX-512 ones, so that the
// blocked kernels run at every vector width the builds give them (4, 8 and 16 floats).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/conv2d.hpp"

namespace depthwise_cases {

using namespace cnnlite;

inline std::vector<float> normals(std::size_t n, std::uint64_t seed) {
    const RandomStream rs(seed, Purpose::user);
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(rs.normal(i));
    return v;
}

// Runs `body` with 1 and then 2 threads, restoring the count afterwards.
template <class Body>
void with_threads(Body&& body) {
    const int before = num_threads();
    for (int t : {1, 2}) {
        set_num_threads(t);
        CAPTURE(t);
        body(t);
    }
    set_num_threads(before);
}

// A depthwise shape: C channels, multiplier m, an H x W input, a kh x kw kernel.
struct DepthwiseCase {
    const char* label;
    std::int64_t batch, channels, multiplier, in_h, in_w, kh, kw, stride_h, stride_w, dil_h, dil_w;
    std::int64_t top, bottom, left, right;
    bool relu, bias;
};

inline kernels::ConvShape depthwise_shape(const DepthwiseCase& c, kernels::ConvAlgorithm algorithm) {
    kernels::ConvShape s;
    s.batch = c.batch;
    s.in_channels = c.channels;
    s.out_channels = c.channels * c.multiplier;
    s.window = kernels::WindowGeometry{c.in_h, c.in_w, c.kh, c.kw, c.stride_h, c.stride_w, c.top, c.bottom, c.left, c.right};
    s.dilation_h = c.dil_h;
    s.dilation_w = c.dil_w;
    s.groups = c.channels;
    s.algorithm = algorithm;
    return s;
}

// Outputs and gradients of one path (the depthwise kernels, or the grouped path forced by
// ConvAlgorithm::unfold), with the ReLU's mask taken from `mask_y` so both paths cut the same
// elements.
template <class T>
struct ConvRun {
    std::vector<T> y, dx, dw, db;
};

template <class T>
ConvRun<T> run_conv(const kernels::ConvShape& s, const std::vector<T>& x, const std::vector<T>& w, const std::vector<T>& b,
                    const std::vector<T>& dy, bool relu, bool bias, const std::vector<T>* mask_y = nullptr) {
    ConvRun<T> r;
    const std::int64_t O = s.out_channels, P = s.pixels();
    r.y.assign(static_cast<std::size_t>(s.batch * O * P), T(-7));
    r.dx.assign(x.size(), T(-7));
    r.dw.assign(w.size(), T(-7));
    r.db.assign(static_cast<std::size_t>(O), T(-7));
    std::vector<T> workspace(static_cast<std::size_t>(kernels::conv2d_workspace_size<T>(s)));
    kernels::conv2d_forward(s, x.data(), w.data(), bias ? b.data() : nullptr, relu, r.y.data(), workspace.data());
    const std::vector<T>& y = mask_y ? *mask_y : r.y;
    kernels::conv2d_backward(s, x.data(), w.data(), y.data(), dy.data(), relu, r.dw.data(), r.db.data(), r.dx.data(),
                             workspace.data());
    return r;
}

template <class T>
std::vector<T> normals_of(std::size_t n, std::uint64_t seed) {
    const std::vector<float> f = normals(n, seed);
    return std::vector<T>(f.begin(), f.end());
}

// Whether a and b agree to `tolerance` (relative to the larger magnitude, at least 1), with NaN
// where the other has NaN and the same infinities.
template <class T>
bool agree(const std::vector<T>& a, const std::vector<T>& b, double tolerance) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double u = a[i], v = b[i];
        if (std::isnan(u) || std::isnan(v) || std::isinf(u) || std::isinf(v)) {
            if (!(std::isnan(u) && std::isnan(v)) && u != v) return false;
            continue;
        }
        if (std::abs(u - v) > tolerance * std::max({1.0, std::abs(u), std::abs(v)})) return false;
    }
    return true;
}

inline const DepthwiseCase depthwise_cases[] = {
    {"3x3 same, relu", 3, 3, 1, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
    {"5x5 stride 2, multiplier 2, asymmetric padding", 2, 4, 2, 11, 7, 5, 5, 2, 2, 1, 1, 2, 1, 0, 2, false, true},
    {"3x3 dilation 2, padding 2, no bias", 2, 5, 1, 8, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, true, false},
    {"1x1 stride 2, multiplier 3", 3, 2, 3, 7, 6, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, false, true},
    {"3x2 strides 1x2, dilation 2x3, a one-row output", 2, 3, 1, 3, 13, 3, 2, 1, 2, 1, 3, 0, 0, 1, 0, true, true},
    {"3x3 stride 2 same over 40 columns (full vectors and a tail)", 2, 6, 1, 12, 40, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, true, true},
    {"taps wider than the padded rows' middle: 7x7 on 4x5", 2, 2, 2, 4, 5, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, false, true},
    // Larger output planes, multipliers and dilation together.
    {"5x3 dilation 2x1, multiplier 2, 16x13 out", 2, 3, 2, 16, 13, 5, 3, 1, 1, 2, 1, 4, 4, 1, 1, true, true},
    {"3x3 stride 2, asymmetric padding, multiplier 2, 12x11 out", 2, 3, 2, 25, 23, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, false, true},
};

// Shapes on blocks of 16 channels (kernels/depthwise_blocked.hpp): 3x3 in one chunk of taps,
// 5x5 in chunks of 9, 9, 4, 1, 1, 1, 2x2 in one of 4, 1x1; planes under and over a vector's
// width; strides, dilation and asymmetric padding.
inline const DepthwiseCase blocked_depthwise_cases[] = {
    {"blocked: 3x3 same, relu, 7x7", 3, 16, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
    {"blocked: 3x3 stride 2, 32 channels, 14x14 to 7x7", 2, 32, 1, 14, 14, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, true, true},
    {"blocked: 5x5 stride 2x1, asymmetric padding, no bias", 2, 16, 1, 11, 9, 5, 5, 2, 1, 1, 1, 2, 1, 0, 2, false, false},
    {"blocked: 3x3 dilation 2x3, padding 2, one-row output", 2, 16, 1, 5, 13, 3, 3, 1, 1, 2, 3, 0, 0, 2, 2, true, true},
    {"blocked: 2x2 stride 2, 48 channels, 9x9", 3, 48, 1, 9, 9, 2, 2, 2, 2, 1, 1, 0, 1, 0, 1, false, true},
    {"blocked: 1x1, 1x1 input", 2, 16, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true, true},
    {"blocked: 3x3 stride 2, dilation 2, 32 channels, 13x12", 2, 32, 1, 13, 12, 3, 3, 2, 2, 2, 2, 2, 1, 2, 2, true, true},
    {"blocked: 7x7 on 4x5, taps past the image", 2, 16, 1, 4, 5, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, false, true},
};

/// Both tables against the unfolded path, each case on the path it names.
template <class T>
void check_against_unfold(double tolerance) {
    std::vector<std::pair<DepthwiseCase, bool>> cases;
    for (const DepthwiseCase& c : depthwise_cases) cases.emplace_back(c, false);
    for (const DepthwiseCase& c : blocked_depthwise_cases) cases.emplace_back(c, true);
    for (const auto& [c, blocked] : cases) {
        const std::string label = c.label;
        CAPTURE(label);
        const kernels::ConvShape direct = depthwise_shape(c, kernels::ConvAlgorithm::automatic),
                                 unfold = depthwise_shape(c, kernels::ConvAlgorithm::unfold);
        REQUIRE(kernels::depthwise_conv(direct));
        REQUIRE(kernels::depthwise_blocked(direct) == blocked);
        REQUIRE(!kernels::depthwise_conv(unfold));
        const std::int64_t O = direct.out_channels, taps = c.kh * c.kw;
        const auto x = normals_of<T>(static_cast<std::size_t>(c.batch * c.channels * c.in_h * c.in_w), 1);
        const auto w = normals_of<T>(static_cast<std::size_t>(O * taps), 2);
        const auto b = normals_of<T>(static_cast<std::size_t>(O), 3);
        const auto dy = normals_of<T>(static_cast<std::size_t>(c.batch * O * direct.pixels()), 4);
        const ConvRun<T> want = run_conv(unfold, x, w, b, dy, c.relu, c.bias);
        const ConvRun<T> got = run_conv(direct, x, w, b, dy, c.relu, c.bias, &want.y);
        CHECK(agree(got.y, want.y, tolerance));
        CHECK(agree(got.dx, want.dx, tolerance));
        CHECK(agree(got.dw, want.dw, tolerance));
        CHECK(agree(got.db, want.db, tolerance));
    }
}

/// NaN and infinities reach the outputs whose taps read them; any gradient may be skipped; the
/// same bits at 1 and 2 threads; against the unfolded path in double.
inline void check_non_finite() {
    // 16 channels run on channel blocks, 15 on the planes.
    for (const std::int64_t C : {16, 15}) {
        CAPTURE(C);
        const DepthwiseCase c{"", 8, C, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true, true};
        const kernels::ConvShape direct = depthwise_shape(c, kernels::ConvAlgorithm::automatic),
                                 unfold = depthwise_shape(c, kernels::ConvAlgorithm::unfold);
        CHECK(kernels::depthwise_blocked(direct) == (C == 16));
        auto x = normals(static_cast<std::size_t>(8 * C * 28 * 28), 5);
        const auto w = normals(static_cast<std::size_t>(C * 9), 6), b = normals(static_cast<std::size_t>(C), 7),
                   dy = normals(static_cast<std::size_t>(8 * C * 28 * 28), 8);
        x[(2 * C + 5) * 784 + 0] = std::numeric_limits<float>::quiet_NaN();         // image 2, channel 5, a corner
        x[(6 * C + 9) * 784 + 13 * 28 + 14] = std::numeric_limits<float>::infinity();  // image 6, channel 9, the middle
        // Image 4, channel 3, the start of row 10: the right-hand taps never read it, so their
        // weight gradients stay finite (a loop over whole padded rows would meet it with a zero).
        x[(4 * C + 3) * 784 + 10 * 28 + 0] = -std::numeric_limits<float>::infinity();
        std::vector<ConvRun<float>> runs;
        with_threads([&](int) { runs.push_back(run_conv(direct, x, w, b, dy, false, true)); });
        CHECK(agree(runs[0].y, runs[1].y, 0.0));  // equal, NaN where the other has NaN
        CHECK(agree(runs[0].dx, runs[1].dx, 0.0));
        CHECK(agree(runs[0].dw, runs[1].dw, 0.0));
        CHECK(agree(runs[0].db, runs[1].db, 0.0));
        // Against the unfolded product in double. A weight gradient sums 6,272 products, whose
        // float rounding depends on the order and on whether the build fuses multiply-adds:
        // measured up to 2.7e-5 from the double sums (the unfolded float product's own: up to
        // 3.8e-5), hence its wider bound.
        const auto wide = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
        const ConvRun<double> want = run_conv(unfold, wide(x), wide(w), wide(b), wide(dy), false, true);
        CHECK(agree(wide(runs[0].y), want.y, 2e-5));
        CHECK(agree(wide(runs[0].dx), want.dx, 2e-5));
        CHECK(agree(wide(runs[0].dw), want.dw, 5e-5));
        CHECK(agree(wide(runs[0].db), want.db, 2e-5));
        // The NaN reaches the 2x2 outputs whose windows hold the corner, and no other; the infinity
        // the 3x3 around it, and the one at a row's start the 3x2 its taps reach (each an infinity
        // of its weight's sign).
        const std::vector<float>& y = runs[0].y;
        std::int64_t nans = 0, infinities = 0;
        for (float v : y) {
            nans += std::isnan(v) ? 1 : 0;
            infinities += std::isinf(v) ? 1 : 0;
        }
        CHECK(nans == 4);
        CHECK(infinities == 9 + 6);
        for (std::int64_t i = 0; i < 3; ++i) CHECK(std::isfinite(runs[0].dw[3 * 9 + i * 3 + 2]));
        CHECK(std::isnan(y[(2 * C + 5) * 784 + 1 * 28 + 1]));
        CHECK(std::isinf(y[(6 * C + 9) * 784 + 12 * 28 + 13]));
        // Each gradient alone, the others null: the same values.
        std::vector<float> workspace(static_cast<std::size_t>(kernels::conv2d_workspace_size<float>(direct)));
        std::vector<float> only(x.size(), -7);
        kernels::conv2d_backward<float>(direct, x.data(), w.data(), runs[0].y.data(), dy.data(), false, nullptr, nullptr,
                                        only.data(), workspace.data());
        CHECK(agree(only, runs[0].dx, 0.0));
        std::vector<float> only_w(w.size(), -7), only_b(static_cast<std::size_t>(C), -7);
        kernels::conv2d_backward<float>(direct, x.data(), w.data(), runs[0].y.data(), dy.data(), false, only_w.data(),
                                        nullptr, nullptr, workspace.data());
        CHECK(agree(only_w, runs[0].dw, 0.0));
        kernels::conv2d_backward<float>(direct, x.data(), w.data(), runs[0].y.data(), dy.data(), false, nullptr,
                                        only_b.data(), nullptr, workspace.data());
        CHECK(agree(only_b, runs[0].db, 0.0));
    }
}

/// The checks of a build for a CPU with an instruction set (`cpu_has` false: reported, skipped).
inline void check_all(bool cpu_has) {
    if (!cpu_has) {
        MESSAGE("this CPU lacks the instruction set: skipped");
        return;
    }
    check_against_unfold<float>(2e-5);
    check_against_unfold<double>(1e-12);
    check_non_finite();
}

}  // namespace depthwise_cases
