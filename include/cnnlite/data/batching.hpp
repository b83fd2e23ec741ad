// Mini-batches for training and evaluation. An epoch's sample order is a pure function of
// (seed, epoch), so a run resumed at epoch e, or replayed with another thread count, sees the
// same batches. Batches are gathered into caller-owned, reused storage: no allocation per
// batch in steady state. A Batcher may also augment its batches (data/augmentation.hpp), keyed
// by (seed, epoch, global index), so augmentation is as reproducible as the order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <optional>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/shape.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/data/augmentation.hpp"
#include "cnnlite/data/dataset.hpp"

namespace cnnlite {

/// Writes into `order` (reusing its capacity) the sample order of epoch `epoch`: 0..n-1
/// shuffled by Fisher-Yates, where for i = n-1 down to 1 position i swaps with position
/// RandomStream(seed, Purpose::shuffle, epoch).below(i, i + 1).
inline void epoch_permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch,
                              std::vector<std::int64_t>& order) {
    check(n >= 0, "epoch_permutation: negative sample count ", n);
    order.resize(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), std::int64_t(0));
    const RandomStream stream(seed, Purpose::shuffle, epoch);
    for (std::int64_t i = n - 1; i >= 1; --i) {
        const auto j = static_cast<std::int64_t>(stream.below(static_cast<std::uint64_t>(i),
                                                              static_cast<std::uint64_t>(i) + 1));
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
}

/// The sample order of epoch `epoch` (see the overload that fills a vector).
inline std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch) {
    std::vector<std::int64_t> order;
    epoch_permutation(n, seed, epoch, order);
    return order;
}

/// One mini-batch: copies of the selected images with their labels and global indices. Keep
/// one Batch alive across steps; gather_batch reuses its storage.
struct Batch {
    Tensor<float> images;               ///< [count, C, H, W], a view of `storage`
    std::vector<int> labels;            ///< label of images[k]
    std::vector<std::int64_t> indices;  ///< global index (Dataset::global_index) of images[k]
    Tensor<float> storage;              ///< backing store; its first axis is the capacity in samples

    /// Number of samples in the batch.
    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

/// Copies samples positions[0..count) of `data` into `batch`. The batch's storage is reused
/// when it is large enough and nobody else holds it (a caller keeping an earlier
/// `batch.images` alive gets fresh storage instead of having its data overwritten).
inline void gather_batch(const Dataset& data, const std::int64_t* positions, std::int64_t count, Batch& batch) {
    check(count >= 0, "gather_batch: negative batch size ", count);
    check(!data.empty(), "gather_batch: the data set is empty");
    const std::int64_t n = data.size();
    batch.labels.resize(static_cast<std::size_t>(count));
    batch.indices.resize(static_cast<std::size_t>(count));
    for (std::int64_t k = 0; k < count; ++k) {
        const std::int64_t p = positions[k];
        if (p < 0 || p >= n) fail("gather_batch: position ", p, " (batch entry ", k, ") out of range for ", n, " samples");
        batch.labels[static_cast<std::size_t>(k)] = data.labels()[static_cast<std::size_t>(p)];
        batch.indices[static_cast<std::size_t>(k)] = data.global_index(p);
    }

    const Shape sample = data.sample_shape();
    const std::int64_t sample_numel = sample.numel();
    batch.images = Tensor<float>();  // drop our own view so that unique() sees only outside holders
    const Tensor<float>& storage = batch.storage;
    const bool reusable = storage.defined() && storage.unique() && storage.rank() == 4 && storage.dim(0) >= count &&
                          storage.dim(1) == sample[0] && storage.dim(2) == sample[1] && storage.dim(3) == sample[2];
    if (!reusable) batch.storage = Tensor<float>::uninitialized(Shape{count, sample[0], sample[1], sample[2]});
    batch.images = batch.storage.rows(0, count);

    const float* source = data.images().data();
    float* destination = batch.images.data();
    const auto bytes = static_cast<std::size_t>(sample_numel) * sizeof(float);
    // Parallel only when the copy is big enough to repay waking the threads.
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (count * sample_numel >= (1 << 16))
#endif
    for (std::int64_t k = 0; k < count; ++k)
        std::memcpy(destination + k * sample_numel, source + positions[k] * sample_numel, bytes);
}

/// Overload taking the positions as a vector.
inline void gather_batch(const Dataset& data, const std::vector<std::int64_t>& positions, Batch& batch) {
    gather_batch(data, positions.data(), static_cast<std::int64_t>(positions.size()), batch);
}

/// Augments `batch` in place with `augmentation`, keyed by (seed, epoch, batch.indices): the
/// same images come out whichever batch, shard or thread a sample lands in.
inline void augment(Batch& batch, const Augmentation& augmentation, std::uint64_t seed, std::uint64_t epoch) {
    augmentation.apply(batch.images, batch.indices, seed, epoch);
}

/// How a Batcher cuts a data set into batches.
struct BatchOptions {
    std::int64_t batch_size = 64;  ///< samples per batch (the last one may be smaller)
    bool shuffle = true;           ///< a new order every epoch; false keeps the data set's order
    bool drop_last = false;        ///< skip a last batch smaller than batch_size
    std::uint64_t seed = 0;        ///< key of the shuffle stream
};

/// Cuts a Dataset into mini-batches epoch by epoch. The order of epoch e is
/// epoch_permutation(size, seed, e) when shuffling, the data set's order otherwise. With an
/// augmentation set, every batch it fills is augmented with (options().seed, epoch()).
class Batcher {
public:
    /// Batches of `data` (its images are shared, not copied); starts at epoch 0.
    explicit Batcher(Dataset data, BatchOptions options = {}) : data_(std::move(data)), options_(options) {
        check(options_.batch_size >= 1, "Batcher: batch size ", options_.batch_size, " must be at least 1");
        start_epoch(0);
    }

    /// Fixes the sample order of `epoch` and rewinds next() to its first batch.
    void start_epoch(std::uint64_t epoch) {
        epoch_ = epoch;
        cursor_ = 0;
        if (options_.shuffle) {
            epoch_permutation(data_.size(), options_.seed, epoch, order_);
        } else {
            order_.resize(static_cast<std::size_t>(data_.size()));
            std::iota(order_.begin(), order_.end(), std::int64_t(0));
        }
    }

    /// Batches per epoch.
    std::int64_t num_batches() const {
        const std::int64_t n = data_.size();
        const std::int64_t full = n / options_.batch_size;
        return full + ((n % options_.batch_size != 0 && !options_.drop_last) ? 1 : 0);
    }
    /// The epoch set by the last start_epoch().
    std::uint64_t epoch() const { return epoch_; }
    /// Positions in data() in this epoch's order.
    const std::vector<std::int64_t>& order() const { return order_; }
    /// The data set being batched.
    const Dataset& data() const { return data_; }
    /// The options given at construction.
    const BatchOptions& options() const { return options_; }

    /// Augments every batch fill() and next() produce from now on (see augment()); the
    /// options were checked when the steps were added, the image size is checked here.
    void set_augmentation(Augmentation augmentation) {
        const Shape sample = data_.sample_shape();
        if (sample.rank() == 3) augmentation.check_image(sample[1], sample[2]);
        augmentation_ = std::move(augmentation);
    }
    /// Stops augmenting: batches are plain copies of the data again.
    void clear_augmentation() { augmentation_.reset(); }
    /// The augmentation applied to batches; null when none.
    const Augmentation* augmentation() const { return augmentation_ ? &*augmentation_ : nullptr; }
    /// Augments a batch gathered elsewhere from this batcher's order (e.g. one process's share
    /// of batch b) exactly as fill() would; does nothing without an augmentation.
    void augment(Batch& batch) const {
        if (augmentation_) cnnlite::augment(batch, *augmentation_, options_.seed, epoch_);
    }

    /// Fills `batch` with batch `b` of the current epoch (0 <= b < num_batches()); safe to call
    /// from several threads with different Batch objects.
    void fill(std::int64_t b, Batch& batch) const {
        check(b >= 0 && b < num_batches(), "Batcher: batch ", b, " out of range; the epoch has ", num_batches(),
              " batches");
        const std::int64_t first = b * options_.batch_size;
        const std::int64_t count = std::min(options_.batch_size, data_.size() - first);
        gather_batch(data_, order_.data() + first, count, batch);
        augment(batch);
    }

    /// Fills `batch` with the epoch's next batch; returns false (leaving `batch` alone) when
    /// the epoch is done.
    bool next(Batch& batch) {
        if (cursor_ >= num_batches()) return false;
        fill(cursor_++, batch);
        return true;
    }

private:
    Dataset data_;
    BatchOptions options_;
    std::vector<std::int64_t> order_;
    std::optional<Augmentation> augmentation_;
    std::uint64_t epoch_ = 0;
    std::int64_t cursor_ = 0;
};

}  // namespace cnnlite
