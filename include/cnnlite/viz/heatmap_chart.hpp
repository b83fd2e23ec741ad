// Heat maps as SVG: a matrix of coloured cells with its value written in each, class names as
// tick labels and a colour bar (the confusion matrix).
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/colormap.hpp"
#include "cnnlite/viz/detail/chart_frame.hpp"

namespace cnnlite::viz {

/// A matrix shown as coloured cells; `to_svg` renders it. Row 0 is drawn at the top.
struct HeatmapChart {
    std::string title;  ///< Title on top.
    std::string x_label;  ///< Label of the x axis.
    std::string y_label;  ///< Label of the y axis.

    std::vector<std::string> row_labels;  ///< Label of each row.
    std::vector<std::string> column_labels;  ///< Label of each column.

    /// values[row][column]; NaN cells stay blank.
    std::vector<std::vector<double>> values;
    /// Colour map of the cells.
    const Colormap* colormap = &Colormap::blues();
    /// Write each value in its cell.
    bool show_values = true;
    /// Digits after the point; -1 = none when every value is a whole number, else 2.
    int value_decimals = -1;
    std::optional<double> vmin;  ///< Colour range; unset = the finite min/max. Value at the low end of the colours.
    std::optional<double> vmax;  ///< Value at the high end of the colours.

    /// Draw the colour bar.
    bool colorbar = true;
    int width = 760;  ///< Width in pixels.
    int height = 660;  ///< Height in pixels.
};

/// The chart as an SVG document.
inline std::string to_svg(const HeatmapChart& chart) {
    using namespace detail;
    const std::size_t rows = chart.values.size();
    check(rows > 0 && !chart.values[0].empty(), "heat map '", chart.title, "': no values");
    const std::size_t cols = chart.values[0].size();
    bool whole = true;
    std::vector<const std::vector<double>*> all;
    for (std::size_t r = 0; r < rows; ++r) {
        check(chart.values[r].size() == cols, "heat map '", chart.title, "': row ", r, " has ",
              chart.values[r].size(), " values, row 0 has ", cols);
        for (double v : chart.values[r]) whole = whole && (!std::isfinite(v) || v == std::floor(v));
        all.push_back(&chart.values[r]);
    }
    check(chart.row_labels.empty() || chart.row_labels.size() == rows, "heat map '", chart.title, "': ",
          chart.row_labels.size(), " row labels for ", rows, " rows");
    check(chart.column_labels.empty() || chart.column_labels.size() == cols, "heat map '", chart.title, "': ",
          chart.column_labels.size(), " column labels for ", cols, " columns");
    check(chart.colormap != nullptr, "heat map '", chart.title, "': no colour map");
    const auto [data_lo, data_hi] = finite_range(all);
    const double lo = chart.vmin.value_or(std::isfinite(data_lo) ? data_lo : 0);
    const double hi = chart.vmax.value_or(std::isfinite(data_hi) ? data_hi : 1);
    const int decimals = chart.value_decimals >= 0 ? chart.value_decimals : (whole ? 0 : 2);

    // Layout: row labels | matrix | colour bar with its labels; column labels and x label below.
    double row_label_w = 0, col_label_w = 0;
    for (const auto& s : chart.row_labels) row_label_w = std::max(row_label_w, text_width(s, tick_size));
    for (const auto& s : chart.column_labels) col_label_w = std::max(col_label_w, text_width(s, tick_size));
    const Ticks bar_ticks = nice_ticks(lo, hi);
    double bar_label_w = 0;
    for (const auto& s : tick_labels(bar_ticks)) bar_label_w = std::max(bar_label_w, text_width(s, tick_size));
    const double top = chart_margin + (chart.title.empty() ? 0 : title_size * 1.25 + 8);
    const double left = chart_margin + (chart.y_label.empty() ? 0 : label_size * 1.2 + 8) + row_label_w + 8;
    const double bar_w = chart.colorbar ? 16 + 6 + 8 + bar_label_w + 14 : 0;
    const double avail_w = chart.width - left - chart_margin - bar_w;
    const bool rotate = col_label_w > avail_w / static_cast<double>(cols) - 4;
    constexpr double angle = 40, rad = angle * 3.14159265358979323846 / 180;
    const double col_label_h = rotate ? col_label_w * std::sin(rad) + tick_size : tick_size * 1.2;
    const double bottom = chart_margin + 6 + col_label_h + (chart.x_label.empty() ? 0 : label_size * 1.2 + 8);
    const double avail_h = chart.height - top - bottom;
    const double cell = std::min(avail_w / static_cast<double>(cols), avail_h / static_cast<double>(rows));
    check(cell >= 8, "heat map '", chart.title, "': ", chart.width, "x", chart.height, " is too small for a ", rows,
          "x", cols, " matrix and its labels");
    const double mx = left + (avail_w - cell * static_cast<double>(cols)) / 2, my = top;
    const double mw = cell * static_cast<double>(cols), mh = cell * static_cast<double>(rows);

    SvgWriter svg(chart.width, chart.height);
    // Cell values: the largest size up to the tick size at which every value fits its cell.
    double value_size = tick_size;
    if (chart.show_values)
        for (const auto& row : chart.values)
            for (double v : row)
                if (std::isfinite(v))
                    value_size = std::min(value_size, tick_size * (cell - 4) /
                                                          std::max(text_width(format_fixed(v, decimals), tick_size), 1.0));
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
            const double v = chart.values[r][c];
            if (!std::isfinite(v)) continue;
            const Rgb fill = (*chart.colormap)(normalize(v, lo, hi));
            const double x = mx + cell * static_cast<double>(c), y = my + cell * static_cast<double>(r);
            svg.rect(x, y, cell, cell, fill);
            if (chart.show_values && value_size >= 6)
                svg.text(x + cell / 2, y + cell / 2 + centre_to_baseline(value_size), format_fixed(v, decimals),
                         value_size, luminance(fill) < 0.45 ? colors::white : colors::black, "middle");
        }
    svg.rect(mx, my, mw, mh, colors::white, 0, colors::grey, 0.8);  // outline
    for (std::size_t r = 0; r < chart.row_labels.size(); ++r)
        svg.text(mx - 6, my + cell * (static_cast<double>(r) + 0.5) + centre_to_baseline(tick_size), chart.row_labels[r],
                 tick_size, colors::black, "end");
    for (std::size_t c = 0; c < chart.column_labels.size(); ++c) {
        const double cx = mx + cell * (static_cast<double>(c) + 0.5);
        if (rotate)
            svg.text(cx + 3, my + mh + 6 + tick_size * 0.6, chart.column_labels[c], tick_size, colors::black, "end",
                     false, -angle);
        else
            svg.text(cx, my + mh + 6 + tick_size, chart.column_labels[c], tick_size, colors::black, "middle");
    }
    if (!chart.title.empty())
        svg.text(mx + mw / 2, chart_margin + title_size, chart.title, title_size, colors::black, "middle", true);
    if (!chart.x_label.empty())
        svg.text(mx + mw / 2, my + mh + 6 + col_label_h + 6 + label_size, chart.x_label, label_size, colors::black,
                 "middle");
    if (!chart.y_label.empty())
        svg.text(chart_margin + label_size, my + mh / 2, chart.y_label, label_size, colors::black, "middle", false,
                 -90);
    if (chart.colorbar) {
        // The bar as thin horizontal bands from the colour map, values growing upwards.
        const double bx = mx + mw + 16, steps = 64, band = mh / steps;
        for (int i = 0; i < steps; ++i) {
            const double v = (i + 0.5) / steps;
            svg.rect(bx, my + mh - band * (i + 1), 16, band + 0.3, (*chart.colormap)(v));
        }
        svg.rect(bx, my, 16, mh, colors::white, 0, colors::grey, 0.8);
        for (double t : bar_ticks.values) {
            if (t < std::min(lo, hi) - 1e-12 || t > std::max(lo, hi) + 1e-12) continue;
            const double py = my + mh - normalize(t, lo, hi) * mh;
            svg.line(bx + 16, py, bx + 20, py, colors::black, 1);
            svg.text(bx + 23, py + centre_to_baseline(tick_size), bar_ticks.label(t), tick_size);
        }
    }
    return svg.finish();
}

}  // namespace cnnlite::viz
