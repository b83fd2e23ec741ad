// Colour maps exactly as matplotlib draws them: 256-entry lookup tables for 'magma', 'inferno',
// 'viridis' (matplotlib's data) and 'jet', 'gray', 'Blues' (sampled from matplotlib's segment
// definitions with matplotlib's own algorithm), looked up the way matplotlib looks them up.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/color.hpp"
#include "cnnlite/viz/colormap_data.hpp"

namespace cnnlite::viz {

namespace detail {

/// matplotlib's `_create_lookup_table(n, segments)`: the channel sampled at n evenly spaced
/// points of [0, 1], with the same floating-point operations in the same order (hence equal bits).
template <std::size_t N, std::size_t M>
std::array<double, N> sample_segments(const SegmentNode (&nodes)[M]) {
    static_assert(N >= 2 && M >= 2, "sample_segments needs two samples and two nodes");
    std::array<double, N> lut{};
    const double last = static_cast<double>(N - 1);
    const double step = 1.0 / last;  // numpy.linspace(0, 1, N) is k * step, its end set to 1
    lut[0] = nodes[0].y1;
    lut[N - 1] = nodes[M - 1].y0;
    for (std::size_t k = 1; k + 1 < N; ++k) {
        const double xind = last * (static_cast<double>(k) * step);
        std::size_t ind = 0;  // numpy.searchsorted(x * (N - 1), xind), side 'left'
        while (ind < M && nodes[ind].x * last < xind) ++ind;
        const double x0 = nodes[ind - 1].x * last, x1 = nodes[ind].x * last;
        const double distance = (xind - x0) / (x1 - x0);
        // volatile keeps the compiler from fusing multiply and add (FMA), which numpy never does.
        volatile double scaled = distance * (nodes[ind].y0 - nodes[ind - 1].y1);
        lut[k] = scaled + nodes[ind - 1].y1;
    }
    for (double& v : lut) v = std::fmin(std::fmax(v, 0.0), 1.0);
    return lut;
}

}  // namespace detail

/// A 256-colour lookup table with matplotlib's lookup rules. Obtain one with magma(), jet(), ...
/// or by_name("magma").
class Colormap {
public:
    /// Number of entries; matplotlib's default N.
    static constexpr int size = 256;

    /// matplotlib's 'magma' (the paper's Grad-CAM map).
    static const Colormap& magma() {
        static const Colormap map = listed("magma", detail::magma_table);
        return map;
    }
    /// matplotlib's 'inferno'.
    static const Colormap& inferno() {
        static const Colormap map = listed("inferno", detail::inferno_table);
        return map;
    }
    /// matplotlib's 'viridis' (its default map).
    static const Colormap& viridis() {
        static const Colormap map = listed("viridis", detail::viridis_table);
        return map;
    }
    /// matplotlib's 'jet', sampled from its segment definition.
    static const Colormap& jet() {
        static const Colormap map = segmented("jet", detail::jet_red, detail::jet_green, detail::jet_blue);
        return map;
    }
    /// matplotlib's 'gray' (imshow of a grey image).
    static const Colormap& gray() {
        static const Colormap map = segmented("gray", detail::gray_red, detail::gray_green, detail::gray_blue);
        return map;
    }
    /// matplotlib's 'Blues' (confusion matrices).
    static const Colormap& blues() {
        static const Colormap map = segmented("Blues", detail::blues_red, detail::blues_green, detail::blues_blue);
        return map;
    }

    /// The map called `name` in matplotlib ("magma", "inferno", "viridis", "jet", "gray", "Blues").
    static const Colormap& by_name(std::string_view name) {
        for (const Colormap* map : {&magma(), &inferno(), &viridis(), &jet(), &gray(), &blues()})
            if (map->name() == name) return *map;
        fail("Colormap::by_name: unknown colour map '", name,
             "' (known: magma, inferno, viridis, jet, gray, Blues)");
    }

    /// matplotlib's name of this map.
    const std::string& name() const { return name_; }

    /// Entry `index` (0..255) as floats in [0, 1], as in matplotlib's lookup table.
    const std::array<double, 3>& entry(int index) const {
        check(index >= 0 && index < size, "Colormap '", name_, "': index ", index, " outside 0..255");
        return lut_[static_cast<std::size_t>(index)];
    }

    /// Entry `index` (0..255) as 8-bit colour: matplotlib's `cmap(index, bytes=True)`.
    Rgb color(int index) const {
        check(index >= 0 && index < size, "Colormap '", name_, "': index ", index, " outside 0..255");
        return bytes_[static_cast<std::size_t>(index)];
    }

    /// The table index matplotlib uses for a value x in [0, 1]: floor(x * 256), 1 maps to 255,
    /// below 0 to the first entry, above 1 to the last; -1 for NaN (matplotlib's "bad" value).
    static int index_of(double x) {
        if (std::isnan(x)) return -1;
        const double scaled = x * size;
        if (scaled < 0) return 0;
        if (scaled >= size) return size - 1;
        return static_cast<int>(scaled);
    }

    /// The colour of a value x in [0, 1] (matplotlib's `cmap(x, bytes=True)`); NaN, which
    /// matplotlib draws transparent, gives `bad`.
    Rgb operator()(double x, Rgb bad = colors::white) const {
        const int i = index_of(x);
        return i < 0 ? bad : bytes_[static_cast<std::size_t>(i)];
    }

private:
    using Table = std::array<std::array<double, 3>, size>;

    Colormap(std::string name, const Table& lut) : name_(std::move(name)), lut_(lut) {
        // matplotlib's bytes=True truncates (lut * 255).astype(uint8); so do we.
        for (std::size_t i = 0; i < lut_.size(); ++i)
            bytes_[i] = {static_cast<std::uint8_t>(lut_[i][0] * 255.0), static_cast<std::uint8_t>(lut_[i][1] * 255.0),
                         static_cast<std::uint8_t>(lut_[i][2] * 255.0)};
    }

    template <std::size_t N>
    static Colormap listed(const char* name, const double (&table)[N][3]) {
        static_assert(N == size, "listed colour maps have 256 entries");
        Table lut{};
        for (std::size_t i = 0; i < N; ++i) lut[i] = {table[i][0], table[i][1], table[i][2]};
        return Colormap(name, lut);
    }

    template <std::size_t R, std::size_t G, std::size_t B>
    static Colormap segmented(const char* name, const detail::SegmentNode (&red)[R],
                              const detail::SegmentNode (&green)[G], const detail::SegmentNode (&blue)[B]) {
        const auto r = detail::sample_segments<size>(red);
        const auto g = detail::sample_segments<size>(green);
        const auto b = detail::sample_segments<size>(blue);
        Table lut{};
        for (std::size_t i = 0; i < lut.size(); ++i) lut[i] = {r[i], g[i], b[i]};
        return Colormap(name, lut);
    }

    std::string name_;
    Table lut_{};
    std::array<Rgb, size> bytes_{};
};

/// matplotlib's Normalize: (v - vmin) / (vmax - vmin), and 0 when vmin == vmax.
inline double normalize(double v, double vmin, double vmax) {
    return vmin == vmax ? 0.0 : (v - vmin) / (vmax - vmin);
}

}  // namespace cnnlite::viz
