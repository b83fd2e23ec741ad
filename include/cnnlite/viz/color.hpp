// Colours: an 8-bit RGB triple, a few named colours and matplotlib's default series palette, so
// that rasters, SVG charts and the report speak the same colour language.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cnnlite/viz/colormap_data.hpp"

namespace cnnlite::viz {

/// An 8-bit sRGB colour.
struct Rgb {
    std::uint8_t r = 0;  ///< Red.
    std::uint8_t g = 0;  ///< Green.
    std::uint8_t b = 0;  ///< Blue.

    /// Same colour.
    bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
    /// Different colours.
    bool operator!=(const Rgb& o) const { return !(*this == o); }
};

/// "#rrggbb", as SVG and CSS take it.
inline std::string to_hex(Rgb c) {
    static const char digits[] = "0123456789abcdef";
    std::string s = "#";
    for (std::uint8_t v : {c.r, c.g, c.b}) {
        s += digits[v >> 4];
        s += digits[v & 15];
    }
    return s;
}

/// Relative luminance in [0, 1] (Rec. 709 weights on the 8-bit values); picks dark or light text.
inline double luminance(Rgb c) { return (0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b) / 255.0; }

/// Named colours used for titles and figure chrome.
namespace colors {
/// Text, axes and the 'gray' map's low end.
inline constexpr Rgb black{0, 0, 0};
/// Figure backgrounds.
inline constexpr Rgb white{255, 255, 255};
/// Secondary text and reference lines.
inline constexpr Rgb grey{128, 128, 128};
/// Grid lines and frames (CSS 'lightgrey').
inline constexpr Rgb light_grey{211, 211, 211};
/// Titles of correct predictions (matplotlib's 'green').
inline constexpr Rgb green{0, 128, 0};
/// Titles of wrong predictions (matplotlib's 'red').
inline constexpr Rgb red{255, 0, 0};
}  // namespace colors

/// Colour `i` of matplotlib's default cycle ('tab10'), repeating after 10.
inline Rgb tab10(std::size_t i) {
    const unsigned char* c = detail::tab10_table[i % 10];
    return {c[0], c[1], c[2]};
}

}  // namespace cnnlite::viz
