// HiResCAM (Draelos and Carin, 2020): the element-wise product of the gradient and the
// activations summed over channels, sum_k g_k * A_k, instead of Grad-CAM's position-averaged
// weights; for a network ending in a linear layer it shows exactly which positions raised the score.
#pragma once

#include "cnnlite/explain/cam.hpp"

namespace cnnlite::explain {

/// sum_k gradients[n, k] * activations[n, k] as maps [N, h, w].
template <class T>
Tensor<T> hirescam_maps(const Tensor<T>& activations, const Tensor<T>& gradients) {
    check(activations.rank() == 4 && activations.shape() == gradients.shape(), "hirescam_maps: activations ",
          activations.shape(), " and gradients ", gradients.shape(), " must both be [N, K, h, w]");
    const std::int64_t n = activations.dim(0), k = activations.dim(1), hw = activations.dim(2) * activations.dim(3);
    Tensor<T> maps = Tensor<T>::uninitialized(Shape{n, activations.dim(2), activations.dim(3)});
    for (std::int64_t i = 0; i < n; ++i)
        maps.rows(i, 1).matrix(1, hw) =
            (activations.rows(i, 1).matrix(k, hw).array() * gradients.rows(i, 1).matrix(k, hw).array()).colwise().sum();
    return maps;
}

/// HiResCAM maps of `images`, batched in chunks like grad_cam().
template <class T>
Explanation hires_cam(const Model<T>& model, const Tensor<T>& images, const CamOptions& options = {}) {
    return detail::explain_by_layer(model, images, options, "hires_cam",
                                    [&](LayerProbe<T>& probe, const std::vector<int>& targets, const Tensor<T>&) {
                                        return hirescam_maps(probe.activations(), probe.gradient(targets, options.score));
                                    });
}

}  // namespace cnnlite::explain
