// Grad-CAM (Selvaraju et al., 2017), as the paper computes it: for the target layer's output A
// (after its fused ReLU) and g = d score / dA, channel weights alpha_k = mean over positions of
// g_k and the map ReLU(sum_k alpha_k A_k), divided by its max and resized to the input.
#pragma once

#include "cnnlite/explain/cam.hpp"

namespace cnnlite::explain {

/// Grad-CAM channel weights [N, K]: the mean over positions of each channel of `gradients`
/// ([N, K, h, w]).
template <class T>
Tensor<T> gradcam_weights(const Tensor<T>& gradients) {
    check(gradients.rank() == 4, "gradcam_weights: gradients must be [N, K, h, w], got ", gradients.shape());
    const std::int64_t n = gradients.dim(0), k = gradients.dim(1), positions = gradients.dim(2) * gradients.dim(3);
    check(positions > 0, "gradcam_weights: empty feature maps ", gradients.shape());
    Tensor<T> weights = Tensor<T>::uninitialized(Shape{n, k});
    weights.matrix(n * k, 1) = gradients.matrix(n * k, positions).rowwise().mean();
    return weights;
}

/// Grad-CAM maps of `images` ([N, C, H, W]) for `model`, computed in chunks of
/// options.chunk_size with one forward and one backward pass each.
template <class T>
Explanation grad_cam(const Model<T>& model, const Tensor<T>& images, const CamOptions& options = {}) {
    return detail::explain_by_layer(model, images, options, "grad_cam",
                                    [&](LayerProbe<T>& probe, const std::vector<int>& targets, const Tensor<T>&) {
                                        const Tensor<T> g = probe.gradient(targets, options.score);
                                        return weighted_channel_sum(probe.activations(), gradcam_weights(g));
                                    });
}

}  // namespace cnnlite::explain
