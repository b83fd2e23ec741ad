// The shape arithmetic of a 2-D convolution or pooling window: padding, strides and the
// output size, computed once and shared by the im2col, direct and pooling kernels; and the
// dimensions of one batched convolution (ConvShape).
#pragma once

#include <algorithm>
#include <cstdint>

#include "cnnlite/core/error.hpp"

namespace cnnlite::kernels {

/// The extent a kernel of `kernel` taps spans at `dilation` (taps `dilation` apart):
/// (kernel - 1) * dilation + 1. What padding and the output size see of a dilated kernel.
inline std::int64_t dilated_extent(std::int64_t kernel, std::int64_t dilation) { return (kernel - 1) * dilation + 1; }

/// How a window slides over an H x W plane: kernel size, stride and padding on each side.
struct WindowGeometry {
    /// Input height.
    std::int64_t in_h = 0, in_w = 0;          ///< input plane
    /// Window height.
    std::int64_t kernel_h = 1, kernel_w = 1;  ///< window
    std::int64_t stride_h = 1;  ///< Vertical step between windows.
    std::int64_t stride_w = 1;  ///< Horizontal step between windows.

    std::int64_t pad_top = 0;  ///< Zero rows above the plane.
    std::int64_t pad_bottom = 0;  ///< Zero rows below the plane.
    std::int64_t pad_left = 0;  ///< Zero columns left of the plane.
    std::int64_t pad_right = 0;  ///< Zero columns right of the plane.

    /// Output height: (in_h + pad_top + pad_bottom - kernel_h) / stride_h + 1.
    std::int64_t out_h() const { return (in_h + pad_top + pad_bottom - kernel_h) / stride_h + 1; }
    /// Output width: (in_w + pad_left + pad_right - kernel_w) / stride_w + 1.
    std::int64_t out_w() const { return (in_w + pad_left + pad_right - kernel_w) / stride_w + 1; }

    /// TensorFlow/PyTorch 'same': output = ceil(in / stride); when the total padding is odd the
    /// extra row/column goes to the bottom/right.
    static WindowGeometry same(std::int64_t in_h, std::int64_t in_w, std::int64_t kernel_h, std::int64_t kernel_w,
                               std::int64_t stride_h = 1, std::int64_t stride_w = 1) {
        WindowGeometry g{in_h, in_w, kernel_h, kernel_w, stride_h, stride_w};
        const std::int64_t total_h = std::max<std::int64_t>((ceil_div(in_h, stride_h) - 1) * stride_h + kernel_h - in_h, 0);
        const std::int64_t total_w = std::max<std::int64_t>((ceil_div(in_w, stride_w) - 1) * stride_w + kernel_w - in_w, 0);
        g.pad_top = total_h / 2;
        g.pad_bottom = total_h - g.pad_top;
        g.pad_left = total_w / 2;
        g.pad_right = total_w - g.pad_left;
        return g;
    }
    /// 'valid': no padding.
    static WindowGeometry valid(std::int64_t in_h, std::int64_t in_w, std::int64_t kernel_h, std::int64_t kernel_w,
                                std::int64_t stride_h = 1, std::int64_t stride_w = 1) {
        return WindowGeometry{in_h, in_w, kernel_h, kernel_w, stride_h, stride_w};
    }

    /// Throws when the window does not fit or an extent is not positive; `what` names the layer.
    void validate(const char* what) const {
        check(kernel_h >= 1 && kernel_w >= 1, what, ": kernel ", kernel_h, "x", kernel_w, " must be positive");
        check(stride_h >= 1 && stride_w >= 1, what, ": stride ", stride_h, "x", stride_w, " must be positive");
        check(pad_top >= 0 && pad_bottom >= 0 && pad_left >= 0 && pad_right >= 0, what, ": negative padding");
        check(in_h + pad_top + pad_bottom >= kernel_h && in_w + pad_left + pad_right >= kernel_w, what, ": kernel ",
              kernel_h, "x", kernel_w, " larger than the padded input ", in_h + pad_top + pad_bottom, "x",
              in_w + pad_left + pad_right);
    }

private:
    static std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
};

/// Up to this patch size (C*kh*kw) the direct kernel beats a GEMM call (kernels/conv2d.hpp).
constexpr std::int64_t direct_conv_max_patch = 16;

/// How the float convolutions on register_gemm reach the image: unfolded into im2col columns,
/// read in place from a zero-padded copy (kernels/implicit_conv.hpp), or row by row through a
/// table of offsets into a channels-last copy (kernels/indirect_conv.hpp).
enum class ConvAlgorithm {
    automatic,  ///< the per-shape choice of implicit_conv.hpp (measured; benchmarks/README.md)
    unfold,     ///< im2col and col2im around the products (also for depthwise shapes, which
                ///< automatic runs with kernels/depthwise_conv.hpp)
    in_place,   ///< read the padded image in place, where the shape allows it (else unfold)
    indirect,   ///< channels-last rows through a table of offsets (kernels/indirect_conv.hpp): the
                ///< forward and input gradient, where the shape allows it; the weight gradient unfolds
};

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
    ConvAlgorithm algorithm = ConvAlgorithm::automatic;  ///< float products' access to the image (tests force one)
    /// Whether `automatic` may run a stride-1 3x3 float convolution's forward, input gradient
    /// and weight gradient by Winograd's transforms where kernels::winograd_tile_for chooses
    /// them (kernels/winograd_planes.hpp); false: by direct products.
    bool winograd = true;

    /// Whether the plain path (no dilation, one group) applies.
    bool plain() const { return dilation_h == 1 && dilation_w == 1 && groups == 1; }
    /// The window with the dilated extent dilation * (kernel - 1) + 1, for output sizes and checks.
    WindowGeometry dilated_window() const {
        WindowGeometry g = window;
        g.kernel_h = dilated_extent(window.kernel_h, dilation_h);
        g.kernel_w = dilated_extent(window.kernel_w, dilation_w);
        return g;
    }
    std::int64_t out_h() const { return dilated_window().out_h(); }  ///< output height
    std::int64_t out_w() const { return dilated_window().out_w(); }  ///< output width
    std::int64_t patch() const { return in_channels / groups * window.kernel_h * window.kernel_w; }  ///< K (per group)
    std::int64_t pixels() const { return out_h() * out_w(); }                                       ///< P
};

}  // namespace cnnlite::kernels
