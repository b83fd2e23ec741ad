// On-the-fly data augmentation of image batches [N, C, H, W]: random translation (pad and
// crop), random horizontal flip and random erasing, composed into an ordered pipeline.
//
// Every random choice about a sample is a pure function of (seed, epoch, the sample's global
// index, the step's position in the pipeline), drawn from
// RandomStream(seed, Purpose::augmentation, epoch, global_index) with step s using the draws
// from s * 2^32 on. No generator is shared, so the same images come out whatever the thread
// count, the batch composition, or how the data set is sharded across processes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/shape.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/data/image_transforms.hpp"

namespace cnnlite {

/// Options of RandomTranslation.
struct TranslationOptions {
    /// p: the image is padded by p pixels on every side and cropped back to its size at a
    /// random offset in [-p, p] along each axis (0 leaves the image alone). Must be smaller
    /// than the image's height and width.
    std::int64_t padding = 4;
    /// Value of the padding, i.e. of the pixels shifted in (0: Fashion-MNIST's background).
    float fill = 0.0f;
};

/// Options of RandomHorizontalFlip.
struct FlipOptions {
    /// Chance that an image is mirrored left to right, in [0, 1].
    double probability = 0.5;
};

/// How RandomErasing fills the erased rectangle.
enum class ErasingFill {
    random,    ///< every erased value uniform in [random_min, random_max) (the paper's choice)
    constant,  ///< every erased value equal to `value`
};

/// Options of RandomErasing; the defaults are those of Zhong et al. (2017).
struct RandomErasingOptions {
    /// p: chance that an image gets a rectangle erased, in [0, 1].
    double probability = 0.5;
    /// s_l: smallest erased area, as a fraction of the image, in (0, max_area].
    double min_area = 0.02;
    /// s_h: largest erased area, as a fraction of the image, in [min_area, 1].
    double max_area = 0.4;
    /// r_1: the rectangle's height / width is drawn from [r_1, 1 / r_1]; in (0, 1].
    double min_aspect = 0.3;
    /// What the rectangle is filled with.
    ErasingFill fill = ErasingFill::random;
    /// The fill value of ErasingFill::constant.
    float value = 0.0f;
    /// Lower end of the random fill values (ErasingFill::random).
    float random_min = 0.0f;
    /// Upper end of the random fill values (ErasingFill::random).
    float random_max = 1.0f;
    /// Rectangles drawn before giving up on an image, which then stays unchanged, in
    /// [1, 1,000,000]. The paper repeats until a rectangle fits; a bound keeps an
    /// option that can never fit (e.g. min_area 1 with min_aspect 0.5) from looping forever.
    int max_attempts = 100;
};

namespace detail {

/// Draws of one pipeline step: step s uses indices [s * 2^32, (s + 1) * 2^32) of the stream.
constexpr std::uint64_t augmentation_step_draws = std::uint64_t(1) << 32;

/// Work (pixels) below which a batch is augmented serially: the value of
/// kernels::parallel_threshold, which data/ may not include.
constexpr std::int64_t augmentation_parallel_work = std::int64_t(1) << 16;

/// Whether `p` is a probability (NaN is not).
inline bool is_probability(double p) { return p >= 0.0 && p <= 1.0; }

}  // namespace detail

/// Pads an image by `padding` pixels of `fill` and crops it back at a random offset: the
/// content moves by up to `padding` pixels along each axis (shift_image). Draws: 0 the
/// vertical offset, below(2p + 1) - p; 1 the horizontal one, the same way.
class RandomTranslation {
public:
    /// The step with the given options; throws cnnlite::Error naming a bad value.
    explicit RandomTranslation(TranslationOptions options = {}) : options_(options) {
        check(options_.padding >= 0, "RandomTranslation: padding ", options_.padding, " must not be negative");
    }
    /// The options it was made with.
    const TranslationOptions& options() const { return options_; }
    /// Throws cnnlite::Error unless the padding is smaller than images of this size.
    void check_image(std::int64_t height, std::int64_t width) const {
        check(options_.padding < height && options_.padding < width, "RandomTranslation: padding ", options_.padding,
              " must be smaller than the ", height, " x ", width, " image");
    }
    /// Translates one [channels, height, width] image in place with draws from `first` on.
    void apply(float* image, std::int64_t channels, std::int64_t height, std::int64_t width, const RandomStream& stream,
               std::uint64_t first) const {
        const std::int64_t p = options_.padding;
        if (p == 0) return;
        const auto span = static_cast<std::uint64_t>(2 * p + 1);
        const std::int64_t dy = static_cast<std::int64_t>(stream.below(first, span)) - p;
        const std::int64_t dx = static_cast<std::int64_t>(stream.below(first + 1, span)) - p;
        shift_image(image, channels, height, width, dy, dx, options_.fill);
    }

private:
    TranslationOptions options_;
};

/// Mirrors an image left to right with the given probability. Draw 0 decides: flip when
/// uniform(0) < probability.
class RandomHorizontalFlip {
public:
    /// The step with the given options; throws cnnlite::Error naming a bad value.
    explicit RandomHorizontalFlip(FlipOptions options = {}) : options_(options) {
        check(detail::is_probability(options_.probability), "RandomHorizontalFlip: probability ",
              options_.probability, " is outside [0, 1]");
    }
    /// The options it was made with.
    const FlipOptions& options() const { return options_; }
    /// Any image size will do.
    void check_image(std::int64_t, std::int64_t) const {}
    /// Flips one [channels, height, width] image in place, or not, with draws from `first` on.
    void apply(float* image, std::int64_t channels, std::int64_t height, std::int64_t width, const RandomStream& stream,
               std::uint64_t first) const {
        if (stream.uniform(first) < options_.probability) flip_image_horizontally(image, channels, height, width);
    }

private:
    FlipOptions options_;
};

/// Random erasing (Zhong, Zheng, Kang, Li, Yang 2017, "Random Erasing Data Augmentation",
/// Algorithm 1): with probability p, draw a target area S_e = U(s_l, s_h) * H * W and an
/// aspect ratio r_e = U(r_1, 1 / r_1), take H_e = round(sqrt(S_e r_e)) rows and
/// W_e = round(sqrt(S_e / r_e)) columns at a uniform top-left corner (x_e, y_e) of the image,
/// and, if the rectangle lies inside the image, fill it in every channel; otherwise draw again,
/// up to max_attempts times. Draws: 0 the decision (erase when uniform(0) < p); attempt t uses
/// 1 + 4t (area), 2 + 4t (aspect), 3 + 4t (x_e, below(W)), 4 + 4t (y_e, below(H)); the random
/// fill of the k-th erased value (channel, then row, then column) is 1 + 4 max_attempts + k.
class RandomErasing {
public:
    /// The step with the given options; throws cnnlite::Error naming a bad value.
    explicit RandomErasing(RandomErasingOptions options = {}) : options_(options) {
        const RandomErasingOptions& o = options_;
        check(detail::is_probability(o.probability), "RandomErasing: probability ", o.probability,
              " is outside [0, 1]");
        check(o.min_area > 0.0 && o.min_area <= 1.0, "RandomErasing: min_area ", o.min_area,
              " is outside (0, 1]");
        check(o.max_area > 0.0 && o.max_area <= 1.0, "RandomErasing: max_area ", o.max_area,
              " is outside (0, 1]");
        check(o.min_area <= o.max_area, "RandomErasing: the area range [", o.min_area, ", ", o.max_area,
              "] is inverted (min_area must not exceed max_area)");
        check(o.min_aspect > 0.0 && o.min_aspect <= 1.0, "RandomErasing: min_aspect ", o.min_aspect,
              " is outside (0, 1]");
        check(o.fill == ErasingFill::random || o.fill == ErasingFill::constant, "RandomErasing: unknown fill mode ",
              static_cast<int>(o.fill));
        check(std::isfinite(o.random_min) && std::isfinite(o.random_max) && o.random_min <= o.random_max,
              "RandomErasing: the random fill range [", o.random_min, ", ", o.random_max,
              "] must be finite and not inverted");
        check(o.max_attempts >= 1 && o.max_attempts <= 1000000, "RandomErasing: max_attempts ", o.max_attempts,
              " is outside [1, 1000000]");
    }
    /// The options it was made with.
    const RandomErasingOptions& options() const { return options_; }
    /// Any image size will do (a rectangle that cannot fit is simply never drawn).
    void check_image(std::int64_t, std::int64_t) const {}

    /// The rectangle attempt `attempt` proposes for a height x width image, whether or not it
    /// fits: rows [top, top + rows), columns [left, left + columns).
    struct Rectangle {
        std::int64_t top = 0;      ///< first row
        std::int64_t left = 0;     ///< first column
        std::int64_t rows = 0;     ///< H_e
        std::int64_t columns = 0;  ///< W_e
    };
    /// Attempt `attempt`'s rectangle (draws from `first` on, as documented for the class).
    Rectangle proposal(std::int64_t height, std::int64_t width, const RandomStream& stream, std::uint64_t first,
                       int attempt) const {
        const RandomErasingOptions& o = options_;
        const std::uint64_t d = first + 1 + 4 * static_cast<std::uint64_t>(attempt);
        const double area = static_cast<double>(height) * static_cast<double>(width) *
                            (o.min_area + (o.max_area - o.min_area) * stream.uniform(d));
        const double aspect = o.min_aspect + (1.0 / o.min_aspect - o.min_aspect) * stream.uniform(d + 1);
        Rectangle r;
        r.rows = static_cast<std::int64_t>(std::llround(std::sqrt(area * aspect)));
        r.columns = static_cast<std::int64_t>(std::llround(std::sqrt(area / aspect)));
        r.left = static_cast<std::int64_t>(stream.below(d + 2, static_cast<std::uint64_t>(width)));
        r.top = static_cast<std::int64_t>(stream.below(d + 3, static_cast<std::uint64_t>(height)));
        return r;
    }

    /// Erases a rectangle of one [channels, height, width] image in place, or not, with draws
    /// from `first` on.
    void apply(float* image, std::int64_t channels, std::int64_t height, std::int64_t width, const RandomStream& stream,
               std::uint64_t first) const {
        const RandomErasingOptions& o = options_;
        if (!(stream.uniform(first) < o.probability)) return;
        for (int attempt = 0; attempt < o.max_attempts; ++attempt) {
            const Rectangle r = proposal(height, width, stream, first, attempt);
            if (r.rows < 1 || r.columns < 1 || r.left + r.columns > width || r.top + r.rows > height) continue;
            std::uint64_t draw = first + 1 + 4 * static_cast<std::uint64_t>(o.max_attempts);
            const float scale = o.random_max - o.random_min;
            for (std::int64_t c = 0; c < channels; ++c) {
                for (std::int64_t y = r.top; y < r.top + r.rows; ++y) {
                    float* row = image + (c * height + y) * width + r.left;
                    if (o.fill == ErasingFill::constant) {
                        std::fill(row, row + r.columns, o.value);
                    } else {
                        for (std::int64_t x = 0; x < r.columns; ++x)
                            row[x] = o.random_min + scale * stream.uniform_float(draw++);
                    }
                }
            }
            return;
        }
    }

private:
    RandomErasingOptions options_;
};

/// One step of an Augmentation pipeline.
using AugmentationStep = std::variant<RandomTranslation, RandomHorizontalFlip, RandomErasing>;

/// An ordered list of random augmentation steps, applied to every image of a batch in turn:
///
///     const auto augmentation = Augmentation().translate(2).flip_horizontal().random_erasing(0.5);
///     augmentation.apply(batch.images, batch.indices, seed, epoch);
///
/// Options are checked when a step is added. apply() is const and keeps no state, so one
/// pipeline may serve several threads at once.
class Augmentation {
public:
    /// A pipeline without steps (apply() leaves images unchanged).
    Augmentation() = default;

    /// Appends a step.
    Augmentation& add(AugmentationStep step) {
        steps_.push_back(std::move(step));
        return *this;
    }
    /// Appends a random translation by up to 4 pixels (TranslationOptions' defaults).
    Augmentation& translate() { return add(RandomTranslation()); }
    /// Appends a random translation by up to `padding` pixels, padding with `fill`.
    Augmentation& translate(std::int64_t padding, float fill = 0.0f) {
        return add(RandomTranslation(TranslationOptions{padding, fill}));
    }
    /// Appends a random translation with the given options.
    Augmentation& translate(const TranslationOptions& options) { return add(RandomTranslation(options)); }
    /// Appends a horizontal flip with probability 0.5.
    Augmentation& flip_horizontal() { return add(RandomHorizontalFlip()); }
    /// Appends a horizontal flip with the given probability.
    Augmentation& flip_horizontal(double probability) { return add(RandomHorizontalFlip(FlipOptions{probability})); }
    /// Appends a horizontal flip with the given options.
    Augmentation& flip_horizontal(const FlipOptions& options) { return add(RandomHorizontalFlip(options)); }
    /// Appends random erasing with the paper's defaults (RandomErasingOptions).
    Augmentation& random_erasing() { return add(RandomErasing()); }
    /// Appends random erasing with probability `probability` and otherwise the defaults.
    Augmentation& random_erasing(double probability) {
        RandomErasingOptions options;
        options.probability = probability;
        return add(RandomErasing(options));
    }
    /// Appends random erasing with the given options.
    Augmentation& random_erasing(const RandomErasingOptions& options) { return add(RandomErasing(options)); }

    /// The steps in the order they run.
    const std::vector<AugmentationStep>& steps() const { return steps_; }
    /// Number of steps.
    std::int64_t size() const { return static_cast<std::int64_t>(steps_.size()); }
    /// Whether there are no steps.
    bool empty() const { return steps_.empty(); }

    /// Throws cnnlite::Error unless every step accepts [.., height, width] images.
    void check_image(std::int64_t height, std::int64_t width) const {
        for (const AugmentationStep& step : steps_)
            std::visit([&](const auto& s) { s.check_image(height, width); }, step);
    }

    /// Runs every step on one [channels, height, width] image in place, keyed by (seed, epoch,
    /// global_index). The caller has checked the image size (check_image).
    void apply_to_image(float* image, std::int64_t channels, std::int64_t height, std::int64_t width,
                        std::int64_t global_index, std::uint64_t seed, std::uint64_t epoch) const {
        const RandomStream stream(seed, Purpose::augmentation, epoch, static_cast<std::uint64_t>(global_index));
        for (std::size_t s = 0; s < steps_.size(); ++s) {
            const std::uint64_t first = static_cast<std::uint64_t>(s) * detail::augmentation_step_draws;
            std::visit([&](const auto& step) { step.apply(image, channels, height, width, stream, first); }, steps_[s]);
        }
    }

    /// Augments a batch [N, C, H, W] in place; image k is keyed by global_indices[k] (as in
    /// Batch::indices). Samples run in parallel when the batch is large enough; no allocation.
    void apply(Tensor<float>& images, const std::vector<std::int64_t>& global_indices, std::uint64_t seed,
               std::uint64_t epoch) const {
        check(images.defined() && images.rank() == 4, "Augmentation: images must have shape [N, C, H, W], got ",
              images.defined() ? images.shape().str() : std::string("an undefined tensor"));
        const std::int64_t n = images.dim(0), channels = images.dim(1), height = images.dim(2), width = images.dim(3);
        check(n >= 1, "Augmentation: empty batch ", images.shape().str());
        check(channels >= 1 && height >= 1 && width >= 1, "Augmentation: empty images in batch ",
              images.shape().str());
        check(static_cast<std::int64_t>(global_indices.size()) == n, "Augmentation: ", global_indices.size(),
              " global indices for a batch of ", n, " images");
        const std::int64_t sample = channels * height * width;
        // Draw indices of a step must stay within its 2^32 block (random erasing draws one per
        // erased value after its attempts).
        check(sample < (std::int64_t(1) << 31), "Augmentation: images of ", sample, " values are too large");
        for (std::size_t k = 0; k < global_indices.size(); ++k)
            check(global_indices[k] >= 0, "Augmentation: negative global index ", global_indices[k], " (image ", k,
                  ")");
        check_image(height, width);
        if (steps_.empty()) return;

        float* data = images.data();
        const std::int64_t* index = global_indices.data();
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n * sample >= detail::augmentation_parallel_work)
#endif
        for (std::int64_t k = 0; k < n; ++k)
            apply_to_image(data + k * sample, channels, height, width, index[k], seed, epoch);
    }

private:
    std::vector<AugmentationStep> steps_;
};

}  // namespace cnnlite
