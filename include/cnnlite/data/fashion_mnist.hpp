// Loading Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): the four IDX files become a training
// and a test Dataset of [N, 1, 28, 28] images, with the class names in label order.
#pragma once

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

/// Reads an IDX image file and its IDX label file into a Dataset of [N, 1, H, W] images;
/// labels must lie in [0, class_names.size()) and both files must hold the same count.
inline Dataset load_idx_dataset(const std::filesystem::path& images_file, const std::filesystem::path& labels_file,
                                std::vector<std::string> class_names) {
    check(!class_names.empty(), "load_idx_dataset: no class names given");
    Tensor<std::uint8_t> pixels = read_idx_images(images_file);
    std::vector<int> labels = read_idx_labels(labels_file, static_cast<int>(class_names.size()));
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

/// Loads the four files found by find_fashion_mnist_files(); images must be 28x28.
inline FashionMnist load_fashion_mnist(const FashionMnistFiles& files) {
    const auto load = [](const std::filesystem::path& images_file, const std::filesystem::path& labels_file) {
        Dataset part = load_idx_dataset(images_file, labels_file, fashion_mnist_class_names());
        const Shape shape = part.sample_shape();
        check(shape[1] == 28 && shape[2] == 28, "IDX file '", images_file.string(), "': images are ", shape[1], "x",
              shape[2], ", Fashion-MNIST images are 28x28");
        return part;
    };
    FashionMnist data;
    data.files = files;
    data.train = load(files.train_images, files.train_labels);
    data.test = load(files.test_images, files.test_labels);
    return data;
}

/// Loads Fashion-MNIST from `folder` when given, else from the first place on the search path
/// (CNNLITE_DATA, ./data/fashion-mnist, /usr/share/datasets/fashion-mnist).
inline FashionMnist load_fashion_mnist(const std::filesystem::path& folder = {}) {
    return load_fashion_mnist(locate_fashion_mnist(folder));
}

}  // namespace cnnlite
