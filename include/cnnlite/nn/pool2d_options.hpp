// The options that the 2-D pooling layers share (MaxPool2D, AvgPool2D): Keras' pool_size,
// strides and padding, and the window they give on an input plane.
#pragma once

#include <cstdint>
#include <string>

#include "cnnlite/core/error.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/nn/padding.hpp"
#include "cnnlite/ops/pool2d_args.hpp"

namespace cnnlite {

/// The options of a 2-D pooling layer (Keras' MaxPooling2D, AveragePooling2D), its names and defaults.
struct Pool2dOptions {
    Extent2 pool_size{2, 2};  ///< window height and width
    Extent2 strides{2, 2};    ///< step of the window (Keras: the pool size)
    /// 'valid' (windows inside the input), 'same' (output ceil(in / stride); padded cells never
    /// win a max and do not count in an average, as in Keras) or explicit sides.
    Padding padding;

    /// The fields, for configurations and model files (nn/layer_options.hpp); files written
    /// before pooling had padding lack it and load as 'valid'.
    template <class Visitor>
    void visit(Visitor& v) {
        v("pool_size", pool_size);
        v("strides", strides);
        v.optional("padding", padding);
    }
};

/// The options of a MaxPool2D layer.
using MaxPool2dOptions = Pool2dOptions;
/// The options of an AvgPool2D layer.
using AvgPool2dOptions = Pool2dOptions;

namespace detail {

/// Throws unless pool size and strides are positive; `layer` names the layer type.
inline void check_pool_options(const Pool2dOptions& o, const char* layer) {
    check(o.pool_size.h > 0 && o.pool_size.w > 0, layer, ": pool size must be positive, got ", o.pool_size.h, "x",
          o.pool_size.w);
    check(o.strides.h > 0 && o.strides.w > 0, layer, ": strides must be positive, got ", o.strides.h, "x", o.strides.w);
}

/// The pooling op's arguments for per-sample input `in` ([C, H, W]), checked; `label` names the
/// layer in errors.
inline Pool2dArgs pool2d_args_for(const Pool2dOptions& o, const Shape& in, const std::string& label) {
    check(in.rank() == 3, label, ": input must be [C, H, W], got ", in);
    const std::int64_t kh = o.pool_size.h, kw = o.pool_size.w, sh = o.strides.h, sw = o.strides.w;
    kernels::WindowGeometry g = o.padding.mode == Padding::Mode::same
                                    ? kernels::WindowGeometry::same(in[1], in[2], kh, kw, sh, sw)
                                    : kernels::WindowGeometry::valid(in[1], in[2], kh, kw, sh, sw);
    if (o.padding.mode == Padding::Mode::explicit_) {
        g.pad_top = o.padding.top, g.pad_bottom = o.padding.bottom;
        g.pad_left = o.padding.left, g.pad_right = o.padding.right;
    }
    g.validate(label.c_str());
    // A window of padding alone would have no maximum and no cells to average.
    check(g.pad_top < kh && g.pad_bottom < kh && g.pad_left < kw && g.pad_right < kw, label, ": padding (top ",
          g.pad_top, ", bottom ", g.pad_bottom, ", left ", g.pad_left, ", right ", g.pad_right,
          ") must be smaller than the pool size ", kh, "x", kw);
    Pool2dArgs a;
    a.pool_h = kh, a.pool_w = kw, a.stride_h = sh, a.stride_w = sw;
    a.pad_top = g.pad_top, a.pad_bottom = g.pad_bottom, a.pad_left = g.pad_left, a.pad_right = g.pad_right;
    a.count_include_pad = false;
    return a;
}

}  // namespace detail

}  // namespace cnnlite
