// Tests of data augmentation: the image transforms against hand-computed pixels, each random
// step against the draws it documents, the statistics of random erasing, determinism across
// thread counts and shardings, the Batcher integration, and hostile options.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "cnnlite/core/buffer_pool.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/augmentation.hpp"
#include "cnnlite/data/batching.hpp"
#include "cnnlite/data/dataset.hpp"
#include "cnnlite/data/image_transforms.hpp"
#include "error_message.hpp"

namespace test_data_augmentation {

using test_support::error_of;

using cnnlite::Augmentation;
using cnnlite::RandomStream;
using cnnlite::Shape;
using cnnlite::Tensor;

namespace {

/// Images with values uniform in [0, 1) from a user stream.
Tensor<float> random_images(const Shape& shape, std::uint64_t seed) {
    Tensor<float> images = Tensor<float>::uninitialized(shape);
    const RandomStream stream(seed, cnnlite::Purpose::user);
    for (std::int64_t i = 0; i < images.numel(); ++i) images[i] = stream.uniform_float(static_cast<std::uint64_t>(i));
    return images;
}

/// Global indices first, first + 1, ...
std::vector<std::int64_t> indices_from(std::int64_t first, std::int64_t count) {
    std::vector<std::int64_t> indices(static_cast<std::size_t>(count));
    for (std::int64_t k = 0; k < count; ++k) indices[static_cast<std::size_t>(k)] = first + 3 * k;
    return indices;
}

/// The plain definition of shift_image, out of place.
std::vector<float> shifted_by_definition(const std::vector<float>& in, std::int64_t c, std::int64_t h, std::int64_t w,
                                         std::int64_t dy, std::int64_t dx, float fill) {
    std::vector<float> out(in.size());
    for (std::int64_t ch = 0; ch < c; ++ch)
        for (std::int64_t y = 0; y < h; ++y)
            for (std::int64_t x = 0; x < w; ++x) {
                const std::int64_t sy = y + dy, sx = x + dx;
                const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
                out[static_cast<std::size_t>((ch * h + y) * w + x)] =
                    inside ? in[static_cast<std::size_t>((ch * h + sy) * w + sx)] : fill;
            }
    return out;
}


/// The bounding box and count of the pixels of a 28 x 28 image that differ from `background`.
struct Changed {
    std::int64_t count = 0, top = 28, left = 28, bottom = -1, right = -1;
    std::int64_t rows() const { return bottom - top + 1; }
    std::int64_t columns() const { return right - left + 1; }
};
Changed changed_pixels(const float* image, float background) {
    Changed c;
    for (std::int64_t y = 0; y < 28; ++y)
        for (std::int64_t x = 0; x < 28; ++x)
            if (image[y * 28 + x] != background) {
                ++c.count;
                c.top = std::min(c.top, y);
                c.bottom = std::max(c.bottom, y);
                c.left = std::min(c.left, x);
                c.right = std::max(c.right, x);
            }
    return c;
}

std::uint64_t pool_requests() {
    const cnnlite::BufferPoolStats stats = cnnlite::buffer_pool_stats();
    return stats.hits + stats.misses;
}

/// Restores the thread count at scope exit.
struct ThreadCount {
    int saved = cnnlite::num_threads();
    ~ThreadCount() { cnnlite::set_num_threads(saved); }
};

}  // namespace

TEST_CASE("shift_image moves pixels by exactly the given offsets and fills the rest") {
    // Two channels of 3 x 4: channel 0 holds 1..12, channel 1 holds 101..112.
    std::vector<float> image(24);
    for (int i = 0; i < 12; ++i) {
        image[static_cast<std::size_t>(i)] = static_cast<float>(i + 1);
        image[static_cast<std::size_t>(12 + i)] = static_cast<float>(101 + i);
    }
    std::vector<float> a = image;
    cnnlite::shift_image(a.data(), 2, 3, 4, 1, -1, -1.0f);  // content moves up one row and right one column
    CHECK(a == std::vector<float>{-1, 5, 6, 7, -1, 9, 10, 11, -1, -1, -1, -1,
                                  -1, 105, 106, 107, -1, 109, 110, 111, -1, -1, -1, -1});
    std::vector<float> b = image;
    cnnlite::shift_image(b.data(), 2, 3, 4, -2, 2, 0.0f);  // down two rows, left two columns
    CHECK(b == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 103, 104, 0, 0});
    std::vector<float> same = image;
    cnnlite::shift_image(same.data(), 2, 3, 4, 0, 0, -1.0f);
    CHECK(same == image);
    std::vector<float> gone = image;
    cnnlite::shift_image(gone.data(), 2, 3, 4, 0, 4, 7.0f);  // shifted out entirely
    CHECK(gone == std::vector<float>(24, 7.0f));

    // Every offset within and beyond the image, in place, against the out-of-place definition.
    const Tensor<float> source = random_images(Shape{2, 5, 6}, 1);
    const std::vector<float> values = source.to_vector();
    for (std::int64_t dy = -6; dy <= 6; ++dy)
        for (std::int64_t dx = -7; dx <= 7; ++dx) {
            std::vector<float> work = values;
            cnnlite::shift_image(work.data(), 2, 5, 6, dy, dx, -0.5f);
            REQUIRE(work == shifted_by_definition(values, 2, 5, 6, dy, dx, -0.5f));
        }
}

TEST_CASE("random translation uses the documented draws and reaches every offset equally often") {
    const std::int64_t n = 5;
    Tensor<float> images = random_images(Shape{n, 1, 9, 8}, 2);
    const std::vector<float> before = images.to_vector();
    const std::vector<std::int64_t> indices = {5, 17, 900, 0, 123456789};
    Augmentation().translate(2, -1.0f).apply(images, indices, 3, 2);
    for (std::int64_t k = 0; k < n; ++k) {
        const RandomStream stream(3, cnnlite::Purpose::augmentation, 2, static_cast<std::uint64_t>(indices[k]));
        const auto dy = static_cast<std::int64_t>(stream.below(0, 5)) - 2;
        const auto dx = static_cast<std::int64_t>(stream.below(1, 5)) - 2;
        const std::vector<float> original(before.begin() + k * 72, before.begin() + (k + 1) * 72);
        const std::vector<float> expected = shifted_by_definition(original, 1, 9, 8, dy, dx, -1.0f);
        CHECK(std::vector<float>(images.data() + k * 72, images.data() + (k + 1) * 72) == expected);
    }

    // Where the centre pixel of a 9 x 9 image of distinct values lands tells the offset; with
    // padding 2 all 25 offsets come up about 2500 / 25 = 100 times each (bounds ~5 sigma).
    const std::int64_t count = 2500;
    Tensor<float> grid(Shape{count, 1, 9, 9});
    for (std::int64_t k = 0; k < count; ++k)
        for (std::int64_t i = 0; i < 81; ++i) grid[k * 81 + i] = static_cast<float>(i + 1);
    Augmentation().translate(2).apply(grid, indices_from(0, count), 11, 0);
    std::vector<int> seen(25, 0);
    for (std::int64_t k = 0; k < count; ++k) {
        const float* image = grid.data() + k * 81;
        const auto at = std::find(image, image + 81, 41.0f) - image;  // value of pixel (4, 4)
        REQUIRE(at < 81);
        const std::int64_t dy = 4 - at / 9, dx = 4 - at % 9;
        REQUIRE(std::abs(dy) <= 2);
        REQUIRE(std::abs(dx) <= 2);
        ++seen[static_cast<std::size_t>((dy + 2) * 5 + dx + 2)];
        // The image was moved, not altered: the values left are a consecutive window of the original.
        REQUIRE(std::count(image, image + 81, 0.0f) == 81 - (9 - std::abs(dy)) * (9 - std::abs(dx)));
    }
    for (int s : seen) {
        CHECK(s > 50);
        CHECK(s < 150);
    }
    Tensor<float> untouched = random_images(Shape{2, 1, 4, 4}, 3);
    const std::vector<float> untouched_before = untouched.to_vector();
    Augmentation().translate(0).apply(untouched, {1, 2}, 0, 0);
    CHECK(untouched.to_vector() == untouched_before);
}

TEST_CASE("horizontal flips: hand-computed, twice is the identity, and the probability holds") {
    std::vector<float> image = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // 2 channels of 2 x 3
    cnnlite::flip_image_horizontally(image.data(), 2, 2, 3);
    CHECK(image == std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10});
    cnnlite::flip_image_horizontally(image.data(), 2, 2, 3);
    CHECK(image == std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});

    // The test-time copy: the original stays, the copy is mirrored, flipping it back restores it.
    const Tensor<float> batch = random_images(Shape{3, 2, 5, 7}, 4);
    const Tensor<float> flipped = cnnlite::flipped_horizontally(batch);
    CHECK(!flipped.shares_storage_with(batch));
    CHECK(flipped.shape() == batch.shape());
    for (std::int64_t n = 0; n < 3; ++n)
        for (std::int64_t c = 0; c < 2; ++c)
            for (std::int64_t y = 0; y < 5; ++y)
                for (std::int64_t x = 0; x < 7; ++x) REQUIRE(flipped(n, c, y, x) == batch(n, c, y, 6 - x));
    CHECK(cnnlite::flipped_horizontally(flipped).to_vector() == batch.to_vector());
    CHECK(error_of([] { cnnlite::flipped_horizontally(Tensor<float>(Shape{2, 28, 28})); })
              .find("[2, 28, 28]") != std::string::npos);

    // An asymmetric image flips in about half the samples; probabilities 0 and 1 are exact.
    const std::int64_t count = 4000;
    const auto flipped_fraction = [&](const Augmentation& augmentation) {
        Tensor<float> images(Shape{count, 1, 1, 2});
        for (std::int64_t k = 0; k < count; ++k) images[2 * k + 1] = 1.0f;  // [0, 1] per image
        augmentation.apply(images, indices_from(7, count), 5, 1);
        std::int64_t flips = 0;
        for (std::int64_t k = 0; k < count; ++k) flips += images[2 * k] == 1.0f ? 1 : 0;
        return static_cast<double>(flips) / static_cast<double>(count);
    };
    const double half = flipped_fraction(Augmentation().flip_horizontal());
    CHECK(half > 0.46);  // 0.5 +- 5 sigma (sigma = 0.0079)
    CHECK(half < 0.54);
    CHECK(flipped_fraction(Augmentation().flip_horizontal(0.2)) == doctest::Approx(0.2).epsilon(0.2));
    CHECK(flipped_fraction(Augmentation().flip_horizontal(0.0)) == 0.0);
    CHECK(flipped_fraction(Augmentation().flip_horizontal(1.0)) == 1.0);
    // Two flips in one pipeline draw independently (each step has its own draws): about half
    // the images end up mirrored, not none of them.
    const double twice = flipped_fraction(Augmentation().flip_horizontal().flip_horizontal());
    CHECK(twice > 0.46);
    CHECK(twice < 0.54);
}

TEST_CASE("random erasing: a fixed-size rectangle, erased exactly where it fits") {
    // s_l = s_h = 0.25 and r_1 = 1: every rectangle is 14 x 14 = 196 pixels of a 28 x 28 image.
    cnnlite::RandomErasingOptions options;
    options.probability = 1.0;
    options.min_area = options.max_area = 0.25;
    options.min_aspect = 1.0;
    options.fill = cnnlite::ErasingFill::constant;
    options.value = -2.0f;
    const std::int64_t count = 300;
    Tensor<float> images = Tensor<float>::full(Shape{count, 1, 28, 28}, 0.5f);
    Augmentation().random_erasing(options).apply(images, indices_from(1, count), 9, 4);
    std::set<std::pair<std::int64_t, std::int64_t>> corners;
    for (std::int64_t k = 0; k < count; ++k) {
        const Changed c = changed_pixels(images.data() + k * 784, 0.5f);
        REQUIRE(c.count == 196);
        REQUIRE(c.rows() == 14);
        REQUIRE(c.columns() == 14);
        REQUIRE(images[k * 784 + c.top * 28 + c.left] == -2.0f);
        corners.insert({c.top, c.left});
    }
    CHECK(corners.size() > 100);  // corners spread over the 15 x 15 that fit

    // A rectangle that never fits leaves the image alone after max_attempts draws.
    cnnlite::RandomErasingOptions never;
    never.probability = 1.0;
    never.min_area = never.max_area = 1.0;
    never.min_aspect = 0.3;
    never.max_attempts = 3;
    Tensor<float> kept = random_images(Shape{50, 1, 28, 28}, 5);
    const std::vector<float> kept_before = kept.to_vector();
    Augmentation().random_erasing(never).apply(kept, indices_from(0, 50), 1, 1);
    CHECK(kept.to_vector() == kept_before);
}

TEST_CASE("random erasing with the paper's defaults: probability, area and aspect ranges, retries, fill") {
    const std::int64_t count = 4000;
    cnnlite::RandomErasingOptions options;  // p = 0.5, s_l = 0.02, s_h = 0.4, r_1 = 0.3
    options.fill = cnnlite::ErasingFill::constant;
    options.value = 2.0f;
    const cnnlite::RandomErasing step(options);
    Tensor<float> images = Tensor<float>::full(Shape{count, 1, 28, 28}, 0.5f);
    const std::vector<std::int64_t> indices = indices_from(40, count);
    const std::uint64_t seed = 21, epoch = 6;
    Augmentation().random_erasing(options).apply(images, indices, seed, epoch);

    std::int64_t erased = 0, retried = 0;
    double min_fraction = 1, max_fraction = 0, fraction_sum = 0;
    for (std::int64_t k = 0; k < count; ++k) {
        const Changed c = changed_pixels(images.data() + k * 784, 0.5f);
        if (c.count == 0) continue;
        ++erased;
        REQUIRE(c.count == c.rows() * c.columns());  // one solid rectangle
        REQUIRE(images[k * 784 + c.top * 28 + c.left] == 2.0f);
        // H_e and W_e are sqrt(S_e r_e) and sqrt(S_e / r_e) rounded, so S_e and r_e lie within
        // half a pixel of what the rectangle shows.
        const double h = static_cast<double>(c.rows()), w = static_cast<double>(c.columns());
        CHECK((h + 0.5) * (w + 0.5) >= 0.02 * 784);
        CHECK((h - 0.5) * (w - 0.5) <= 0.4 * 784);
        CHECK((h + 0.5) / (w - 0.5) >= 0.3);
        CHECK((h - 0.5) / (w + 0.5) <= 1 / 0.3);
        const double fraction = h * w / 784.0;
        min_fraction = std::min(min_fraction, fraction);
        max_fraction = std::max(max_fraction, fraction);
        fraction_sum += fraction;

        // The rectangle is the first proposal that fits (Algorithm 1's loop).
        const RandomStream stream(seed, cnnlite::Purpose::augmentation, epoch,
                                  static_cast<std::uint64_t>(indices[static_cast<std::size_t>(k)]));
        REQUIRE(stream.uniform(0) < 0.5);
        int attempt = 0;
        cnnlite::RandomErasing::Rectangle r;
        for (; attempt < options.max_attempts; ++attempt) {
            r = step.proposal(28, 28, stream, 0, attempt);
            if (r.rows >= 1 && r.columns >= 1 && r.top + r.rows <= 28 && r.left + r.columns <= 28) break;
        }
        REQUIRE(attempt < options.max_attempts);
        CHECK(r.top == c.top);
        CHECK(r.left == c.left);
        CHECK(r.rows == c.rows());
        CHECK(r.columns == c.columns());
        retried += attempt > 0 ? 1 : 0;
    }
    const double probability = static_cast<double>(erased) / static_cast<double>(count);
    CHECK(probability > 0.46);  // 0.5 +- 5 sigma; a fitting rectangle is found almost surely
    CHECK(probability < 0.54);
    CHECK(min_fraction < 0.04);  // the whole range is used
    CHECK(max_fraction > 0.3);
    // Large rectangles fit at fewer corners, so the loop favours small ones: the mean erased
    // fraction lies below the mean target area 0.21.
    const double mean_fraction = fraction_sum / static_cast<double>(erased);
    CHECK(mean_fraction > 0.08);
    CHECK(mean_fraction < 0.21);
    CHECK(retried > erased / 4);

    SUBCASE("random fill values lie in the configured range and vary") {
        cnnlite::RandomErasingOptions random;
        random.probability = 1.0;
        random.random_min = -3.0f;
        random.random_max = -1.0f;
        Tensor<float> noisy = Tensor<float>::full(Shape{200, 1, 28, 28}, 0.5f);
        Augmentation().random_erasing(random).apply(noisy, indices_from(0, 200), 2, 2);
        double sum = 0;
        std::int64_t n = 0;
        std::set<float> distinct;
        for (std::int64_t i = 0; i < noisy.numel(); ++i) {
            if (noisy[i] == 0.5f) continue;
            REQUIRE(noisy[i] >= -3.0f);
            REQUIRE(noisy[i] < -1.0f);
            sum += noisy[i];
            ++n;
            distinct.insert(noisy[i]);
        }
        REQUIRE(n > 200 * 784 / 50);
        CHECK(sum / static_cast<double>(n) == doctest::Approx(-2.0).epsilon(0.01));
        CHECK(distinct.size() > static_cast<std::size_t>(n) / 2);
    }
}

TEST_CASE("augmentation is a pure function of (seed, epoch, global index): threads, shards and order do not matter") {
    const Augmentation augmentation = Augmentation().translate(2).flip_horizontal().random_erasing(0.5);
    const std::int64_t n = 200;  // 200 x 784 values: above the parallel threshold
    const Tensor<float> source = random_images(Shape{n, 1, 28, 28}, 6);
    const std::vector<std::int64_t> indices = indices_from(1000, n);
    const auto augmented = [&](int threads, std::uint64_t seed, std::uint64_t epoch) {
        const ThreadCount restore;
        cnnlite::set_num_threads(threads);
        Tensor<float> images = source.clone();
        augmentation.apply(images, indices, seed, epoch);
        return images.to_vector();
    };
    const std::vector<float> one = augmented(1, 8, 3);
    CHECK(one != source.to_vector());
    CHECK(augmented(2, 8, 3) == one);
    CHECK(augmented(1, 8, 3) == one);
    CHECK(augmented(1, 8, 4) != one);  // another epoch, other images
    CHECK(augmented(1, 9, 3) != one);  // another seed, other images

    // MPI-style: two halves with their own global indices give the same images.
    Tensor<float> halves = source.clone();
    Tensor<float> first = halves.rows(0, n / 2), second = halves.rows(n / 2, n / 2);
    augmentation.apply(first, std::vector<std::int64_t>(indices.begin(), indices.begin() + n / 2), 8, 3);
    augmentation.apply(second, std::vector<std::int64_t>(indices.begin() + n / 2, indices.end()), 8, 3);
    CHECK(halves.to_vector() == one);

    // A sample alone, at another position of a batch, is augmented the same way.
    Tensor<float> single = source.rows(57, 1).clone();
    augmentation.apply(single, {indices[57]}, 8, 3);
    CHECK(std::vector<float>(one.begin() + 57 * 784, one.begin() + 58 * 784) == single.to_vector());

    // An empty pipeline leaves the images alone.
    Tensor<float> plain = source.clone();
    Augmentation().apply(plain, indices, 8, 3);
    CHECK(plain.to_vector() == source.to_vector());
}

TEST_CASE("a Batcher augments its batches when asked, and only then") {
    const std::int64_t n = 300;
    const cnnlite::Dataset full =
        cnnlite::Dataset::from_images(random_images(Shape{n, 1, 28, 28}, 7), std::vector<int>(n, 0), {"only"});
    cnnlite::BatchOptions options;
    options.batch_size = 64;
    options.seed = 13;
    const Augmentation augmentation = Augmentation().translate(3).flip_horizontal().random_erasing();
    cnnlite::Batcher plain(full, options), augmented(full, options);
    CHECK(augmented.augmentation() == nullptr);
    augmented.set_augmentation(augmentation);
    REQUIRE(augmented.augmentation() != nullptr);
    CHECK(augmented.augmentation()->size() == 3);

    cnnlite::Batch a, b;
    for (std::uint64_t epoch : {0u, 1u}) {
        plain.start_epoch(epoch);
        augmented.start_epoch(epoch);
        std::uint64_t requests = 0;
        for (std::int64_t batch = 0; batch < plain.num_batches(); ++batch) {
            plain.fill(batch, a);
            augmented.fill(batch, b);
            if (batch == 1) requests = pool_requests();
            REQUIRE(a.indices == b.indices);
            CHECK(a.labels == b.labels);
            // The plain batch is the data set's samples; the augmented one is it, augmented.
            for (std::int64_t k = 0; k < a.size(); ++k)
                REQUIRE(std::equal(a.images.data() + k * 784, a.images.data() + (k + 1) * 784,
                                   full.images().data() + a.indices[static_cast<std::size_t>(k)] * 784));
            cnnlite::augment(a, augmentation, 13, epoch);
            CHECK(a.images.to_vector() == b.images.to_vector());
        }
        CHECK(pool_requests() == requests);  // no allocation in steady state
    }

    // One process's shard (a slice keeps the global indices) sees the same augmented samples.
    cnnlite::BatchOptions in_order = options;
    in_order.shuffle = false;
    in_order.batch_size = 100;
    cnnlite::Batcher whole(full, in_order), shard(full.slice(100, 100), in_order);
    whole.set_augmentation(augmentation);
    shard.set_augmentation(augmentation);
    whole.start_epoch(5);
    shard.start_epoch(5);
    whole.fill(1, a);
    shard.fill(0, b);
    CHECK(a.indices == b.indices);
    CHECK(a.images.to_vector() == b.images.to_vector());
    // Batcher::augment does to a batch gathered elsewhere what fill() does.
    cnnlite::gather_batch(full, whole.order().data() + 100, 100, b);
    whole.augment(b);
    CHECK(a.images.to_vector() == b.images.to_vector());

    augmented.clear_augmentation();
    CHECK(augmented.augmentation() == nullptr);
    augmented.start_epoch(0);
    plain.start_epoch(0);
    plain.fill(0, a);
    augmented.fill(0, b);
    CHECK(a.images.to_vector() == b.images.to_vector());

    // The image size is checked when the augmentation is set.
    CHECK(error_of([&] { augmented.set_augmentation(Augmentation().translate(28)); })
              .find("padding 28 must be smaller than the 28 x 28 image") != std::string::npos);
}

TEST_CASE("hostile options and batches are refused with a message naming the value") {
    const auto message = [](auto&& f) { return error_of(f); };
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(message([] { Augmentation().translate(-1); }) == "RandomTranslation: padding -1 must not be negative");
    CHECK(message([] { Augmentation().flip_horizontal(1.5); }) == "RandomHorizontalFlip: probability 1.5 is outside [0, 1]");
    CHECK(message([] { Augmentation().flip_horizontal(-0.1); }) ==
          "RandomHorizontalFlip: probability -0.1 is outside [0, 1]");
    CHECK(message([&] { Augmentation().flip_horizontal(nan); }).find("probability nan") != std::string::npos);
    CHECK(message([] { Augmentation().random_erasing(2.0); }) == "RandomErasing: probability 2 is outside [0, 1]");

    const auto erasing = [&](auto&& change) {
        cnnlite::RandomErasingOptions options;
        change(options);
        return message([&] { (void)cnnlite::RandomErasing(options); });
    };
    CHECK(erasing([](auto& o) { o.min_area = 0.4;
        o.max_area = 0.02; }) ==
          "RandomErasing: the area range [0.4, 0.02] is inverted (min_area must not exceed max_area)");
    CHECK(erasing([](auto& o) { o.min_area = 0.0; }) == "RandomErasing: min_area 0 is outside (0, 1]");
    CHECK(erasing([](auto& o) { o.max_area = 1.5; }) == "RandomErasing: max_area 1.5 is outside (0, 1]");
    CHECK(erasing([](auto& o) { o.min_aspect = 0.0; }) == "RandomErasing: min_aspect 0 is outside (0, 1]");
    CHECK(erasing([](auto& o) { o.min_aspect = 3.0; }) == "RandomErasing: min_aspect 3 is outside (0, 1]");
    CHECK(erasing([](auto& o) { o.max_attempts = 0; }) == "RandomErasing: max_attempts 0 is outside [1, 1000000]");
    CHECK(erasing([](auto& o) { o.random_min = 1.0f;
        o.random_max = 0.0f; }) ==
          "RandomErasing: the random fill range [1, 0] must be finite and not inverted");
    CHECK(erasing([](auto&) {}).empty());

    const Augmentation ok = Augmentation().translate(2).flip_horizontal();
    Tensor<float> empty(Shape{0, 1, 28, 28});
    CHECK(message([&] { ok.apply(empty, {}, 0, 0); }) == "Augmentation: empty batch [0, 1, 28, 28]");
    Tensor<float> rank3(Shape{2, 28, 28});
    CHECK(message([&] { ok.apply(rank3, {0, 1}, 0, 0); }) ==
          "Augmentation: images must have shape [N, C, H, W], got [2, 28, 28]");
    Tensor<float> undefined;
    CHECK(message([&] { ok.apply(undefined, {}, 0, 0); }).find("an undefined tensor") != std::string::npos);
    Tensor<float> batch(Shape{2, 1, 28, 28});
    CHECK(message([&] { ok.apply(batch, {0}, 0, 0); }) == "Augmentation: 1 global indices for a batch of 2 images");
    CHECK(message([&] { ok.apply(batch, {0, -4}, 0, 0); }) == "Augmentation: negative global index -4 (image 1)");
    // Padding as large as the image would let a crop miss the image entirely.
    Tensor<float> small(Shape{1, 1, 5, 9});
    CHECK(message([&] { Augmentation().translate(5).apply(small, {0}, 0, 0); }) ==
          "RandomTranslation: padding 5 must be smaller than the 5 x 9 image");
    CHECK(message([&] { Augmentation().translate(4).apply(small, {0}, 0, 0); }).empty());
}

}  // namespace test_data_augmentation
