// im2col / col2im: unfold the receptive fields of one C x H x W image into the columns of a
// (C*kh*kw) x (OH*OW) matrix so that a convolution becomes one matrix product, and fold such
// a matrix back (summing overlaps) for the input gradient.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cnnlite/kernels/conv_geometry.hpp"

namespace cnnlite::kernels {

namespace detail {

/// Whether a window has stride 1 and an output as wide as its input, where im2col and col2im
/// handle each tap in one contiguous piece.
inline bool stride1_full_width(const WindowGeometry& g) {
    return g.stride_h == 1 && g.stride_w == 1 && g.out_w() == g.in_w;
}

/// What tap (i, j) of such a window covers: output rows [y_lo, y_hi) and columns [x_lo, x_hi)
/// read inside the image, and output index k reads plane[k + offset] there. empty() when none.
struct FullWidthTap {
    std::int64_t y_lo, y_hi, x_lo, x_hi, offset;
    FullWidthTap(const WindowGeometry& g, std::int64_t i, std::int64_t j) {
        const std::int64_t oh = g.out_h(), ow = g.out_w(), shift_y = i - g.pad_top, shift_x = j - g.pad_left;
        y_lo = std::min(oh, std::max<std::int64_t>(0, -shift_y));
        y_hi = std::max(y_lo, std::min(oh, g.in_h - shift_y));
        x_lo = std::min(ow, std::max<std::int64_t>(0, -shift_x));
        x_hi = std::max(x_lo, std::min(ow, g.in_w - shift_x));
        offset = shift_y * g.in_w + shift_x;
    }
    bool empty() const { return y_lo == y_hi || x_lo == x_hi; }
    /// The contiguous run of output indices from the first to the last one inside the image.
    std::int64_t first(std::int64_t ow) const { return y_lo * ow + x_lo; }
    std::int64_t last(std::int64_t ow) const { return (y_hi - 1) * ow + x_hi; }
};

/// im2col for stride 1 with the output as wide as the input (a 'same' convolution): the rows
/// that one tap reads follow one another in memory, as do the rows it writes, so the tap is one
/// contiguous copy; afterwards only the columns that the horizontal shift took from the
/// neighbouring row are zeroed (one per row for a 3x3 kernel). Row by row, the copies of small
/// feature maps (7 to 28 values for Fashion-MNIST's) are too short to run at memory speed.
template <class T>
void im2col_stride1_full_width(const T* x, std::int64_t channels, const WindowGeometry& g, T* col, std::int64_t ld) {
    const std::int64_t oh = g.out_h(), ow = g.out_w(), plane_size = g.in_h * g.in_w;
    for (std::int64_t c = 0; c < channels; ++c) {
        const T* plane = x + c * plane_size;
        for (std::int64_t i = 0; i < g.kernel_h; ++i) {
            for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                T* row = col + ((c * g.kernel_h + i) * g.kernel_w + j) * ld;
                const FullWidthTap tap(g, i, j);
                if (tap.empty()) {
                    std::fill(row, row + oh * ow, T(0));
                    continue;
                }
                std::fill(row, row + tap.y_lo * ow, T(0));
                std::fill(row + tap.y_hi * ow, row + oh * ow, T(0));
                // Copying [first, last) stays inside the plane.
                const std::int64_t first = tap.first(ow), last = tap.last(ow);
                std::memcpy(row + first, plane + first + tap.offset, static_cast<std::size_t>(last - first) * sizeof(T));
                for (std::int64_t oy = tap.y_lo; oy < tap.y_hi; ++oy) {
                    T* out = row + oy * ow;
                    std::fill(out, out + tap.x_lo, T(0));
                    std::fill(out + tap.x_hi, out + ow, T(0));
                }
            }
        }
    }
}

}  // namespace detail

/// col[(c*kh + i)*kw + j][oy*OW + ox] = x[c][oy*s + i - pad_top][ox*s + j - pad_left], 0 outside.
/// The inner loop runs along an output row, contiguous in `col` (and in `x` for stride 1), so
/// the compiler vectorises it; stride 1 at full width copies each tap in one piece. Rows of
/// `col` are `ld` apart (0: OH*OW), so that several images can sit side by side in one matrix.
template <class T>
void im2col(const T* x, std::int64_t channels, const WindowGeometry& g, T* col, std::int64_t ld = 0) {
    const std::int64_t oh = g.out_h(), ow = g.out_w();
    if (ld == 0) ld = oh * ow;
    if (detail::stride1_full_width(g)) return detail::im2col_stride1_full_width(x, channels, g, col, ld);
    for (std::int64_t c = 0; c < channels; ++c) {
        const T* plane = x + c * g.in_h * g.in_w;
        for (std::int64_t i = 0; i < g.kernel_h; ++i) {
            for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                T* row = col + ((c * g.kernel_h + i) * g.kernel_w + j) * ld;
                // Output columns whose input column lies inside the image: [x_lo, x_hi).
                const std::int64_t shift = j - g.pad_left;
                std::int64_t x_lo = shift < 0 ? (-shift + g.stride_w - 1) / g.stride_w : 0;
                std::int64_t x_hi = std::min<std::int64_t>(ow, (g.in_w - 1 - shift) / g.stride_w + 1);
                if (g.in_w - 1 - shift < 0) x_hi = 0;
                x_lo = std::min(x_lo, ow);
                x_hi = std::max(x_hi, x_lo);
                for (std::int64_t oy = 0; oy < oh; ++oy) {
                    T* out = row + oy * ow;
                    const std::int64_t iy = oy * g.stride_h + i - g.pad_top;
                    if (iy < 0 || iy >= g.in_h) {
                        std::fill(out, out + ow, T(0));
                        continue;
                    }
                    const T* in = plane + iy * g.in_w + shift;
                    std::fill(out, out + x_lo, T(0));
                    if (g.stride_w == 1) {
                        for (std::int64_t ox = x_lo; ox < x_hi; ++ox) out[ox] = in[ox];
                    } else {
                        for (std::int64_t ox = x_lo; ox < x_hi; ++ox) out[ox] = in[ox * g.stride_w];
                    }
                    std::fill(out + x_hi, out + ow, T(0));
                }
            }
        }
    }
}

/// The adjoint of im2col: x[c][iy][ix] += col[...] for every column position that read it.
/// `x` must be zeroed (or hold gradient to add to) by the caller; rows of `col` are `ld` apart
/// (0: OH*OW).
template <class T>
void col2im_add(const T* col, std::int64_t channels, const WindowGeometry& g, T* x, std::int64_t ld = 0) {
    const std::int64_t oh = g.out_h(), ow = g.out_w();
    if (ld == 0) ld = oh * ow;
    for (std::int64_t c = 0; c < channels; ++c) {
        T* plane = x + c * g.in_h * g.in_w;
        for (std::int64_t i = 0; i < g.kernel_h; ++i) {
            for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                const T* row = col + ((c * g.kernel_h + i) * g.kernel_w + j) * ld;
                const std::int64_t shift = j - g.pad_left;
                std::int64_t x_lo = shift < 0 ? (-shift + g.stride_w - 1) / g.stride_w : 0;
                std::int64_t x_hi = std::min<std::int64_t>(ow, (g.in_w - 1 - shift) / g.stride_w + 1);
                if (g.in_w - 1 - shift < 0) x_hi = 0;
                x_lo = std::min(x_lo, ow);
                x_hi = std::max(x_hi, x_lo);
                for (std::int64_t oy = 0; oy < oh; ++oy) {
                    const std::int64_t iy = oy * g.stride_h + i - g.pad_top;
                    if (iy < 0 || iy >= g.in_h) continue;
                    const T* in = row + oy * ow;
                    T* out = plane + iy * g.in_w + shift;
                    if (g.stride_w == 1) {
                        for (std::int64_t ox = x_lo; ox < x_hi; ++ox) out[ox] += in[ox];
                    } else {
                        for (std::int64_t ox = x_lo; ox < x_hi; ++ox) out[ox * g.stride_w] += in[ox];
                    }
                }
            }
        }
    }
}

/// col2im_add for the geometry of detail::im2col_stride1_full_width: each tap adds its column
/// rows to the plane in one contiguous pass. The entries that the horizontal shift would add
/// into the neighbouring row are zeroed in `col` first, so `col` (scratch) is overwritten there.
/// Every element of x receives the additions of col2im_add in the same order, and at most some
/// added zeros. Needs stride 1 and out_w() == in_w (detail::stride1_full_width()). Rows of
/// `col` are `ld` apart (0: OH*OW).
template <class T>
void col2im_add_stride1_full_width(T* col, std::int64_t channels, const WindowGeometry& g, T* x, std::int64_t ld = 0) {
    const std::int64_t oh = g.out_h(), ow = g.out_w(), plane_size = g.in_h * g.in_w;
    if (ld == 0) ld = oh * ow;
    for (std::int64_t c = 0; c < channels; ++c) {
        T* plane = x + c * plane_size;
        for (std::int64_t i = 0; i < g.kernel_h; ++i) {
            for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                T* row = col + ((c * g.kernel_h + i) * g.kernel_w + j) * ld;
                const detail::FullWidthTap tap(g, i, j);
                if (tap.empty()) continue;
                for (std::int64_t oy = tap.y_lo; oy < tap.y_hi; ++oy) {
                    T* in = row + oy * ow;
                    std::fill(in, in + tap.x_lo, T(0));
                    std::fill(in + tap.x_hi, in + ow, T(0));
                }
                // Over [first, last) plane[k + offset] stays inside the plane.
                const std::int64_t first = tap.first(ow), last = tap.last(ow);
                T* out = plane + first + tap.offset;
                const T* in = row + first;
#pragma omp simd
                for (std::int64_t k = 0; k < last - first; ++k) out[k] += in[k];
            }
        }
    }
}

/// im2col for a dilated window: tap (i, j) reads x[c][oy*s + i*dilation_h - pad_top]
/// [ox*s + j*dilation_w - pad_left], 0 outside. `g` holds the undilated kernel size; the output
/// is oh x ow. A separate loop so that the undilated im2col above stays as it is.
template <class T>
void im2col_dilated(const T* x, std::int64_t channels, const WindowGeometry& g, std::int64_t dilation_h,
                    std::int64_t dilation_w, std::int64_t oh, std::int64_t ow, T* col) {
    for (std::int64_t c = 0; c < channels; ++c) {
        const T* plane = x + c * g.in_h * g.in_w;
        for (std::int64_t i = 0; i < g.kernel_h; ++i)
            for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                T* row = col + ((c * g.kernel_h + i) * g.kernel_w + j) * oh * ow;
                for (std::int64_t oy = 0; oy < oh; ++oy) {
                    const std::int64_t iy = oy * g.stride_h + i * dilation_h - g.pad_top;
                    T* out = row + oy * ow;
                    if (iy < 0 || iy >= g.in_h) {
                        std::fill(out, out + ow, T(0));
                        continue;
                    }
                    for (std::int64_t ox = 0; ox < ow; ++ox) {
                        const std::int64_t ix = ox * g.stride_w + j * dilation_w - g.pad_left;
                        out[ox] = ix >= 0 && ix < g.in_w ? plane[iy * g.in_w + ix] : T(0);
                    }
                }
            }
    }
}

/// The adjoint of im2col_dilated: x[c][iy][ix] += col[...] for every position that read it.
template <class T>
void col2im_dilated_add(const T* col, std::int64_t channels, const WindowGeometry& g, std::int64_t dilation_h,
                        std::int64_t dilation_w, std::int64_t oh, std::int64_t ow, T* x) {
    for (std::int64_t c = 0; c < channels; ++c) {
        T* plane = x + c * g.in_h * g.in_w;
        for (std::int64_t i = 0; i < g.kernel_h; ++i)
            for (std::int64_t j = 0; j < g.kernel_w; ++j) {
                const T* row = col + ((c * g.kernel_h + i) * g.kernel_w + j) * oh * ow;
                for (std::int64_t oy = 0; oy < oh; ++oy) {
                    const std::int64_t iy = oy * g.stride_h + i * dilation_h - g.pad_top;
                    if (iy < 0 || iy >= g.in_h) continue;
                    for (std::int64_t ox = 0; ox < ow; ++ox) {
                        const std::int64_t ix = ox * g.stride_w + j * dilation_w - g.pad_left;
                        if (ix >= 0 && ix < g.in_w) plane[iy * g.in_w + ix] += row[oy * ow + ox];
                    }
                }
            }
    }
}

}  // namespace cnnlite::kernels
