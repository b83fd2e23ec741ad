// Batched 2-D convolution kernels (NCHW, weights [O, C, kh, kw]): forward with fused bias and
// ReLU, and backward for the weight, bias and input gradients. Each image is unfolded with
// im2col and multiplied by the weights; images are spread over OpenMP threads, so the per-image
// products run single-threaded inside the parallel region (Eigen does not nest threads there).
// Inner loops carry `omp simd` so that they vectorise (reductions included) at -O2 too; the
// vectorised summation order is fixed by the build, so results stay reproducible.
// When C*kh*kw is tiny (the paper's first layer: 1*2*2 = 4) a GEMM library wastes its time
// packing, so a direct loop over output rows, vectorised along the pixels, does the product.
// In float, where the build targets AVX-512 or AVX2, the three products of the plain path run on
// register_gemm.hpp's register-blocked kernel instead of Eigen (1.5-1.7x Eigen's rate at
// ResNet-8's shapes; the convolutions as a whole 1.2-1.5x), with up to four small images per
// product; double and other targets keep Eigen, and the tests compare the two. Float
// convolutions do without im2col where measurements favoured it: stride-1 convolutions with
// outputs at least in_place_min_width wide and fewer than indirect_min_run channels read a
// zero-padded copy of each image in place (kernels/implicit_conv.hpp); the others run all three
// passes as indirect products over channels-last copies (kernels/indirect_conv.hpp).
// Depthwise convolutions, whose products would have one row, run direct loops over the planes
// instead (kernels/depthwise_conv.hpp); other grouped or dilated shapes unfold group by group.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cnnlite/core/error.hpp"
#include "cnnlite/kernels/activation.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/depthwise_conv.hpp"
#include "cnnlite/kernels/finite.hpp"
#include "cnnlite/kernels/im2col.hpp"
#include "cnnlite/kernels/implicit_conv.hpp"
#include "cnnlite/kernels/indirect_conv.hpp"
#include "cnnlite/kernels/parallel.hpp"
#include "cnnlite/kernels/register_gemm.hpp"
#include "cnnlite/kernels/winograd_planes.hpp"

namespace cnnlite::kernels {

namespace detail {

template <class T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Whether the plain path's products run on register_gemm (float on AVX-512 or AVX2 builds).
template <class T>
constexpr bool uses_register_gemm = std::is_same_v<T, float> && register_gemm_available;

/// pb[o] += the sum of row o of g (P values; rows `ld` apart, 0: P): the bias gradient.
template <class T>
void add_channel_sums(const T* g, std::int64_t O, std::int64_t P, T* pb, std::int64_t ld = 0) {
    if (ld == 0) ld = P;
    for (std::int64_t o = 0; o < O; ++o) {
        const T* go = g + o * ld;
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (std::int64_t p = 0; p < P; ++p) sum += go[p];
        pb[o] += sum;
    }
}

/// One output row y[p] = b + sum_k w[k] col[k][p] in a single pass, K known at compile time so
/// that the sum over k unrolls and the loop over p vectorises. The unroll is asked for: GCC
/// unrolls it by itself at -O3 only, and at -O2 (CMake's RelWithDebInfo, Meson's default) left
/// the loop over p scalar, 4x slower and without fused multiply-adds. Aligned to a cache line
/// because its speed (a third of the paper network's step) varied by 10% with where unrelated
/// code changes happened to place it.
template <int K, class T>
#if defined(__GNUC__)
__attribute__((aligned(64)))
#endif
void small_patch_row(const T* w, T b, const T* col, std::int64_t pixels, T* row) {
#pragma omp simd
    for (std::int64_t p = 0; p < pixels; ++p) {
        T acc = b;
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) acc += w[k] * col[k * pixels + p];
        row[p] = acc;
    }
}

/// y[O, P] = w[O, K] * col[K, P] (+ bias) for K <= direct_conv_max_patch, row by row.
template <class T>
void small_patch_product(const T* w, const T* bias, const T* col, std::int64_t out_channels, std::int64_t patch,
                         std::int64_t pixels, T* y) {
    using RowFn = void (*)(const T*, T, const T*, std::int64_t, T*);
    static constexpr RowFn rows[] = {nullptr,
                                     &small_patch_row<1, T>,  &small_patch_row<2, T>,  &small_patch_row<3, T>,
                                     &small_patch_row<4, T>,  &small_patch_row<5, T>,  &small_patch_row<6, T>,
                                     &small_patch_row<7, T>,  &small_patch_row<8, T>,  &small_patch_row<9, T>,
                                     &small_patch_row<10, T>, &small_patch_row<11, T>, &small_patch_row<12, T>,
                                     &small_patch_row<13, T>, &small_patch_row<14, T>, &small_patch_row<15, T>,
                                     &small_patch_row<16, T>};
    const RowFn row_fn = rows[patch];
    for (std::int64_t o = 0; o < out_channels; ++o)
        row_fn(w + o * patch, bias ? bias[o] : T(0), col, pixels, y + o * pixels);
}

/// dxn (one image's part of dx) overwritten with the fold of its dcol, whose rows are `ld`
/// apart (0: P). dcol is scratch: the full-width fold zeroes some of it.
template <class T>
void fold_image_gradient(const ConvShape& s, T* dcol, T* dxn, std::int64_t ld = 0) {
    std::fill(dxn, dxn + s.in_channels * s.window.in_h * s.window.in_w, T(0));
    if (stride1_full_width(s.window))
        col2im_add_stride1_full_width(dcol, s.in_channels, s.window, dxn, ld);
    else
        col2im_add(dcol, s.in_channels, s.window, dxn, ld);
}

/// The input gradient of one image: dcol = w^T g, computed into the image's im2col buffer
/// `col` (reused), then folded back into `dxn` (the image's part of dx, overwritten).
template <class T>
void image_gradient(const ConvShape& s, const T* w, const T* g, T* col, T* dxn) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    Eigen::Map<RowMajor<T>>(col, K, P).noalias() =
        Eigen::Map<const RowMajor<T>>(w, O, K).transpose() * Eigen::Map<const RowMajor<T>>(g, O, P);
    fold_image_gradient(s, col, dxn);
}

/// conv2d_forward for dilated or grouped convolutions: per image and group, a dilated im2col
/// of the group's channels times the group's [O/groups, K] block of weights.
template <class T>
void conv2d_forward_general(const ConvShape& s, const T* x, const T* w, const T* bias, bool relu, T* y, T* workspace) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels, G = s.groups;
    const std::int64_t Cg = s.in_channels / G, Og = O / G, plane = s.window.in_h * s.window.in_w;
    const std::int64_t per_thread = K * P + O * P;
#pragma omp parallel for schedule(static) if (s.batch * O * P * K >= parallel_threshold)
    for (std::int64_t n = 0; n < s.batch; ++n) {
        T* col = workspace + thread_index() * per_thread;
        for (std::int64_t gi = 0; gi < G; ++gi) {
            im2col_dilated(x + (n * s.in_channels + gi * Cg) * plane, Cg, s.window, s.dilation_h, s.dilation_w, s.out_h(),
                           s.out_w(), col);
            Eigen::Map<RowMajor<T>> out(y + (n * O + gi * Og) * P, Og, P);
            out.noalias() = Eigen::Map<const RowMajor<T>>(w + gi * Og * K, Og, K) * Eigen::Map<const RowMajor<T>>(col, K, P);
            if (bias) out.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(bias + gi * Og, Og);
        }
        if (relu) {
            T* yn = y + n * O * P;
            for (std::int64_t i = 0; i < O * P; ++i) yn[i] = yn[i] <= T(0) ? T(0) : yn[i];  // NaN stays NaN
        }
    }
}

/// conv2d_backward for dilated or grouped convolutions (same contract).
template <class T>
void conv2d_backward_general(const ConvShape& s, const T* x, const T* w, const T* y, const T* dy, bool relu, T* dw,
                             T* db, T* dx, T* workspace) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels, G = s.groups;
    const std::int64_t Cg = s.in_channels / G, Og = O / G, plane = s.window.in_h * s.window.in_w;
    const std::int64_t per_thread = K * P + O * P;
    T* partial = workspace + num_threads() * per_thread;
    // One image of the slice: its masked gradient, bias and weight partials, and input gradient.
    const auto image = [&](std::int64_t n, T* col, T* pw) {
        T* g = col + K * P;
        T* pb = pw + O * K;
        const T* dyn = dy + n * O * P;
        const T* yn = y + n * O * P;
        for (std::int64_t i = 0; i < O * P; ++i) g[i] = !relu || yn[i] > T(0) ? dyn[i] : T(0);
        for (std::int64_t o = 0; o < O; ++o)
            for (std::int64_t p = 0; p < P; ++p) pb[o] += g[o * P + p];
        if (dx) std::fill(dx + n * s.in_channels * plane, dx + (n + 1) * s.in_channels * plane, T(0));
        for (std::int64_t gi = 0; gi < G; ++gi) {
            const T* xg = x + (n * s.in_channels + gi * Cg) * plane;
            Eigen::Map<const RowMajor<T>> gg(g + gi * Og * P, Og, P);
            if (dw) {
                im2col_dilated(xg, Cg, s.window, s.dilation_h, s.dilation_w, s.out_h(), s.out_w(), col);
                Eigen::Map<RowMajor<T>>(pw + gi * Og * K, Og, K).noalias() +=
                    gg * Eigen::Map<const RowMajor<T>>(col, K, P).transpose();
            }
            if (dx) {
                Eigen::Map<RowMajor<T>>(col, K, P).noalias() =
                    Eigen::Map<const RowMajor<T>>(w + gi * Og * K, Og, K).transpose() * gg;
                col2im_dilated_add(col, Cg, s.window, s.dilation_h, s.dilation_w, s.out_h(), s.out_w(),
                                   dx + (n * s.in_channels + gi * Cg) * plane);
            }
        }
    };
    const std::int64_t slices = accumulate_in_slices(s.batch, s.batch * O * P * K >= parallel_threshold, workspace,
                                                     per_thread, partial, O * (K + 1), image);
    sum_slice_partials(partial, slices, O, K, dw, db);
}

/// How many images one register_gemm product takes side by side (float on AVX-512/AVX2 builds;
/// 1 elsewhere). A product's columns are its images' pixels, and a 7x7 map's 49 pixels fill four
/// 16-wide vectors of which the last holds one: four images (196 columns, 12.25 vectors) waste
/// 6% instead of 23%. At most four (indirect_max_images), with the im2col matrix within 1 MiB
/// (a core's L2), and few enough that the batch still fills max_reduction_slices products (the count must not depend on
/// the thread count: the weight gradient sums each product's images in one go); one for maps of
/// 256 pixels or more, which waste at most 6% alone and whose rows stay in L1 for the short
/// products of a few taps.
template <class T>
std::int64_t images_per_product(const ConvShape& s) {
    if constexpr (!uses_register_gemm<T>) {
        return 1;
    } else {
        if (s.pixels() >= 256) return 1;
        constexpr std::int64_t l2_floats = std::int64_t(1) << 18;
        const std::int64_t by_cache = l2_floats / std::max<std::int64_t>(1, s.patch() * s.pixels());
        const std::int64_t share = (s.batch + max_reduction_slices - 1) / max_reduction_slices;
        return std::max<std::int64_t>(1, std::min({indirect_max_images, by_cache, share}));
    }
}

/// Columns per image of the unfold path's buffer: its im2col matrix, or the channels-last input
/// gradient of an indirect product (kernels/indirect_conv.hpp), whichever is larger.
template <class T>
std::int64_t unfold_columns(const ConvShape& s) {
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const bool indirect = input_gradient_indirect<T>(s) || weight_gradient_indirect<T>(s);
    return indirect ? std::max(s.patch() * s.pixels(), in_size) : s.patch() * s.pixels();
}

/// The unfold path's first buffer: the columns of a product's images, and after them a run of
/// zeros where they hold the indirect weight gradient's channels-last images.
template <class T>
std::int64_t column_space(const ConvShape& s) {
    return images_per_product<T>(s) * unfold_columns<T>(s) + (weight_gradient_indirect<T>(s) ? s.in_channels : 0);
}

/// Per-thread workspace: for each image of a product, its im2col columns and two gradient
/// buffers (the gradient and its transpose; the forward's product before it is copied out),
/// then a run of zeros for an indirect input gradient. Where the shape reads its images in
/// place, the larger of that path's scratch (one image per product: the forward's, or the
/// gradient, its transpose and the backward's) and the unfold path's, whose columns an unfolded
/// input gradient (a weight not finite) uses; where its forward is indirect, that one's too.
template <class T>
std::int64_t conv2d_direct_per_thread(const ConvShape& s) {
    const std::int64_t B = images_per_product<T>(s), O = s.out_channels, P = s.pixels();
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t zeros = input_gradient_indirect<T>(s) ? O : 0;  // after g^T, for the indirect input gradient
    std::int64_t size = column_space<T>(s) + 2 * B * O * P + zeros;
    if (forward_indirect<T>(s)) size = std::max(size, indirect_forward_scratch(s, B));
    if (!runs_in_place<T>(s)) return size;
    const std::int64_t backward = std::max(in_place_backward_scratch(s), zeros > 0 ? zeros + in_size : 0);
    return std::max({size, in_place_forward_scratch(s), 2 * O * P + backward});
}

/// Per-thread workspace of the passes that run by Winograd's transforms (0: none does).
template <class T>
std::int64_t winograd_per_thread(const ConvShape& s) {
    std::int64_t size = 0;
    if (const std::int64_t tile = forward_winograd_tile<T>(s)) size = planes_winograd_per_thread(s, tile);
    if (const std::int64_t tile = input_gradient_winograd_tile<T>(s))
        size = std::max(size, planes_winograd_per_thread(input_gradient_conv_shape(s), tile));
    if (const std::int64_t tile = weight_gradient_winograd_tile<T>(s))
        size = std::max(size, planes_winograd_weight_gradient_per_thread(s, tile));
    return size;
}

/// Per-thread workspace: the direct passes' (conv2d_direct_per_thread), or Winograd's if larger.
template <class T>
std::int64_t conv2d_per_thread(const ConvShape& s) {
    if (depthwise_conv(s)) return depthwise_conv_per_thread(s);
    return std::max(conv2d_direct_per_thread<T>(s), winograd_per_thread<T>(s));
}

/// Shared floats of the filters rearranged for one pass: the flipped or indirect filters
/// (2 * O*K), or Winograd's (planes_winograd_filter_floats; the weight gradient's sums and
/// blocks) if larger.
template <class T>
std::int64_t rearranged_filter_floats(const ConvShape& s) {
    if constexpr (!uses_register_gemm<T>) {
        (void)s;
        return 0;
    } else {
        std::int64_t size = 2 * s.out_channels * s.patch();
        for (const std::int64_t tile : {forward_winograd_tile<T>(s), input_gradient_winograd_tile<T>(s)})
            if (tile) size = std::max(size, planes_winograd_filter_floats(s, tile));
        if (const std::int64_t tile = weight_gradient_winograd_tile<T>(s))
            size = std::max(size, planes_winograd_weight_gradient_shared(s, tile));
        return size;
    }
}

}  // namespace detail

/// Workspace (in elements of T) that conv2d_forward/backward need: per thread the buffers of
/// detail::conv2d_per_thread, then the slices' partial sums of the weight and bias gradients,
/// then (float on register_gemm) the filters rearranged for one pass (flipped for the in-place
/// input gradient, as the indirect products' B, or transformed for Winograd's) and the scratch
/// that rearranging takes.
template <class T = float>
std::int64_t conv2d_workspace_size(const ConvShape& s) {
    return static_cast<std::int64_t>(num_threads()) * detail::conv2d_per_thread<T>(s) +
           max_reduction_slices * s.out_channels * (s.patch() + 1) + detail::rearranged_filter_floats<T>(s);
}

namespace detail {

/// The register path's sizes: a batch in products of up to B images, each thread with
/// `per_thread` elements of workspace.
struct ImageProducts {
    std::int64_t K, P, O, in_size, B, per_thread, products;
    std::int64_t columns;  ///< per image in the unfold path's buffer (unfold_columns)
    std::int64_t column_floats;  ///< the whole of that buffer (column_space)
    /// `in_place`: one image per product, read in place.
    ImageProducts(const ConvShape& s, bool in_place)
        : K(s.patch()), P(s.pixels()), O(s.out_channels), in_size(s.in_channels * s.window.in_h * s.window.in_w),
          B(in_place ? 1 : images_per_product<float>(s)), per_thread(conv2d_per_thread<float>(s)),
          products((s.batch + B - 1) / B), columns(unfold_columns<float>(s)), column_floats(column_space<float>(s)) {}
    /// Where the filters rearranged for one pass start, O*K floats and O*K of scratch after them
    /// (conv2d_workspace_size).
    float* filters(float* workspace) const {
        return workspace + num_threads() * per_thread + max_reduction_slices * O * (K + 1);
    }
};

/// conv2d_forward as indirect products of `B` images (kernels/indirect_conv.hpp). `packed`:
/// forward_filters(s, w) prepared by the caller, or null to form it here.
inline void conv2d_forward_indirect(const ConvShape& s, const float* x, const float* w, const float* bias, bool relu,
                                    float* y, float* workspace, const float* packed) {
    const ImageProducts plan(s, false);
    const std::int64_t K = plan.K, P = plan.P, O = plan.O, B = plan.B, in_size = plan.in_size;
    const float* wf = packed;
    if (wf == nullptr) {
        float* formed = plan.filters(workspace);
        forward_filters(s, w, formed);
        wf = formed;
    }
    const std::int32_t* offsets = cached_forward_run_offsets(s, B);
    const bool parallel = s.batch * O * P * K >= parallel_threshold;
    if (parallel && plan.products < num_threads()) {
        // Fewer products than threads (one image): the threads share each product's rows, cut
        // where every tile height (12, 8 or 6 rows) ends, and the transposes before and after
        // it, cut by pixels; the same bits as one thread.
        const std::int64_t parts = num_threads();
#pragma omp parallel
        for (std::int64_t q = 0; q < plan.products; ++q) {
            const std::int64_t n0 = q * B;
            const IndirectForward f{s, std::min(B, s.batch - n0), B, workspace};
#pragma omp for schedule(static)
            for (std::int64_t part = 0; part < parts; ++part) f.prepare(x + n0 * in_size, part, parts);
#pragma omp for schedule(static)
            for (std::int64_t part = 0; part < parts; ++part) {
                const auto [begin, end] = IndirectForward::share(f.rows(), part, parts, IndirectForward::row_block);
                f.multiply(wf, offsets, begin, end);
            }
#pragma omp for schedule(static)
            for (std::int64_t part = 0; part < parts; ++part) f.finish(bias, relu, y + n0 * O * P, part, parts);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t q = 0; q < plan.products; ++q) {
        const std::int64_t n0 = q * B, count = std::min(B, s.batch - n0);
        indirect_forward(s, count, B, x + n0 * in_size, wf, offsets, bias, relu, y + n0 * O * P,
                         workspace + thread_index() * plan.per_thread);
    }
}

/// conv2d_forward on register_gemm, `B` images per product: their im2col matrices side by side
/// ([K, B*P]), one product, then each image's rows copied out with the bias and ReLU (in place
/// when the product was written into y).
inline void conv2d_forward_register(const ConvShape& s, const float* x, const float* w, const float* bias, bool relu,
                                    float* y, float* workspace, const float* packed) {
    if (const std::int64_t tile = forward_winograd_tile<float>(s)) {
        PlanesWinogradFilters f;
        if (prepare_planes_winograd_forward(s, tile, w, bias, ImageProducts(s, false).filters(workspace), f))
            return planes_winograd(s, tile, x, nullptr, f, relu, y, workspace);
    }
    if (forward_indirect<float>(s)) return conv2d_forward_indirect(s, x, w, bias, relu, y, workspace, packed);
    const bool in_place = runs_in_place<float>(s);
    const ImageProducts plan(s, in_place);
    const std::int64_t K = plan.K, P = plan.P, O = plan.O, B = plan.B, in_size = plan.in_size;
#pragma omp parallel for schedule(static) if (s.batch * O * P * K >= parallel_threshold)
    for (std::int64_t q = 0; q < plan.products; ++q) {
        if (in_place) {
            in_place_forward(s, x + q * in_size, w, bias, relu, y + q * O * P, workspace + thread_index() * plan.per_thread);
            continue;
        }
        const std::int64_t n0 = q * B, count = std::min(B, s.batch - n0), N = count * P;
        float* col = workspace + thread_index() * plan.per_thread;
        float* out = col + plan.column_floats;
        for (std::int64_t b = 0; b < count; ++b) im2col(x + (n0 + b) * in_size, s.in_channels, s.window, col + b * P, N);
        float* product = count == 1 ? y + n0 * O * P : out;
        register_gemm({O, N, K, w, K, 1, col, N, product, N}, false);
        if (count == 1 && !bias && !relu) continue;  // the product is the output already
        for (std::int64_t b = 0; b < count; ++b)  // image b: its P columns of each of the O rows
            copy_with_bias_relu(product + b * P, O, N, P, 1, P, bias, relu, y + (n0 + b) * O * P);
    }
}

/// How the register path's backward reaches its images besides unfolding them (all null).
/// dx: `flipped` holds flip_filters of w for the in-place input gradient, or `indirect`
/// input_gradient_filters of w for `plan`, built for a product's images. dW: `weight_offsets`
/// holds forward_run_offsets for a product's images (kernels/indirect_conv.hpp).
struct BackwardPaths {
    const float* flipped = nullptr;
    const float* indirect = nullptr;
    const InputGradientPlan* plan = nullptr;
    const std::int32_t* weight_offsets = nullptr;
};

/// conv2d_backward on register_gemm, `B` images per product: the masked gradients side by side
/// ([O, B*P]) and their im2col matrices, dW^T [K, O] += col g^T (when `weights`), and dcol = W^T g
/// folded back image by image, or the indirect input gradient (when dx is not null). `partial`
/// as in conv2d_backward, one per slice of products (reduction_slices(products)), the weight part
/// transposed, the bias part only when `bias`; returns the slice count. With `in_place`, one
/// image per product read in place instead (kernels/implicit_conv.hpp); then dx must be null or
/// `paths` name the flipped or the indirect filters.
inline std::int64_t conv2d_backward_register(const ConvShape& s, const float* x, const float* w, const float* y,
                                             const float* dy, bool relu, bool weights, bool bias, float* dx,
                                             float* workspace, float* partial, bool in_place,
                                             const BackwardPaths& paths) {
    const ImageProducts plan(s, in_place);
    const std::int64_t K = plan.K, P = plan.P, O = plan.O, B = plan.B, in_size = plan.in_size;
    // Image n read in place: its masked gradient g, then g^T for the weight gradient's product
    // and the indirect input gradient.
    const auto image = [&](std::int64_t n, float* g, float* pw) {
        float* gT = g + O * P;
        float* rest = gT + O * P;
        masked_gradient(dy + n * O * P, relu ? y + n * O * P : nullptr, O, P, g);
        if (bias) add_channel_sums(g, O, P, pw + O * K);
        if (weights || paths.indirect) transpose_plane(g, O, P, gT);
        if (weights) in_place_weight_gradient(s, x + n * in_size, gT, pw, rest);
        if (dx && paths.indirect)
            indirect_input_gradient(s, *paths.plan, 1, 1, gT, paths.indirect, dx + n * in_size, rest + O);
        else if (dx)
            in_place_input_gradient(s, g, paths.flipped, dx + n * in_size, rest);
    };
    // Product q: images q*B.. of the batch, its partial sums into pw.
    const auto product = [&](std::int64_t q, float* col, float* pw) {
        if (in_place) return image(q, col, pw);
        const std::int64_t n0 = q * B, count = std::min(B, s.batch - n0), N = count * P;
        float* g = col + plan.column_floats;
        float* gT = g + B * O * P;
        for (std::int64_t b = 0; b < count; ++b) {
            const std::int64_t n = n0 + b;
            masked_gradient(dy + n * O * P, relu ? y + n * O * P : nullptr, O, P, g + b * P, N);
            if (bias) add_channel_sums(g + b * P, O, P, pw + O * K, N);
            if (weights && !paths.weight_offsets) im2col(x + n * in_size, s.in_channels, s.window, col + b * P, N);
        }
        const bool small_patch = K <= direct_conv_max_patch;
        if ((weights && !small_patch) || (dx && paths.indirect)) transpose_plane(g, O, N, gT);
        if (weights && paths.weight_offsets) {
            indirect_weight_gradient(s, count, B, x + n0 * in_size, gT, paths.weight_offsets, pw, col);
        } else if (weights && small_patch) {
            // A few taps (the stem's 9): K*O dot products over the pixels beat transposing g.
            // Four taps per pass: four independent sums keep the FMA units busy.
            for (std::int64_t o = 0; o < O; ++o) {  // one gradient row against the few col rows, in L1
                const float* go = g + o * N;
                for (std::int64_t k = 0; k < K; k += 4) {
                    const float* c0 = col + k * N;
                    const float* c1 = col + std::min(k + 1, K - 1) * N;
                    const float* c2 = col + std::min(k + 2, K - 1) * N;
                    const float* c3 = col + std::min(k + 3, K - 1) * N;
                    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
                    for (std::int64_t p = 0; p < N; ++p) {
                        s0 += go[p] * c0[p];
                        s1 += go[p] * c1[p];
                        s2 += go[p] * c2[p];
                        s3 += go[p] * c3[p];
                    }
                    const float sums[4] = {s0, s1, s2, s3};
                    for (std::int64_t j = 0; j < 4 && k + j < K; ++j) pw[(k + j) * O + o] += sums[j];
                }
            }
        } else if (weights) {
            register_gemm({K, O, N, col, N, 1, gT, O, pw, O}, true);  // dW^T [K, O] += col g^T
        }
        if (!dx) return;
        if (paths.indirect) {  // the columns are free again: they take the channels-last dx
            indirect_input_gradient(s, *paths.plan, count, B, gT, paths.indirect, dx + n0 * in_size, col);
            return;
        }
        register_gemm({K, N, O, w, 1, K, g, N, col, N}, false);  // dcol = W^T g; A(k, o) = w[o * K + k]
        for (std::int64_t b = 0; b < count; ++b) fold_image_gradient(s, col + b * P, dx + (n0 + b) * in_size, N);
    };
    return accumulate_in_slices(plan.products, s.batch * O * P * K >= parallel_threshold, workspace, plan.per_thread,
                                partial, O * (K + 1), product);
}

}  // namespace detail

/// Whether conv2d_forward can take its filters prepared once by pack_conv2d_filters (float
/// convolutions on the register-blocked product whose patch exceeds direct_conv_max_patch),
/// for callers whose weights stay fixed over many calls, such as InferenceModel.
template <class T>
bool conv2d_filters_packable(const ConvShape& s) {
    return detail::uses_register_gemm<T> && s.plain() && s.patch() > direct_conv_max_patch;
}

/// The filters `w` [O, C, kh, kw] as conv2d_forward's indirect products read them, O*K
/// elements into `packed` (for a shape that conv2d_filters_packable accepts). They depend on
/// the channels and the kernel only, not on the image size.
template <class T>
void pack_conv2d_filters(const ConvShape& s, const T* w, T* packed) {
    if constexpr (std::is_same_v<T, float>) forward_filters(s, w, packed);
    else fail("pack_conv2d_filters: only float filters are packed");
}

/// y = act(conv(x, w) + b). `bias` may be null. Depthwise shapes run kernels/depthwise_conv.hpp,
/// other dilated or grouped shapes a path of their own. `workspace` holds
/// conv2d_workspace_size(s) elements.
/// `packed`, when not null, holds pack_conv2d_filters(s, w) (only for a shape that
/// conv2d_filters_packable accepts): the same bits, without forming them at every call.
template <class T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* bias, bool relu, T* y, T* workspace,
                    const T* packed = nullptr) {
    if (depthwise_conv(s)) return depthwise_conv_forward(s, x, w, bias, relu, y, workspace, detail::conv2d_per_thread<T>(s));
    if (!s.plain()) return detail::conv2d_forward_general(s, x, w, bias, relu, y, workspace);
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t per_thread = detail::conv2d_per_thread<T>(s);
    if constexpr (detail::uses_register_gemm<T>) {
        if (K > direct_conv_max_patch)
            return detail::conv2d_forward_register(s, x, w, bias, relu, y, workspace, packed);
    }
#pragma omp parallel for schedule(static) if (s.batch * O * P * K >= parallel_threshold)
    for (std::int64_t n = 0; n < s.batch; ++n) {
        T* col = workspace + thread_index() * per_thread;
        T* yn = y + n * O * P;
        im2col(x + n * in_size, s.in_channels, s.window, col);
        if (K <= direct_conv_max_patch) {
            detail::small_patch_product(w, bias, col, O, K, P, yn);
        } else {
            Eigen::Map<detail::RowMajor<T>> out(yn, O, P);
            out.noalias() = Eigen::Map<const detail::RowMajor<T>>(w, O, K) * Eigen::Map<const detail::RowMajor<T>>(col, K, P);
            if (bias) out.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(bias, O);
        }
        if (relu) {
#pragma omp simd
            for (std::int64_t i = 0; i < O * P; ++i) yn[i] = yn[i] <= T(0) ? T(0) : yn[i];  // NaN stays NaN
        }
    }
}

/// Gradients of conv2d_forward. `y` is the forward output (used for the ReLU mask when `relu`).
/// dw [O, K], db [O] and dx are overwritten; each may be null (not needed: a frozen layer's
/// weights, no bias, the network's input), and `x` is only read for dw.
/// dw and db are sums over fixed slices of the batch added in slice order (kernels/parallel.hpp:
/// reduction_slices), so like y and dx they are the same bits for any thread count.
template <class T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* y, const T* dy, bool relu, T* dw, T* db,
                     T* dx, T* workspace) {
    if (depthwise_conv(s))
        return depthwise_conv_backward(s, x, w, y, dy, relu, dw, db, dx, workspace, detail::conv2d_per_thread<T>(s));
    if (!s.plain()) return detail::conv2d_backward_general(s, x, w, y, dy, relu, dw, db, dx, workspace);
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t per_thread = detail::conv2d_per_thread<T>(s);
    // Partial weight/bias gradients per slice, [slices][O*K + O], after the buffers; with
    // register_gemm the weight part is dW^T [K, O], the product whose rows are contiguous.
    T* partial = workspace + num_threads() * per_thread;
    if constexpr (detail::uses_register_gemm<T>) {
        // The input gradient by Winograd's transforms, where they apply, in a pass of its own.
        if (const std::int64_t tile = input_gradient_winograd_tile<T>(s); dx && tile) {
            PlanesWinogradFilters f;
            if (prepare_planes_winograd_input_gradient(s, tile, w, detail::ImageProducts(s, false).filters(workspace), f)) {
                planes_winograd(input_gradient_conv_shape(s), tile, dy, relu ? y : nullptr, f, false, dx, workspace);
                dx = nullptr;
                if (!dw && !db) return;
            }
        }
        // And the weight gradient, unless an image or its gradient holds a non-finite value.
        if (const std::int64_t tile = weight_gradient_winograd_tile<T>(s); dw && tile) {
            float* shared = detail::ImageProducts(s, false).filters(workspace);
            if (planes_winograd_weight_gradient(s, tile, x, dy, relu ? y : nullptr, dw, shared, workspace)) {
                dw = nullptr;
                if (!dx && !db) return;
            }
        }
        // The weight gradient runs in place or as indirect products by the shape alone, so that
        // asking for fewer gradients never changes the others' bits. The input gradient as an
        // indirect product or read in place needs finite weights (indirect_conv.hpp,
        // implicit_conv.hpp); otherwise it is unfolded: by the unfold path itself, or in a pass
        // of its own before the weight gradient read in place.
        const bool dw_indirect = weight_gradient_indirect<T>(s);
        const bool in_place = runs_in_place<T>(s) && !dw_indirect;
        const bool finite = dx && all_finite(w, O * K);
        const detail::ImageProducts plan(s, in_place);
        detail::BackwardPaths paths;
        if (dw && dw_indirect) {
            const std::int32_t* offsets = detail::cached_forward_run_offsets(s, plan.B);
            paths.weight_offsets = offsets;
        }
        if (finite && input_gradient_indirect<T>(s)) {
            InputGradientPlan& phases = input_gradient_plan();
            phases.build(s, plan.B, static_cast<std::int32_t>(plan.B * P * O));
            float* wd = plan.filters(workspace);
            input_gradient_filters(s, phases, w, wd, wd + O * K);
            paths.indirect = wd;
            paths.plan = &phases;
        } else if (finite && in_place && input_gradient_in_place(s)) {
            float* flipped = plan.filters(workspace);
            flip_filters(s, w, flipped);
            paths.flipped = flipped;
        }
        float* dx_unfolded = in_place && dx && !paths.flipped && !paths.indirect ? dx : nullptr;
        if (dx_unfolded)
            detail::conv2d_backward_register(s, x, w, y, dy, relu, false, false, dx_unfolded, workspace, partial, false,
                                             {});
        std::int64_t slices = 1;
        if (!dx_unfolded || dw || db)
            slices = detail::conv2d_backward_register(s, x, w, y, dy, relu, dw != nullptr, db != nullptr,
                                                      dx_unfolded ? nullptr : dx, workspace, partial, in_place, paths);
        detail::sum_slice_partials(partial, slices, O, K, dw, db, true);
        return;
    }

    // One image: its masked gradient, bias and weight partials (into pw), and input gradient.
    const auto image = [&](std::int64_t n, T* col, T* pw) {
        T* g = col + K * P;
        T* pb = pw + O * K;
        detail::masked_gradient(dy + n * O * P, relu ? y + n * O * P : nullptr, O, P, g);
        detail::add_channel_sums(g, O, P, pb);
        if (dw) {
            im2col(x + n * in_size, s.in_channels, s.window, col);
            if (K <= direct_conv_max_patch) {
                for (std::int64_t o = 0; o < O; ++o)
                    for (std::int64_t k = 0; k < K; ++k) {
                        const T* go = g + o * P;
                        const T* ck = col + k * P;
                        T sum = 0;
#pragma omp simd reduction(+ : sum)
                        for (std::int64_t p = 0; p < P; ++p) sum += go[p] * ck[p];
                        pw[o * K + k] += sum;
                    }
            } else {
                Eigen::Map<detail::RowMajor<T>>(pw, O, K).noalias() +=
                    Eigen::Map<const detail::RowMajor<T>>(g, O, P) * Eigen::Map<const detail::RowMajor<T>>(col, K, P).transpose();
            }
        }
        if (dx) detail::image_gradient(s, w, g, col, dx + n * in_size);
    };
    const std::int64_t slices = detail::accumulate_in_slices(s.batch, s.batch * O * P * K >= parallel_threshold,
                                                             workspace, per_thread, partial, O * (K + 1), image);
    detail::sum_slice_partials(partial, slices, O, K, dw, db);
}

}  // namespace cnnlite::kernels
