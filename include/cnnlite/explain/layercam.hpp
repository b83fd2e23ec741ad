// LayerCAM (Jiang et al., 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps for
// Localization"): sum_k relu(g_k) * A_k, HiResCAM's element-wise product with only the positive
// gradients kept. A position counts where raising the activation raises the score, so maps of
// shallow layers, whose gradients change sign from position to position, stay sharp instead of
// cancelling; the map's own ReLU is the post-processing's.
#pragma once

#include "cnnlite/explain/cam.hpp"

namespace cnnlite::explain {

/// sum_k max(gradients[n, k], 0) * activations[n, k] as maps [N, h, w].
template <class T>
Tensor<T> layercam_maps(const Tensor<T>& activations, const Tensor<T>& gradients) {
    check(activations.rank() == 4 && activations.shape() == gradients.shape(), "layercam_maps: activations ",
          activations.shape(), " and gradients ", gradients.shape(), " must both be [N, K, h, w]");
    const std::int64_t n = activations.dim(0), k = activations.dim(1), hw = activations.dim(2) * activations.dim(3);
    Tensor<T> maps = Tensor<T>::uninitialized(Shape{n, activations.dim(2), activations.dim(3)});
    for (std::int64_t i = 0; i < n; ++i)
        maps.rows(i, 1).matrix(1, hw) = (activations.rows(i, 1).matrix(k, hw).array() *
                                         gradients.rows(i, 1).matrix(k, hw).array().max(T(0)))
                                            .colwise()
                                            .sum();
    return maps;
}

/// LayerCAM maps of `images`, batched in chunks like grad_cam().
template <class T>
Explanation layer_cam(const Model<T>& model, const Tensor<T>& images, const CamOptions& options = {}) {
    return detail::explain_by_layer(model, images, options, "layer_cam",
                                    [&](LayerProbe<T>& probe, const std::vector<int>& targets, const Tensor<T>&) {
                                        return layercam_maps(probe.activations(), probe.gradient(targets, options.score));
                                    });
}

}  // namespace cnnlite::explain
