// Heat maps over grey images, composited exactly as matplotlib's Agg backend draws
// imshow(image, cmap='gray') followed by imshow(heat, cmap=..., alpha=...): both autoscaled to
// their own min/max unless a range is given, colour-mapped through 8-bit lookup tables, then
// blended with Agg's plain-alpha blender.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/viz/colormap.hpp"
#include "cnnlite/viz/image.hpp"

namespace cnnlite::viz {

/// How a heat map is drawn over an image.
struct OverlayOptions {
    /// The heat map's colours; the paper uses 'magma'.
    const Colormap* colormap = &Colormap::magma();
    /// Opacity of the heat map in [0, 1].
    double alpha = 0.5;
    std::optional<double> image_min;  ///< Value range of the image for the grey colour map; unset = the image's own min/max (what imshow does without vmin/vmax). Image value shown black.
    std::optional<double> image_max;  ///< Image value shown white.

    std::optional<double> heat_min;  ///< Value range of the heat map; unset = its own min/max. Heat value at the low end of the colour map.
    std::optional<double> heat_max;  ///< Heat value at the high end.
};

namespace detail {

/// The [vmin, vmax] imshow uses: the given bounds, else the finite data's min/max.
template <class T>
std::pair<double, double> autoscale(const T* values, std::size_t n, std::optional<double> lo, std::optional<double> hi) {
    double mn = std::numeric_limits<double>::infinity(), mx = -mn;
    for (std::size_t i = 0; i < n; ++i) {
        const double v = static_cast<double>(values[i]);
        if (std::isnan(v)) continue;
        mn = std::min(mn, v);
        mx = std::max(mx, v);
    }
    if (mn > mx) mn = mx = 0;  // all NaN: nothing to scale
    return {lo.value_or(mn), hi.value_or(mx)};
}

/// matplotlib's 8-bit alpha for a scalar alpha: float32(255) * alpha, truncated.
inline int alpha_byte(double alpha) {
    check(alpha >= 0 && alpha <= 1, "overlay: alpha ", alpha, " outside [0, 1]");
    return static_cast<int>(255.0f * static_cast<float>(alpha));
}

/// Agg's fixed_blender_rgba_plain over an opaque destination pixel (matplotlib's agg_workaround.h).
/// Agg copies fully opaque pixels and skips fully transparent ones instead of blending them.
inline std::uint8_t agg_blend(std::uint8_t dst, std::uint8_t src, int alpha) {
    if (alpha >= 255) return src;
    if (alpha <= 0) return dst;
    const std::int64_t r = std::int64_t(dst) * 255;
    const std::int64_t a = ((std::int64_t(alpha) + 255) << 8) - std::int64_t(alpha) * 255;
    return static_cast<std::uint8_t>((((std::int64_t(src) << 8) - r) * alpha + (r << 8)) / a);
}

}  // namespace detail

/// The values of one [H, W] (or [1, 1, H, W]) tensor coloured by `colormap`, as
/// imshow(values, cmap) shows them: [vmin, vmax] default to the data's min/max; NaN is white.
template <class T>
Image colorize(const Tensor<T>& values, const Colormap& colormap, std::optional<double> vmin = std::nullopt,
               std::optional<double> vmax = std::nullopt) {
    const auto [h, w] = detail::single_plane("colorize", values);
    const auto [lo, hi] = detail::autoscale(values.data(), static_cast<std::size_t>(values.numel()), vmin, vmax);
    Image out(w, h, 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            out.set_pixel(x, y, colormap(normalize(static_cast<double>(values.data()[y * w + x]), lo, hi)));
    return out;
}

/// Blends `top` over `base` (same size) with opacity `alpha`, with matplotlib's 8-bit alpha
/// and Agg's rounding; pixels where `mask` (if given, one byte per pixel) is 0 keep the base.
inline Image blend(const Image& base, const Image& top, double alpha, const std::uint8_t* mask = nullptr) {
    check(base.width() == top.width() && base.height() == top.height(), "blend: base is ", base.width(), "x",
          base.height(), " but top is ", top.width(), "x", top.height());
    const int a = detail::alpha_byte(alpha);
    Image out = to_rgb(base);
    const Image top_rgb = to_rgb(top);
    const std::size_t n = static_cast<std::size_t>(out.width()) * out.height();
    for (std::size_t i = 0; i < n; ++i) {
        if (mask && !mask[i]) continue;
        for (std::size_t k = 0; k < 3; ++k)
            out.data()[3 * i + k] = detail::agg_blend(out.data()[3 * i + k], top_rgb.data()[3 * i + k], a);
    }
    return out;
}

/// A heat map drawn over an already-rendered image of the same size (grey or RGB). NaN heat
/// values leave the image visible (matplotlib draws them transparent).
inline Image overlay(const Image& base, const Tensor<float>& heat, const OverlayOptions& options = {}) {
    const auto [h, w] = detail::single_plane("overlay", heat);
    check(h == base.height() && w == base.width(), "overlay: heat map is ", w, "x", h, " but the image is ",
          base.width(), "x", base.height(), " (resize the map first, e.g. with resize_bilinear)");
    check(options.colormap != nullptr, "overlay: no colour map given");
    const Image colored = colorize(heat, *options.colormap, options.heat_min, options.heat_max);
    std::vector<std::uint8_t> mask(static_cast<std::size_t>(w) * h);
    for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = std::isnan(heat.data()[i]) ? 0 : 1;
    return blend(base, colored, options.alpha, mask.data());
}

/// The paper's Grad-CAM figure tile: a grey image ([H, W] or [1, 1, H, W], any range) shown with
/// matplotlib's 'gray' map, and `heat` (same size) over it; see OverlayOptions.
template <class T>
Image overlay(const Tensor<T>& image, const Tensor<float>& heat, const OverlayOptions& options = {}) {
    return overlay(colorize(image, Colormap::gray(), options.image_min, options.image_max), heat, options);
}

}  // namespace cnnlite::viz
