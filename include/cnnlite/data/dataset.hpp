// Dataset: labelled images in memory, as the network sees them (float NCHW in [0, 1]) and,
// when they came from bytes, as stored (uint8) for statistics over raw pixel values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/shape.hpp"
#include "cnnlite/core/tensor.hpp"

namespace cnnlite {

/// Labelled images: `images()` [N, C, H, W] float, `labels()` in [0, num_classes()), and the
/// raw uint8 `pixels()` when built from bytes. Copies and slices share the image storage.
/// Each sample also has a global index (its position in the file it came from), which stays
/// the same in every slice; per-sample randomness such as dropout masks is keyed by it.
class Dataset {
public:
    /// An empty data set with no classes.
    Dataset() = default;

    /// From raw pixels [N, C, H, W]; `images()` becomes pixels / 255 (exact float division).
    static Dataset from_pixels(Tensor<std::uint8_t> pixels, std::vector<int> labels,
                               std::vector<std::string> class_names, std::int64_t first_index = 0) {
        check(pixels.defined() && pixels.rank() == 4, "Dataset::from_pixels: pixels must have shape [N, C, H, W], got ",
              pixels.shape().str());
        Tensor<float> images = Tensor<float>::uninitialized(pixels.shape());
        float scale[256];
        for (int v = 0; v < 256; ++v) scale[v] = static_cast<float>(v) / 255.0f;
        const std::uint8_t* in = pixels.data();
        float* out = images.data();
        const std::int64_t n = pixels.numel();
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > (1 << 20))
#endif
        for (std::int64_t i = 0; i < n; ++i) out[i] = scale[in[i]];
        Dataset data = from_images(std::move(images), std::move(labels), std::move(class_names), first_index);
        data.pixels_ = std::move(pixels);
        return data;
    }

    /// From float images [N, C, H, W] (already scaled); `pixels()` stays undefined.
    static Dataset from_images(Tensor<float> images, std::vector<int> labels, std::vector<std::string> class_names,
                               std::int64_t first_index = 0) {
        check(images.defined() && images.rank() == 4, "Dataset: images must have shape [N, C, H, W], got ",
              images.shape().str());
        check(static_cast<std::int64_t>(labels.size()) == images.dim(0), "Dataset: ", labels.size(),
              " labels for ", images.dim(0), " images");
        check(!class_names.empty(), "Dataset: at least one class name is needed");
        check(first_index >= 0, "Dataset: negative first index ", first_index);
        const int classes = static_cast<int>(class_names.size());
        for (std::size_t i = 0; i < labels.size(); ++i)
            if (labels[i] < 0 || labels[i] >= classes)
                fail("Dataset: label ", labels[i], " of sample ", i, " is outside the class range 0..", classes - 1);
        Dataset data;
        data.images_ = std::move(images);
        data.labels_ = std::move(labels);
        data.class_names_ = std::move(class_names);
        data.first_index_ = first_index;
        return data;
    }

    /// Number of samples.
    std::int64_t size() const { return static_cast<std::int64_t>(labels_.size()); }
    /// Whether there are no samples.
    bool empty() const { return labels_.empty(); }

    /// Network inputs [N, C, H, W], float in [0, 1] for data read from bytes.
    const Tensor<float>& images() const { return images_; }
    /// Raw bytes [N, C, H, W]; undefined for a data set built from float images.
    const Tensor<std::uint8_t>& pixels() const { return pixels_; }
    /// Whether raw uint8 pixels are kept.
    bool has_pixels() const { return pixels_.defined(); }
    /// Shape of one sample, [C, H, W].
    Shape sample_shape() const {
        if (!images_.defined()) return Shape();
        return Shape{images_.dim(1), images_.dim(2), images_.dim(3)};
    }

    /// Class label of every sample.
    const std::vector<int>& labels() const { return labels_; }
    /// Class names in label order.
    const std::vector<std::string>& class_names() const { return class_names_; }
    /// Number of classes (labels lie in [0, num_classes())).
    int num_classes() const { return static_cast<int>(class_names_.size()); }
    /// Samples per class, indexed by label.
    std::vector<std::int64_t> class_counts() const {
        std::vector<std::int64_t> counts(class_names_.size(), 0);
        for (int label : labels_) ++counts[static_cast<std::size_t>(label)];
        return counts;
    }

    /// Global index of sample 0.
    std::int64_t first_index() const { return first_index_; }
    /// Global index of sample `i`: its position in the file the data set was read from.
    std::int64_t global_index(std::int64_t i) const { return first_index_ + i; }

    /// Samples [first, first + count) as a data set sharing this one's image storage (labels
    /// are copied; they are small). Global indices carry over.
    Dataset slice(std::int64_t first, std::int64_t count) const {
        check(first >= 0 && count >= 0 && first <= size() && count <= size() - first, "Dataset::slice: samples [",
              first, ", ", first + count, ") out of range for a data set of ", size());
        check(images_.defined(), "Dataset::slice: the data set is empty and has no images");
        Dataset part;
        part.images_ = images_.rows(first, count);
        if (pixels_.defined()) part.pixels_ = pixels_.rows(first, count);
        part.labels_.assign(labels_.begin() + first, labels_.begin() + first + count);
        part.class_names_ = class_names_;
        part.first_index_ = first_index_ + first;
        return part;
    }

private:
    Tensor<float> images_;
    Tensor<std::uint8_t> pixels_;
    std::vector<int> labels_;
    std::vector<std::string> class_names_;
    std::int64_t first_index_ = 0;
};

namespace detail {

/// xxHash64's round (Collet): mixes one 64-bit word into the running state.
inline std::uint64_t fingerprint_round(std::uint64_t state, std::uint64_t word) {
    state += word * 0xC2B2AE3D27D4EB4Full;
    state = (state << 31) | (state >> 33);
    return state * 0x9E3779B185EBCA87ull;
}

/// Mixes `size` bytes into `state`, eight at a time in little-endian order (the same value on
/// every machine), then the length.
inline std::uint64_t fingerprint_bytes(std::uint64_t state, const std::uint8_t* bytes, std::size_t size) {
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t word = 0;
        for (int b = 7; b >= 0; --b) word = (word << 8) | bytes[i + static_cast<std::size_t>(b)];
        state = fingerprint_round(state, word);
    }
    std::uint64_t tail = 0;
    for (std::size_t b = size; b > i; --b) tail = (tail << 8) | bytes[b - 1];
    return fingerprint_round(fingerprint_round(state, tail), static_cast<std::uint64_t>(size));
}

}  // namespace detail

/// A 64-bit fingerprint of what the samples are: their shape, raw pixels (or float images when
/// there are none), labels and global indices. Two data sets with different content or order
/// differ in it with near certainty; checkpoints record it so that a run is never continued on
/// other data.
inline std::uint64_t content_fingerprint(const Dataset& data) {
    std::uint64_t state = 0x27D4EB2F165667C5ull;
    const Shape shape = data.sample_shape();
    for (std::int64_t d : shape) state = detail::fingerprint_round(state, static_cast<std::uint64_t>(d));
    state = detail::fingerprint_round(state, static_cast<std::uint64_t>(data.size()));
    state = detail::fingerprint_round(state, static_cast<std::uint64_t>(data.first_index()));
    if (data.has_pixels()) {
        state = detail::fingerprint_bytes(state, data.pixels().data(), static_cast<std::size_t>(data.pixels().numel()));
    } else if (data.images().defined()) {
        state = detail::fingerprint_bytes(state, reinterpret_cast<const std::uint8_t*>(data.images().data()),
                                          static_cast<std::size_t>(data.images().numel()) * sizeof(float));
    }
    for (int label : data.labels()) state = detail::fingerprint_round(state, static_cast<std::uint64_t>(label));
    return state ^ (state >> 29);
}

}  // namespace cnnlite
