// Histograms as SVG: several series over shared bins, drawn translucent on top of each other
// with a legend (the per-class distributions of the non-background pixel ratio).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/detail/chart_frame.hpp"

namespace cnnlite::viz {

/// Counts of `values` in `bins` equal bins over [lo, hi], as numpy.histogram counts them: each
/// bin includes its left edge, the last bin also its right edge; values outside or NaN are skipped.
inline std::vector<std::size_t> histogram_counts(const std::vector<double>& values, int bins, double lo, double hi) {
    check(bins > 0, "histogram_counts: ", bins, " bins");
    check(std::isfinite(lo) && std::isfinite(hi) && hi > lo, "histogram_counts: bad range [", lo, ", ", hi, "]");
    std::vector<std::size_t> counts(static_cast<std::size_t>(bins), 0);
    // numpy's arithmetic: edges from linspace (i * step + lo, the last exactly hi), a first guess
    // from the scaled value, then the edges decide.
    const double step = (hi - lo) / bins, norm = bins / (hi - lo);
    const auto edge = [&](std::ptrdiff_t i) {
        volatile double scaled = static_cast<double>(i) * step;  // no fused multiply-add: numpy rounds twice
        return i == bins ? hi : scaled + lo;
    };
    for (double v : values) {
        if (!(v >= lo && v <= hi)) continue;
        auto b = std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>((v - lo) * norm), bins - 1);
        if (v < edge(b)) --b;
        else if (b + 1 < bins && v >= edge(b + 1)) ++b;
        ++counts[static_cast<std::size_t>(b)];
    }
    return counts;
}

/// One series of a histogram.
struct HistogramSeries {
    /// Legend entry.
    std::string name;
    /// The values.
    std::vector<double> values;
    /// Fill colour; unset = matplotlib's default cycle (tab10) by series index.
    std::optional<Rgb> color;
};

/// Overlaid histograms over shared bins; `to_svg` renders them.
struct HistogramChart {
    std::string title;  ///< Title on top.
    std::string x_label;  ///< Label of the x axis.
    std::string y_label = "count";  ///< Label of the y axis.

    /// The series, drawn over each other.
    std::vector<HistogramSeries> series;
    /// Number of bins.
    int bins = 30;
    std::optional<double> lo;  ///< Bin range; unset = the finite min/max over all series. Lower end of the bins.
    std::optional<double> hi;  ///< Upper end of the bins.

    /// Fill opacity of each series.
    double opacity = 0.5;
    /// Show densities (count / (n * bin width)) instead of counts, to compare series of unequal size.
    bool density = false;
    int width = 800;  ///< Width in pixels.
    int height = 460;  ///< Height in pixels.
};

/// The chart as an SVG document.
inline std::string to_svg(const HistogramChart& chart) {
    using namespace detail;
    check(!chart.series.empty(), "histogram '", chart.title, "': no series");
    check(chart.opacity > 0 && chart.opacity <= 1, "histogram '", chart.title, "': opacity ", chart.opacity);
    std::vector<const std::vector<double>*> all;
    for (const HistogramSeries& s : chart.series) all.push_back(&s.values);
    auto [lo, hi] = finite_range(all);
    check(lo <= hi || (chart.lo && chart.hi), "histogram '", chart.title, "': no finite values");
    lo = chart.lo.value_or(lo);
    hi = chart.hi.value_or(hi);
    if (hi == lo) {  // numpy widens a degenerate range by 0.5 each way
        lo -= 0.5;
        hi += 0.5;
    }
    const double bin_w = (hi - lo) / chart.bins;
    std::vector<std::vector<double>> heights;
    double top = 0;
    for (const HistogramSeries& s : chart.series) {
        const auto counts = histogram_counts(s.values, chart.bins, lo, hi);
        std::size_t n = 0;
        for (std::size_t c : counts) n += c;
        std::vector<double> h;
        for (std::size_t c : counts)
            h.push_back(chart.density ? (n ? static_cast<double>(c) / (static_cast<double>(n) * bin_w) : 0.0)
                                      : static_cast<double>(c));
        top = std::max(top, *std::max_element(h.begin(), h.end()));
        heights.push_back(std::move(h));
    }
    const Ticks y_ticks = nice_ticks(0, top > 0 ? top * 1.05 : 1);
    const Ticks x_ticks = nice_ticks(lo, hi);
    std::vector<LegendEntry> legend;
    const auto color_of = [&](std::size_t k) { return chart.series[k].color.value_or(tab10(k)); };
    for (std::size_t k = 0; k < chart.series.size(); ++k)
        legend.push_back({chart.series[k].name, color_of(k), Swatch::box, chart.opacity});
    ChartFrame frame(chart.width, chart.height, chart.title, chart.x_label, chart.y_label, tick_labels(y_ticks),
                     tick_labels(x_ticks), false, legend);
    SvgWriter& svg = frame.svg();
    frame.y_grid(y_ticks);
    for (std::size_t k = 0; k < heights.size(); ++k)
        for (int b = 0; b < chart.bins; ++b) {
            const double h = heights[k][static_cast<std::size_t>(b)];
            if (h <= 0) continue;
            const double x0 = frame.map_x(lo + bin_w * b, x_ticks), x1 = frame.map_x(lo + bin_w * (b + 1), x_ticks);
            const double y = frame.map_y(h, y_ticks);
            svg.rect(x0, y, x1 - x0, frame.bottom() - y, color_of(k), chart.opacity);
        }
    frame.y_axis(y_ticks);
    frame.x_axis(x_ticks);
    frame.finish_frame();
    return svg.finish();
}

}  // namespace cnnlite::viz
