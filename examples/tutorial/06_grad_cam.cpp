// Tutorial chapter 6 (docs/tutorial/06-grad-cam.md): Grad-CAM worked by hand on two tiny
// feature maps, then on the paper's network after a short training run, with each map printed
// next to its image. Usage: tutorial_06_grad_cam [DATA_DIR] (default data/fixtures).
#include <cnnlite/core/threading.hpp>
#include <cnnlite/data/fashion_mnist.hpp>
#include <cnnlite/explain/gradcam.hpp>
#include <cnnlite/nn/paper_model.hpp>
#include <cnnlite/optim/adam.hpp>
#include <cnnlite/train/fit.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "tutorial.hpp"

using namespace cnnlite;
using tutorial::print_matrix;
using tutorial::values;

int main(int argc, char** argv) try {
    set_num_threads(1);  // printed numbers independent of the core count
    const std::string folder = argc > 1 ? argv[1] : "data/fixtures";

    std::printf("== Grad-CAM by hand: two 2x2 feature maps\n");
    // [snippet:hand]
    // A: the layer's output for one image, K = 2 channels of 2x2; g = d score / dA.
    const Tensor<float> A = Tensor<float>::from({1, 2, 2, 2}, {1, 0, 0, 1,     // channel 0: [[1, 0], [0, 1]]
                                                               0, 2, 2, 0});  // channel 1: [[0, 2], [2, 0]]
    const Tensor<float> g = Tensor<float>::from({1, 2, 2, 2}, {0.5, 0.5, 0.5, 0.5,
                                                               -0.25, -0.25, -0.25, -0.25});
    const Tensor<float> alpha = explain::gradcam_weights(g);  // mean of g over positions, per channel
    Tensor<float> cam = explain::weighted_channel_sum(A, alpha);  // sum_k alpha_k A_k
    std::printf("alpha = %s\n", values(alpha, 2).c_str());
    std::printf("sum_k alpha_k A_k =\n");
    print_matrix(cam, 2, 2, 2, 6);
    cam = explain::postprocess_maps(cam, explain::PostProcess{}, 2, 2);  // ReLU, divide by the max
    std::printf("Grad-CAM = ReLU(...) / max =\n");
    print_matrix(cam, 2, 2, 2, 6);
    // [end]
    tutorial::expect_close("hand Grad-CAM", cam, Tensor<float>::from({4}, {1, 0, 0, 1}));

    std::printf("\n== the paper's network after 3 epochs on the fixture\n");
    // [snippet:train]
    const FashionMnist data = load_fashion_mnist(folder);
    Sequential<> model = fashion_mnist_cnn(/*seed=*/0);  // nn/paper_model.hpp: chapter 5's network
    Adam<> adam(model.trainable_variables());
    FitOptions options;
    options.epochs = 3;
    options.verbosity = Verbosity::silent;
    fit(model, adam, data.train, nullptr, options);
    // [end]

    // [snippet:explain]
    const Tensor<float> images = data.test.images().rows(0, 4);
    explain::CamOptions cam_options;  // last Conv2D, predicted class, softmax probability
    const explain::Explanation e = explain::grad_cam(model, images, cam_options);
    std::printf("layer '%s', maps %s\n", e.layer.c_str(), e.maps.shape().str().c_str());
    // [end]
    check(e.maps.shape() == Shape({4, 28, 28}), "one 28x28 map per image");

    // Each image (left, denser character = brighter pixel) next to its map (right, 0..9 = 0..1),
    // both shrunk to 14x14 by taking the max of each 2x2 block.
    const auto& names = data.test.class_names();
    const char* shades = " .:-=+*#%@";
    for (int i = 0; i < 4; ++i) {
        const int pred = e.predicted[static_cast<std::size_t>(i)];
        const int truth = data.test.labels()[static_cast<std::size_t>(i)];
        std::printf("\nimage %d: predicted %s (%.2f), true %s\n", i, names[static_cast<std::size_t>(pred)].c_str(),
                    e.probabilities(i, pred), names[static_cast<std::size_t>(truth)].c_str());
        for (int y = 0; y < 14; ++y) {
            std::string left, right;
            for (int x = 0; x < 14; ++x) {
                float pixel = 0, heat = 0;
                for (int dy = 0; dy < 2; ++dy)
                    for (int dx = 0; dx < 2; ++dx) {
                        pixel = std::max(pixel, images(i, 0, 2 * y + dy, 2 * x + dx));
                        heat = std::max(heat, e.maps(i, 2 * y + dy, 2 * x + dx));
                    }
                left += shades[std::min(9, static_cast<int>(pixel * 10))];
                right += (x ? " " : "") + std::to_string(std::min(9, static_cast<int>(std::lround(heat * 9))));
            }
            std::printf("  %s   %s\n", left.c_str(), right.c_str());
        }
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "06_grad_cam: %s\n", e.what());
    return 1;
}
