// Convolution, ReLU and max pooling fused, image by image: each image's convolution output is
// computed into a per-thread scratch buffer that stays in cache, rectified and pooled at once,
// so the full-resolution activation never travels through memory. Backward needs only the
// pooled values and the argmax of each window: the gradient reaches one conv output per window
// (and none where the pooled value was clamped to 0 by the ReLU).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "cnnlite/kernels/conv2d.hpp"
#include "cnnlite/kernels/pooling.hpp"

namespace cnnlite::kernels {

/// Workspace (elements of T) for conv_relu_pool_forward/backward: per thread an im2col buffer,
/// one image's convolution output, and partial weight/bias gradients.
inline std::int64_t conv_relu_pool_workspace_size(const ConvShape& s) { return conv2d_workspace_size(s); }

/// y = max_pool(relu(conv(x, w) + b)) with `pool` windows over the conv output planes.
/// `argmax` receives, per pooled element, the index of the winner within its conv plane.
template <class T>
void conv_relu_pool_forward(const ConvShape& s, const WindowGeometry& pool, const T* x, const T* w, const T* bias, T* y,
                            std::int32_t* argmax, T* workspace) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t Q = pool.out_h() * pool.out_w();
    const std::int64_t per_thread = K * P + O * P;
    const bool two_by_two = pool.kernel_h == 2 && pool.kernel_w == 2 && pool.stride_h == 2 && pool.stride_w == 2 &&
                            pool.pad_top == 0 && pool.pad_left == 0;
#pragma omp parallel for schedule(static) if (s.batch * O * P * K >= parallel_threshold)
    for (std::int64_t n = 0; n < s.batch; ++n) {
        T* col = workspace + detail::thread_id() * per_thread;
        T* plane = col + K * P;
        im2col(x + n * in_size, s.in_channels, s.window, col);
        if (K <= direct_conv_max_patch) {
            detail::small_patch_product(w, bias, col, O, K, P, plane);
        } else {
            Eigen::Map<detail::RowMajor<T>> out(plane, O, P);
            out.noalias() = Eigen::Map<const detail::RowMajor<T>>(w, O, K) * Eigen::Map<const detail::RowMajor<T>>(col, K, P);
            if (bias) out.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(bias, O);
        }
        // Pool every channel of this image (serially: we are inside the parallel loop). The ReLU
        // is applied to each window's maximum: max(relu(a), relu(b)) = relu(max(a, b)).
        T* yn = y + n * O * Q;
        std::int32_t* an = argmax + n * O * Q;
        for (std::int64_t o = 0; o < O; ++o) {
            if (two_by_two) {
                const std::int64_t iw = pool.in_w, ow = pool.out_w();
                for (std::int64_t oy = 0; oy < pool.out_h(); ++oy)
                    detail::max_pool_2x2_row<true>(plane + o * P + 2 * oy * iw, plane + o * P + (2 * oy + 1) * iw, ow,
                                                   static_cast<std::int32_t>(iw), static_cast<std::int32_t>(2 * oy * iw),
                                                   yn + o * Q + oy * ow, an + o * Q + oy * ow, plane + O * P);
            } else {
                detail::max_pool_plane(plane + o * P, pool, yn + o * Q, an + o * Q);
                for (std::int64_t q = 0; q < Q; ++q) yn[o * Q + q] = yn[o * Q + q] <= T(0) ? T(0) : yn[o * Q + q];
            }
        }
    }
}

/// Gradients of conv_relu_pool_forward given dy for the pooled output. dw [O, K] and db [O]
/// (null: no bias) are overwritten; dx (null: not needed) is overwritten.
template <class T>
void conv_relu_pool_backward(const ConvShape& s, const WindowGeometry& pool, const T* x, const T* w, const T* y,
                             const std::int32_t* argmax, const T* dy, T* dw, T* db, T* dx, T* workspace) {
    const std::int64_t K = s.patch(), P = s.pixels(), O = s.out_channels;
    const std::int64_t in_size = s.in_channels * s.window.in_h * s.window.in_w;
    const std::int64_t Q = pool.out_h() * pool.out_w();
    const std::int64_t per_thread = K * P + O * P;
    const int threads = detail::thread_count();
    T* partial = workspace + threads * per_thread;
    std::fill(partial, partial + threads * O * (K + 1), T(0));
    const bool sparse = K <= direct_conv_max_patch && dx == nullptr;

#pragma omp parallel for schedule(static) if (s.batch * O * P * K >= parallel_threshold)
    for (std::int64_t n = 0; n < s.batch; ++n) {
        const int t = detail::thread_id();
        T* col = workspace + t * per_thread;
        T* g = col + K * P;
        T* pw = partial + t * O * (K + 1);
        T* pb = pw + O * K;
        const T* yn = y + n * O * Q;
        const T* dyn = dy + n * O * Q;
        const std::int32_t* an = argmax + n * O * Q;
        im2col(x + n * in_size, s.in_channels, s.window, col);
        if (sparse) {
            // One conv output per window receives gradient (none where the ReLU clamped the
            // window's maximum): accumulate straight from the winners' patches, vectorised over
            // the windows with a gather. g holds the channel's masked gradients.
            for (std::int64_t o = 0; o < O; ++o) {
                const T* yo = yn + o * Q;
                const T* dyo = dyn + o * Q;
                const std::int32_t* ao = an + o * Q;
                T bias_sum = 0;
#pragma omp simd reduction(+ : bias_sum)
                for (std::int64_t q = 0; q < Q; ++q) {
                    g[q] = yo[q] > T(0) ? dyo[q] : T(0);
                    bias_sum += g[q];
                }
                pb[o] += bias_sum;
                for (std::int64_t k = 0; k < K; ++k) {
                    const T* ck = col + k * P;
                    T sum = 0;
#pragma omp simd reduction(+ : sum)
                    for (std::int64_t q = 0; q < Q; ++q) sum += g[q] * ck[ao[q]];
                    pw[o * K + k] += sum;
                }
            }
            continue;
        }
        std::fill(g, g + O * P, T(0));
        for (std::int64_t o = 0; o < O; ++o)
            for (std::int64_t q = 0; q < Q; ++q)
                if (yn[o * Q + q] > T(0)) g[o * P + an[o * Q + q]] += dyn[o * Q + q];
        for (std::int64_t o = 0; o < O; ++o) {
            T sum = 0;
            for (std::int64_t p = 0; p < P; ++p) sum += g[o * P + p];
            pb[o] += sum;
        }
        Eigen::Map<detail::RowMajor<T>>(pw, O, K).noalias() +=
            Eigen::Map<const detail::RowMajor<T>>(g, O, P) * Eigen::Map<const detail::RowMajor<T>>(col, K, P).transpose();
        if (dx) {
            Eigen::Map<detail::RowMajor<T>>(col, K, P).noalias() =
                Eigen::Map<const detail::RowMajor<T>>(w, O, K).transpose() * Eigen::Map<const detail::RowMajor<T>>(g, O, P);
            T* dxn = dx + n * in_size;
            std::fill(dxn, dxn + in_size, T(0));
            col2im_add(col, s.in_channels, s.window, dxn);
        }
    }
    std::fill(dw, dw + O * K, T(0));
    if (db) std::fill(db, db + O, T(0));
    for (int t = 0; t < threads; ++t) {
        const T* pw = partial + t * O * (K + 1);
        for (std::int64_t i = 0; i < O * K; ++i) dw[i] += pw[i];
        if (db)
            for (std::int64_t o = 0; o < O; ++o) db[o] += pw[O * K + o];
    }
}

}  // namespace cnnlite::kernels
