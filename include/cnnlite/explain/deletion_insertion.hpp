// Deletion and insertion curves (Petsiuk, Das, Saenko, 2018, "RISE"): pixels are removed from
// the image (deletion: set to a constant) or revealed on a blurred copy (insertion), most
// important first by the map, and the softmax probability of the class the model predicted
// for the intact image is tracked. A faithful map makes the deletion curve fall fast (low
// area under it) and the insertion curve rise fast (high area). Ties in a map are broken in a
// seeded random order, so a constant map behaves like a random one.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/explain/cam.hpp"

namespace cnnlite::explain {

/// Options of the deletion/insertion curves.
struct CurveOptions {
    std::int64_t steps = 28;        ///< the curve has steps + 1 points, from 0 to all pixels changed
    double deleted_value = 0;       ///< what deleted pixels become (0: black)
    double blur_sigma = 3.0;        ///< Gaussian blur (in pixels) of insertion's starting image
    std::int64_t chunk_size = 256;  ///< images per forward pass
    std::uint64_t seed = 0;         ///< keys the random order of tied map values
};

/// The curves of a batch and their areas.
struct Curves {
    Tensor<float> deletion;            ///< [N, steps + 1] probability of the predicted class
    Tensor<float> insertion;           ///< [N, steps + 1]
    std::vector<double> deletion_auc;  ///< per image, trapezoidal area over the fraction in [0, 1]
    /// Per image, area under the insertion curve.
    std::vector<double> insertion_auc;
    std::vector<int> predicted;        ///< class tracked for each image
    double mean_deletion_auc = 0;      ///< lower is better
    double mean_insertion_auc = 0;     ///< higher is better
};

/// Trapezoidal area under values at equally spaced points of [0, 1].
inline double area_under_curve(const float* values, std::int64_t points) {
    if (points < 2) return points == 1 ? values[0] : 0.0;
    double area = 0;
    for (std::int64_t i = 1; i < points; ++i) area += 0.5 * (static_cast<double>(values[i - 1]) + values[i]);
    return area / static_cast<double>(points - 1);
}

/// Pixel positions of `map` (`pixels` values) from most to least important; ties in a random
/// order keyed by (seed, image).
inline std::vector<std::int32_t> importance_order(const float* map, std::int64_t pixels, std::uint64_t seed,
                                                  std::uint64_t image) {
    const RandomStream ties(seed, Purpose::user, image, 0x7469);
    std::vector<std::int32_t> order(static_cast<std::size_t>(pixels));
    std::iota(order.begin(), order.end(), 0);
    std::vector<std::uint64_t> key(static_cast<std::size_t>(pixels));
    for (std::int64_t p = 0; p < pixels; ++p) key[static_cast<std::size_t>(p)] = ties.bits(static_cast<std::uint64_t>(p));
    std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
        const float va = std::isfinite(map[a]) ? map[a] : 0.0f, vb = std::isfinite(map[b]) ? map[b] : 0.0f;
        return va != vb ? va > vb : key[static_cast<std::size_t>(a)] < key[static_cast<std::size_t>(b)];
    });
    return order;
}

/// A Gaussian blur of every plane of `images` ([N, C, H, W]), edges clamped.
template <class T>
Tensor<T> gaussian_blur(const Tensor<T>& images, double sigma) {
    check(sigma >= 0, "gaussian_blur: sigma must not be negative, got ", sigma);
    if (sigma == 0) return images.clone();
    const std::int64_t radius = static_cast<std::int64_t>(std::ceil(3 * sigma));
    std::vector<double> kernel(static_cast<std::size_t>(2 * radius + 1));
    double total = 0;
    for (std::int64_t d = -radius; d <= radius; ++d)
        total += kernel[static_cast<std::size_t>(d + radius)] = std::exp(-0.5 * d * d / (sigma * sigma));
    for (double& k : kernel) k /= total;
    const std::int64_t h = images.dim(2), w = images.dim(3), planes = images.dim(0) * images.dim(1);
    Tensor<T> out = Tensor<T>::uninitialized(images.shape());
    std::vector<double> row(static_cast<std::size_t>(h * w));
    for (std::int64_t p = 0; p < planes; ++p) {
        const T* in = images.data() + p * h * w;
        T* o = out.data() + p * h * w;
        for (std::int64_t y = 0; y < h; ++y)  // horizontal pass
            for (std::int64_t x = 0; x < w; ++x) {
                double s = 0;
                for (std::int64_t d = -radius; d <= radius; ++d)
                    s += kernel[static_cast<std::size_t>(d + radius)] * in[y * w + std::clamp<std::int64_t>(x + d, 0, w - 1)];
                row[static_cast<std::size_t>(y * w + x)] = s;
            }
        for (std::int64_t y = 0; y < h; ++y)  // vertical pass
            for (std::int64_t x = 0; x < w; ++x) {
                double s = 0;
                for (std::int64_t d = -radius; d <= radius; ++d)
                    s += kernel[static_cast<std::size_t>(d + radius)] *
                         row[static_cast<std::size_t>(std::clamp<std::int64_t>(y + d, 0, h - 1) * w + x)];
                o[y * w + x] = static_cast<T>(s);
            }
    }
    return out;
}

/// Deletion and insertion curves of `images` ([N, C, H, W]) under `maps` ([N, H, W], higher =
/// more important; every channel of a pixel changes together).
template <class T>
Curves deletion_insertion(const Model<T>& model, const Tensor<T>& images, const Tensor<float>& maps,
                          const CurveOptions& options = {}) {
    const char* op = "deletion_insertion";
    detail::check_explain_call(model, images, options.chunk_size, Target::predicted(), op);
    const std::int64_t n = images.dim(0), channels = images.dim(1), h = images.dim(2), w = images.dim(3);
    check(maps.defined() && maps.shape() == (Shape{n, h, w}), op, ": maps of shape ",
          maps.defined() ? maps.shape() : Shape{}, " do not fit images ", images.shape(), " (need [", n, ", ", h, ", ",
          w, "])");
    check(options.steps >= 1, op, ": steps must be at least 1, got ", options.steps);
    const std::int64_t pixels = h * w, points = options.steps + 1, per = channels * pixels;

    Curves out;
    out.deletion = Tensor<float>::uninitialized(Shape{n, points});
    out.insertion = Tensor<float>::uninitialized(Shape{n, points});
    const Tensor<T> clean = detail::class_scores(model, images, Score::probability, options.chunk_size);
    out.predicted = detail::argmax_rows(clean);
    const Tensor<T> blurred = gaussian_blur(images, options.blur_sigma);

    // Both curves of a few images at a time go through the model together.
    const std::int64_t images_per_block = std::max<std::int64_t>(1, options.chunk_size / (2 * points));
    for (std::int64_t first = 0; first < n; first += images_per_block) {
        const std::int64_t count = std::min(images_per_block, n - first);
        Tensor<T> variants = Tensor<T>::uninitialized(Shape{count * 2 * points, channels, h, w});
        for (std::int64_t i = 0; i < count; ++i) {
            const std::int64_t image = first + i;
            const std::vector<std::int32_t> order =
                importance_order(maps.data() + image * pixels, pixels, options.seed, static_cast<std::uint64_t>(image));
            const T* x = images.data() + image * per;
            const T* b = blurred.data() + image * per;
            for (std::int64_t s = 0; s < points; ++s) {
                T* del = variants.data() + ((i * 2) * points + s) * per;
                T* ins = variants.data() + ((i * 2 + 1) * points + s) * per;
                std::copy(x, x + per, del);
                std::copy(b, b + per, ins);
                const std::int64_t changed = (s * pixels + options.steps / 2) / options.steps;  // rounded
                for (std::int64_t k = 0; k < changed; ++k)
                    for (std::int64_t c = 0; c < channels; ++c) {
                        const std::int64_t e = c * pixels + order[static_cast<std::size_t>(k)];
                        del[e] = static_cast<T>(options.deleted_value);
                        ins[e] = x[e];
                    }
            }
        }
        const Tensor<T> probs = detail::class_scores(model, variants, Score::probability, options.chunk_size);
        for (std::int64_t i = 0; i < count; ++i) {
            const int c = out.predicted[static_cast<std::size_t>(first + i)];
            for (std::int64_t s = 0; s < points; ++s) {
                out.deletion(first + i, s) = static_cast<float>(probs((i * 2) * points + s, c));
                out.insertion(first + i, s) = static_cast<float>(probs((i * 2 + 1) * points + s, c));
            }
        }
    }
    for (std::int64_t i = 0; i < n; ++i) {
        out.deletion_auc.push_back(area_under_curve(out.deletion.data() + i * points, points));
        out.insertion_auc.push_back(area_under_curve(out.insertion.data() + i * points, points));
    }
    out.mean_deletion_auc = std::accumulate(out.deletion_auc.begin(), out.deletion_auc.end(), 0.0) / n;
    out.mean_insertion_auc = std::accumulate(out.insertion_auc.begin(), out.insertion_auc.end(), 0.0) / n;
    return out;
}

/// Uniform random maps [n, height, width] keyed by `seed`: the baseline a faithful map must beat.
inline Tensor<float> random_maps(std::int64_t n, std::int64_t height, std::int64_t width, std::uint64_t seed = 0) {
    check(n >= 0 && height > 0 && width > 0, "random_maps: bad size ", n, " x ", height, " x ", width);
    Tensor<float> maps = Tensor<float>::uninitialized(Shape{n, height, width});
    const RandomStream stream(seed, Purpose::user, 0x72616e64);
    for (std::int64_t i = 0; i < maps.numel(); ++i) maps[i] = stream.uniform_float(static_cast<std::uint64_t>(i));
    return maps;
}

}  // namespace cnnlite::explain
