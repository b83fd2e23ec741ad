// Loading Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): the four IDX files become a training
// and a test Dataset of [N, 1, 28, 28] images, with the class names in label order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/data/dataset.hpp"
#include "cnnlite/data/idx.hpp"
#include "cnnlite/data/locate.hpp"

namespace cnnlite {

/// The ten Fashion-MNIST class names in label order (0 = "T-shirt/top" ... 9 = "Ankle boot").
inline const std::vector<std::string>& fashion_mnist_class_names() {
    static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}

/// What loading an IDX data set may read and hold.
struct IdxDatasetLimits {
    /// Read only the first `max_items` images and labels (idx_all_items: all of them).
    std::int64_t max_items = idx_all_items;
    /// Most memory the data set may take: its raw bytes plus their float copy, 5 bytes a
    /// pixel (1 GiB by default; Fashion-MNIST's training set takes 235 MB).
    std::uint64_t max_memory_bytes = std::uint64_t(1) << 30;
};

/// Reads an IDX image file and its IDX label file into a Dataset of [N, 1, H, W] images;
/// labels must lie in [0, class_names.size()) and both files must hold the same count. The
/// memory the images will take is checked against `limits` from the header alone, before
/// anything is allocated; with `limits.max_items` only that many samples are read.
inline Dataset load_idx_dataset(const std::filesystem::path& images_file, const std::filesystem::path& labels_file,
                                std::vector<std::string> class_names, const IdxDatasetLimits& limits = {}) {
    check(!class_names.empty(), "load_idx_dataset: no class names given");
    const Shape claimed = read_idx_u8_shape(images_file, 3);
    const std::int64_t count = limits.max_items == idx_all_items ? claimed[0] : std::min(claimed[0], limits.max_items);
    const std::uint64_t per_image = static_cast<std::uint64_t>(claimed[1]) * static_cast<std::uint64_t>(claimed[2]) * 5;
    const std::uint64_t budget = limits.max_memory_bytes;
    check(per_image == 0 || static_cast<std::uint64_t>(count) <= budget / per_image, "IDX file '", images_file.string(),
          "': ", count, " images of ", claimed[1], "x", claimed[2], " need ",
          static_cast<double>(count) * static_cast<double>(per_image) / 1e6,
          " MB in memory (bytes and floats), more than the budget of ", static_cast<double>(budget) / 1e6,
          " MB (IdxDatasetLimits::max_memory_bytes); read fewer images");
    Tensor<std::uint8_t> pixels = read_idx_images(images_file, idx_default_max_bytes, count);
    std::vector<int> labels =
        read_idx_labels(labels_file, static_cast<int>(class_names.size()), idx_default_max_bytes, count);
    check(static_cast<std::int64_t>(labels.size()) == pixels.dim(0), "IDX files '", images_file.string(), "' (",
          pixels.dim(0), " images) and '", labels_file.string(), "' (", labels.size(),
          " labels) do not hold the same number of samples");
    const Shape nchw{pixels.dim(0), 1, pixels.dim(1), pixels.dim(2)};
    return Dataset::from_pixels(pixels.reshape(nchw), std::move(labels), std::move(class_names));
}

/// The Fashion-MNIST training set (60,000 images) and test set (10,000), and where they came from.
struct FashionMnist {
    Dataset train;            ///< the training file, global indices 0..59,999
    Dataset test;             ///< the test file, global indices 0..9,999
    FashionMnistFiles files;  ///< the files read
};

/// How much of Fashion-MNIST to read: by default everything.
struct FashionMnistLimits {
    /// Read only the first N training images (idx_all_items: all; 0: skip the training files).
    std::int64_t train_images = idx_all_items;
    /// Read only the first N test images (idx_all_items: all; 0: skip the test files).
    std::int64_t test_images = idx_all_items;
    /// Most memory each of the two parts may take (see IdxDatasetLimits).
    std::uint64_t max_memory_bytes = IdxDatasetLimits{}.max_memory_bytes;
};

/// Loads the four files found by find_fashion_mnist_files(); images must be 28x28, and a file
/// pair that holds no images is an error naming it (every stage needs samples of both parts).
inline FashionMnist load_fashion_mnist(const FashionMnistFiles& files, const FashionMnistLimits& limits = {}) {
    const auto load = [&](const std::filesystem::path& images_file, const std::filesystem::path& labels_file,
                          std::int64_t max_items, const char* part) {
        Dataset data = load_idx_dataset(images_file, labels_file, fashion_mnist_class_names(),
                                        {max_items, limits.max_memory_bytes});
        const Shape shape = data.sample_shape();
        check(shape[1] == 28 && shape[2] == 28, "IDX file '", images_file.string(), "': images are ", shape[1], "x",
              shape[2], ", Fashion-MNIST images are 28x28");
        check(!data.empty(), "IDX file '", images_file.string(), "' holds no images, so the ", part,
              " set is empty; it needs at least one");
        return data;
    };
    check(limits.train_images >= idx_all_items && limits.test_images >= idx_all_items,
          "load_fashion_mnist: negative image counts ", limits.train_images, ", ", limits.test_images);
    FashionMnist data;
    data.files = files;
    if (limits.train_images != 0)
        data.train = load(files.train_images, files.train_labels, limits.train_images, "training");
    if (limits.test_images != 0) data.test = load(files.test_images, files.test_labels, limits.test_images, "test");
    return data;
}

/// Loads Fashion-MNIST from `folder` when given, else from the first place on the search path
/// (CNNLITE_DATA, ./data/fashion-mnist, /usr/share/datasets/fashion-mnist).
inline FashionMnist load_fashion_mnist(const std::filesystem::path& folder = {}, const FashionMnistLimits& limits = {}) {
    return load_fashion_mnist(locate_fashion_mnist(folder), limits);
}

}  // namespace cnnlite
