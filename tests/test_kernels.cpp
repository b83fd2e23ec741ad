// Kernels on raw arrays against plain reference loops: the dense layer's thread-split
// products (every column split, accumulation, ReLU and NaN handling), the dropout backward,
// the all-finite check, the channels-last pooling, and the depthwise convolutions against the
// grouped unfold path.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/channels_last.hpp"
#include "cnnlite/kernels/conv2d.hpp"
#include "cnnlite/kernels/dense.hpp"
#include "cnnlite/kernels/dropout.hpp"
#include "cnnlite/kernels/finite.hpp"
#include "cnnlite/kernels/im2col.hpp"
#include "cnnlite/kernels/pooling.hpp"
#include "depthwise_cases.hpp"

namespace test_kernels {

using namespace cnnlite;

// Normal draws and runs at 1 and 2 threads, shared with the depthwise cases.
using depthwise_cases::normals;
using depthwise_cases::with_threads;

TEST_CASE("dense products equal the reference loops for every column split, with and without accumulation") {
    struct Dims {
        std::int64_t batch, in, out;
    };
    // Tiny, not multiples of 16 (uneven thread blocks), and large enough to run in parallel.
    const Dims dims[] = {{1, 1, 1}, {3, 37, 5}, {5, 17, 40}, {64, 300, 33}, {16, 1030, 70}};
    for (const Dims& d : dims) {
        CAPTURE(d.batch);
        CAPTURE(d.in);
        CAPTURE(d.out);
        const auto sz = [](std::int64_t a, std::int64_t b) { return static_cast<std::size_t>(a * b); };
        const std::vector<float> x = normals(sz(d.batch, d.in), 1), w = normals(sz(d.out, d.in), 2),
                                 b = normals(sz(1, d.out), 3), g = normals(sz(d.batch, d.out), 4),
                                 old_dx = normals(sz(d.batch, d.in), 5), old_dw = normals(sz(d.out, d.in), 6);
        // References in double.
        std::vector<double> y_ref(sz(d.batch, d.out)), dx_ref(sz(d.batch, d.in), 0.0), dw_ref(sz(d.out, d.in), 0.0);
        for (std::int64_t i = 0; i < d.batch; ++i)
            for (std::int64_t j = 0; j < d.out; ++j) {
                double s = 0;
                for (std::int64_t k = 0; k < d.in; ++k) s += double(x[sz(i, d.in) + k]) * w[sz(j, d.in) + k];
                y_ref[sz(i, d.out) + j] = s;
                for (std::int64_t k = 0; k < d.in; ++k) {
                    dx_ref[sz(i, d.in) + k] += double(g[sz(i, d.out) + j]) * w[sz(j, d.in) + k];
                    dw_ref[sz(j, d.in) + k] += double(g[sz(i, d.out) + j]) * x[sz(i, d.in) + k];
                }
            }
        const double tol = 1e-4 * std::sqrt(static_cast<double>(std::max(d.in, d.batch)));
        with_threads([&](int) {
            for (bool relu : {false, true})
                for (bool bias : {false, true}) {
                    std::vector<float> y(sz(d.batch, d.out), -7.0f),
                        workspace(static_cast<std::size_t>(kernels::dense_forward_workspace<float>(d.in, d.out)));
                    kernels::dense_forward(x.data(), w.data(), bias ? b.data() : nullptr, y.data(), d.batch, d.in, d.out,
                                           relu, workspace.data());
                    for (std::size_t i = 0; i < y.size(); ++i) {
                        double e = y_ref[i] + (bias ? b[i % static_cast<std::size_t>(d.out)] : 0.0);
                        if (relu) e = std::max(e, 0.0);
                        CHECK(y[i] == doctest::Approx(e).epsilon(tol).scale(1.0));
                    }
                }
            for (bool add : {false, true}) {
                std::vector<float> dx = old_dx, dw = old_dw;
                kernels::dense_backward(g.data(), x.data(), w.data(), dx.data(), add, dw.data(), add, d.batch, d.in,
                                        d.out);
                for (std::size_t i = 0; i < dx.size(); ++i)
                    CHECK(dx[i] == doctest::Approx(dx_ref[i] + (add ? old_dx[i] : 0.0)).epsilon(tol).scale(1.0));
                for (std::size_t i = 0; i < dw.size(); ++i)
                    CHECK(dw[i] == doctest::Approx(dw_ref[i] + (add ? old_dw[i] : 0.0)).epsilon(tol).scale(1.0));
                // Either output alone; the other pointer is never touched.
                std::vector<float> only_dw = old_dw;
                kernels::dense_backward(g.data(), x.data(), w.data(), static_cast<float*>(nullptr), false, only_dw.data(),
                                        add, d.batch, d.in, d.out);
                CHECK(only_dw == dw);
                std::vector<float> only_dx = old_dx;
                kernels::dense_backward(g.data(), x.data(), w.data(), only_dx.data(), add, static_cast<float*>(nullptr),
                                        false, d.batch, d.in, d.out);
                CHECK(only_dx == dx);
            }
        });
    }
}

TEST_CASE("dense products: bitwise repeatable for a thread count; ReLU keeps a NaN and clamps negatives") {
    const std::int64_t batch = 64, in = 500, out = 48;
    const std::vector<float> x = normals(static_cast<std::size_t>(batch * in), 11),
                             w = normals(static_cast<std::size_t>(out * in), 12);
    with_threads([&](int) {
        std::vector<float> a(static_cast<std::size_t>(batch * out)), b2(a.size()),
            workspace(static_cast<std::size_t>(kernels::dense_forward_workspace<float>(in, out)));
        kernels::dense_forward(x.data(), w.data(), static_cast<const float*>(nullptr), a.data(), batch, in, out, false,
                               workspace.data());
        kernels::dense_forward(x.data(), w.data(), static_cast<const float*>(nullptr), b2.data(), batch, in, out, false,
                               workspace.data());
        CHECK(a == b2);
    });
    // One input row of NaN: its outputs stay NaN through the ReLU; the other rows are >= 0.
    std::vector<float> xn = x;
    xn[3 * in + 7] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y(static_cast<std::size_t>(batch * out)),
        workspace(static_cast<std::size_t>(kernels::dense_forward_workspace<float>(in, out)));
    kernels::dense_forward(xn.data(), w.data(), static_cast<const float*>(nullptr), y.data(), batch, in, out, true,
                           workspace.data());
    for (std::int64_t i = 0; i < batch; ++i)
        for (std::int64_t j = 0; j < out; ++j) {
            const float v = y[static_cast<std::size_t>(i * out + j)];
            if (i == 3) CHECK(std::isnan(v));
            else CHECK(v >= 0.0f);
        }
}

TEST_CASE("dropout forward: element j keeps its value when bits 16*(j%4).. of draw i*ceil(F/4) + j/4 reach the rate") {
    // The documented rule, computed here draw by draw, for feature counts around the decision
    // chunk and not multiples of 4, at sample ids far apart.
    const RandomStream stream(77, Purpose::dropout, 2, 9);
    const double rate = 0.3;
    const auto threshold = static_cast<std::uint32_t>(std::ceil(rate * 65536.0));
    const float scale = static_cast<float>(1.0 / (1.0 - rate));
    for (std::int64_t features : {std::int64_t(1), std::int64_t(7), std::int64_t(1024), std::int64_t(1030),
                                  std::int64_t(3139), std::int64_t(12544)}) {  // the last one in parallel
        CAPTURE(features);
        const std::vector<std::int64_t> ids{0, 5, 123456, 7, 8, 9};
        const auto rows = static_cast<std::int64_t>(ids.size());
        const std::vector<float> x = normals(static_cast<std::size_t>(rows * features), 31);
        with_threads([&](int) {
            std::vector<float> y(x.size()), mask(x.size());
            kernels::dropout_forward(x.data(), y.data(), mask.data(), rows, features, ids.data(), stream, rate);
            const auto draws = static_cast<std::uint64_t>((features + 3) / 4);
            std::int64_t kept = 0;
            for (std::int64_t r = 0; r < rows; ++r)
                for (std::int64_t j = 0; j < features; ++j) {
                    const std::uint64_t bits = stream.bits(static_cast<std::uint64_t>(ids[static_cast<std::size_t>(r)]) * draws +
                                                           static_cast<std::uint64_t>(j / 4));
                    const auto u = static_cast<std::uint16_t>(bits >> (16 * (j % 4)));
                    const float want = u >= threshold ? scale : 0.0f;
                    const auto at = static_cast<std::size_t>(r * features + j);
                    REQUIRE(mask[at] == want);
                    REQUIRE(y[at] == x[at] * want);
                    kept += want != 0.0f;
                }
            if (features > 1000) CHECK(static_cast<double>(kept) / static_cast<double>(rows * features) == doctest::Approx(0.7).epsilon(0.05));
        });
    }
}

TEST_CASE("dropout backward: dx = dy * mask, or added to dx, at any size and thread count") {
    const std::vector<float> dy{1, -2, 3, 4, 5}, mask{0, 2, 2, 0, 2};
    std::vector<float> dx(5, 9.0f);
    kernels::dropout_backward(dy.data(), mask.data(), dx.data(), 5, false);
    CHECK(dx == std::vector<float>{0, -4, 6, 0, 10});
    kernels::dropout_backward(dy.data(), mask.data(), dx.data(), 5, true);
    CHECK(dx == std::vector<float>{0, -8, 12, 0, 20});

    const std::size_t n = 100003;  // parallel, with a partial last block
    const std::vector<float> big_dy = normals(n, 21), big_mask = normals(n, 22);
    with_threads([&](int) {
        std::vector<float> out(n, 1.0f);
        kernels::dropout_backward(big_dy.data(), big_mask.data(), out.data(), static_cast<std::int64_t>(n), true);
        for (std::size_t i = 0; i < n; i += 997) CHECK(out[i] == 1.0f + big_dy[i] * big_mask[i]);
        CHECK(out[n - 1] == 1.0f + big_dy[n - 1] * big_mask[n - 1]);
    });
}

TEST_CASE("all_finite: NaN and infinities anywhere; huge finite values whose sum overflows are finite") {
    CHECK(kernels::all_finite(static_cast<const float*>(nullptr), 0));
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    with_threads([&](int) {
        for (std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(4096), std::size_t(70001)}) {
            CAPTURE(n);
            std::vector<float> v(n, 3e38f);  // a plain sum would overflow to inf
            CHECK(kernels::all_finite(v.data(), static_cast<std::int64_t>(n)));
            for (std::size_t at : {std::size_t(0), n / 2, n - 1})
                for (float bad : {nan, inf, -inf}) {
                    std::vector<float> u = v;
                    u[at] = bad;
                    CHECK_FALSE(kernels::all_finite(u.data(), static_cast<std::int64_t>(n)));
                }
        }
        std::vector<double> d(5000, -1e308);
        CHECK(kernels::all_finite(d.data(), 5000));
        d[4999] = std::numeric_limits<double>::infinity();
        CHECK_FALSE(kernels::all_finite(d.data(), 5000));
    });
}


TEST_CASE("im2col equals its definition for every small geometry: kernels, strides, asymmetric padding") {
    using cnnlite::kernels::WindowGeometry;
    // Covers both paths: stride 1 at full output width (one copy per tap) and the row loop.
    std::int64_t geometries = 0, full_width = 0;
    for (std::int64_t h = 1; h <= 6; ++h)
        for (std::int64_t w = 1; w <= 7; w += 2)
            for (std::int64_t k = 1; k <= 5; k += 2)
                for (std::int64_t s = 1; s <= 2; ++s)
                    for (std::int64_t pad = 0; pad <= 3; ++pad) {
                        WindowGeometry g{h, w, k, k + (pad == 3 ? -1 : 0), s, s};
                        if (g.kernel_w < 1) g.kernel_w = 1;
                        g.pad_top = pad / 2, g.pad_bottom = pad - pad / 2;
                        g.pad_left = (pad + 1) / 2, g.pad_right = pad / 2 + (pad == 3 ? 1 : 0);
                        if (g.out_h() < 1 || g.out_w() < 1) continue;
                        const std::int64_t channels = 2, oh = g.out_h(), ow = g.out_w();
                        std::vector<float> x(static_cast<std::size_t>(channels * h * w));
                        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) + 1.f;
                        const std::size_t col_size = static_cast<std::size_t>(channels * g.kernel_h * g.kernel_w * oh * ow);
                        std::vector<float> col(col_size, -7.f);  // every element must be written
                        cnnlite::kernels::im2col(x.data(), channels, g, col.data());
                        std::int64_t wrong = 0;
                        for (std::int64_t c = 0; c < channels; ++c)
                            for (std::int64_t i = 0; i < g.kernel_h; ++i)
                                for (std::int64_t j = 0; j < g.kernel_w; ++j)
                                    for (std::int64_t oy = 0; oy < oh; ++oy)
                                        for (std::int64_t ox = 0; ox < ow; ++ox) {
                                            const std::int64_t iy = oy * s + i - g.pad_top, ix = ox * s + j - g.pad_left;
                                            const float want = iy >= 0 && iy < h && ix >= 0 && ix < w
                                                                   ? x[static_cast<std::size_t>((c * h + iy) * w + ix)]
                                                                   : 0.f;
                                            const std::size_t at = static_cast<std::size_t>(
                                                (((c * g.kernel_h + i) * g.kernel_w + j) * oh + oy) * ow + ox);
                                            wrong += col[at] != want;
                                        }
                        CAPTURE(h);
                        CAPTURE(w);
                        CAPTURE(k);
                        CAPTURE(s);
                        CAPTURE(pad);
                        CHECK(wrong == 0);
                        ++geometries;
                        full_width += s == 1 && ow == w;
                    }
    CHECK(geometries > 300);
    CHECK(full_width > 40);
}

TEST_CASE("col2im_add at stride 1 and full width adds exactly what col2im_add adds, for every small geometry") {
    using cnnlite::kernels::WindowGeometry;
    std::int64_t geometries = 0;
    for (std::int64_t h = 1; h <= 6; ++h)
        for (std::int64_t w = 1; w <= 7; ++w)
            for (std::int64_t kh = 1; kh <= 5; ++kh)
                for (std::int64_t kw = 1; kw <= 5; kw += 2) {
                    WindowGeometry g = WindowGeometry::same(h, w, kh, kw);
                    g.pad_top += kh / 2, g.pad_bottom = std::max<std::int64_t>(0, g.pad_bottom - kh / 2);
                    if (g.out_h() < 1 || !cnnlite::kernels::detail::stride1_full_width(g)) continue;
                    const std::int64_t channels = 2;
                    const std::size_t col_size = static_cast<std::size_t>(channels * kh * kw * g.out_h() * g.out_w());
                    std::vector<float> col(col_size);
                    for (std::size_t i = 0; i < col.size(); ++i) col[i] = static_cast<float>((i * 37) % 101) - 50.f;
                    std::vector<float> want(static_cast<std::size_t>(channels * h * w), 0.5f), got = want;
                    cnnlite::kernels::col2im_add(col.data(), channels, g, want.data());
                    cnnlite::kernels::col2im_add_stride1_full_width(col.data(), channels, g, got.data());
                    CAPTURE(h);
                    CAPTURE(w);
                    CAPTURE(kh);
                    CAPTURE(kw);
                    CHECK(got == want);
                    ++geometries;
                }
    CHECK(geometries > 100);
}

TEST_CASE("depthwise convolution kernels equal the grouped unfold path: strides, dilation, padding, multipliers, float and double") {
    depthwise_cases::check_against_unfold<float>(2e-5);
    depthwise_cases::check_against_unfold<double>(1e-12);
}

TEST_CASE("depthwise convolution kernels: NaN and infinity reach the outputs whose taps read them; any gradient may be skipped; the same bits at 1 and 2 threads") {
    depthwise_cases::check_non_finite();
}

}  // namespace test_kernels

TEST_CASE("channels-last pooling and global average equal the planes kernels bit for bit: padding, overlaps, NaN, infinities, -0") {
    // Each geometry over a group of images stored channels-last, against max_pool_forward /
    // avg_pool_forward / global_avg_pool_forward on the same values as planes.
    const std::int64_t count = 3, channels = 21;
    struct Case {
        std::int64_t h, w, kh, kw, sh, sw, top, bottom, left, right;
    };
    int cases = 0;
    for (const Case& c : {Case{7, 6, 2, 2, 2, 2, 0, 0, 0, 0}, Case{7, 6, 3, 3, 2, 2, 1, 1, 0, 1}, Case{5, 9, 3, 3, 1, 1, 1, 1, 1, 1},
                         Case{4, 4, 3, 2, 1, 2, 2, 0, 0, 1}, Case{1, 1, 1, 1, 1, 1, 0, 0, 0, 0}})
        for (bool include_pad : {false, true}) {
            CAPTURE(c.h);
            CAPTURE(c.w);
            CAPTURE(c.kh);
            CAPTURE(include_pad);
            const cnnlite::kernels::WindowGeometry g{c.h, c.w, c.kh, c.kw, c.sh, c.sw, c.top, c.bottom, c.left, c.right};
            const std::int64_t pixels = c.h * c.w, out_pixels = g.out_h() * g.out_w();
            const cnnlite::RandomStream rs(40 + cases, cnnlite::Purpose::user);
            std::vector<float> planes(static_cast<std::size_t>(count * channels * pixels));
            for (std::size_t i = 0; i < planes.size(); ++i) planes[i] = static_cast<float>(rs.normal(i));
            // Special values: a NaN, both infinities, and ties of -0 and +0 in one window.
            planes[5] = std::numeric_limits<float>::quiet_NaN();
            planes[planes.size() / 2] = std::numeric_limits<float>::infinity();
            planes[planes.size() / 3] = -std::numeric_limits<float>::infinity();
            if (pixels > 1) planes[static_cast<std::size_t>(pixels)] = -0.0f, planes[static_cast<std::size_t>(pixels) + 1] = 0.0f;
            std::vector<float> group(static_cast<std::size_t>(count * pixels * channels));
            for (std::int64_t b = 0; b < count; ++b)
                for (std::int64_t ch = 0; ch < channels; ++ch)
                    for (std::int64_t p = 0; p < pixels; ++p)
                        group[static_cast<std::size_t>((b * pixels + p) * channels + ch)] =
                            planes[static_cast<std::size_t>((b * channels + ch) * pixels + p)];
            const std::size_t outputs = static_cast<std::size_t>(count * channels * out_pixels);
            std::vector<float> want_max(outputs), want_avg(outputs), got_max(outputs), got_avg(outputs);
            std::vector<std::int32_t> argmax(outputs);
            cnnlite::kernels::max_pool_forward(planes.data(), count * channels, g, want_max.data(), argmax.data());
            cnnlite::kernels::avg_pool_forward(planes.data(), count * channels, g, include_pad, want_avg.data());
            // In two row ranges, as two threads would split them.
            const std::int64_t rows = count * out_pixels, cut = rows / 2;
            for (auto [begin, end] : {std::pair<std::int64_t, std::int64_t>{0, cut}, {cut, rows}}) {
                cnnlite::kernels::channels_last_max_pool(group.data(), g, channels, got_max.data(), begin, end);
                cnnlite::kernels::channels_last_avg_pool(group.data(), g, include_pad, channels, got_avg.data(), begin, end);
            }
            bool same = true;
            for (std::int64_t b = 0; b < count; ++b)
                for (std::int64_t ch = 0; ch < channels; ++ch)
                    for (std::int64_t p = 0; p < out_pixels; ++p) {
                        const std::size_t planar = static_cast<std::size_t>((b * channels + ch) * out_pixels + p);
                        const std::size_t last = static_cast<std::size_t>((b * out_pixels + p) * channels + ch);
                        for (auto [x, y] : {std::pair<float, float>{got_max[last], want_max[planar]}, {got_avg[last], want_avg[planar]}})
                            same = same && ((std::isnan(x) && std::isnan(y)) || (x == y && std::signbit(x) == std::signbit(y)));
                    }
            CHECK(same);
            std::vector<float> want_mean(static_cast<std::size_t>(count * channels)), got_mean(want_mean.size());
            cnnlite::kernels::global_avg_pool_forward(planes.data(), count * channels, pixels, want_mean.data());
            cnnlite::kernels::channels_last_global_average(group.data(), count, pixels, channels, got_mean.data(), 0, 16);
            cnnlite::kernels::channels_last_global_average(group.data(), count, pixels, channels, got_mean.data(), 16, channels);
            bool same_mean = true;
            for (std::size_t i = 0; i < got_mean.size(); ++i)
                same_mean = same_mean && ((std::isnan(got_mean[i]) && std::isnan(want_mean[i])) || got_mean[i] == want_mean[i]);
            CHECK(same_mean);
            ++cases;
        }
    CHECK(cases == 10);
}
