// The fused conv+ReLU+pool forward (kernels/conv_relu_pool.hpp) from window-major taps against
// the conv plane pooled row by row, bit for bit. Shared by the AVX2 and AVX-512 test binaries,
// so that the kernel runs at both of its vector widths (8 and 16 windows), with the shapes and
// value helpers the AVX2 binary's other conv+ReLU+pool cases use.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/conv2d.hpp"
#include "cnnlite/kernels/conv_relu_pool.hpp"
#include "cnnlite/kernels/pooling.hpp"

namespace conv_relu_pool_cases {

using namespace cnnlite;

// Values with many exact ties (a few distinct levels, zeros included) and NaNs, the cases where
// the winner of a window is easy to get wrong.
inline std::vector<float> tricky_values(std::size_t n, std::uint64_t seed) {
    const RandomStream rs(seed, Purpose::user);
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t b = rs.below(i, 10);
        v[i] = b == 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(static_cast<int>(b) - 5) * 0.5f;
    }
    return v;
}

inline bool same_value(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// A 'same' convolution of kh x kw filters followed by 2x2 pooling of stride 2: the shapes the
// fused conv+ReLU+pool cases run.
struct ConvPoolCase {
    std::int64_t batch, channels, out, h, w, kh, kw;
    kernels::ConvShape shape() const {
        kernels::ConvShape s;
        s.batch = batch;
        s.in_channels = channels;
        s.out_channels = out;
        s.window = kernels::WindowGeometry::same(h, w, kh, kw, 1, 1);
        return s;
    }
    kernels::WindowGeometry pool() const { return kernels::WindowGeometry::valid(h, w, 2, 2, 2, 2); }
};

/// Every patch size from 1 to 16 taps, odd planes, partial vectors, ties and NaNs, bias or
/// none, 1 and 2 threads: each pooled value and winner equals the conv plane of
/// small_patch_product pooled by max_pool_2x2_row. `cpu_ok`: the CPU runs the binary's vector
/// instructions.
inline void check_window_major_forward(bool cpu_ok) {
#ifndef __AVX2__
    (void)cpu_ok;
    MESSAGE("built without AVX2: nothing to compare");
#else
    if (!cpu_ok) {
        MESSAGE("this CPU lacks the binary's vector instructions: skipped");
        return;
    }
    struct Case : ConvPoolCase {
        bool bias, ties;
    };
    // The paper's layer; odd conv planes (a row and a column in no window); fewer windows than
    // a vector, and a partial last vector; no bias; inputs with many exact ties and NaNs, where
    // the winner is easy to get wrong; then 1xK kernels for every patch size up to 16.
    std::vector<Case> cases = {{{4, 1, 64, 28, 28, 2, 2}, true, false}, {{2, 1, 5, 15, 13, 3, 3}, true, true},
                               {{3, 1, 3, 4, 4, 2, 2}, true, true},     {{2, 2, 7, 9, 11, 2, 2}, false, true},
                               {{2, 4, 3, 10, 6, 2, 2}, true, false},   {{1, 1, 2, 6, 5, 1, 1}, true, true},
                               {{2, 3, 9, 7, 7, 1, 2}, false, false},   {{2, 1, 4, 3, 2, 2, 2}, true, true},
                               {{1, 1, 6, 17, 18, 4, 4}, true, false}};
    for (std::int64_t k = 1; k <= kernels::direct_conv_max_patch; ++k)
        cases.push_back({{2, 1, 3, 13, 17, 1, k}, k % 2 == 0, k % 3 == 0});
    int ties = 0, nans = 0;
    for (const Case& c : cases) {
        CAPTURE(c.h);
        CAPTURE(c.w);
        CAPTURE(c.kh * c.kw * c.channels);
        const kernels::ConvShape s = c.shape();
        const kernels::WindowGeometry pool = c.pool();
        const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels, Q = pool.out_h() * pool.out_w();
        const std::int64_t in_size = c.channels * c.h * c.w;
        const RandomStream rs(static_cast<std::uint64_t>(c.h * 100 + K), Purpose::user);
        std::vector<float> x = c.ties ? tricky_values(static_cast<std::size_t>(c.batch * in_size), 5)
                                      : std::vector<float>(static_cast<std::size_t>(c.batch * in_size));
        if (!c.ties)
            for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rs.normal(i));
        std::vector<float> w(static_cast<std::size_t>(O * K)), b(static_cast<std::size_t>(O));
        for (std::size_t i = 0; i < w.size(); ++i)  // ties: weights of a few levels keep the conv outputs tied
            w[i] = c.ties ? static_cast<float>(static_cast<int>(rs.below(100000 + i, 3)) - 1)
                          : static_cast<float>(rs.normal(100000 + i));
        for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(rs.normal(200000 + i)) * 0.1f;
        std::vector<float> workspace(static_cast<std::size_t>(kernels::conv_relu_pool_workspace_size(s)));
        std::vector<float> y(static_cast<std::size_t>(c.batch * O * Q));
        std::vector<std::int32_t> arg(y.size());
        const int before = num_threads();
        for (int threads : {1, 2}) {  // the second run overwrites the first: both must be right
            set_num_threads(threads);
            kernels::conv_relu_pool_forward(s, pool, x.data(), w.data(), c.bias ? b.data() : nullptr, y.data(),
                                            arg.data(), workspace.data());
        }
        set_num_threads(before);
        // The reference: the conv plane of small_patch_product, pooled row by row with the ReLU.
        std::vector<float> col(static_cast<std::size_t>(K * P)), plane(static_cast<std::size_t>(O * P + 16));
        std::vector<float> ref(static_cast<std::size_t>(Q));
        std::vector<std::int32_t> ref_arg(static_cast<std::size_t>(Q));
        for (std::int64_t n = 0; n < c.batch; ++n) {
            kernels::im2col(x.data() + n * in_size, c.channels, s.window, col.data());
            kernels::detail::small_patch_product(w.data(), c.bias ? b.data() : nullptr, col.data(), O, K, P,
                                                 plane.data());
            for (std::int64_t o = 0; o < O; ++o) {
                const float* po = plane.data() + o * P;
                for (std::int64_t oy = 0; oy < pool.out_h(); ++oy)
                    kernels::detail::max_pool_2x2_row<true>(
                        po + 2 * oy * c.w, po + (2 * oy + 1) * c.w, pool.out_w(), static_cast<std::int32_t>(c.w),
                        static_cast<std::int32_t>(2 * oy * c.w), ref.data() + oy * pool.out_w(),
                        ref_arg.data() + oy * pool.out_w(), plane.data() + plane.size());
                for (std::int64_t q = 0; q < Q; ++q) {
                    const std::size_t i = static_cast<std::size_t>((n * O + o) * Q + q);
                    REQUIRE(same_value(y[i], ref[static_cast<std::size_t>(q)]));
                    REQUIRE(arg[i] == ref_arg[static_cast<std::size_t>(q)]);
                    // A tie: two or more of the window's positions hold its maximum.
                    const std::int64_t top = (q / pool.out_w()) * 2 * c.w + (q % pool.out_w()) * 2;
                    const float winner = po[ref_arg[static_cast<std::size_t>(q)]];
                    int equal = 0;
                    for (std::int64_t j = 0; j < 4; ++j) equal += po[top + (j / 2) * c.w + j % 2] == winner;
                    ties += equal > 1;
                    nans += std::isnan(y[i]);
                }
            }
        }
    }
    CHECK(ties > 0);  // windows with several positions at their maximum
    CHECK(nans > 0);
#endif
}

}  // namespace conv_relu_pool_cases
