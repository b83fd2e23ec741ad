// The window of a 2-D pooling op (size, strides, padding on each side) and the checks that the
// pooling ops share.
#pragma once

#include <cstdint>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/shape.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"

namespace cnnlite {

/// Window, strides and padding of max_pool2d/avg_pool2d (padding on each side, as Conv2dArgs).
struct Pool2dArgs {
    std::int64_t pool_h = 2;      ///< window height
    std::int64_t pool_w = 2;      ///< window width
    std::int64_t stride_h = 2;    ///< vertical step of the window
    std::int64_t stride_w = 2;    ///< horizontal step of the window
    std::int64_t pad_top = 0;     ///< padded rows above the input
    std::int64_t pad_bottom = 0;  ///< padded rows below the input
    std::int64_t pad_left = 0;    ///< padded columns left of the input
    std::int64_t pad_right = 0;   ///< padded columns right of the input
    /// avg_pool2d only: padded cells count in the divisor (PyTorch's default); false divides by
    /// the cells inside the input (Keras' 'same', PyTorch's count_include_pad=False).
    bool count_include_pad = false;
};

namespace detail {

/// The window of `args` over the planes of x ([N, C, H, W]), checked; `op` names the op in errors.
inline kernels::WindowGeometry checked_pool_geometry(const Shape& xs, const Pool2dArgs& a, const char* op) {
    check(xs.rank() == 4, op, ": input must be [N, C, H, W], got ", xs);
    const kernels::WindowGeometry g{xs[2], xs[3], a.pool_h, a.pool_w, a.stride_h, a.stride_w,
                                    a.pad_top, a.pad_bottom, a.pad_left, a.pad_right};
    g.validate(op);
    // Smaller padding than the window on every side: no window holds only padding.
    check(a.pad_top < a.pool_h && a.pad_bottom < a.pool_h && a.pad_left < a.pool_w && a.pad_right < a.pool_w, op,
          ": padding (top ", a.pad_top, ", bottom ", a.pad_bottom, ", left ", a.pad_left, ", right ", a.pad_right,
          ") must be smaller than the pool size ", a.pool_h, "x", a.pool_w);
    return g;
}

}  // namespace detail

}  // namespace cnnlite
