// A user's picture in the style of the MNIST family of data sets (MNIST, Fashion-MNIST): grey, a
// light object on a dark background, cropped to the object, centred in a small square and
// stretched to the full 0..255 range, so that a network trained on those images can classify
// it. Every step is a bounded number of passes over the picture; nothing grows with its shape
// (a 1-pixel-high strip is not turned into a square of its width).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/image.hpp"

namespace cnnlite::viz {

/// A picture converted by to_mnist_style.
struct MnistStyleInput {
    Image image;            ///< side x side grey pixels, object light on black
    bool inverted = false;  ///< the picture had a light background, so it was inverted
};

namespace detail {

/// Median grey value of the frame of `grey` that is `ring` pixels thick (a histogram, so the
/// cost is one pass and no allocation however large the picture).
inline int border_median(const Image& grey, int ring) {
    std::array<std::uint64_t, 256> histogram{};
    const int w = grey.width(), h = grey.height();
    std::uint64_t count = 0;
    for (int y = 0; y < h; ++y) {
        const bool whole_row = y < ring || y >= h - ring;
        for (int x = 0; x < w; ++x) {
            if (!whole_row && x == ring && w - ring > ring) x = w - ring;  // skip the interior
            ++histogram[grey.at(x, y)];
            ++count;
        }
    }
    std::uint64_t seen = 0;
    for (int v = 0; v < 256; ++v) {
        seen += histogram[static_cast<std::size_t>(v)];
        if (seen > count / 2) return v;
    }
    return 255;
}

}  // namespace detail

/// Brings `picture` (any size, grey or RGB) to the MNIST family's format: grey (BT.601 luma);
/// inverted when the median of its border is light; cropped to the pixels clearly brighter than
/// the background (the whole picture when none is); shrunk (area averaging) or enlarged
/// (bilinear) to fit a `side` x `side` square with its aspect ratio kept, centred on the
/// background; then background -> 0 and the brightest pixel of the result -> 255 (measured
/// after resizing, which averages the brightest pixels of a large picture with their neighbours).
inline MnistStyleInput to_mnist_style(const Image& picture, int side = 28) {
    check(!picture.empty(), "to_mnist_style: empty picture");
    check(side >= 1 && side <= 4096, "to_mnist_style: side ", side, " is not in 1..4096");
    MnistStyleInput result;
    Image grey = to_grey(picture);
    const int w = grey.width(), h = grey.height();
    const int ring = std::max(1, std::min(w, h) / 50);  // a few pixels thick on large pictures
    result.inverted = detail::border_median(grey, ring) > 127;
    if (result.inverted)
        for (std::size_t i = 0; i < grey.size(); ++i) grey.data()[i] = static_cast<std::uint8_t>(255 - grey.data()[i]);
    const int background = detail::border_median(grey, ring);

    // Crop to the object: pixels clearly brighter than the background.
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int v = grey.at(x, y);
            if (v > background + 24) x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
        }
    if (x1 < 0) x0 = 0, y0 = 0, x1 = w - 1, y1 = h - 1;  // nothing stands out: keep the whole picture
    const int cw = x1 - x0 + 1, ch = y1 - y0 + 1, longer = std::max(cw, ch);
    Image crop(cw, ch, 1);
    for (int y = 0; y < ch; ++y)
        std::copy(grey.data() + static_cast<std::size_t>(y0 + y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x0),
                  grey.data() + static_cast<std::size_t>(y0 + y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x0 + cw),
                  crop.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(cw));

    // Fit the longer side to `side`; the shorter keeps the aspect ratio (at least one pixel).
    const auto fitted = [&](int extent) {
        return std::max(1, static_cast<int>((static_cast<std::int64_t>(extent) * side + longer / 2) / longer));
    };
    const int fw = fitted(cw), fh = fitted(ch);
    const Image small = longer >= side ? resize_area(crop, fw, fh) : resize_bilinear(crop, fw, fh);
    Image square(side, side, 1);
    std::fill(square.data(), square.data() + square.size(), static_cast<std::uint8_t>(background));
    paste(square, small, (side - fw) / 2, (side - fh) / 2);

    // Background to 0, the brightest pixel to 255, like the data set's images.
    const int brightest = *std::max_element(square.data(), square.data() + square.size());
    const double range = std::max(1, brightest - background);
    for (std::size_t i = 0; i < square.size(); ++i) {
        const double v = (square.data()[i] - background) * 255.0 / range;
        square.data()[i] = static_cast<std::uint8_t>(std::clamp(v + 0.5, 0.0, 255.0));
    }
    result.image = std::move(square);
    return result;
}

}  // namespace cnnlite::viz
