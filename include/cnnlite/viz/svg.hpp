// SVG documents: a small writer for the shapes charts are made of (with XML escaping and
// locale-independent numbers), atomic writing, and placing charts side by side.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <locale>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/core/files.hpp"
#include "cnnlite/viz/detail/base64.hpp"

namespace cnnlite::viz {

/// Escapes text for XML and HTML content and attribute values (&, <, >, ", ').
inline std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

/// `v` with `decimals` digits after the point, in the C locale whatever the global locale is
/// (SVG, HTML and CSV readers all want '.').
inline std::string format_fixed(double v, int decimals) {
    std::ostringstream out;
    out.imbue(std::locale::classic());
    out.setf(std::ios::fixed);
    out.precision(decimals);
    out << (v == 0 ? 0.0 : v);  // no "-0.00"
    std::string s = out.str();
    if (s.find_first_not_of("-0.") == std::string::npos && s[0] == '-') s.erase(0, 1);
    return s;
}

/// Writes SVG text to `path` atomically.
inline void write_svg(const std::string& path, const std::string& svg) {
    check(svg.find("<svg") != std::string::npos, "write_svg: text for '", path, "' is not an SVG document");
    cnnlite::write_file_atomically(path, svg);
}

namespace detail {

/// Coordinates with at most two decimals and no trailing zeros: small files, exact enough.
inline std::string coord(double v) {
    std::string s = format_fixed(std::round(v * 100) / 100, 2);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
}

/// Appends SVG elements to a document of a given size. Every text goes through xml_escape.
class SvgWriter {
public:
    static constexpr const char* font_family = "DejaVu Sans, Verdana, Arial, sans-serif";

    /// Starts a document of the given size with a white background.
    SvgWriter(double width, double height) : width_(width), height_(height) {
        check(width > 0 && height > 0, "SvgWriter: size ", width, "x", height, " must be positive");
        out_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\""
             << coord(width) << "\" height=\"" << coord(height) << "\" viewBox=\"0 0 " << coord(width) << ' '
             << coord(height) << "\" font-family=\"" << font_family << "\">\n";
        rect(0, 0, width, height, colors::white);
    }

    /// Document width in SVG units (pixels).
    double width() const { return width_; }
    /// Document height in SVG units (pixels).
    double height() const { return height_; }

    /// A filled rectangle; `stroke_width` 0 draws no outline.
    void rect(double x, double y, double w, double h, Rgb fill, double opacity = 1, Rgb stroke = colors::black,
              double stroke_width = 0) {
        out_ << "<rect x=\"" << coord(x) << "\" y=\"" << coord(y) << "\" width=\"" << coord(w) << "\" height=\""
             << coord(h) << "\" fill=\"" << to_hex(fill) << '"';
        if (opacity < 1) out_ << " fill-opacity=\"" << coord(opacity) << '"';
        if (stroke_width > 0) out_ << " stroke=\"" << to_hex(stroke) << "\" stroke-width=\"" << coord(stroke_width) << '"';
        out_ << "/>\n";
    }

    /// A straight line; `dash` is an SVG dash array such as "6,3", empty for solid.
    void line(double x1, double y1, double x2, double y2, Rgb stroke, double width = 1, std::string_view dash = {}) {
        out_ << "<line x1=\"" << coord(x1) << "\" y1=\"" << coord(y1) << "\" x2=\"" << coord(x2) << "\" y2=\""
             << coord(y2) << "\" stroke=\"" << to_hex(stroke) << "\" stroke-width=\"" << coord(width) << '"';
        if (!dash.empty()) out_ << " stroke-dasharray=\"" << dash << '"';
        out_ << "/>\n";
    }

    /// A polyline through `points` (at least two).
    void polyline(const std::vector<std::pair<double, double>>& points, Rgb stroke, double width = 1.5,
                  std::string_view dash = {}) {
        if (points.size() < 2) return;
        out_ << "<polyline fill=\"none\" stroke=\"" << to_hex(stroke) << "\" stroke-width=\"" << coord(width)
             << "\" stroke-linejoin=\"round\"";
        if (!dash.empty()) out_ << " stroke-dasharray=\"" << dash << '"';
        out_ << " points=\"";
        for (std::size_t i = 0; i < points.size(); ++i)
            out_ << (i ? " " : "") << coord(points[i].first) << ',' << coord(points[i].second);
        out_ << "\"/>\n";
    }

    /// A filled circle.
    void circle(double cx, double cy, double r, Rgb fill, double opacity = 1) {
        out_ << "<circle cx=\"" << coord(cx) << "\" cy=\"" << coord(cy) << "\" r=\"" << coord(r) << "\" fill=\""
             << to_hex(fill) << '"';
        if (opacity < 1) out_ << " fill-opacity=\"" << coord(opacity) << '"';
        out_ << "/>\n";
    }

    /// Text with its baseline at y; `anchor` is "start", "middle" or "end"; `rotate` in degrees
    /// (clockwise, about the anchor point).
    void text(double x, double y, std::string_view s, double size, Rgb color = colors::black,
              std::string_view anchor = "start", bool bold = false, double rotate = 0) {
        out_ << "<text x=\"" << coord(x) << "\" y=\"" << coord(y) << "\" font-size=\"" << coord(size) << '"';
        if (anchor != "start") out_ << " text-anchor=\"" << anchor << '"';
        if (bold) out_ << " font-weight=\"bold\"";
        if (color != colors::black) out_ << " fill=\"" << to_hex(color) << '"';
        if (rotate != 0)
            out_ << " transform=\"rotate(" << coord(rotate) << ' ' << coord(x) << ' ' << coord(y) << ")\"";
        out_ << '>' << xml_escape(s) << "</text>\n";
    }

    /// A PNG image stretched over the given box, embedded as a data URI.
    void png(double x, double y, double w, double h, const std::vector<std::uint8_t>& png_bytes) {
        out_ << "<image x=\"" << coord(x) << "\" y=\"" << coord(y) << "\" width=\"" << coord(w) << "\" height=\""
             << coord(h) << "\" preserveAspectRatio=\"none\" xlink:href=\"data:image/png;base64,"
             << base64_encode(png_bytes.data(), png_bytes.size()) << "\"/>\n";
    }

    /// Starts a region whose drawing is clipped to the given box (a nested <svg>, which needs no
    /// id that could clash when several charts are inlined in one HTML page).
    void begin_clip(double x, double y, double w, double h) {
        out_ << "<svg x=\"" << coord(x) << "\" y=\"" << coord(y) << "\" width=\"" << coord(w) << "\" height=\""
             << coord(h) << "\" viewBox=\"" << coord(x) << ' ' << coord(y) << ' ' << coord(w) << ' ' << coord(h)
             << "\">\n";
    }
    /// Ends the region begun by begin_clip.
    void end_clip() { out_ << "</svg>\n"; }

    /// Appends SVG markup as is (the caller escapes).
    void raw(std::string_view markup) { out_ << markup; }

    /// The finished document.
    std::string finish() const { return out_.str() + "</svg>\n"; }

private:
    double width_, height_;
    std::ostringstream out_;
};

/// Width and height attributes of the root <svg> element.
inline std::pair<double, double> svg_size(const std::string& svg) {
    const std::size_t start = svg.find("<svg");
    check(start != std::string::npos, "svg_size: not an SVG document");
    const std::size_t end = svg.find('>', start);
    const std::string root = svg.substr(start, end - start);
    const auto attribute = [&](const char* name) {
        const std::string key = std::string(" ") + name + "=\"";
        const std::size_t at = root.find(key);
        check(at != std::string::npos, "svg_size: root <svg> element has no ", name, " attribute");
        return std::strtod(root.c_str() + at + key.size(), nullptr);
    };
    return {attribute("width"), attribute("height")};
}

}  // namespace detail

/// One SVG that shows `charts` (SVG documents) next to each other, top-aligned, `gap` apart;
/// e.g. the loss and the accuracy panel of a learning-curve figure.
inline std::string svg_side_by_side(const std::vector<std::string>& charts, double gap = 20) {
    check(!charts.empty(), "svg_side_by_side: no charts");
    double width = 0, height = 0;
    std::vector<std::pair<double, double>> sizes;
    for (const std::string& chart : charts) {
        sizes.push_back(detail::svg_size(chart));
        width += sizes.back().first;
        height = std::max(height, sizes.back().second);
    }
    width += gap * static_cast<double>(charts.size() - 1);
    detail::SvgWriter out(width, height);
    double x = 0;
    for (std::size_t i = 0; i < charts.size(); ++i) {
        // A nested <svg> keeps each chart's own coordinate system; x= places it.
        const std::string& chart = charts[i];
        const std::size_t start = chart.find("<svg");
        out.raw("<svg x=\"" + detail::coord(x) + "\"" + chart.substr(start + 4));
        x += sizes[i].first + gap;
    }
    return out.finish();
}

}  // namespace cnnlite::viz
