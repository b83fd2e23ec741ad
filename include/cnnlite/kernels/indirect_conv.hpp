// Float convolutions as indirect products (Dukhan 2019, "The Indirect Convolution Algorithm").
// Each image is copied once channels-last ([H*W, C], a transpose), and one output pixel becomes
// one row of the product:
//
//     y^T[p, o] = sum over taps t, then channels c, of x^T[pixel under tap t of p, c] * W[o, c, t]
//
// Row p of A is kh*kw runs of C contiguous values, run t starting where the pixel under tap t
// sits in the channels-last copy (a table of offsets, register_gemm's `a_run_offsets`), or at a
// run of C zeros where the tap falls on the padding. The output channels fill the vectors (O is
// 32-128 in the networks cnnlite builds), so a 7x7 map's 49 pixels waste nothing, stride and
// padding cost nothing, and no column is computed twice; the price is the two transposes, into
// channels-last and back (with the bias and ReLU).
//
// The input gradient is the same product run backwards: input pixel q sums, over taps t and
// output channels o, g^T[the output pixel that tap t of q came from, o] * W[o, c, t]. Under a
// stride most taps of a pixel come from no output pixel, so the pixels are split by the
// stride's phases, each a product over the taps that reach it (InputGradientPlan). Its sums run
// over (t, o) in one chain, not as im2col's W^T g followed by col2im's additions: other bits than
// the unfold path's (the tests compare both with double). Products with the zero runs stand
// where col2im drops a term: equal for finite weights, but 0 * inf is NaN, so non-finite weights
// take the unfold path (conv2d.hpp).
//
// The weight gradient is one product per tap: the C rows (c, t) of dW^T sum x^T[pixel under tap
// t of p, c] * g^T[p, o] over the pixels in order, x^T's columns found through the forward's
// offsets (register_gemm's `a_column_offsets`): im2col's sums in im2col's order, the same bits.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/implicit_conv.hpp"
#include "cnnlite/kernels/register_gemm.hpp"
#include "cnnlite/kernels/transpose.hpp"

namespace cnnlite::kernels {

/// Most images one indirect product takes (conv2d.hpp's images_per_product never exceeds it).
constexpr std::int64_t indirect_max_images = 4;

/// Whether a convolution can run as an indirect product: float on register_gemm, one group, no
/// dilation, more than a handful of taps per product (else the direct kernel), and every offset
/// into a product's images within 32 bits (whatever the batch size, so that it never changes
/// the choice).
template <class T>
bool indirect_possible(const ConvShape& s) {
    if constexpr (!(std::is_same_v<T, float> && register_gemm_available)) {
        (void)s;
        return false;
    } else {
        const WindowGeometry& g = s.window;
        const std::int64_t largest = std::max(g.in_h * g.in_w * s.in_channels, s.pixels() * s.out_channels);
        return s.plain() && s.patch() > direct_conv_max_patch &&
               largest < std::numeric_limits<std::int32_t>::max() / (2 * indirect_max_images);
    }
}

/// Fewest channels summed per tap (C in the forward and the weight gradient, O in the input
/// gradient) for which a stride-1 convolution wide enough to read in place runs indirect in
/// `ConvAlgorithm::automatic` instead. At 32 channels the two measured the same, at 64 and 128
/// the indirect product was faster (bench_kernels, benchmarks/README.md "Indirect
/// convolutions"); with a few channels per tap the in-place reads' longer runs win.
constexpr std::int64_t indirect_min_run = 32;

namespace detail {

/// Whether a pass that sums `run` channels per tap runs as an indirect product: possible, and
/// forced or (automatic) chosen by indirect_min_run.
template <class T>
bool pass_indirect(const ConvShape& s, std::int64_t run) {
    if (!indirect_possible<T>(s)) return false;
    const bool strided = s.window.stride_h > 1 || s.window.stride_w > 1;
    const bool chosen = strided || s.out_w() < in_place_min_width || run >= indirect_min_run;
    return s.algorithm == ConvAlgorithm::indirect || (s.algorithm == ConvAlgorithm::automatic && chosen);
}

}  // namespace detail

/// Whether the forward runs as an indirect product.
template <class T>
bool forward_indirect(const ConvShape& s) {
    return detail::pass_indirect<T>(s, s.in_channels);
}

/// Whether the weight gradient runs as indirect products (one per tap).
template <class T>
bool weight_gradient_indirect(const ConvShape& s) {
    return detail::pass_indirect<T>(s, s.in_channels);
}

/// Whether the input gradient runs as an indirect product (the weights must also be finite).
template <class T>
bool input_gradient_indirect(const ConvShape& s) {
    return detail::pass_indirect<T>(s, s.out_channels);
}

/// The forward's run offsets for a product over `images` images: row b*P + p (output pixel p of
/// image b), run t = kh * kw_count + kw, at the pixel under the tap in the images' channels-last
/// copies ([images, H*W, C]), or at `zeros` on the padding.
inline void forward_run_offsets(const ConvShape& s, std::int64_t images, std::int32_t zeros, std::int32_t* offsets) {
    const WindowGeometry& g = s.window;
    const std::int64_t C = s.in_channels, OH = s.out_h(), OW = s.out_w();
    std::int32_t* out = offsets;
    for (std::int64_t b = 0; b < images; ++b)
        for (std::int64_t oh = 0; oh < OH; ++oh)
            for (std::int64_t ow = 0; ow < OW; ++ow)
                for (std::int64_t kh = 0; kh < g.kernel_h; ++kh)
                    for (std::int64_t kw = 0; kw < g.kernel_w; ++kw) {
                        const std::int64_t ih = oh * g.stride_h - g.pad_top + kh, iw = ow * g.stride_w - g.pad_left + kw;
                        const bool inside = ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w;
                        *out++ = inside ? static_cast<std::int32_t>(((b * g.in_h + ih) * g.in_w + iw) * C) : zeros;
                    }
}

namespace detail {

/// forward_run_offsets(s, images, images * H*W*C) from the calling thread's cache of tables, one
/// per geometry: they depend on the shape only, and forming them took a twentieth of a
/// one-image prediction. The pointer stays valid until this thread's next call. The cache keeps
/// up to 64 tables (a network has a few shapes) and starts again when it is full.
inline const std::int32_t* cached_forward_run_offsets(const ConvShape& s, std::int64_t images) {
    const WindowGeometry& g = s.window;
    const std::array<std::int64_t, 10> key{g.in_h,     g.in_w,     s.in_channels, g.kernel_h, g.kernel_w,
                                           g.stride_h, g.stride_w, g.pad_top,     g.pad_left,  images};
    struct Table {
        std::array<std::int64_t, 10> key;
        std::vector<std::int32_t> offsets;
    };
    thread_local std::vector<Table> tables;
    for (const Table& t : tables)
        if (t.key == key) return t.offsets.data();
    if (tables.size() == 64) tables.clear();
    const std::int64_t in_size = s.in_channels * g.in_h * g.in_w;
    Table t{key, std::vector<std::int32_t>(static_cast<std::size_t>(images * s.pixels() * g.kernel_h * g.kernel_w))};
    forward_run_offsets(s, images, static_cast<std::int32_t>(images * in_size), t.offsets.data());
    tables.push_back(std::move(t));
    return tables.back().offsets.data();
}

}  // namespace detail

/// The indirect input gradient's plan for products of up to `images` images, split by the
/// stride's phases. Input pixel (ih, iw) is reached only by the taps (kh, kw) with
/// ih + pad_top - kh a multiple of stride_h (and likewise along the width), so all pixels with
/// the same (ih % stride_h, iw % stride_w) share one set of taps: each such phase is a product
/// over its own taps, and no multiply-add goes to the steps between. Stride 1 has one phase,
/// every pixel and every tap.
struct InputGradientPlan {
    /// One phase: the input pixels that share a set of taps, and where its parts of the plan are.
    struct Phase {
        std::int64_t taps = 0;          ///< taps that reach the phase's pixels
        std::int64_t filter_row = 0;    ///< its first row in the phased filters (taps * O rows of C)
        std::int64_t pixels = 0;        ///< its input pixels per image
        std::int64_t first_pixel = 0;   ///< where they start in `pixel`
        std::int64_t first_offset = 0;  ///< where its run offsets start in `offsets`
    };
    std::vector<Phase> phases;          ///< in order of (row, column) parity
    std::vector<std::int32_t> pixel;    ///< per phase, its input pixels ih * W + iw, in order
    std::vector<std::int32_t> tap;      ///< per phase, its taps kh * KW + kw, in order
    /// Per phase, for each image and pixel and tap, where the output pixel whose tap covered it
    /// sits in the output gradient's channels-last copy ([images, P, O]), or `zeros` (none did).
    std::vector<std::int32_t> offsets;

    /// Fills the plan; the vectors keep their capacity, so a steady-state step does not allocate.
    void build(const ConvShape& s, std::int64_t images, std::int32_t zeros) {
        const WindowGeometry& g = s.window;
        const std::int64_t O = s.out_channels, OH = s.out_h(), OW = s.out_w(), P = s.pixels();
        phases.clear();
        pixel.clear();
        tap.clear();
        offsets.clear();
        for (std::int64_t py = 0; py < std::min(g.stride_h, g.in_h); ++py)
            for (std::int64_t px = 0; px < std::min(g.stride_w, g.in_w); ++px) {
                Phase ph;
                ph.filter_row = static_cast<std::int64_t>(tap.size()) * O;
                ph.first_pixel = static_cast<std::int64_t>(pixel.size());
                ph.first_offset = static_cast<std::int64_t>(offsets.size());
                for (std::int64_t kh = 0; kh < g.kernel_h; ++kh)
                    for (std::int64_t kw = 0; kw < g.kernel_w; ++kw)
                        if (residue(py + g.pad_top - kh, g.stride_h) == 0 && residue(px + g.pad_left - kw, g.stride_w) == 0)
                            tap.push_back(static_cast<std::int32_t>(kh * g.kernel_w + kw));
                ph.taps = static_cast<std::int64_t>(tap.size()) - ph.filter_row / O;
                for (std::int64_t ih = py; ih < g.in_h; ih += g.stride_h)
                    for (std::int64_t iw = px; iw < g.in_w; iw += g.stride_w)
                        pixel.push_back(static_cast<std::int32_t>(ih * g.in_w + iw));
                ph.pixels = static_cast<std::int64_t>(pixel.size()) - ph.first_pixel;
                const std::int32_t* phase_taps = tap.data() + ph.filter_row / O;
                for (std::int64_t b = 0; b < images; ++b)
                    for (std::int64_t r = 0; r < ph.pixels; ++r) {
                        const std::int64_t q = pixel[static_cast<std::size_t>(ph.first_pixel + r)];
                        const std::int64_t ih = q / g.in_w, iw = q % g.in_w;
                        for (std::int64_t j = 0; j < ph.taps; ++j) {
                            // Output pixel (oh, ow) reads input (oh * stride - pad + kh, ...).
                            const std::int64_t kh = phase_taps[j] / g.kernel_w, kw = phase_taps[j] % g.kernel_w;
                            const std::int64_t nh = ih + g.pad_top - kh, nw = iw + g.pad_left - kw;
                            const std::int64_t oh = nh / g.stride_h, ow = nw / g.stride_w;
                            const bool inside = nh >= 0 && nw >= 0 && oh < OH && ow < OW;
                            offsets.push_back(inside ? static_cast<std::int32_t>((b * P + oh * OW + ow) * O) : zeros);
                        }
                    }
                phases.push_back(ph);
            }
    }

private:
    static std::int64_t residue(std::int64_t v, std::int64_t m) { return ((v % m) + m) % m; }
};

/// The calling thread's plan (its vectors kept from call to call).
inline InputGradientPlan& input_gradient_plan() {
    thread_local InputGradientPlan plan;
    return plan;
}

/// The forward's filters as B: wf[(t * C + c) * O + o] = w[o][c][t], one transpose of w
/// ([O, C*T]) with its rows brought tap-first. Repacked at every call (the weights may have
/// changed), so it must weigh little even for one image.
inline void forward_filters(const ConvShape& s, const float* w, float* wf) {
    const std::int64_t T = s.window.kernel_h * s.window.kernel_w, C = s.in_channels;
    transpose_plane_rows(w, s.out_channels, C * T, wf, [T, C](std::int64_t k) { return (k % T) * C + k / T; });
}

/// The input gradient's filters as B, phase by phase (InputGradientPlan): row (filter_row +
/// j * O + o) of a phase holds w[o][c][its tap j] for c = 0 .. C-1, i.e. tap j's block of
/// forward_filters transposed. `scratch` holds O*K floats.
inline void input_gradient_filters(const ConvShape& s, const InputGradientPlan& plan, const float* w, float* wd,
                                   float* scratch) {
    const std::int64_t C = s.in_channels, O = s.out_channels;
    forward_filters(s, w, scratch);
    for (const InputGradientPlan::Phase& ph : plan.phases)
        for (std::int64_t j = 0; j < ph.taps; ++j) {
            const std::int64_t t = plan.tap[static_cast<std::size_t>(ph.filter_row / O + j)];
            transpose_plane(scratch + t * C * O, C, O, wd + (ph.filter_row + j * O) * C);
        }
}

/// Scratch (floats) one thread needs for the indirect forward of `images` images: their
/// channels-last copies, a run of zeros, and the channels-last product.
inline std::int64_t indirect_forward_scratch(const ConvShape& s, std::int64_t images) {
    const WindowGeometry& g = s.window;
    return images * (g.in_h * g.in_w * s.in_channels + s.pixels() * s.out_channels) + s.in_channels;
}

/// The indirect forward of images n0 .. n0 + count - 1 in its three steps, for callers that
/// split the product's rows among threads (each row is one output pixel's sums, so where the
/// rows are cut changes no bits). `scratch` holds indirect_forward_scratch(s, count_max)
/// floats: the images' channels-last copies, a run of zeros, the channels-last product.
struct IndirectForward {
    const ConvShape& s;      ///< the convolution
    std::int64_t count;      ///< images in this product
    std::int64_t count_max;  ///< images the offsets and the scratch are laid out for
    float* scratch;          ///< indirect_forward_scratch(s, count_max) floats

    std::int64_t rows() const { return count * s.pixels(); }  ///< of the product
    float* images() const { return scratch; }                  ///< the channels-last copies
    /// The run of C zeros the padding's taps read.
    float* zeros() const { return scratch + count_max * s.window.in_h * s.window.in_w * s.in_channels; }
    float* product() const { return zeros() + s.in_channels; }  ///< channels-last, [rows(), O]

    /// The images (`x` points at image n0) channels-last, and the run of zeros; with `parts`,
    /// only part `part` of each image's pixels (cut every 16), so that threads share the work.
    void prepare(const float* x, std::int64_t part = 0, std::int64_t parts = 1) const {
        const std::int64_t C = s.in_channels, HW = s.window.in_h * s.window.in_w;
        const auto [first, last] = share(HW, part, parts);
        for (std::int64_t b = 0; b < count; ++b)
            transpose_plane(x + b * C * HW, C, HW, images() + b * HW * C, first, last);
        if (part == 0) std::fill(zeros(), zeros() + C, 0.0f);
    }
    /// Rows [begin, end) of the product. `wf` holds forward_filters(w), `offsets`
    /// forward_run_offsets for count_max images with zeros at count_max * H*W*C.
    void multiply(const float* wf, const std::int32_t* offsets, std::int64_t begin, std::int64_t end) const {
        const std::int64_t T = s.window.kernel_h * s.window.kernel_w, O = s.out_channels;
        GemmOperands p{end - begin, O, T * s.in_channels, images(), 0, 0, wf, O, product() + begin * O, O};
        p.a_run_offsets = offsets + begin * T;
        p.a_taps = T;
        p.a_run = s.in_channels;
        register_gemm(p, false);
    }
    /// The product back to planes (`y` points at image n0's), with the bias and ReLU; with
    /// `parts`, only part `part` of each image's pixels.
    void finish(const float* bias, bool relu, float* y, std::int64_t part = 0, std::int64_t parts = 1) const {
        const std::int64_t P = s.pixels(), O = s.out_channels;
        const auto [first, last] = share(P, part, parts);
        for (std::int64_t b = 0; b < count; ++b)
            planes_with_bias_relu(product() + b * P * O, P, O, bias, relu, y + b * O * P, first, last);
    }

    /// Rows per block when threads share a product's rows: every tile height (12, 8 or 6 rows)
    /// ends there, so that no tile is cut.
    static constexpr std::int64_t row_block = 24;

    /// Part `part` of `parts` of [0, n), cut where a block of `block` ends (16: whole transpose
    /// blocks; row_block for a product's rows).
    static std::pair<std::int64_t, std::int64_t> share(std::int64_t n, std::int64_t part, std::int64_t parts,
                                                       std::int64_t block = 16) {
        const std::int64_t blocks = (n + block - 1) / block;
        return {std::min(n, blocks * part / parts * block), std::min(n, blocks * (part + 1) / parts * block)};
    }
};

/// y of images n0 .. n0 + count - 1 (`x` and `y` point at image n0) as one indirect product on
/// one thread; arguments as for IndirectForward.
inline void indirect_forward(const ConvShape& s, std::int64_t count, std::int64_t count_max, const float* x,
                             const float* wf, const std::int32_t* offsets, const float* bias, bool relu, float* y,
                             float* scratch) {
    const IndirectForward f{s, count, count_max, scratch};
    f.prepare(x);
    f.multiply(wf, offsets, 0, f.rows());
    f.finish(bias, relu, y);
}

/// dW^T [K, O] += the weight gradient of images n0 .. n0 + count - 1 (`x` points at image n0),
/// from `gT`, their masked output gradients channels-last ([count * P, O]): for each tap t, the
/// C rows (c, t) of dW^T sum x^T[the pixel under tap t of output pixel p, c] * gT[p, o] over the
/// pixels p in order, reading x^T's columns through `offsets` (forward_run_offsets for
/// count_max images, zeros at count_max * H*W*C). The same sums in the same order as im2col's
/// product, whose padded columns hold the same zeros: the same bits. `scratch` holds
/// count_max * H*W*C + C floats: the images' channels-last copies and a run of zeros.
inline void indirect_weight_gradient(const ConvShape& s, std::int64_t count, std::int64_t count_max, const float* x,
                                     const float* gT, const std::int32_t* offsets, float* dwT, float* scratch) {
    const WindowGeometry& g = s.window;
    const std::int64_t C = s.in_channels, O = s.out_channels, HW = g.in_h * g.in_w, T = g.kernel_h * g.kernel_w;
    float* xT = scratch;
    float* zeros = xT + count_max * HW * C;
    for (std::int64_t b = 0; b < count; ++b) transpose_plane(x + b * C * HW, C, HW, xT + b * HW * C);
    std::fill(zeros, zeros + C, 0.0f);
    for (std::int64_t t = 0; t < T; ++t) {  // rows (c, t) of dW^T are T rows apart
        GemmOperands p{C, O, count * s.pixels(), xT, 1, 0, gT, O, dwT + t * O, T * O};
        p.a_column_offsets = offsets + t;
        p.a_column_stride = T;
        register_gemm(p, true);
    }
}

/// dx of images n0 .. n0 + count - 1 (`dx` points at image n0's, overwritten) from `gT`, their
/// masked output gradients channels-last ([count, P, O]), followed by O floats of scratch for
/// the zeros (at count_max * P * O): one product per phase of `plan` (built for count_max
/// images), its rows scattered back to the phase's pixels. `wd` holds input_gradient_filters,
/// `product` count * H*W*C floats.
inline void indirect_input_gradient(const ConvShape& s, const InputGradientPlan& plan, std::int64_t count,
                                    std::int64_t count_max, float* gT, const float* wd, float* dx, float* product) {
    const WindowGeometry& g = s.window;
    const std::int64_t C = s.in_channels, O = s.out_channels, HW = g.in_h * g.in_w;
    float* zeros = gT + count_max * s.pixels() * O;
    std::fill(zeros, zeros + O, 0.0f);
    for (const InputGradientPlan::Phase& ph : plan.phases) {
        const std::int32_t* pixel = plan.pixel.data() + ph.first_pixel;
        if (ph.taps > 0) {
            GemmOperands p{count * ph.pixels, C, ph.taps * O, gT, 0, 0, wd + ph.filter_row * C, C, product, C};
            p.a_run_offsets = plan.offsets.data() + ph.first_offset;
            p.a_taps = ph.taps;
            p.a_run = O;
            register_gemm(p, false);
        }
        if (g.stride_h == 1 && g.stride_w == 1) {  // one phase, the pixels in order: a plain transpose
            for (std::int64_t b = 0; b < count; ++b) transpose_plane(product + b * HW * C, HW, C, dx + b * C * HW);
            continue;
        }
        constexpr std::int64_t block = 16;  // rows of the product per pass over the channels
        for (std::int64_t b = 0; b < count; ++b) {
            float* dxb = dx + b * C * HW;
            const float* rows = product + b * ph.pixels * C;
            for (std::int64_t r0 = 0; r0 < ph.pixels; r0 += block) {
                const std::int64_t r1 = std::min(ph.pixels, r0 + block);
                for (std::int64_t c = 0; c < C; ++c)
                    for (std::int64_t r = r0; r < r1; ++r)  // no tap reaches the pixel: its gradient is zero
                        dxb[c * HW + pixel[r]] = ph.taps > 0 ? rows[r * C + c] : 0.0f;
            }
        }
    }
}

}  // namespace cnnlite::kernels
