// Image grids: small images (28 x 28 digits, clothes, Grad-CAM overlays) enlarged into a
// titled figure, each tile with its own coloured title ("pred (true)" in green or red) and
// optional row labels, laid out so that no text is clipped or overlaps.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/text.hpp"

namespace cnnlite::viz {

/// One cell of a grid: an image and the title drawn above it.
struct GridTile {
    /// The picture.
    Image image;
    /// Title above it; empty for none.
    std::string title;
    /// Colour of the title (e.g. green when right, red when wrong).
    Rgb title_color = colors::black;
};

/// Layout of an image grid; sizes in pixels.
struct GridOptions {
    /// Tiles per row.
    int columns = 10;
    /// Integer nearest-neighbour enlargement of every tile (28 px -> 112 px at 4).
    int scale = 4;
    /// Space between columns and between rows.
    int gap = 10;
    /// Space around the whole figure.
    int margin = 16;
    /// Size of the tile titles (pixels per em); long titles wrap at spaces to the tile width.
    double title_size = 13;
    /// Figure title, bold and centred on top; empty for none.
    std::string title;
    /// Size of the figure title.
    double figure_title_size = 20;
    /// Optional label left of each row (e.g. the class of that row); empty for none.
    std::vector<std::string> row_labels;
    /// Size of the row labels.
    double row_label_size = 13;
    /// Optional bold heading over each column (e.g. the explanation method); empty for none.
    std::vector<std::string> column_labels;
    /// Colour behind the tiles.
    Rgb background = colors::white;
};

/// Lays `tiles` (all the same size) out in rows of `options.columns` and renders the figure.
inline Image make_grid(const std::vector<GridTile>& tiles, const GridOptions& options = {}) {
    check(!tiles.empty(), "make_grid: no tiles");
    check(options.columns > 0, "make_grid: columns ", options.columns, " must be positive");
    check(options.scale >= 1, "make_grid: scale ", options.scale, " must be at least 1");
    check(options.gap >= 0 && options.margin >= 0, "make_grid: negative gap or margin");
    const int w0 = tiles[0].image.width(), h0 = tiles[0].image.height();
    for (std::size_t i = 0; i < tiles.size(); ++i)
        check(!tiles[i].image.empty() && tiles[i].image.width() == w0 && tiles[i].image.height() == h0,
              "make_grid: tile ", i, " is ", tiles[i].image.width(), "x", tiles[i].image.height(),
              " but tile 0 is ", w0, "x", h0, " (all tiles must have one size)");
    const int columns = std::min<int>(options.columns, static_cast<int>(tiles.size()));
    const int rows = static_cast<int>((tiles.size() + static_cast<std::size_t>(columns) - 1) / columns);
    check(options.row_labels.empty() || static_cast<int>(options.row_labels.size()) == rows, "make_grid: ",
          options.row_labels.size(), " row labels for ", rows, " rows");
    check(options.column_labels.empty() || static_cast<int>(options.column_labels.size()) == columns,
          "make_grid: ", options.column_labels.size(), " column labels for ", columns, " columns");

    const int tile_w = w0 * options.scale, tile_h = h0 * options.scale;
    const TextStyle title_style{options.title_size, colors::black, false, Align::center};
    std::vector<std::string> titles;
    int column_w = tile_w, title_h = 0;
    for (const GridTile& tile : tiles) {
        titles.push_back(wrap_text(tile.title, tile_w, title_style));
        if (tile.title.empty()) continue;
        const TextSize size = measure_text(titles.back(), title_style);
        column_w = std::max(column_w, size.width + 2);  // a word wider than the tile widens every column
        title_h = std::max(title_h, size.height);
    }
    const int title_gap = title_h > 0 ? 2 : 0;

    const TextStyle column_style{options.title_size, colors::black, true, Align::center};
    std::vector<std::string> column_labels;
    int column_label_h = 0;
    for (const std::string& label : options.column_labels) {
        column_labels.push_back(wrap_text(label, tile_w, column_style));
        const TextSize size = measure_text(column_labels.back(), column_style);
        column_w = std::max(column_w, size.width + 2);
        column_label_h = std::max(column_label_h, size.height + options.gap / 2);
    }

    const TextStyle label_style{options.row_label_size, colors::black, false, Align::right};
    int label_w = 0;
    for (const std::string& label : options.row_labels)
        label_w = std::max(label_w, measure_text(label, label_style).width + options.gap);

    const TextStyle heading_style{options.figure_title_size, colors::black, true, Align::center};
    const int grid_w = columns * column_w + (columns - 1) * options.gap;
    int heading_h = 0;
    std::string heading;
    if (!options.title.empty()) {
        heading = wrap_text(options.title, std::max(grid_w + label_w, 200), heading_style);
        const TextSize size = measure_text(heading, heading_style);
        heading_h = size.height + options.gap;
    }
    const int content_w = std::max(label_w + grid_w, heading.empty() ? 0 : measure_text(heading, heading_style).width);
    const int cell_h = title_h + title_gap + tile_h;
    const int width = 2 * options.margin + content_w;
    const int height =
        2 * options.margin + heading_h + column_label_h + rows * cell_h + (rows - 1) * options.gap;
    Image figure(width, height, options.background);

    if (!heading.empty()) draw_text(figure, width / 2.0, options.margin, heading, heading_style);
    const int grid_x = options.margin + (content_w - label_w - grid_w) / 2 + label_w;
    const int grid_y = options.margin + heading_h + column_label_h;
    for (std::size_t c = 0; c < column_labels.size(); ++c) {
        const int own_h = measure_text(column_labels[c], column_style).height;
        draw_text(figure, grid_x + static_cast<int>(c) * (column_w + options.gap) + column_w / 2.0,
                  grid_y - options.gap / 2 - own_h, column_labels[c], column_style);
    }
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        const int row = static_cast<int>(i) / columns, col = static_cast<int>(i) % columns;
        const int cell_x = grid_x + col * (column_w + options.gap);
        const int cell_y = grid_y + row * (cell_h + options.gap);
        if (!titles[i].empty()) {
            TextStyle style = title_style;
            style.color = tiles[i].title_color;
            // Titles sit on the tile: fewer lines than the tallest title start lower.
            const int own_h = measure_text(titles[i], style).height;
            draw_text(figure, cell_x + column_w / 2.0, cell_y + title_h - own_h, titles[i], style);
        }
        paste(figure, upscale(tiles[i].image, options.scale), cell_x + (column_w - tile_w) / 2,
              cell_y + title_h + title_gap);
    }
    for (std::size_t r = 0; r < options.row_labels.size(); ++r) {
        const TextSize size = measure_text(options.row_labels[r], label_style);
        const int row_y = grid_y + static_cast<int>(r) * (cell_h + options.gap) + title_h + title_gap;
        draw_text(figure, grid_x - options.gap, row_y + (tile_h - size.height) / 2.0, options.row_labels[r],
                  label_style);
    }
    return figure;
}

}  // namespace cnnlite::viz
