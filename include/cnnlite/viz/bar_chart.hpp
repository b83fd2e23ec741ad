// Bar charts as SVG: categories along x, one or more series grouped side by side or stacked,
// with the value written on each bar (class frequencies, per-class accuracy).
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/detail/chart_frame.hpp"

namespace cnnlite::viz {

/// One series of a bar chart: a value per category.
struct BarSeries {
    /// Legend entry.
    std::string name;
    /// One value per category.
    std::vector<double> values;
    /// Fill colour; unset = matplotlib's default cycle (tab10) by series index.
    std::optional<Rgb> color;
};

/// A bar chart; `to_svg` renders it.
struct BarChart {
    std::string title;  ///< Title on top.
    std::string x_label;  ///< Label of the x axis.
    std::string y_label;  ///< Label of the y axis.

    /// Category names along the x axis.
    std::vector<std::string> categories;
    /// The series.
    std::vector<BarSeries> series;
    /// Stack the series on each other instead of placing them side by side.
    bool stacked = false;
    /// Write each bar's value on it (stacked: inside each segment, and the total on top).
    bool value_labels = true;
    /// Digits after the point in value labels, and a suffix such as "%".
    int value_decimals = 0;
    /// Appended to value labels (e.g. "%").
    std::string value_suffix;
    /// The y axis reaches at least this value (e.g. 1 for accuracies); room for labels is added.
    std::optional<double> y_max;
    int width = 900;  ///< Width in pixels.
    int height = 480;  ///< Height in pixels.
};

/// The chart as an SVG document.
inline std::string to_svg(const BarChart& chart) {
    using namespace detail;
    const std::size_t n = chart.categories.size();
    check(n > 0, "bar chart '", chart.title, "': no categories");
    check(!chart.series.empty(), "bar chart '", chart.title, "': no series");
    double lo = 0, hi = 0;
    std::vector<double> totals(n, 0.0);
    for (const BarSeries& s : chart.series) {
        check(s.values.size() == n, "bar chart '", chart.title, "': series '", s.name, "' has ", s.values.size(),
              " values for ", n, " categories");
        for (std::size_t i = 0; i < n; ++i) {
            const double v = s.values[i];
            check(std::isfinite(v), "bar chart '", chart.title, "': series '", s.name, "' value ", i, " is ", v);
            check(!chart.stacked || v >= 0, "bar chart '", chart.title, "': stacked bars need values >= 0, '",
                  s.name, "' has ", v);
            totals[i] += v;
            lo = std::min(lo, v);
            hi = std::max(hi, chart.stacked ? totals[i] : v);
        }
    }
    const auto color_of = [&](std::size_t k) { return chart.series[k].color.value_or(tab10(k)); };
    const auto label_of = [&](double v) { return format_fixed(v, chart.value_decimals) + chart.value_suffix; };

    std::vector<LegendEntry> legend;
    if (chart.series.size() > 1)
        for (std::size_t k = 0; k < chart.series.size(); ++k) legend.push_back({chart.series[k].name, color_of(k)});
    if (chart.y_max) hi = std::max(hi, *chart.y_max);
    Ticks ticks = nice_ticks(lo, hi);
    ChartFrame frame(chart.width, chart.height, chart.title, chart.x_label, chart.y_label, tick_labels(ticks),
                     chart.categories, true, legend);

    const double slot = frame.w() / static_cast<double>(n);
    const double group = slot * 0.8;
    const double bar_w = chart.stacked ? group : group / static_cast<double>(chart.series.size());
    // Value labels shrink to fit their bar, down to a legible minimum; wider ones stand upright.
    double widest = 0;
    if (chart.value_labels)
        for (std::size_t i = 0; i < n; ++i) {
            if (chart.stacked) widest = std::max(widest, text_width(label_of(totals[i]), tick_size));
            for (const BarSeries& s : chart.series) widest = std::max(widest, text_width(label_of(s.values[i]), tick_size));
        }
    const double room_w = bar_w + (chart.stacked || chart.series.size() == 1 ? slot - group : 0) - 2;
    const double value_size = std::clamp(tick_size * room_w / std::max(widest, 1.0), 9.0, tick_size);
    const bool upright = widest * value_size / tick_size > room_w;
    if (chart.value_labels && hi > 0) {
        // Extend the axis (not its ticks) so the labels above the tallest bar stay inside the plot.
        const double room = (upright ? widest * value_size / tick_size : value_size * 1.2) + 6, h = frame.h();
        const double needed = (hi - room * ticks.lo / h) / (1 - room / h);
        ticks.hi = std::max(ticks.hi, needed);
    }

    frame.y_grid(ticks);
    SvgWriter& svg = frame.svg();
    const auto value_text = [&](double cx, double top, const std::string& s) {
        if (upright)
            svg.text(cx + centre_to_baseline(value_size), top - 4, s, value_size, colors::black, "start", false, -90);
        else
            svg.text(cx, top - 4, s, value_size, colors::black, "middle");
    };
    for (std::size_t i = 0; i < n; ++i) {
        const double group_x = frame.x() + slot * static_cast<double>(i) + (slot - group) / 2;
        double base = 0;
        for (std::size_t k = 0; k < chart.series.size(); ++k) {
            const double v = chart.series[k].values[i];
            const double x = chart.stacked ? group_x : group_x + bar_w * static_cast<double>(k);
            const double from = chart.stacked ? base : 0, to = chart.stacked ? base + v : v;
            const double y_top = frame.map_y(std::max(from, to), ticks), y_bottom = frame.map_y(std::min(from, to), ticks);
            svg.rect(x, y_top, bar_w, y_bottom - y_top, color_of(k));
            if (chart.value_labels) {
                const std::string s = label_of(v);
                if (!chart.stacked) {
                    value_text(x + bar_w / 2, y_top, s);
                } else if (y_bottom - y_top >= value_size + 4 && text_width(s, value_size) <= bar_w - 4) {
                    const Rgb ink = luminance(color_of(k)) < 0.5 ? colors::white : colors::black;
                    svg.text(x + bar_w / 2, (y_top + y_bottom) / 2 + centre_to_baseline(value_size), s, value_size,
                             ink, "middle");
                }
            }
            base += v;
        }
        if (chart.stacked && chart.value_labels)
            value_text(group_x + group / 2, frame.map_y(totals[i], ticks), label_of(totals[i]));
    }
    if (lo < 0) svg.line(frame.x(), frame.map_y(0, ticks), frame.right(), frame.map_y(0, ticks), colors::black, 1);
    frame.y_axis(ticks);
    frame.x_categories(chart.categories);
    frame.finish_frame();
    return svg.finish();
}

}  // namespace cnnlite::viz
