// Text in raster images: TrueType fonts through stb_truetype, with Debian's DejaVu Sans
// (package fonts-dejavu-core) as the default face. Sizes are in pixels per em, like CSS
// font-size, so raster and SVG text of the same size measure the same.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/detail/stb_truetype.hpp"
#include "cnnlite/viz/image.hpp"

namespace cnnlite::viz {

/// Where Debian's fonts-dejavu-core installs the regular face.
inline constexpr const char* dejavu_sans_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Where Debian's fonts-dejavu-core installs the bold face.
inline constexpr const char* dejavu_sans_bold_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

namespace detail {

/// The next code point of UTF-8 `text` at `i` (advancing `i`); malformed bytes give U+FFFD.
inline char32_t next_code_point(std::string_view text, std::size_t& i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char b0 = byte(i++);
    if (b0 < 0x80) return b0;
    const int extra = b0 >= 0xF0 ? 3 : b0 >= 0xE0 ? 2 : b0 >= 0xC0 ? 1 : -1;
    if (extra < 0 || i + static_cast<std::size_t>(extra) > text.size()) return U'\uFFFD';
    char32_t cp = b0 & (0x3F >> extra);
    for (int k = 0; k < extra; ++k) {
        const unsigned char b = byte(i);
        if ((b & 0xC0) != 0x80) return U'\uFFFD';
        cp = (cp << 6) | (b & 0x3F);
        ++i;
    }
    return cp;
}

}  // namespace detail

/// A TrueType font loaded from a file; measures and draws single lines of UTF-8 text.
class Font {
public:
    /// Loads the font at `path`; throws cnnlite::Error naming the path when it cannot.
    explicit Font(const std::string& path) : path_(path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            const bool dejavu = path.find("/dejavu/") != std::string::npos;
            fail("Font: cannot open font file '", path, "'",
                 dejavu ? " (install Debian's package fonts-dejavu-core: apt-get install fonts-dejavu-core)" : "");
        }
        data_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        const int offset = data_.empty() ? -1 : stbtt_GetFontOffsetForIndex(data_.data(), 0);
        check(offset >= 0 && stbtt_InitFont(&info_, data_.data(), offset) != 0, "Font: '", path,
              "' is not a TrueType font");
        stbtt_GetFontVMetrics(&info_, &ascent_, &descent_, &line_gap_);
        units_per_em_ = 1.0 / stbtt_ScaleForMappingEmToPixels(&info_, 1.0f);
    }

    // stbtt_fontinfo points into data_, so a copy or move would dangle.
    Font(const Font&) = delete;
    Font& operator=(const Font&) = delete;

    /// DejaVu Sans, loaded once.
    static const Font& regular() {
        static const Font font(dejavu_sans_path);
        return font;
    }
    /// DejaVu Sans Bold, loaded once.
    static const Font& bold() {
        static const Font font(dejavu_sans_bold_path);
        return font;
    }

    /// The file this font came from.
    const std::string& path() const { return path_; }

    /// Distance from the top of a line to its baseline, in pixels, at `size` pixels per em.
    double ascent(double size) const { return ascent_ * scale(size); }
    /// Distance from the baseline to the bottom of a line (positive), in pixels.
    double descent(double size) const { return -descent_ * scale(size); }
    /// Height of one line (ascent + descent + the font's line gap), in pixels.
    double line_height(double size) const { return (ascent_ - descent_ + line_gap_) * scale(size); }

    /// Advance width of one line of `text` in pixels, kerning included.
    double width(std::string_view text, double size) const {
        double x = 0;
        int previous = 0;
        for (std::size_t i = 0; i < text.size();) {
            const int glyph = stbtt_FindGlyphIndex(&info_, static_cast<int>(detail::next_code_point(text, i)));
            x += advance(previous, glyph, size);
            previous = glyph;
        }
        return x;
    }

    /// Draws one line of `text` with the top of its line box at `y` and its pen starting at `x`,
    /// antialiased in `color`; returns the advance width. Parts outside the image are clipped.
    double draw(Image& image, double x, double y, std::string_view text, double size, Rgb color) const {
        const float s = static_cast<float>(scale(size));
        const int baseline = static_cast<int>(std::lround(y + ascent(size)));
        double pen = x;
        int previous = 0;
        std::vector<unsigned char> bitmap;
        for (std::size_t i = 0; i < text.size();) {
            const int glyph = stbtt_FindGlyphIndex(&info_, static_cast<int>(detail::next_code_point(text, i)));
            pen += previous ? stbtt_GetGlyphKernAdvance(&info_, previous, glyph) * s : 0.0;
            const int origin = static_cast<int>(std::floor(pen));
            const float shift = static_cast<float>(pen - origin);  // subpixel placement keeps spacing even
            int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
            stbtt_GetGlyphBitmapBoxSubpixel(&info_, glyph, s, s, shift, 0.0f, &x0, &y0, &x1, &y1);
            const int w = x1 - x0, h = y1 - y0;
            if (w > 0 && h > 0) {
                bitmap.assign(static_cast<std::size_t>(w) * h, 0);
                stbtt_MakeGlyphBitmapSubpixel(&info_, bitmap.data(), w, h, w, s, s, shift, 0.0f, glyph);
                for (int gy = 0; gy < h; ++gy)
                    for (int gx = 0; gx < w; ++gx)
                        if (const unsigned char cover = bitmap[static_cast<std::size_t>(gy) * w + gx])
                            image.blend_pixel(origin + x0 + gx, baseline + y0 + gy, color, cover / 255.0);
            }
            int advance_units = 0, bearing = 0;
            stbtt_GetGlyphHMetrics(&info_, glyph, &advance_units, &bearing);
            pen += advance_units * s;
            previous = glyph;
        }
        return pen - x;
    }

private:
    double scale(double size) const {
        check(size > 0 && std::isfinite(size), "Font: text size ", size, " must be positive");
        return size / units_per_em_;
    }
    /// Advance of `glyph` after `previous` (0 = none), kerning included, in pixels.
    double advance(int previous, int glyph, double size) const {
        int advance_units = 0, bearing = 0;
        stbtt_GetGlyphHMetrics(&info_, glyph, &advance_units, &bearing);
        const int kern = previous ? stbtt_GetGlyphKernAdvance(&info_, previous, glyph) : 0;
        return (advance_units + kern) * scale(size);
    }

    std::string path_;
    std::vector<unsigned char> data_;
    stbtt_fontinfo info_{};
    int ascent_ = 0, descent_ = 0, line_gap_ = 0;
    double units_per_em_ = 1;
};

/// Horizontal placement of text relative to its anchor x.
enum class Align { left, center, right };

/// How text is drawn: size in pixels per em, colour, weight, alignment.
struct TextStyle {
    /// Pixels per em.
    double size = 14;
    /// Colour.
    Rgb color = colors::black;
    /// Bold face.
    bool bold = false;
    /// Placement relative to the anchor.
    Align align = Align::left;
};

/// The DejaVu face a style asks for.
inline const Font& font_for(const TextStyle& style) { return style.bold ? Font::bold() : Font::regular(); }

/// Pixel size of a text block ('\n' separates lines).
struct TextSize {
    /// Width in pixels.
    int width = 0;
    /// Height in pixels.
    int height = 0;
};

namespace detail {

/// The lines of `text`, split at '\n'.
inline std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    for (std::size_t start = 0;;) {
        const std::size_t end = text.find('\n', start);
        lines.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) return lines;
        start = end + 1;
    }
}

}  // namespace detail

/// Width (widest line, rounded up) and height (lines x line height) of `text` in `style`.
inline TextSize measure_text(std::string_view text, const TextStyle& style = {}) {
    const Font& font = font_for(style);
    double width = 0;
    const auto lines = detail::split_lines(text);
    for (std::string_view line : lines) width = std::max(width, font.width(line, style.size));
    return {static_cast<int>(std::ceil(width)),
            static_cast<int>(std::ceil(font.line_height(style.size) * static_cast<double>(lines.size())))};
}

/// Draws `text` ('\n' separates lines) with the top of its first line at `y`; `x` is the left
/// edge, centre or right edge of each line according to `style.align`.
inline void draw_text(Image& image, double x, double y, std::string_view text, const TextStyle& style = {}) {
    const Font& font = font_for(style);
    for (std::string_view line : detail::split_lines(text)) {
        const double w = font.width(line, style.size);
        const double left = style.align == Align::left ? x : style.align == Align::center ? x - w / 2 : x - w;
        font.draw(image, left, y, line, style.size, style.color);
        y += font.line_height(style.size);
    }
}

/// Breaks `text` at spaces into lines no wider than `max_width` pixels where possible (a single
/// word wider than that keeps its own line); existing '\n' breaks are kept.
inline std::string wrap_text(std::string_view text, double max_width, const TextStyle& style = {}) {
    const Font& font = font_for(style);
    std::string out;
    for (std::string_view paragraph : detail::split_lines(text)) {
        if (!out.empty()) out += '\n';
        std::string line;
        std::size_t start = 0;
        while (start <= paragraph.size()) {
            std::size_t end = paragraph.find(' ', start);
            if (end == std::string_view::npos) end = paragraph.size();
            const std::string_view word = paragraph.substr(start, end - start);
            const std::string candidate = line.empty() ? std::string(word) : line + " " + std::string(word);
            if (!line.empty() && font.width(candidate, style.size) > max_width) {
                out += line + '\n';
                line = std::string(word);
            } else {
                line = candidate;
            }
            start = end + 1;
        }
        out += line;
    }
    return out;
}

}  // namespace cnnlite::viz
