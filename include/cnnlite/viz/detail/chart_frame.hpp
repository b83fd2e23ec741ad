// Private: what every SVG chart shares — text measurement, "nice" axis ticks, the layout of
// title, axes, tick labels, axis labels and a legend around a plot area, and drawing them.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/svg.hpp"
#include "cnnlite/viz/text.hpp"

namespace cnnlite::viz::detail {

/// Chart text sizes (pixels per em).
inline constexpr double title_size = 16;
inline constexpr double label_size = 13;
inline constexpr double tick_size = 11;
/// Blank border around every chart.
inline constexpr double chart_margin = 12;

/// Width of `text` in DejaVu Sans (what the charts name first in font-family); without the
/// font installed, an estimate from the average DejaVu advance.
inline double text_width(std::string_view text, double size, bool bold = false) {
    static const bool have_fonts = [] {
        try {
            (void)Font::regular();
            (void)Font::bold();
            return true;
        } catch (const Error&) {
            return false;
        }
    }();
    if (have_fonts) return (bold ? Font::bold() : Font::regular()).width(text, size);
    std::size_t code_points = 0;
    for (std::size_t i = 0; i < text.size(); ++code_points) next_code_point(text, i);
    return static_cast<double>(code_points) * size * (bold ? 0.68 : 0.62);
}

/// Offset from a line's vertical centre to its baseline: half of DejaVu's cap height.
inline double centre_to_baseline(double size) { return 0.36 * size; }

/// Ticks covering [lo, hi] at 1, 2 or 5 times a power of ten, about `target` of them.
struct Ticks {
    double lo = 0, hi = 1, step = 1;
    int decimals = 0;
    std::vector<double> values;

    /// The tick's text, with a typographic minus sign as matplotlib writes it.
    std::string label(double v) const {
        std::string s = format_fixed(v, decimals);
        return s[0] == '-' ? "\u2212" + s.substr(1) : s;
    }
};

/// Ticks for data in [lo, hi]; the axis is widened to whole steps. `whole` keeps the step at 1
/// or more, for axes that count things (epochs): no tick at 1.5 epochs.
inline Ticks nice_ticks(double lo, double hi, int target = 6, bool whole = false) {
    check(std::isfinite(lo) && std::isfinite(hi), "chart: axis range [", lo, ", ", hi, "] is not finite");
    if (hi < lo) std::swap(lo, hi);
    if (hi == lo) {  // a flat series still gets an axis around its value
        const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
        lo -= pad;
        hi += pad;
    }
    const double raw = (hi - lo) / std::max(target, 1);
    const double power = std::pow(10.0, std::floor(std::log10(raw)));
    double step = power;
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * power >= raw * 0.999) {
            step = m * power;
            break;
        }
    if (whole) step = std::max(step, 1.0);
    Ticks t;
    t.step = step;
    t.lo = std::floor(lo / step + 1e-9) * step;
    t.hi = std::ceil(hi / step - 1e-9) * step;
    t.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
    // k / 5 rather than k * 0.2 or a running sum: each tick is the double nearest its decimal value.
    const double per_unit = step < 1 ? std::round(1 / step) : 0;
    const long first = std::lround(t.lo / step), last = std::lround(t.hi / step);
    for (long k = first; k <= last; ++k)
        t.values.push_back(per_unit > 0 ? static_cast<double>(k) / per_unit : static_cast<double>(k) * step);
    return t;
}

/// Ticks inside [lo, hi] with the axis exactly [lo, hi] (matplotlib's way for scatter plots,
/// where widening to whole steps would waste space).
inline Ticks ticks_within(double lo, double hi, int target = 6) {
    Ticks t = nice_ticks(lo, hi, target);
    if (hi > lo) {
        t.lo = lo;
        t.hi = hi;
        std::vector<double> inside;
        for (double v : t.values)
            if (v >= lo - 1e-12 * std::abs(hi - lo) && v <= hi + 1e-12 * std::abs(hi - lo)) inside.push_back(v);
        t.values = inside;
    }
    return t;
}

/// How a legend entry shows its series.
enum class Swatch { box, line, dashed_line, dot };

/// One legend entry.
struct LegendEntry {
    std::string name;
    Rgb color;
    Swatch swatch = Swatch::box;
    double opacity = 1;
};

/// The plot rectangle of a chart and what surrounds it, from the chart's texts.
class ChartFrame {
public:
    /// `y_tick_labels` and `x_tick_labels` are the texts the axes will show (to reserve space);
    /// category labels that do not fit their slot are drawn rotated.
    ChartFrame(double width, double height, std::string title, std::string x_label, std::string y_label,
               const std::vector<std::string>& y_tick_labels, const std::vector<std::string>& x_tick_labels,
               bool x_categories, std::vector<LegendEntry> legend)
        : svg_(width, height), title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)),
          legend_(std::move(legend)), x_categories_(x_categories) {
        double top = chart_margin + (title_.empty() ? 0 : title_size * 1.25 + 8);
        double y_tick_w = 0;
        for (const auto& s : y_tick_labels) y_tick_w = std::max(y_tick_w, text_width(s, tick_size));
        double left = chart_margin + (y_label_.empty() ? 0 : label_size * 1.2 + 8) + y_tick_w + 8;
        legend_w_ = 0;
        for (const auto& e : legend_) legend_w_ = std::max(legend_w_, text_width(e.name, tick_size) + 34);
        double right = chart_margin + legend_w_ + (legend_.empty() ? 4 : 8);
        // Rotate category labels when the widest does not fit the slot it labels.
        double x_tick_w = 0;
        for (const auto& s : x_tick_labels) x_tick_w = std::max(x_tick_w, text_width(s, tick_size));
        const double plot_w_guess = width - left - right;
        if (x_categories_ && !x_tick_labels.empty())
            rotate_x_ = x_tick_w > plot_w_guess / static_cast<double>(x_tick_labels.size()) - 6;
        const double x_tick_h =
            rotate_x_ ? x_tick_w * std::sin(angle_rad) + tick_size * std::cos(angle_rad) : tick_size * 1.2;
        // A rotated first label reaches left of the plot; keep it inside the picture.
        if (rotate_x_) left = std::max(left, chart_margin + x_tick_w * std::cos(angle_rad) -
                                                 plot_w_guess / static_cast<double>(x_tick_labels.size()) / 2);
        const double bottom = chart_margin + 6 + x_tick_h + (x_label_.empty() ? 0 : label_size * 1.2 + 6);
        plot_x_ = left;
        plot_y_ = top;
        plot_w_ = width - left - right;
        plot_h_ = height - top - bottom;
        check(plot_w_ > 40 && plot_h_ > 40, "chart '", title_, "': ", width, "x", height,
              " is too small for its labels; make it larger");
    }

    SvgWriter& svg() { return svg_; }
    double x() const { return plot_x_; }
    double y() const { return plot_y_; }
    double w() const { return plot_w_; }
    double h() const { return plot_h_; }
    double bottom() const { return plot_y_ + plot_h_; }
    double right() const { return plot_x_ + plot_w_; }

    /// Light horizontal grid lines at the y ticks (drawn first, beneath the data).
    void y_grid(const Ticks& t) {
        for (double v : t.values) {
            const double py = map_y(v, t);
            svg_.line(plot_x_, py, right(), py, colors::light_grey, 0.8);
        }
    }

    /// Pixel row of value v on a y axis with ticks t.
    double map_y(double v, const Ticks& t) const { return bottom() - (v - t.lo) / (t.hi - t.lo) * plot_h_; }
    /// Pixel column of value v on an x axis with ticks t.
    double map_x(double v, const Ticks& t) const { return plot_x_ + (v - t.lo) / (t.hi - t.lo) * plot_w_; }

    /// Left and bottom axis lines, y ticks with labels, and the labels of both axes.
    void y_axis(const Ticks& t) {
        for (double v : t.values) {
            const double py = map_y(v, t);
            svg_.line(plot_x_ - 5, py, plot_x_, py, colors::black, 1);
            svg_.text(plot_x_ - 8, py + centre_to_baseline(tick_size), t.label(v), tick_size, colors::black, "end");
        }
    }

    /// Numeric x ticks with labels.
    void x_axis(const Ticks& t) {
        for (double v : t.values) {
            const double px = map_x(v, t);
            svg_.line(px, bottom(), px, bottom() + 5, colors::black, 1);
            svg_.text(px, bottom() + 7 + tick_size, t.label(v), tick_size, colors::black, "middle");
        }
    }

    /// Category x ticks: label i centred under slot i of `count` equal slots (rotated if crowded).
    void x_categories(const std::vector<std::string>& labels) {
        const double slot = plot_w_ / static_cast<double>(labels.size());
        for (std::size_t i = 0; i < labels.size(); ++i) {
            const double px = plot_x_ + slot * (static_cast<double>(i) + 0.5);
            svg_.line(px, bottom(), px, bottom() + 5, colors::black, 1);
            if (rotate_x_)
                svg_.text(px + 3, bottom() + 8 + tick_size * 0.5, labels[i], tick_size, colors::black, "end", false,
                          -angle_deg);
            else
                svg_.text(px, bottom() + 7 + tick_size, labels[i], tick_size, colors::black, "middle");
        }
    }

    /// Axis lines, the axis labels, the title and the legend (drawn last, on top).
    void finish_frame() {
        svg_.line(plot_x_, plot_y_, plot_x_, bottom(), colors::black, 1);
        svg_.line(plot_x_, bottom(), right(), bottom(), colors::black, 1);
        if (!title_.empty())
            svg_.text(plot_x_ + plot_w_ / 2, chart_margin + title_size, title_, title_size, colors::black, "middle",
                      true);
        if (!x_label_.empty())
            svg_.text(plot_x_ + plot_w_ / 2, svg_.height() - chart_margin - 3, x_label_, label_size, colors::black,
                      "middle");
        if (!y_label_.empty()) {
            const double lx = chart_margin + label_size;
            svg_.text(lx, plot_y_ + plot_h_ / 2, y_label_, label_size, colors::black, "middle", false, -90);
        }
        draw_legend();
    }

private:
    static constexpr double angle_deg = 35;
    static constexpr double angle_rad = angle_deg * 3.14159265358979323846 / 180;

    void draw_legend() {
        if (legend_.empty()) return;
        const double x0 = right() + 12, row = tick_size * 1.7;
        double y = plot_y_ + 4;
        svg_.rect(x0 - 6, y - 6, legend_w_ + 4, row * static_cast<double>(legend_.size()) + 8, colors::white, 1,
                  colors::light_grey, 1);
        for (const LegendEntry& e : legend_) {
            const double cy = y + row / 2 - 2;
            switch (e.swatch) {
                case Swatch::box: svg_.rect(x0, cy - 5, 18, 10, e.color, e.opacity); break;
                case Swatch::line: svg_.line(x0, cy, x0 + 18, cy, e.color, 2); break;
                case Swatch::dashed_line: svg_.line(x0, cy, x0 + 18, cy, e.color, 2, "5,3"); break;
                case Swatch::dot: svg_.circle(x0 + 9, cy, 4, e.color, e.opacity); break;
            }
            svg_.text(x0 + 24, cy + centre_to_baseline(tick_size), e.name, tick_size);
            y += row;
        }
    }

    SvgWriter svg_;
    std::string title_, x_label_, y_label_;
    std::vector<LegendEntry> legend_;
    bool x_categories_ = false, rotate_x_ = false;
    double legend_w_ = 0, plot_x_ = 0, plot_y_ = 0, plot_w_ = 0, plot_h_ = 0;
};

/// Labels of ticks t (for reserving their space before layout).
inline std::vector<std::string> tick_labels(const Ticks& t) {
    std::vector<std::string> labels;
    for (double v : t.values) labels.push_back(t.label(v));
    return labels;
}

/// Finite min and max over several series; {+inf, -inf} when there is no finite value.
inline std::pair<double, double> finite_range(const std::vector<const std::vector<double>*>& series) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto* s : series)
        for (double v : *s)
            if (std::isfinite(v)) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
    return {lo, hi};
}

}  // namespace cnnlite::viz::detail
