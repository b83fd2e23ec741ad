// Image: an 8-bit raster (grey or RGB) that figures are drawn into, with the conversions and
// resizing the figures need, and bridges to and from Tensor.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/viz/color.hpp"

namespace cnnlite::viz {

/// A row-major 8-bit raster with 1 (grey) or 3 (RGB) interleaved channels; (0, 0) is top-left.
class Image {
public:
    /// An empty image (0 x 0).
    Image() = default;

    /// A black image of the given size and channel count (1 or 3).
    Image(int width, int height, int channels = 3) : width_(width), height_(height), channels_(channels) {
        check(width >= 0 && height >= 0, "Image: negative size ", width, "x", height);
        check(channels == 1 || channels == 3, "Image: ", channels, " channels (only 1 = grey or 3 = RGB)");
        check(width == 0 || height <= std::numeric_limits<int>::max() / width / channels, "Image: size ", width,
              "x", height, " too large");
        pixels_.assign(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * channels, 0);
    }

    /// An RGB image filled with `color`.
    Image(int width, int height, Rgb color) : Image(width, height, 3) { fill(color); }

    /// Width in pixels.
    int width() const { return width_; }
    /// Height in pixels.
    int height() const { return height_; }
    /// 1 for grey, 3 for RGB.
    int channels() const { return channels_; }
    /// Whether the image has no pixels.
    bool empty() const { return pixels_.empty(); }
    /// Bytes per row.
    int stride() const { return width_ * channels_; }
    /// Total bytes.
    std::size_t size() const { return pixels_.size(); }
    /// The interleaved pixel bytes, row by row.
    std::uint8_t* data() { return pixels_.data(); }
    /// Read-only pixel bytes.
    const std::uint8_t* data() const { return pixels_.data(); }

    /// Whether (x, y) lies inside the image.
    bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width_ && y < height_; }

    /// Channel `c` of pixel (x, y), bounds-checked.
    std::uint8_t& at(int x, int y, int c = 0) { return pixels_[offset(x, y, c)]; }
    /// Channel `c` of pixel (x, y), read-only.
    std::uint8_t at(int x, int y, int c = 0) const { return pixels_[offset(x, y, c)]; }

    /// Pixel (x, y) as a colour (grey v reads as (v, v, v)).
    Rgb pixel(int x, int y) const {
        const std::size_t i = offset(x, y, 0);
        if (channels_ == 1) return {pixels_[i], pixels_[i], pixels_[i]};
        return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
    }

    /// Sets pixel (x, y); a grey image stores the colour's luma.
    void set_pixel(int x, int y, Rgb c) {
        const std::size_t i = offset(x, y, 0);
        if (channels_ == 1) {
            pixels_[i] = luma(c);
        } else {
            pixels_[i] = c.r;
            pixels_[i + 1] = c.g;
            pixels_[i + 2] = c.b;
        }
    }

    /// Mixes `c` into pixel (x, y) with opacity `alpha` in [0, 1]; points outside are ignored,
    /// so that drawing code can clip by simply drawing.
    void blend_pixel(int x, int y, Rgb c, double alpha) {
        if (!contains(x, y) || !(alpha > 0)) return;
        alpha = std::min(alpha, 1.0);
        std::uint8_t* p = &pixels_[(static_cast<std::size_t>(y) * width_ + x) * channels_];
        const auto mix = [alpha](std::uint8_t dst, std::uint8_t src) {
            return static_cast<std::uint8_t>(std::lround(dst + (src - dst) * alpha));
        };
        if (channels_ == 1) {
            p[0] = mix(p[0], luma(c));
        } else {
            p[0] = mix(p[0], c.r);
            p[1] = mix(p[1], c.g);
            p[2] = mix(p[2], c.b);
        }
    }

    /// Sets every pixel to `c`.
    void fill(Rgb c) {
        for (int y = 0; y < height_; ++y)
            for (int x = 0; x < width_; ++x) set_pixel(x, y, c);
    }

    /// Fills the rectangle [x, x + w) x [y, y + h), clipped to the image.
    void fill_rect(int x, int y, int w, int h, Rgb c) {
        const int x0 = std::max(x, 0), y0 = std::max(y, 0);
        const int x1 = std::min(x + w, width_), y1 = std::min(y + h, height_);
        for (int yy = y0; yy < y1; ++yy)
            for (int xx = x0; xx < x1; ++xx) set_pixel(xx, yy, c);
    }

    /// ITU-R BT.601 luma, the weights PIL's convert("L") uses.
    static std::uint8_t luma(Rgb c) {
        return static_cast<std::uint8_t>((c.r * 299 + c.g * 587 + c.b * 114 + 500) / 1000);
    }

private:
    std::size_t offset(int x, int y, int c) const {
        check(contains(x, y) && c >= 0 && c < channels_, "Image: pixel (", x, ", ", y, ") channel ", c,
              " outside a ", width_, "x", height_, "x", channels_, " image");
        return (static_cast<std::size_t>(y) * width_ + x) * channels_ + c;
    }

    int width_ = 0, height_ = 0, channels_ = 3;
    std::vector<std::uint8_t> pixels_;
};

/// An RGB copy (grey v becomes (v, v, v)); RGB images are copied unchanged.
inline Image to_rgb(const Image& image) {
    if (image.channels() == 3) return image;
    Image out(image.width(), image.height(), 3);
    const std::uint8_t* in = image.data();
    std::uint8_t* o = out.data();
    for (std::size_t i = 0, n = static_cast<std::size_t>(image.width()) * image.height(); i < n; ++i)
        o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = in[i];
    return out;
}

/// A grey copy (RGB becomes its BT.601 luma, as PIL's convert("L")); grey images are copied.
inline Image to_grey(const Image& image) {
    if (image.channels() == 1) return image;
    Image out(image.width(), image.height(), 1);
    const std::uint8_t* in = image.data();
    std::uint8_t* o = out.data();
    for (std::size_t i = 0, n = static_cast<std::size_t>(image.width()) * image.height(); i < n; ++i)
        o[i] = Image::luma({in[3 * i], in[3 * i + 1], in[3 * i + 2]});
    return out;
}

/// Copies `src` into `dst` with its top-left at (x, y), clipped to `dst`; grey and RGB mix freely.
inline void paste(Image& dst, const Image& src, int x, int y) {
    for (int sy = std::max(0, -y); sy < src.height() && y + sy < dst.height(); ++sy)
        for (int sx = std::max(0, -x); sx < src.width() && x + sx < dst.width(); ++sx)
            dst.set_pixel(x + sx, y + sy, src.pixel(sx, sy));
}

namespace detail {

/// Throws unless `image` has pixels and the target size is positive.
inline void check_resize(const char* op, const Image& image, int width, int height) {
    check(!image.empty(), op, ": empty input image");
    check(width > 0 && height > 0, op, ": target size ", width, "x", height, " must be positive");
}

/// Source coordinate of destination pixel centre `d` with half-pixel centres (OpenCV, TF2,
/// PyTorch align_corners=False), clamped to the first/last source pixel.
inline double source_coordinate(int d, int in, int out) {
    const double s = (d + 0.5) * static_cast<double>(in) / out - 0.5;
    return std::clamp(s, 0.0, static_cast<double>(in - 1));
}

}  // namespace detail

/// Nearest-neighbour resize; with an integer factor each pixel becomes a solid block, which is
/// how matplotlib shows small images enlarged.
inline Image resize_nearest(const Image& image, int width, int height) {
    detail::check_resize("resize_nearest", image, width, height);
    Image out(width, height, image.channels());
    const int c = image.channels();
    for (int y = 0; y < height; ++y) {
        const int sy = std::min(static_cast<int>((y + 0.5) * image.height() / height), image.height() - 1);
        for (int x = 0; x < width; ++x) {
            const int sx = std::min(static_cast<int>((x + 0.5) * image.width() / width), image.width() - 1);
            for (int k = 0; k < c; ++k) out.at(x, y, k) = image.at(sx, sy, k);
        }
    }
    return out;
}

/// Enlarges by an integer factor with nearest-neighbour blocks (28 x 28 -> 112 x 112 at 4).
inline Image upscale(const Image& image, int factor) {
    check(factor >= 1, "upscale: factor ", factor, " must be at least 1");
    return resize_nearest(image, image.width() * factor, image.height() * factor);
}

/// Bilinear resize with half-pixel centres (OpenCV's INTER_LINEAR); for enlarging and mild
/// shrinking. Use resize_area to shrink by large factors without aliasing.
inline Image resize_bilinear(const Image& image, int width, int height) {
    detail::check_resize("resize_bilinear", image, width, height);
    Image out(width, height, image.channels());
    const int c = image.channels();
    for (int y = 0; y < height; ++y) {
        const double sy = detail::source_coordinate(y, image.height(), height);
        const int y0 = static_cast<int>(sy), y1 = std::min(y0 + 1, image.height() - 1);
        const double fy = sy - y0;
        for (int x = 0; x < width; ++x) {
            const double sx = detail::source_coordinate(x, image.width(), width);
            const int x0 = static_cast<int>(sx), x1 = std::min(x0 + 1, image.width() - 1);
            const double fx = sx - x0;
            for (int k = 0; k < c; ++k) {
                const double top = image.at(x0, y0, k) * (1 - fx) + image.at(x1, y0, k) * fx;
                const double bottom = image.at(x0, y1, k) * (1 - fx) + image.at(x1, y1, k) * fx;
                out.at(x, y, k) = static_cast<std::uint8_t>(std::lround(top * (1 - fy) + bottom * fy));
            }
        }
    }
    return out;
}

/// Area-averaging resize (OpenCV's INTER_AREA): every output pixel is the mean of the input
/// area it covers, weighted by overlap; the right filter for shrinking a photo to 28 x 28.
inline Image resize_area(const Image& image, int width, int height) {
    detail::check_resize("resize_area", image, width, height);
    const int c = image.channels();
    const double sx = static_cast<double>(image.width()) / width, sy = static_cast<double>(image.height()) / height;
    Image out(width, height, c);
    std::vector<double> acc(static_cast<std::size_t>(c));
    for (int y = 0; y < height; ++y) {
        const double ya = y * sy, yb = (y + 1) * sy;
        for (int x = 0; x < width; ++x) {
            const double xa = x * sx, xb = (x + 1) * sx;
            std::fill(acc.begin(), acc.end(), 0.0);
            double total = 0;
            for (int iy = static_cast<int>(ya); iy < image.height() && iy < yb; ++iy) {
                const double wy = std::min<double>(iy + 1, yb) - std::max<double>(iy, ya);
                for (int ix = static_cast<int>(xa); ix < image.width() && ix < xb; ++ix) {
                    const double w = wy * (std::min<double>(ix + 1, xb) - std::max<double>(ix, xa));
                    if (w <= 0) continue;
                    total += w;
                    for (int k = 0; k < c; ++k) acc[static_cast<std::size_t>(k)] += w * image.at(ix, iy, k);
                }
            }
            for (int k = 0; k < c; ++k)
                out.at(x, y, k) = static_cast<std::uint8_t>(std::lround(acc[static_cast<std::size_t>(k)] / total));
        }
    }
    return out;
}

/// Bilinear resize of the last two axes of a float tensor ([H, W], [N, H, W], [N, C, H, W]),
/// with half-pixel centres: the upsampling of a coarse class-activation map to the input size.
inline Tensor<float> resize_bilinear(const Tensor<float>& maps, int height, int width) {
    check(maps.defined() && maps.rank() >= 2, "resize_bilinear: needs a tensor of rank >= 2, got shape ",
          maps.shape().str());
    check(height > 0 && width > 0, "resize_bilinear: target size ", height, "x", width, " must be positive");
    const int in_h = static_cast<int>(maps.dim(-2)), in_w = static_cast<int>(maps.dim(-1));
    check(in_h > 0 && in_w > 0, "resize_bilinear: empty maps of shape ", maps.shape().str());
    Shape out_shape = maps.shape();
    out_shape[-2] = height;
    out_shape[-1] = width;
    Tensor<float> out = Tensor<float>::uninitialized(out_shape);
    const std::int64_t planes = maps.numel() / (static_cast<std::int64_t>(in_h) * in_w);
    for (std::int64_t p = 0; p < planes; ++p) {
        const float* in = maps.data() + p * in_h * in_w;
        float* o = out.data() + p * static_cast<std::int64_t>(height) * width;
        for (int y = 0; y < height; ++y) {
            const double sy = detail::source_coordinate(y, in_h, height);
            const int y0 = static_cast<int>(sy), y1 = std::min(y0 + 1, in_h - 1);
            const double fy = sy - y0;
            for (int x = 0; x < width; ++x) {
                const double sx = detail::source_coordinate(x, in_w, width);
                const int x0 = static_cast<int>(sx), x1 = std::min(x0 + 1, in_w - 1);
                const double fx = sx - x0;
                const double top = in[y0 * in_w + x0] * (1 - fx) + in[y0 * in_w + x1] * fx;
                const double bottom = in[y1 * in_w + x0] * (1 - fx) + in[y1 * in_w + x1] * fx;
                o[y * width + x] = static_cast<float>(top * (1 - fy) + bottom * fy);
            }
        }
    }
    return out;
}

namespace detail {

/// Height and width of a tensor that holds one image: [H, W] or [1, ..., 1, H, W].
template <class T>
std::pair<int, int> single_plane(const char* op, const Tensor<T>& t) {
    check(t.defined() && t.rank() >= 2, op, ": needs an [H, W] tensor, got shape ", t.shape().str());
    for (int a = 0; a + 2 < t.rank(); ++a)
        check(t.dim(a) == 1, op, ": needs one image ([H, W] or [1, 1, H, W]), got shape ", t.shape().str());
    return {static_cast<int>(t.dim(-2)), static_cast<int>(t.dim(-1))};
}

}  // namespace detail

/// A grey image from one [H, W] (or [1, 1, H, W]) tensor, mapping [lo, hi] linearly to 0..255
/// (rounded, clamped; NaN becomes 0).
template <class T>
Image grey_image(const Tensor<T>& values, double lo, double hi) {
    const auto [h, w] = detail::single_plane("grey_image", values);
    check(hi > lo, "grey_image: empty value range [", lo, ", ", hi, "]");
    Image out(w, h, 1);
    const T* in = values.data();
    for (std::size_t i = 0; i < out.size(); ++i) {
        const double v = (static_cast<double>(in[i]) - lo) / (hi - lo) * 255.0;
        out.data()[i] = std::isnan(v) ? 0 : static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
    }
    return out;
}

/// A grey image from one [H, W] tensor in the type's usual range: 0..255 for integers, [0, 1]
/// for floating point (pixel / 255, the network's input).
template <class T>
Image grey_image(const Tensor<T>& values) {
    return grey_image(values, 0.0, std::is_floating_point<T>::value ? 1.0 : 255.0);
}

/// The image as a float tensor [C, H, W] (C = 1 or 3) with values pixel * scale (default
/// pixel / 255, the network's input range).
inline Tensor<float> to_tensor(const Image& image, float scale = 1.0f / 255.0f) {
    const int c = image.channels();
    Tensor<float> out = Tensor<float>::uninitialized({c, image.height(), image.width()});
    const std::size_t plane = static_cast<std::size_t>(image.width()) * image.height();
    for (std::size_t i = 0; i < plane; ++i)
        for (int k = 0; k < c; ++k) out.data()[k * plane + i] = image.data()[i * c + k] * scale;
    return out;
}

}  // namespace cnnlite::viz
