// Scatter plots as SVG for many points (a UMAP of 60,000 images): the points are painted into
// a PNG embedded in the SVG, so the file stays small, while axes, legend and text stay vector.
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/detail/chart_frame.hpp"
#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/image_io.hpp"

namespace cnnlite::viz {

/// Points (x[i], y[i]) of class labels[i] (0 .. class_names.size() - 1); `to_svg` renders them.
struct ScatterChart {
    std::string title;  ///< Title on top.
    std::string x_label;  ///< Label of the x axis.
    std::string y_label;  ///< Label of the y axis.

    std::vector<double> x;  ///< The x coordinates.
    std::vector<double> y;  ///< The y coordinates.

    /// Class of each point.
    std::vector<int> labels;
    /// Legend entries, by class.
    std::vector<std::string> class_names;
    /// Colour per class; empty = matplotlib's default cycle (tab10).
    std::vector<Rgb> colors;
    /// Point radius and opacity, in screen pixels.
    double point_radius = 1.6;
    /// Opacity of the points.
    double opacity = 0.6;
    /// Pixels of the embedded raster per SVG unit: 2 stays sharp on high-density screens.
    int raster_scale = 1;
    int width = 860;  ///< Width in pixels.
    int height = 640;  ///< Height in pixels.
};

namespace detail {

/// Paints an antialiased disc: coverage falls off over one pixel at the rim.
inline void paint_disc(Image& image, double cx, double cy, double r, Rgb color, double opacity) {
    const int x0 = static_cast<int>(std::floor(cx - r - 1)), x1 = static_cast<int>(std::ceil(cx + r + 1));
    const int y0 = static_cast<int>(std::floor(cy - r - 1)), y1 = static_cast<int>(std::ceil(cy + r + 1));
    for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x) {
            const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
            const double cover = std::clamp(r + 0.5 - d, 0.0, 1.0);
            if (cover > 0) image.blend_pixel(x, y, color, cover * opacity);
        }
}

}  // namespace detail

/// The chart as an SVG document.
inline std::string to_svg(const ScatterChart& chart) {
    using namespace detail;
    const std::size_t n = chart.x.size();
    check(n > 0, "scatter plot '", chart.title, "': no points");
    check(chart.y.size() == n && chart.labels.size() == n, "scatter plot '", chart.title, "': ", n, " x values, ",
          chart.y.size(), " y values and ", chart.labels.size(), " labels");
    check(!chart.class_names.empty(), "scatter plot '", chart.title, "': no class names");
    check(chart.colors.empty() || chart.colors.size() >= chart.class_names.size(), "scatter plot '", chart.title,
          "': ", chart.colors.size(), " colours for ", chart.class_names.size(), " classes");
    check(chart.point_radius > 0 && chart.opacity > 0 && chart.opacity <= 1 && chart.raster_scale >= 1,
          "scatter plot '", chart.title, "': bad point radius, opacity or raster scale");
    const int classes = static_cast<int>(chart.class_names.size());
    for (std::size_t i = 0; i < n; ++i) {
        check(chart.labels[i] >= 0 && chart.labels[i] < classes, "scatter plot '", chart.title, "': point ", i,
              " has label ", chart.labels[i], " outside 0..", classes - 1);
        check(std::isfinite(chart.x[i]) && std::isfinite(chart.y[i]), "scatter plot '", chart.title, "': point ", i,
              " is (", chart.x[i], ", ", chart.y[i], ")");
    }
    const auto color_of = [&](int k) {
        return chart.colors.empty() ? tab10(static_cast<std::size_t>(k)) : chart.colors[static_cast<std::size_t>(k)];
    };
    const auto [x_lo, x_hi] = finite_range({&chart.x});
    const auto [y_lo, y_hi] = finite_range({&chart.y});
    // matplotlib's 5% margins; a single point (zero extent) still gets a unit range around it.
    const double px_pad = x_hi > x_lo ? (x_hi - x_lo) * 0.05 : 0.5, py_pad = y_hi > y_lo ? (y_hi - y_lo) * 0.05 : 0.5;
    const Ticks x_ticks = ticks_within(x_lo - px_pad, x_hi + px_pad);
    const Ticks y_ticks = ticks_within(y_lo - py_pad, y_hi + py_pad);
    std::vector<LegendEntry> legend;
    for (int k = 0; k < classes; ++k)
        legend.push_back({chart.class_names[static_cast<std::size_t>(k)], color_of(k), Swatch::dot, 1});
    ChartFrame frame(chart.width, chart.height, chart.title, chart.x_label, chart.y_label, tick_labels(y_ticks),
                     tick_labels(x_ticks), false, legend);

    const int s = chart.raster_scale;
    const int w = static_cast<int>(std::lround(frame.w() * s)), h = static_cast<int>(std::lround(frame.h() * s));
    Image raster(w, h, colors::white);
    for (std::size_t i = 0; i < n; ++i) {
        const double px = (frame.map_x(chart.x[i], x_ticks) - frame.x()) * s;
        const double py = (frame.map_y(chart.y[i], y_ticks) - frame.y()) * s;
        paint_disc(raster, px, py, chart.point_radius * s, color_of(chart.labels[i]), chart.opacity);
    }
    SvgWriter& svg = frame.svg();
    svg.png(frame.x(), frame.y(), frame.w(), frame.h(), encode_png(raster));
    frame.y_axis(y_ticks);
    frame.x_axis(x_ticks);
    frame.finish_frame();
    return svg.finish();
}

}  // namespace cnnlite::viz
