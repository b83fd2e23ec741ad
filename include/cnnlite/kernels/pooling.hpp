// Max pooling over NCHW planes: forward keeps the argmax of every window (as a flat index into
// the input plane) so that backward routes each gradient to exactly the element that won.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "cnnlite/kernels/conv_geometry.hpp"

namespace cnnlite::kernels {

namespace detail {

/// Whether `v` replaces `best` as a window's maximum: when larger, or when it is a NaN and
/// `best` is not, so that a NaN anywhere in a window propagates instead of vanishing.
template <class T>
inline bool beats(T v, T best) {
    return v > best || (v != v && best == best);
}

/// Max pooling of one plane: out[oy][ox] = max of the window, arg = the winner's index in the
/// plane. Ties go to the first element in row-major window order (as PyTorch); padding never
/// wins; a NaN wins and stays.
template <class T>
void max_pool_plane(const T* in, const WindowGeometry& g, T* out, std::int32_t* arg) {
    const std::int64_t oh = g.out_h(), ow = g.out_w();
    for (std::int64_t oy = 0; oy < oh; ++oy) {
        const std::int64_t y0 = std::max<std::int64_t>(oy * g.stride_h - g.pad_top, 0);
        const std::int64_t y1 = std::min<std::int64_t>(oy * g.stride_h - g.pad_top + g.kernel_h, g.in_h);
        for (std::int64_t ox = 0; ox < ow; ++ox) {
            const std::int64_t x0 = std::max<std::int64_t>(ox * g.stride_w - g.pad_left, 0);
            const std::int64_t x1 = std::min<std::int64_t>(ox * g.stride_w - g.pad_left + g.kernel_w, g.in_w);
            T best = -std::numeric_limits<T>::infinity();
            std::int64_t best_index = y0 * g.in_w + x0;
            for (std::int64_t iy = y0; iy < y1; ++iy)
                for (std::int64_t ix = x0; ix < x1; ++ix) {
                    const T v = in[iy * g.in_w + ix];
                    if (beats(v, best)) {
                        best = v;
                        best_index = iy * g.in_w + ix;
                    }
                }
            out[oy * ow + ox] = best;
            arg[oy * ow + ox] = static_cast<std::int32_t>(best_index);
        }
    }
}

}  // namespace detail

/// y[plane] = max pooling of x[plane] for `planes` planes; argmax holds each winner's index
/// within its plane.
template <class T>
void max_pool_forward(const T* x, std::int64_t planes, const WindowGeometry& g, T* y, std::int32_t* argmax) {
    const std::int64_t out_size = g.out_h() * g.out_w(), in_size = g.in_h * g.in_w;
#pragma omp parallel for schedule(static) if (planes * in_size >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p)
        detail::max_pool_plane(x + p * in_size, g, y + p * out_size, argmax + p * out_size);
}

/// Specialisation-free fast path for the common 2x2 window with stride 2 and no padding.
template <class T>
void max_pool_2x2_forward(const T* x, std::int64_t planes, std::int64_t in_h, std::int64_t in_w, T* y,
                          std::int32_t* argmax) {
    const std::int64_t oh = in_h / 2, ow = in_w / 2;
#pragma omp parallel for schedule(static) if (planes * in_h * in_w >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        const T* in = x + p * in_h * in_w;
        T* out = y + p * oh * ow;
        std::int32_t* arg = argmax + p * oh * ow;
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            const T* r0 = in + 2 * oy * in_w;
            const T* r1 = r0 + in_w;
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                const std::int64_t base = 2 * oy * in_w + 2 * ox;
                T best = r0[2 * ox];
                std::int64_t index = base;
                if (detail::beats(r0[2 * ox + 1], best)) best = r0[2 * ox + 1], index = base + 1;
                if (detail::beats(r1[2 * ox], best)) best = r1[2 * ox], index = base + in_w;
                if (detail::beats(r1[2 * ox + 1], best)) best = r1[2 * ox + 1], index = base + in_w + 1;
                out[oy * ow + ox] = best;
                arg[oy * ow + ox] = static_cast<std::int32_t>(index);
            }
        }
    }
}

/// dx = 0 everywhere except the argmax of each window, which receives dy (summed when windows
/// overlap). dx is overwritten when `overwrite`, else added to.
template <class T>
void max_pool_backward(const T* dy, const std::int32_t* argmax, std::int64_t planes, std::int64_t out_size,
                       std::int64_t in_size, T* dx, bool overwrite) {
#pragma omp parallel for schedule(static) if (planes * in_size >= parallel_threshold)
    for (std::int64_t p = 0; p < planes; ++p) {
        T* d = dx + p * in_size;
        if (overwrite) std::fill(d, d + in_size, T(0));
        const T* g = dy + p * out_size;
        const std::int32_t* arg = argmax + p * out_size;
        for (std::int64_t i = 0; i < out_size; ++i) d[arg[i]] += g[i];
    }
}

}  // namespace cnnlite::kernels
