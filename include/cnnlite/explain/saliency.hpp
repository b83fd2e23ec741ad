// Vanilla gradient saliency (Simonyan, Vedaldi, Zisserman, 2014): the magnitude of the score's
// gradient with respect to each input pixel (the largest over colour channels).
#pragma once

#include "cnnlite/explain/input_gradients.hpp"

namespace cnnlite::explain {

/// Saliency maps [N, H, W] of `images`, one forward and one backward pass per chunk.
template <class T>
Explanation saliency(const Model<T>& model, const Tensor<T>& images, const GradientOptions& options = {}) {
    return detail::explain_by_input(model, images, options, "saliency",
                                    [&](LayerProbe<T>& probe, const std::vector<int>& targets, const Tensor<T>&, std::int64_t) {
                                        return max_abs_over_channels(probe.gradient(targets, options.score));
                                    });
}

}  // namespace cnnlite::explain
