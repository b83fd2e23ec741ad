// Batched 2-D convolution kernels (NCHW, weights [O, C, kh, kw]): forward with fused bias and
// ReLU, and backward for the weight, bias and input gradients. Each image is unfolded with
// im2col and multiplied by the weights; images are spread over OpenMP threads, so the per-image
// products run single-threaded inside the parallel region (Eigen does not nest threads there).
// Inner loops carry `omp simd` so that they vectorise (reductions included) at -O2 too; the
// vectorised summation order is fixed by the build, so results stay reproducible.
// When C*kh*kw is tiny (the paper's first layer: 1*2*2 = 4) a GEMM library wastes its time
// packing, so a direct loop over output rows, vectorised along the pixels, does the product.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/im2col.hpp"
#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

/// Dimensions of one batched convolution.
struct ConvShape {
    std::int64_t batch = 0;  ///< Images in the batch (N).
    std::int64_t in_channels = 0;  ///< Input channels (C).
    std::int64_t out_channels = 0;  ///< Output channels, the number of filters (O).

    /// Window (undilated kernel size), padding and stride over one input plane.
    WindowGeometry window;
    std::int64_t dilation_h = 1;  ///< Vertical spacing of the kernel's taps.
    std::int64_t dilation_w = 1;  ///< Horizontal spacing of the kernel's taps.
    std::int64_t groups = 1;      ///< Channel groups; each output channel sees in_channels / groups inputs.

    /// Whether the plain path (no dilation, one group) applies.
    bool plain() const { return dilation_h == 1 && dilation_w == 1 && groups == 1; }
    /// The window with the dilated extent dilation * (kernel - 1) + 1, for output sizes and checks.
    WindowGeometry dilated_window() const {
        WindowGeometry g = window;
        g.kernel_h = dilation_h * (window.kernel_h - 1) + 1;
        g.kernel_w = dilation_w * (window.kernel_w - 1) + 1;
        return g;
    }
    std::int64_t out_h() const { return dilated_window().out_h(); }  ///< output height
    std::int64_t out_w() const { return dilated_window().out_w(); }  ///< output width
    std::int64_t patch() const { return in_channels / groups * window.kernel_h * window.kernel_w; }  ///< K (per group)
    std::int64_t pixels() const { return out_h() * out_w(); }                                       ///< P
};

/// Up to this patch size (C*kh*kw) the direct kernel beats a GEMM call.
constexpr std::int64_t direct_conv_max_patch = 16;

namespace detail {

template <class T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// One output row y[p] = b + sum_k w[k] col[k][p] in a single pass, K known at compile time so
/// that the sum over k unrolls and the loop over p vectorises. Aligned to a cache line because
/// its speed (a third of the paper network's step) varied by 10% with where unrelated code
/// changes happened to place it.
template <int K, class T>
#if defined(__GNUC__)
__attribute__((aligned(64)))
#endif
void small_patch_row(const T* w, T b, const T* col, std::int64_t pixels, T* row) {
#pragma omp simd
    for (std::int64_t p = 0; p < pixels; ++p) {
        T acc = b;
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

/// The input gradient of one image: dcol = w^T g, computed into the image's im2col buffer
/// `col` (reused), then folded back into `dxn` (the image's part of dx, overwritten).
template <class T>
void image_gradient(const ConvShape& s, const T* w, const T* g, T* col, T* dxn) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    Eigen::Map<RowMajor<T>>(col, K, P).noalias() =
        Eigen::Map<const RowMajor<T>>(w, O, K).transpose() * Eigen::Map<const RowMajor<T>>(g, O, P);
    std::fill(dxn, dxn + in_size, T(0));
    if (stride1_full_width(s.window))
        col2im_add_stride1_full_width(col, s.in_channels, s.window, dxn);  // col is scratch here
    else
        col2im_add(col, s.in_channels, s.window, dxn);
}

/// dw [O, K] and db [O] (may be null) as the sum of the threads' partial sums, `partial` =
/// [threads][O*K + O], added in thread order so the result does not depend on scheduling.
template <class T>
void sum_thread_partials(const T* partial, int threads, std::int64_t O, std::int64_t K, T* dw, T* db) {
    std::fill(dw, dw + O * K, T(0));
    if (db) std::fill(db, db + O, T(0));
    for (int t = 0; t < threads; ++t) {
        const T* pw = partial + t * O * (K + 1);
        for (std::int64_t i = 0; i < O * K; ++i) dw[i] += pw[i];
        if (db)
            for (std::int64_t o = 0; o < O; ++o) db[o] += pw[O * K + o];
    }
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
    const int threads = num_threads();
    T* partial = workspace + threads * per_thread;
    std::fill(partial, partial + threads * O * (K + 1), T(0));
#pragma omp parallel for schedule(static) if (s.batch * O * P * K >= parallel_threshold)
    for (std::int64_t n = 0; n < s.batch; ++n) {
        const int t = thread_index();
        T* col = workspace + t * per_thread;
        T* g = col + K * P;
        T* pw = partial + t * O * (K + 1);
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
            im2col_dilated(xg, Cg, s.window, s.dilation_h, s.dilation_w, s.out_h(), s.out_w(), col);
            Eigen::Map<RowMajor<T>>(pw + gi * Og * K, Og, K).noalias() += gg * Eigen::Map<const RowMajor<T>>(col, K, P).transpose();
            if (dx) {
                Eigen::Map<RowMajor<T>>(col, K, P).noalias() =
                    Eigen::Map<const RowMajor<T>>(w + gi * Og * K, Og, K).transpose() * gg;
                col2im_dilated_add(col, Cg, s.window, s.dilation_h, s.dilation_w, s.out_h(), s.out_w(),
                                   dx + (n * s.in_channels + gi * Cg) * plane);
            }
        }
    }
    sum_thread_partials(partial, threads, O, K, dw, db);
}

}  // namespace detail

/// Workspace (in elements of T) that conv2d_forward/backward need: per thread one im2col
/// buffer, one gradient buffer and partial sums of the weight and bias gradients.
inline std::int64_t conv2d_workspace_size(const ConvShape& s) {
    return static_cast<std::int64_t>(num_threads()) *
           (s.patch() * s.pixels() + s.out_channels * s.pixels() + s.out_channels * (s.patch() + 1));
}

/// y = act(conv(x, w) + b). `bias` may be null. Dilated or grouped shapes take a separate path. `workspace` holds conv2d_workspace_size(s) elements.
template <class T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* bias, bool relu, T* y, T* workspace) {
    if (!s.plain()) return detail::conv2d_forward_general(s, x, w, bias, relu, y, workspace);
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t per_thread = K * P + O * P;
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
/// dw [O, K] and db [O] are overwritten (null db: no bias); dx (null: not needed) is overwritten.
/// Per-thread partial sums of dw/db are added in thread order, so results are identical for a
/// given thread count.
template <class T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* y, const T* dy, bool relu, T* dw, T* db,
                     T* dx, T* workspace) {
    if (!s.plain()) return detail::conv2d_backward_general(s, x, w, y, dy, relu, dw, db, dx, workspace);
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t per_thread = K * P + O * P;
    const int threads = num_threads();
    // Partial weight/bias gradients per thread, [threads][O*K + O], after the buffers.
    T* partial = workspace + threads * per_thread;
    std::fill(partial, partial + threads * O * (K + 1), T(0));

#pragma omp parallel for schedule(static) if (s.batch * O * P * K >= parallel_threshold)
    for (std::int64_t n = 0; n < s.batch; ++n) {
        const int t = thread_index();
        T* col = workspace + t * per_thread;
        T* g = col + K * P;
        T* pw = partial + t * O * (K + 1);
        T* pb = pw + O * K;
        const T* dyn = dy + n * O * P;
        if (relu) {
            const T* yn = y + n * O * P;
#pragma omp simd
            for (std::int64_t i = 0; i < O * P; ++i) g[i] = yn[i] > T(0) ? dyn[i] : T(0);
        } else {
            std::memcpy(g, dyn, static_cast<std::size_t>(O * P) * sizeof(T));
        }
        im2col(x + n * in_size, s.in_channels, s.window, col);
        for (std::int64_t o = 0; o < O; ++o) {
            const T* go = g + o * P;
            T sum = 0;
#pragma omp simd reduction(+ : sum)
            for (std::int64_t p = 0; p < P; ++p) sum += go[p];
            pb[o] += sum;
        }
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
        if (dx) detail::image_gradient(s, w, g, col, dx + n * in_size);
    }
    detail::sum_thread_partials(partial, threads, O, K, dw, db);
}

}  // namespace cnnlite::kernels
