// Winograd's convolutions of the channels-last groups (kernels/winograd.hpp) and of training's
// planes (kernels/winograd_planes.hpp, through conv2d_forward and conv2d_backward) against a
// double-precision loop and the direct product they replace: the bodies of test cases that
// test_kernels_avx2.cpp and test_kernels_avx512.cpp declare (the transforms run on
// register_gemm, built for those instruction sets). Each case takes whether the CPU has the
// instruction set.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/channels_last.hpp"
#include "cnnlite/kernels/conv2d.hpp"
#include "cnnlite/kernels/winograd.hpp"
#include "cnnlite/kernels/winograd_planes.hpp"

namespace winograd_cases {

using namespace cnnlite;

/// One convolution of a channels-last group: its shape, images, filters, bias and residual,
/// and the direct product's tables.
struct Case {
    kernels::ConvShape s;
    std::int64_t count = 0;
    bool with_residual = false, relu = false;
    std::vector<float> x, w, bias, residual, wf;
    std::vector<std::int32_t> offsets;

    Case(std::int64_t C, std::int64_t O, std::int64_t H, std::int64_t W, std::int64_t top, std::int64_t bottom,
         std::int64_t left, std::int64_t right, std::int64_t images, bool residual_too, bool relu_too, std::uint64_t key)
        : count(images), with_residual(residual_too), relu(relu_too) {
        s.batch = 1;
        s.in_channels = C;
        s.out_channels = O;
        s.window = kernels::WindowGeometry{H, W, 3, 3, 1, 1, top, bottom, left, right};
        const RandomStream rs(key, Purpose::user);
        std::int64_t drawn = 0;
        auto normals = [&](std::int64_t n, float scale) {
            std::vector<float> v(static_cast<std::size_t>(n));
            for (float& e : v) e = scale * static_cast<float>(rs.normal(drawn++));
            return v;
        };
        x = normals(kernels::channels_last_group_floats(H * W, C), 1.0f);
        kernels::channels_last_zeros(x.data(), H * W, C);
        w = normals(O * C * 9, 1.0f / std::sqrt(static_cast<float>(9 * C)));
        bias = normals(O, 1.0f);
        residual = normals(kernels::channels_last_group_floats(s.pixels(), O), 1.0f);
        wf.resize(w.size());
        kernels::forward_filters(s, w.data(), wf.data());
        offsets.resize(static_cast<std::size_t>(kernels::channels_last_group * s.pixels() * 9));
        kernels::forward_run_offsets(s, kernels::channels_last_group,
                                     static_cast<std::int32_t>(kernels::channels_last_group * H * W * C), offsets.data());
    }
    std::int64_t outputs() const { return kernels::channels_last_group * s.pixels() * s.out_channels; }
    std::int64_t tiles(std::int64_t tile) const { return count * kernels::WinogradTiles(s, tile).per_image(); }

    /// The direct product (channels_last_conv) over the images' rows.
    std::vector<float> direct() const {
        std::vector<float> y(static_cast<std::size_t>(outputs()), -7.0f);
        kernels::channels_last_conv(s, x.data(), wf.data(), offsets.data(), bias.data(),
                                    with_residual ? residual.data() : nullptr, relu, y.data(), 0, count * s.pixels());
        return y;
    }
    /// Winograd's with tiles of `tile` outputs a side, in the given parts (none: the whole).
    std::vector<float> winograd(std::int64_t tile, std::vector<kernels::WinogradPart> parts = {}) const {
        std::vector<float> u(static_cast<std::size_t>(kernels::WinogradTiles(s, tile).points() * s.in_channels * s.out_channels));
        REQUIRE(kernels::winograd_filters(s, tile, w.data(), u.data()));
        std::vector<float> y(static_cast<std::size_t>(outputs()), -7.0f);
        std::vector<float> scratch(static_cast<std::size_t>(kernels::winograd_scratch_floats(s, tile)));
        if (parts.empty()) parts.push_back({0, tiles(tile), 0, s.out_channels});
        for (const kernels::WinogradPart& part : parts)
            kernels::channels_last_winograd(s, tile, count, x.data(), u.data(), wf.data(), offsets.data(), bias.data(),
                                            with_residual ? residual.data() : nullptr, relu, y.data(), part,
                                            scratch.data());
        return y;
    }
    /// Parts over the tiles, cut at `cuts`, all channels each.
    std::vector<kernels::WinogradPart> tile_parts(std::int64_t tile, const std::vector<std::int64_t>& cuts) const {
        std::vector<std::int64_t> bounds{0};
        for (std::int64_t c : cuts) bounds.push_back(c);
        bounds.push_back(tiles(tile));
        std::vector<kernels::WinogradPart> parts;
        for (std::size_t i = 0; i + 1 < bounds.size(); ++i) parts.push_back({bounds[i], bounds[i + 1], 0, s.out_channels});
        return parts;
    }
    /// Parts over the output channels, cut at `cuts`, all tiles each.
    std::vector<kernels::WinogradPart> channel_parts(std::int64_t tile, const std::vector<std::int64_t>& cuts) const {
        std::vector<std::int64_t> bounds{0};
        for (std::int64_t c : cuts) bounds.push_back(c);
        bounds.push_back(s.out_channels);
        std::vector<kernels::WinogradPart> parts;
        for (std::size_t i = 0; i + 1 < bounds.size(); ++i) parts.push_back({0, tiles(tile), bounds[i], bounds[i + 1]});
        return parts;
    }
    /// winograd_share's parts for `parts` threads.
    std::vector<kernels::WinogradPart> shared_parts(std::int64_t tile, std::int64_t parts) const {
        std::vector<kernels::WinogradPart> all;
        for (std::int64_t p = 0; p < parts; ++p) all.push_back(kernels::winograd_share(s, tile, count, p, parts));
        return all;
    }
    /// Per output: the exact value in double, and the sum of its terms' magnitudes (the scale
    /// of its rounding error).
    void reference(std::vector<double>& exact, std::vector<double>& scale) const {
        const std::int64_t C = s.in_channels, O = s.out_channels, H = s.window.in_h, W = s.window.in_w;
        const std::int64_t OH = s.out_h(), OW = s.out_w();
        exact.assign(static_cast<std::size_t>(outputs()), 0.0);
        scale.assign(exact.size(), 0.0);
        for (std::int64_t b = 0; b < count; ++b)
            for (std::int64_t oy = 0; oy < OH; ++oy)
                for (std::int64_t ox = 0; ox < OW; ++ox)
                    for (std::int64_t o = 0; o < O; ++o) {
                        const std::size_t at = static_cast<std::size_t>(((b * OH + oy) * OW + ox) * O + o);
                        double sum = bias[static_cast<std::size_t>(o)], magnitude = std::abs(sum);
                        for (std::int64_t ky = 0; ky < 3; ++ky)
                            for (std::int64_t kx = 0; kx < 3; ++kx) {
                                const std::int64_t iy = oy - s.window.pad_top + ky, ix = ox - s.window.pad_left + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                for (std::int64_t c = 0; c < C; ++c) {
                                    const double term = static_cast<double>(x[static_cast<std::size_t>(((b * H + iy) * W + ix) * C + c)]) *
                                                        w[static_cast<std::size_t>(((o * C + c) * 3 + ky) * 3 + kx)];
                                    sum += term;
                                    magnitude += std::abs(term);
                                }
                            }
                        if (with_residual) {
                            sum += residual[at];
                            magnitude += std::abs(residual[at]);
                        }
                        exact[at] = relu && sum <= 0 ? 0 : sum;
                        scale[at] = magnitude;
                    }
    }
};

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// The largest error of `got` over the images' outputs, relative to each output's scale.
inline double relative_error(const Case& c, const std::vector<float>& got, const std::vector<double>& exact,
                             const std::vector<double>& scale) {
    double worst = 0;
    for (std::int64_t i = 0; i < c.count * c.s.pixels() * c.s.out_channels; ++i) {
        const std::size_t at = static_cast<std::size_t>(i);
        const double error = std::abs(got[at] - exact[at]) / std::max(scale[at], 1e-30);
        worst = std::isnan(error) ? std::numeric_limits<double>::infinity() : std::max(worst, error);
    }
    return worst;
}

/// F(2x2, 3x3) and F(4x4, 3x3) against the exact sums, next to the direct product: odd sizes,
/// every padding (none, asymmetric, wider than the window), tiles that reach past the image,
/// channel counts off the vectors' width, one to four images, with and without a residual and
/// the ReLU; and the same bits whichever ranges of tiles the calls take.
inline void check_against_reference(bool available) {
    if (!available) return;
    struct Shape {
        std::int64_t C, O, H, W, top, bottom, left, right, images;
        bool residual, relu;
    };
    const Shape shapes[] = {
        {32, 32, 28, 28, 1, 1, 1, 1, 4, true, true},  // ResNet-8's first block
        {17, 40, 7, 5, 1, 1, 1, 1, 3, false, true},   // odd everything
        {3, 5, 9, 11, 0, 0, 0, 0, 2, false, false},   // 'valid': 7x9 outputs
        {16, 70, 6, 6, 2, 0, 1, 2, 1, true, false},   // asymmetric padding, three panels of outputs
        {40, 3, 1, 1, 1, 1, 1, 1, 4, true, true},     // one pixel: every tile at the edge
        {1, 1, 4, 4, 1, 1, 1, 1, 4, false, false},    // one channel
        {64, 24, 14, 14, 1, 1, 1, 1, 4, false, true}, // ResNet-8's second block, fewer filters
        {20, 33, 13, 9, 3, 3, 2, 2, 2, true, true},   // padding wider than the window: zero rows
    };
    std::uint64_t key = 100;
    for (const Shape& sh : shapes) {
        const Case c(sh.C, sh.O, sh.H, sh.W, sh.top, sh.bottom, sh.left, sh.right, sh.images, sh.residual, sh.relu, key++);
        CAPTURE(sh.C);
        CAPTURE(sh.O);
        CAPTURE(sh.H);
        CAPTURE(sh.W);
        std::vector<double> exact, scale;
        c.reference(exact, scale);
        const double direct_error = relative_error(c, c.direct(), exact, scale);
        CHECK(direct_error < 1e-6);
        for (std::int64_t tile : {2, 4}) {
            CAPTURE(tile);
            const std::vector<float> whole = c.winograd(tile);
            const double error = relative_error(c, whole, exact, scale);
            // Measured on these shapes, relative to the sum of the terms' magnitudes: the direct
            // product 0.4-2.3e-7, F(2x2) 0.3-1.6e-7, F(4x4) 0.8-26e-7 (its coefficients up to 8).
            CHECK(error < (tile == 2 ? 4e-7 : 6e-6));
            CHECK(error > 0);  // not the direct product in disguise
            // Nothing written past the images' outputs.
            for (std::int64_t i = c.count * c.s.pixels() * c.s.out_channels; i < c.outputs(); ++i)
                REQUIRE(whole[static_cast<std::size_t>(i)] == -7.0f);
            // Ranges of tiles and of output channels as threads and blocks cut them: the same bits.
            const std::int64_t tiles = c.tiles(tile);
            if (tiles > 2) {
                CHECK(same_bits(c.winograd(tile, c.tile_parts(tile, {1, tiles / 2})), whole));
                CHECK(same_bits(c.winograd(tile, c.tile_parts(tile, {tiles - 1})), whole));
            }
            if (c.s.out_channels > 3) CHECK(same_bits(c.winograd(tile, c.channel_parts(tile, {1, c.s.out_channels / 2})), whole));
            for (std::int64_t parts : {2, 3}) CHECK(same_bits(c.winograd(tile, c.shared_parts(tile, parts)), whole));
        }
    }
}

/// An image holding a NaN, an infinity or a huge value takes the direct product (the direct
/// product's bits, NaN and infinities where it has them); the other images of its group keep
/// the transforms' bits, as without it. Filters that transform to a non-finite or huge value
/// are refused.
inline void check_non_finite(bool available) {
    if (!available) return;
    for (std::int64_t tile : {2, 4}) {
        CAPTURE(tile);
        Case c(24, 20, 9, 9, 1, 1, 1, 1, 4, true, true, 7);
        const std::vector<float> clean = c.winograd(tile);
        const std::int64_t image_floats = 9 * 9 * 24, image_outputs = 9 * 9 * 20;
        c.x[static_cast<std::size_t>(0 * image_floats + 0)] = std::numeric_limits<float>::quiet_NaN();       // image 0, a corner
        c.x[static_cast<std::size_t>(1 * image_floats + 40 * 24 + 3)] = std::numeric_limits<float>::infinity();  // image 1, the middle
        c.x[static_cast<std::size_t>(3 * image_floats + 17 * 24)] = 3e20f;  // image 3: finite, but its square is not
        const std::vector<float> direct = c.direct();
        const std::vector<float> got = c.winograd(tile, c.tile_parts(tile, {5, 30}));
        CHECK(same_bits(c.winograd(tile, c.channel_parts(tile, {16})), got));  // the direct product's rows split by channel
        for (std::int64_t image = 0; image < 4; ++image) {
            CAPTURE(image);
            bool same_as_direct = true, same_as_clean = true;
            for (std::int64_t i = image * image_outputs; i < (image + 1) * image_outputs; ++i) {
                const std::size_t at = static_cast<std::size_t>(i);
                same_as_direct = same_as_direct && (got[at] == direct[at] || (std::isnan(got[at]) && std::isnan(direct[at])));
                same_as_clean = same_as_clean && got[at] == clean[at];
            }
            CHECK((image == 2 ? same_as_clean : same_as_direct));
        }
        // The infinity's 3x3 neighbourhood is infinite or NaN in the direct product, and so here.
        std::int64_t non_finite = 0;
        for (std::int64_t i = image_outputs; i < 2 * image_outputs; ++i)
            non_finite += std::isfinite(got[static_cast<std::size_t>(i)]) ? 0 : 1;
        CHECK(non_finite > 0);
        CHECK(non_finite <= 9 * 20);

        std::vector<float> u(static_cast<std::size_t>(kernels::WinogradTiles(c.s, tile).points() * 24 * 20));
        std::vector<float> w = c.w;
        w[5] = std::numeric_limits<float>::infinity();
        CHECK(!kernels::winograd_filters(c.s, tile, w.data(), u.data()));
        w[5] = 1e13f;
        CHECK(!kernels::winograd_filters(c.s, tile, w.data(), u.data()));
        w[5] = 1.0f;
        CHECK(kernels::winograd_filters(c.s, tile, w.data(), u.data()));
    }
}

/// Which convolutions the transforms take: 3x3, stride 1, no dilation, one group. (Built for
/// the instruction set like the rest: skipped on a CPU without it.)
inline void check_choice(bool available) {
    if (!available) return;
    kernels::ConvShape s;
    s.batch = 1;
    s.in_channels = 32;
    s.out_channels = 32;
    s.window = kernels::WindowGeometry::same(14, 14, 3, 3);
    CHECK(kernels::winograd_fits(s));
    CHECK(kernels::winograd_tile_for(s) > 0);
    kernels::ConvShape strided = s;
    strided.window = kernels::WindowGeometry::same(14, 14, 3, 3, 2, 2);
    CHECK(!kernels::winograd_fits(strided));
    kernels::ConvShape wide = s;
    wide.window = kernels::WindowGeometry::same(14, 14, 5, 5);
    CHECK(!kernels::winograd_fits(wide));
    kernels::ConvShape dilated = s;
    dilated.dilation_h = 2;
    CHECK(!kernels::winograd_fits(dilated));
    kernels::ConvShape grouped = s;
    grouped.groups = 2;
    CHECK(!kernels::winograd_fits(grouped));
    kernels::ConvShape one_channel = s;
    one_channel.in_channels = 1;
    CHECK(kernels::winograd_fits(one_channel));
    CHECK(kernels::winograd_tile_for(one_channel) == 0);  // a stem: the transforms cost more than they save
    // The table's rule: the way with the fewest multiplications, if at most half the direct
    // product's. Output sides 28, 14, 7, 6, 4 and 3: F(4x4); 5: neither (0.64); 2: F(2x2).
    auto tile_at = [&](std::int64_t side, std::int64_t channels) {
        kernels::ConvShape t = s;
        t.in_channels = t.out_channels = channels;
        t.window = kernels::WindowGeometry::same(side, side, 3, 3);
        return kernels::winograd_tile_for(t);
    };
    for (std::int64_t side : {28, 14, 7, 6, 4, 3}) CHECK(tile_at(side, 64) == 4);
    CHECK(tile_at(5, 64) == 0);
    CHECK(tile_at(2, 64) == 2);
    CHECK(tile_at(1, 64) == 0);
    CHECK(tile_at(28, 16) == 4);
    CHECK(tile_at(28, 8) == 0);
    CHECK(kernels::winograd_multiplications(s, 0) == 9 * 14 * 14);
    CHECK(kernels::winograd_multiplications(s, 4) == 36 * 4 * 4);
    CHECK(kernels::winograd_multiplications(s, 2) == 16 * 7 * 7);
}

/// Training's convolutions on planes (kernels/winograd_planes.hpp): conv2d_forward's output and
/// conv2d_backward's input and weight gradients by the transforms, against exact double sums
/// relative to the sums of the terms' magnitudes (the bound the channels-last cases hold), for
/// every padding up to 2 (the input gradient's 2 - p), partial groups, one image shared by the
/// threads, the fused ReLU's mask, batches of one block of the weight gradient and of several;
/// the same bits at 1, 2 and 3 threads; the bias gradient the direct path's bits; an image with
/// a NaN gets the direct product's bits while the others keep theirs, and sends the weight
/// gradient to the direct path; non-finite filters take the direct path.
inline void check_planes(bool available) {
    if (!available) return;
    struct Shape {
        std::int64_t batch, C, O, H, W, top, bottom, left, right;
        bool relu, bias;
        std::int64_t forward_tile, input_gradient_tile;  // the choice expected for the shape
    };
    const Shape shapes[] = {
        {5, 16, 24, 14, 14, 1, 1, 1, 1, true, true, 4, 4},    // 'same', a group of one image after a full one
        {70, 16, 16, 7, 7, 1, 1, 1, 1, true, true, 4, 4},     // the weight gradient in two blocks (64 + 6 images)
        {3, 20, 16, 7, 9, 0, 0, 0, 0, false, true, 4, 4},     // 'valid': the input gradient padded by 2
        {2, 16, 17, 9, 8, 2, 1, 0, 2, true, false, 4, 4},     // asymmetric padding
        {1, 32, 32, 12, 12, 1, 1, 1, 1, true, true, 4, 4},    // one image: the threads share its group
        {2, 16, 16, 4, 4, 3, 3, 3, 3, false, true, 4, 0},     // padding 3: the input gradient stays direct
        {2, 16, 16, 3, 3, 1, 1, 1, 1, true, true, 4, 4},
        {4, 8, 16, 14, 14, 1, 1, 1, 1, true, true, 0, 0},     // too few input channels: direct
    };
    const int threads_before = num_threads();
    std::uint64_t key = 300;
    for (const Shape& sh : shapes) {
        CAPTURE(sh.C);
        CAPTURE(sh.O);
        CAPTURE(sh.H);
        CAPTURE(sh.W);
        CAPTURE(sh.top);
        kernels::ConvShape s;
        s.batch = sh.batch;
        s.in_channels = sh.C;
        s.out_channels = sh.O;
        s.window = kernels::WindowGeometry{sh.H, sh.W, 3, 3, 1, 1, sh.top, sh.bottom, sh.left, sh.right};
        CHECK(kernels::forward_winograd_tile<float>(s) == sh.forward_tile);
        CHECK(kernels::input_gradient_winograd_tile<float>(s) == sh.input_gradient_tile);
        CHECK(kernels::weight_gradient_winograd_tile<float>(s) == sh.forward_tile);
        kernels::ConvShape direct_shape = s;
        direct_shape.winograd = false;
        CHECK(kernels::forward_winograd_tile<float>(direct_shape) == 0);
        CHECK(kernels::input_gradient_winograd_tile<float>(direct_shape) == 0);
        CHECK(kernels::forward_winograd_tile<double>(s) == 0);

        const std::int64_t C = sh.C, O = sh.O, HW = sh.H * sh.W, P = s.pixels(), N = sh.batch;
        const RandomStream rs(key++, Purpose::user);
        std::int64_t drawn = 0;
        auto normals = [&](std::int64_t n, float scale) {
            std::vector<float> v(static_cast<std::size_t>(n));
            for (float& e : v) e = scale * static_cast<float>(rs.normal(drawn++));
            return v;
        };
        std::vector<float> x = normals(N * C * HW, 1.0f), w = normals(O * C * 9, 1.0f / std::sqrt(9.0f * C)),
                           b = normals(O, 0.5f), dy = normals(N * O * P, 1.0f);
        const float* bias = sh.bias ? b.data() : nullptr;

        struct Result {
            std::vector<float> y, dx, dw, db;
        };
        auto run = [&](const kernels::ConvShape& shape, int threads, const std::vector<float>& images,
                       const std::vector<float>& filters) {
            set_num_threads(threads);
            Result r{std::vector<float>(static_cast<std::size_t>(N * O * P), -7.0f),
                     std::vector<float>(x.size(), -7.0f), std::vector<float>(w.size()), std::vector<float>(b.size())};
            std::vector<float> ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(shape)));
            kernels::conv2d_forward(shape, images.data(), filters.data(), bias, sh.relu, r.y.data(), ws.data());
            kernels::conv2d_backward(shape, images.data(), filters.data(), r.y.data(), dy.data(), sh.relu, r.dw.data(),
                                     sh.bias ? r.db.data() : nullptr, r.dx.data(), ws.data());
            return r;
        };
        const Result one = run(s, 1, x, w), two = run(s, 2, x, w), three = run(s, 3, x, w);
        const Result direct = run(direct_shape, 2, x, w);
        for (const Result* other : {&two, &three}) {
            CHECK(same_bits(other->y, one.y));
            CHECK(same_bits(other->dx, one.dx));
            CHECK(same_bits(other->dw, one.dw));
        }
        // The bias gradient does not take the transforms: the direct path's bits, from the direct
        // path's ReLU mask (the forward outputs' signs may differ where they are ~0); and asked
        // for alone, each gradient has the bits it has with the others.
        {
            set_num_threads(2);
            std::vector<float> dw(w.size()), db(b.size()), dx(x.size());
            std::vector<float> ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(s)));
            kernels::conv2d_backward(s, x.data(), w.data(), direct.y.data(), dy.data(), sh.relu,
                                     static_cast<float*>(nullptr), sh.bias ? db.data() : nullptr,
                                     static_cast<float*>(nullptr), ws.data());
            CHECK(same_bits(db, direct.db));
            kernels::conv2d_backward(s, x.data(), w.data(), one.y.data(), dy.data(), sh.relu, dw.data(),
                                     static_cast<float*>(nullptr), static_cast<float*>(nullptr), ws.data());
            CHECK(same_bits(dw, one.dw));
            kernels::conv2d_backward(s, x.data(), w.data(), one.y.data(), dy.data(), sh.relu,
                                     static_cast<float*>(nullptr), static_cast<float*>(nullptr), dx.data(), ws.data());
            CHECK(same_bits(dx, one.dx));
        }

        // Exact sums in double, and the sums of the terms' magnitudes, through the double path.
        auto to_double = [](const std::vector<float>& v, bool magnitude) {
            std::vector<double> d(v.size());
            for (std::size_t i = 0; i < v.size(); ++i) d[i] = magnitude ? std::abs(double(v[i])) : double(v[i]);
            return d;
        };
        set_num_threads(1);
        std::vector<double> wsd(static_cast<std::size_t>(kernels::conv2d_workspace_size<double>(s)));
        std::vector<double> bias_d = to_double(b, false), no_bias(b.size(), 0.0);
        std::vector<double> y_exact(one.y.size()), y_scale(one.y.size()), dx_exact(x.size()), dx_scale(x.size());
        kernels::conv2d_forward(s, to_double(x, false).data(), to_double(w, false).data(), sh.bias ? bias_d.data() : nullptr,
                                false, y_exact.data(), wsd.data());
        kernels::conv2d_forward(s, to_double(x, true).data(), to_double(w, true).data(), no_bias.data(), false,
                                y_scale.data(), wsd.data());
        // The input gradient of the Winograd run's own mask (its outputs' signs).
        std::vector<double> masked(dy.size()), masked_abs(dy.size());
        for (std::size_t i = 0; i < dy.size(); ++i) {
            const bool pass = !sh.relu || one.y[i] > 0.0f;
            masked[i] = pass ? double(dy[i]) : 0.0;
            masked_abs[i] = std::abs(masked[i]);
        }
        std::vector<double> unused(y_exact.size(), 1.0);
        kernels::conv2d_backward(s, static_cast<const double*>(nullptr), to_double(w, false).data(), unused.data(),
                                 masked.data(), false, static_cast<double*>(nullptr), static_cast<double*>(nullptr),
                                 dx_exact.data(), wsd.data());
        kernels::conv2d_backward(s, static_cast<const double*>(nullptr), to_double(w, true).data(), unused.data(),
                                 masked_abs.data(), false, static_cast<double*>(nullptr), static_cast<double*>(nullptr),
                                 dx_scale.data(), wsd.data());
        std::vector<double> dw_exact(w.size()), dw_scale(w.size());
        kernels::conv2d_backward(s, to_double(x, false).data(), to_double(w, false).data(), unused.data(), masked.data(),
                                 false, dw_exact.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr),
                                 wsd.data());
        kernels::conv2d_backward(s, to_double(x, true).data(), to_double(w, true).data(), unused.data(),
                                 masked_abs.data(), false, dw_scale.data(), static_cast<double*>(nullptr),
                                 static_cast<double*>(nullptr), wsd.data());
        // Relative to the largest sum of magnitudes in the output's plane: a tile's transforms mix
        // its outputs' terms, so an output whose own terms are few or zero (a window on the
        // padding alone, a ReLU mask) carries the rounding of its neighbours'.
        auto worst = [](const std::vector<float>& got, const std::vector<double>& exact, const std::vector<double>& scale,
                        std::int64_t plane, bool relu) {
            double e = 0;
            for (std::size_t p0 = 0; p0 < got.size(); p0 += static_cast<std::size_t>(plane)) {
                const std::size_t p1 = p0 + static_cast<std::size_t>(plane);
                const double largest = *std::max_element(scale.begin() + static_cast<std::ptrdiff_t>(p0),
                                                         scale.begin() + static_cast<std::ptrdiff_t>(p1));
                for (std::size_t i = p0; i < p1; ++i) {
                    const double want = relu ? std::max(exact[i], 0.0) : exact[i];
                    const double error = std::abs(double(got[i]) - want) / std::max(largest, 1e-30);
                    e = std::isnan(error) ? std::numeric_limits<double>::infinity() : std::max(e, error);
                }
            }
            return e;
        };
        const double y_error = worst(one.y, y_exact, y_scale, P, sh.relu), dx_error = worst(one.dx, dx_exact, dx_scale, HW, false);
        const double y_direct = worst(direct.y, y_exact, y_scale, P, sh.relu);
        const double dw_error = worst(one.dw, dw_exact, dw_scale, 9, false);  // per filter
        CAPTURE(y_error);
        CAPTURE(dx_error);
        CAPTURE(dw_error);
        CHECK(y_direct < 1e-6);
        CHECK(y_error < 6e-6);
        CHECK(dx_error < 6e-6);
        CHECK(dw_error < 6e-6);
        CHECK(same_bits(one.dw, direct.dw) == (sh.forward_tile == 0));
        // The transforms ran where chosen (not the direct product's bits), and only there.
        CHECK(same_bits(one.y, direct.y) == (sh.forward_tile == 0));
        if (sh.input_gradient_tile == 0 && sh.forward_tile == 0) CHECK(same_bits(one.dx, direct.dx));
        if (sh.input_gradient_tile > 0) CHECK(!same_bits(one.dx, direct.dx));

        // An image with a NaN (forward) and an infinity in its output gradient (input gradient):
        // its outputs are the direct product's (the indirect path's bits, as channels_last_conv
        // gives them); the other images keep the transforms' bits.
        if (sh.forward_tile > 0 && N > 1) {
            std::vector<float> bad_x = x;
            bad_x[static_cast<std::size_t>(C * HW + HW / 2)] = std::numeric_limits<float>::quiet_NaN();  // image 1
            kernels::ConvShape indirect = s;
            indirect.algorithm = kernels::ConvAlgorithm::indirect;
            const Result got = run(s, 2, bad_x, w), want = run(indirect, 2, bad_x, w);
            bool image1_direct = true, others_kept = true;
            for (std::int64_t i = 0; i < N * O * P; ++i) {
                const std::size_t at = static_cast<std::size_t>(i);
                const bool nan_alike = std::isnan(got.y[at]) && std::isnan(want.y[at]);
                if (i / (O * P) == 1) image1_direct = image1_direct && (got.y[at] == want.y[at] || nan_alike);
                else others_kept = others_kept && std::memcmp(&got.y[at], &one.y[at], sizeof(float)) == 0;
            }
            CHECK(image1_direct);
            CHECK(others_kept);
            // The weight gradient sums every image: the direct path's bits (NaN where it has NaN),
            // from the same ReLU mask.
            std::vector<float> dw_got(w.size()), dw_want(w.size());
            std::vector<float> ws(static_cast<std::size_t>(kernels::conv2d_workspace_size(s)));
            kernels::conv2d_backward(s, bad_x.data(), w.data(), got.y.data(), dy.data(), sh.relu, dw_got.data(),
                                     static_cast<float*>(nullptr), static_cast<float*>(nullptr), ws.data());
            kernels::conv2d_backward(direct_shape, bad_x.data(), w.data(), got.y.data(), dy.data(), sh.relu,
                                     dw_want.data(), static_cast<float*>(nullptr), static_cast<float*>(nullptr), ws.data());
            bool dw_direct = true, dw_nan = false;
            for (std::size_t i = 0; i < dw_got.size(); ++i) {
                dw_direct = dw_direct && (dw_got[i] == dw_want[i] || (std::isnan(dw_got[i]) && std::isnan(dw_want[i])));
                dw_nan = dw_nan || std::isnan(dw_got[i]);
            }
            CHECK(dw_direct);
            CHECK(dw_nan);
        }
        // Filters with an infinity: the transforms refuse them, and both passes take the direct path.
        {
            std::vector<float> bad_w = w;
            bad_w[bad_w.size() / 2] = std::numeric_limits<float>::infinity();
            const Result got = run(s, 2, x, bad_w), want = run(direct_shape, 2, x, bad_w);
            CHECK(same_bits(got.y, want.y));
            CHECK(same_bits(got.dx, want.dx));
        }
    }
    set_num_threads(threads_before);
}

}  // namespace winograd_cases
