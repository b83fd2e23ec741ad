// Report: one self-contained HTML page (no external files: PNGs as base64 data URIs, SVGs
// inline) with sections, text, tables, figures and settings, written atomically.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <locale>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/files.hpp"
#include "cnnlite/viz/detail/base64.hpp"
#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "cnnlite/viz/svg.hpp"

namespace cnnlite::viz {

/// One table cell: text (left-aligned) or a number (right-aligned).
class Cell {
public:
    /// A text cell.
    Cell(std::string text) : text_(std::move(text)) {}  // NOLINT: implicit, so rows read {"Coat", 0.42}
    /// A text cell.
    Cell(const char* text) : text_(text ? text : "") {}
    /// An integer cell, written exactly.
    template <class T, std::enable_if_t<std::is_integral<T>::value && !std::is_same<T, bool>::value, int> = 0>
    Cell(T value) : text_(std::to_string(value)), numeric_(true) {}
    /// A number with `significant` digits (fixed notation from 0.001 to 10^6, else scientific).
    Cell(double value, int significant = 4) : text_(format(value, significant)), numeric_(true) {}

    /// A number with exactly `decimals` digits after the point.
    static Cell fixed(double value, int decimals) {
        Cell c(format_fixed(value, decimals));
        c.numeric_ = true;
        return c;
    }

    /// The cell's text as shown.
    const std::string& text() const { return text_; }
    /// Whether the cell holds a number (right-aligned).
    bool numeric() const { return numeric_; }

private:
    static std::string format(double v, int significant) {
        if (std::isnan(v)) return "NaN";
        if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
        const double a = std::abs(v);
        if (a == 0 || (a >= 1e-3 && a < 1e6)) {
            const int magnitude = a == 0 ? 0 : static_cast<int>(std::floor(std::log10(a)));
            return format_fixed(v, std::max(0, significant - 1 - magnitude));
        }
        std::ostringstream out;
        out.imbue(std::locale::classic());
        out.setf(std::ios::scientific);
        out.precision(std::max(0, significant - 1));
        out << v;
        return out.str();
    }

    std::string text_;
    bool numeric_ = false;
};

/// A table for the report: column headings, rows of cells, a caption.
struct ReportTable {
    /// Text under the table.
    std::string caption;
    /// Column headings.
    std::vector<std::string> columns;
    /// Rows of cells, one per column.
    std::vector<std::vector<Cell>> rows;
};

/// Builds the HTML page block by block; every text is escaped.
class Report {
public:
    /// A report whose page title and top heading is `title`.
    explicit Report(std::string title) : title_(std::move(title)) {}

    /// Starts a numbered section (listed in the contents at the top).
    Report& section(const std::string& title) {
        sections_.push_back(title);
        body_ += "<h2 id=\"section-" + std::to_string(sections_.size()) + "\">" + xml_escape(title) + "</h2>\n";
        return *this;
    }
    /// A subheading inside a section.
    Report& heading(const std::string& text) {
        body_ += "<h3>" + xml_escape(text) + "</h3>\n";
        return *this;
    }
    /// A paragraph of plain text.
    Report& paragraph(const std::string& text) {
        body_ += "<p>" + xml_escape(text) + "</p>\n";
        return *this;
    }
    /// Preformatted text in a monospace font (a model summary, a command line).
    Report& preformatted(const std::string& text) {
        body_ += "<pre>" + xml_escape(text) + "</pre>\n";
        return *this;
    }

    /// A table; rows shorter or longer than the header are an error.
    Report& table(const ReportTable& t) {
        std::string html = "<table>\n";
        if (!t.caption.empty()) html += "<caption>" + xml_escape(t.caption) + "</caption>\n";
        if (!t.columns.empty()) {
            html += "<thead><tr>";
            for (const auto& c : t.columns) html += "<th>" + xml_escape(c) + "</th>";
            html += "</tr></thead>\n";
        }
        html += "<tbody>\n";
        for (std::size_t r = 0; r < t.rows.size(); ++r) {
            check(t.columns.empty() || t.rows[r].size() == t.columns.size(), "Report::table '", t.caption, "': row ",
                  r, " has ", t.rows[r].size(), " cells for ", t.columns.size(), " columns");
            html += "<tr>";
            for (const Cell& c : t.rows[r])
                html += std::string(c.numeric() ? "<td class=\"num\">" : "<td>") + xml_escape(c.text()) + "</td>";
            html += "</tr>\n";
        }
        body_ += html + "</tbody></table>\n";
        return *this;
    }

    /// A raster figure, embedded as a PNG data URI.
    Report& figure(const Image& image, const std::string& caption) { return figure_png(encode_png(image), caption); }

    /// A figure from PNG file contents.
    Report& figure_png(const std::vector<std::uint8_t>& png, const std::string& caption) {
        check(png.size() > 8 && png[0] == 0x89 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G',
              "Report::figure_png '", caption, "': the data is not a PNG file");
        return add_figure("<img src=\"data:image/png;base64," + detail::base64_encode(png.data(), png.size()) +
                              "\" alt=\"" + xml_escape(caption) + "\">",
                          caption);
    }

    /// A figure from an SVG document, placed inline (its XML declaration is dropped).
    Report& figure_svg(const std::string& svg, const std::string& caption) {
        const std::size_t start = svg.find("<svg");
        check(start != std::string::npos, "Report::figure_svg '", caption, "': the text is not an SVG document");
        return add_figure(svg.substr(start), caption);
    }

    /// A figure from a .png or .svg file.
    Report& figure_file(const std::string& path, const std::string& caption) {
        // A figure is the report's own output; 256 MiB bounds a wrong path given by mistake.
        const std::vector<std::uint8_t> bytes =
            cnnlite::InputFile(path, "Report::figure_file").read_all(std::uint64_t(256) << 20);
        const auto ends_with = [&](const char* ext) {
            const std::string e(ext);
            return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
        };
        if (ends_with(".png")) return figure_png(bytes, caption);
        if (ends_with(".svg")) return figure_svg(std::string(bytes.begin(), bytes.end()), caption);
        fail("Report::figure_file: '", path, "' is neither .png nor .svg");
    }

    /// A block of name/value pairs (settings of a run, timings).
    Report& settings(const std::string& title, const std::vector<std::pair<std::string, std::string>>& entries) {
        std::string html = "<div class=\"settings\">\n";
        if (!title.empty()) html += "<h3>" + xml_escape(title) + "</h3>\n";
        html += "<dl>\n";
        for (const auto& [name, value] : entries)
            html += "<dt>" + xml_escape(name) + "</dt><dd>" + xml_escape(value) + "</dd>\n";
        body_ += html + "</dl>\n</div>\n";
        return *this;
    }

    /// The complete page.
    std::string html() const {
        std::string page =
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
            xml_escape(title_) + "</title>\n<style>\n" + style() + "</style>\n</head>\n<body>\n<main>\n<h1>" +
            xml_escape(title_) + "</h1>\n";
        if (!sections_.empty()) {
            page += "<nav><ol>\n";
            for (std::size_t i = 0; i < sections_.size(); ++i)
                page += "<li><a href=\"#section-" + std::to_string(i + 1) + "\">" + xml_escape(sections_[i]) +
                        "</a></li>\n";
            page += "</ol></nav>\n";
        }
        return page + body_ + "</main>\n</body>\n</html>\n";
    }

    /// Writes the page to `path` atomically.
    void write(const std::string& path) const { cnnlite::write_file_atomically(path, html()); }

private:
    Report& add_figure(const std::string& content, const std::string& caption) {
        ++figures_;
        body_ += "<figure>\n" + content + "\n";
        if (!caption.empty())
            body_ += "<figcaption>Figure " + std::to_string(figures_) + ". " + xml_escape(caption) + "</figcaption>\n";
        body_ += "</figure>\n";
        return *this;
    }

    /// The page's CSS: readable widths, figures scaled to fit, tables with numbers aligned.
    static std::string style() {
        return "body{margin:0;background:#f4f4f4;color:#222;font:15px/1.5 'DejaVu Sans',Verdana,sans-serif}\n"
               "main{max-width:1140px;margin:0 auto;padding:24px 32px;background:#fff}\n"
               "h1{font-size:26px;margin:8px 0 12px}h2{font-size:21px;margin:36px 0 10px;"
               "border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:16px;margin:20px 0 8px}\n"
               "nav ol{margin:0 0 16px;padding-left:24px;columns:2}\n"
               "table{border-collapse:collapse;margin:12px 0 20px;font-size:13px}\n"
               "caption{caption-side:top;text-align:left;font-weight:bold;padding:4px 0}\n"
               "th,td{border:1px solid #ccc;padding:3px 9px}th{background:#eee}td.num{text-align:right;"
               "font-variant-numeric:tabular-nums}tbody tr:nth-child(even){background:#fafafa}\n"
               "figure{margin:16px 0 24px;text-align:center}figure img,figure svg{max-width:100%;height:auto}\n"
               "figcaption{font-size:13px;color:#444;margin-top:6px}\n"
               "pre{background:#f6f6f6;border:1px solid #ddd;padding:10px;overflow-x:auto;font-size:12.5px}\n"
               ".settings dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;font-size:13px}\n"
               ".settings dt{font-weight:bold}.settings dd{margin:0;font-family:'DejaVu Sans Mono',monospace}\n";
    }

    std::string title_;
    std::string body_;
    std::vector<std::string> sections_;
    int figures_ = 0;
};

}  // namespace cnnlite::viz
