// Score-CAM (Wang et al., 2020): no gradients. Each channel's activation map, upsampled to the
// input and scaled to [0, 1], masks the image; the score of the target class for the masked
// image is the channel's weight, and the map is ReLU(sum_k w_k A_k). With Score::probability
// the weights are softmax probabilities, as in the authors' code. A constant channel gives no
// mask and weight 0. The masked images of a chunk go through the model in batches.
#pragma once

#include <algorithm>
#include <vector>

#include "cnnlite/explain/cam.hpp"

namespace cnnlite::explain {

/// Score-CAM channel weights [n, K] for a chunk: `images` [n, C, H, W], their activations
/// [n, K, h, w] at the explained layer, and the target class of each image.
template <class T>
Tensor<T> score_cam_weights(const Model<T>& model, const Tensor<T>& images, const Tensor<T>& activations,
                            const std::vector<int>& targets, Score score, std::int64_t batch) {
    const std::int64_t n = images.dim(0), channels = images.dim(1), height = images.dim(2), width = images.dim(3);
    const std::int64_t k = activations.dim(1), pixels = height * width;
    Tensor<float> masks = detail::to_float(activations).reshape(Shape{n * k, activations.dim(2), activations.dim(3)});
    if (masks.dim(1) != height || masks.dim(2) != width)
        masks = viz::resize_bilinear(masks, static_cast<int>(height), static_cast<int>(width));
    else
        masks = masks.clone();
    // Constant channels cannot rank pixels: they get an all-zero mask and, below, weight 0.
    std::vector<bool> constant(static_cast<std::size_t>(n * k));
    for (std::int64_t m = 0; m < n * k; ++m) {
        float* mask = masks.data() + m * pixels;
        const auto [lo, hi] = std::minmax_element(mask, mask + pixels);
        constant[static_cast<std::size_t>(m)] = !(*hi > *lo);
    }
    normalize_maps(masks, Normalization::min_max);

    Tensor<T> weights(Shape{n, k});
    // Masked copies of a few images at a time, so that at most about `batch` images are built.
    const std::int64_t images_per_block = std::max<std::int64_t>(1, batch / k);
    for (std::int64_t first = 0; first < n; first += images_per_block) {
        const std::int64_t count = std::min(images_per_block, n - first);
        Tensor<T> masked = Tensor<T>::uninitialized(Shape{count * k, channels, height, width});
        for (std::int64_t i = 0; i < count; ++i)
            for (std::int64_t m = 0; m < k; ++m)
                for (std::int64_t c = 0; c < channels; ++c) {
                    const T* x = images.data() + ((first + i) * channels + c) * pixels;
                    const float* mask = masks.data() + ((first + i) * k + m) * pixels;
                    T* out = masked.data() + ((i * k + m) * channels + c) * pixels;
                    for (std::int64_t p = 0; p < pixels; ++p) out[p] = x[p] * static_cast<T>(mask[p]);
                }
        const Tensor<T> scores = detail::class_scores(model, masked, score, batch);
        for (std::int64_t i = 0; i < count; ++i)
            for (std::int64_t m = 0; m < k; ++m)
                if (!constant[static_cast<std::size_t>((first + i) * k + m)])
                    weights(first + i, m) = scores(i * k + m, targets[static_cast<std::size_t>(first + i)]);
    }
    return weights;
}

/// Score-CAM maps of `images`, batched: chunks of options.chunk_size images, and their masked
/// copies through the model options.chunk_size at a time.
template <class T>
Explanation score_cam(const Model<T>& model, const Tensor<T>& images, const CamOptions& options = {}) {
    return detail::explain_by_layer(
        model, images, options, "score_cam", [&](LayerProbe<T>& probe, const std::vector<int>& targets, const Tensor<T>& chunk) {
            const Tensor<T> w = score_cam_weights(model, chunk, probe.activations(), targets, options.score, options.chunk_size);
            return weighted_channel_sum(probe.activations(), w);
        });
}

}  // namespace cnnlite::explain
