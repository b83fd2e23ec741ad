// Line charts as SVG: several (x, y) series with a legend, axis labels, optional markers and
// vertical reference lines (learning curves, with the kept epoch marked).
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/detail/chart_frame.hpp"

namespace cnnlite::viz {

/// One line: points (x[i], y[i]); a non-finite y breaks the line there.
struct LineSeries {
    /// Legend entry.
    std::string name;
    std::vector<double> x;  ///< The x coordinates.
    std::vector<double> y;  ///< The y coordinates.

    /// Line colour; unset = matplotlib's default cycle (tab10) by series index.
    std::optional<Rgb> color;
    /// Draw the line dashed.
    bool dashed = false;
    /// Draw a dot at every point.
    bool markers = false;
};

/// A labelled vertical line at x, such as the epoch whose weights were kept.
struct VerticalMarker {
    /// Where the line is.
    double x = 0;
    /// Text next to it.
    std::string label;
};

/// A line chart; `to_svg` renders it.
struct LineChart {
    std::string title;  ///< Title on top.
    std::string x_label;  ///< Label of the x axis.
    std::string y_label;  ///< Label of the y axis.

    /// The lines.
    std::vector<LineSeries> series;
    /// Vertical markers.
    std::vector<VerticalMarker> markers;
    std::optional<double> y_min;  ///< Fixed y range (lines beyond it are clipped); unset = fit the data. Lower end of the y axis.
    std::optional<double> y_max;  ///< Upper end of the y axis.

    /// Ticks on the x axis at whole numbers only (epochs, steps).
    bool whole_x_ticks = false;
    int width = 540;  ///< Width in pixels.
    int height = 400;  ///< Height in pixels.
};

/// The chart as an SVG document.
inline std::string to_svg(const LineChart& chart) {
    using namespace detail;
    check(!chart.series.empty(), "line chart '", chart.title, "': no series");
    std::vector<const std::vector<double>*> xs, ys;
    for (const LineSeries& s : chart.series) {
        check(s.x.size() == s.y.size(), "line chart '", chart.title, "': series '", s.name, "' has ", s.x.size(),
              " x values and ", s.y.size(), " y values");
        for (double v : s.x)
            check(std::isfinite(v), "line chart '", chart.title, "': series '", s.name, "' has x value ", v);
        xs.push_back(&s.x);
        ys.push_back(&s.y);
    }
    auto [x_lo, x_hi] = finite_range(xs);
    auto [y_lo, y_hi] = finite_range(ys);
    check(x_lo <= x_hi && y_lo <= y_hi, "line chart '", chart.title, "': no finite points");
    for (const VerticalMarker& m : chart.markers) {
        x_lo = std::min(x_lo, m.x);
        x_hi = std::max(x_hi, m.x);
    }
    const double pad = (y_hi - y_lo) * 0.05;  // keep lines off the frame, as matplotlib's margins do
    const Ticks y_ticks = nice_ticks(chart.y_min.value_or(y_lo - pad), chart.y_max.value_or(y_hi + pad));
    const Ticks x_ticks = nice_ticks(x_lo, x_hi, 6, chart.whole_x_ticks);

    std::vector<LegendEntry> legend;
    const auto color_of = [&](std::size_t k) { return chart.series[k].color.value_or(tab10(k)); };
    for (std::size_t k = 0; k < chart.series.size(); ++k)
        if (!chart.series[k].name.empty())
            legend.push_back({chart.series[k].name, color_of(k), chart.series[k].dashed ? Swatch::dashed_line : Swatch::line});
    ChartFrame frame(chart.width, chart.height, chart.title, chart.x_label, chart.y_label, tick_labels(y_ticks),
                     tick_labels(x_ticks), false, legend);
    SvgWriter& svg = frame.svg();
    frame.y_grid(y_ticks);
    for (const VerticalMarker& m : chart.markers) {
        const double px = frame.map_x(m.x, x_ticks);
        svg.line(px, frame.y(), px, frame.bottom(), colors::grey, 1, "4,3");
        if (!m.label.empty()) {
            // Put the label on the side with more room, so it stays inside the plot.
            const bool left = px - frame.x() > frame.right() - px;
            svg.text(left ? px - 4 : px + 4, frame.y() + tick_size + 2, m.label, tick_size, colors::grey,
                     left ? "end" : "start");
        }
    }
    svg.begin_clip(frame.x() - 4, frame.y() - 4, frame.w() + 8, frame.h() + 8);  // data beyond a fixed range
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
        const LineSeries& s = chart.series[k];
        std::vector<std::pair<double, double>> run;
        const auto flush = [&] {
            svg.polyline(run, color_of(k), 1.8, s.dashed ? "6,3" : "");
            run.clear();
        };
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!std::isfinite(s.y[i])) {
                flush();
                continue;
            }
            run.emplace_back(frame.map_x(s.x[i], x_ticks), frame.map_y(s.y[i], y_ticks));
            if (s.markers) svg.circle(run.back().first, run.back().second, 2.5, color_of(k));
        }
        flush();
    }
    svg.end_clip();
    frame.y_axis(y_ticks);
    frame.x_axis(x_ticks);
    frame.finish_frame();
    return svg.finish();
}

}  // namespace cnnlite::viz
