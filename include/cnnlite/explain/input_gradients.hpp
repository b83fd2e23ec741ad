// The batched driver shared by the methods that explain with gradients of the score with
// respect to the input pixels (saliency, SmoothGrad, Integrated Gradients): options, and the
// loop over chunks that finds each image's target class and post-processes the maps.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cnnlite/explain/cam.hpp"

namespace cnnlite::explain {

/// Options of the input-gradient methods.
struct GradientOptions {
    Target target = Target::predicted();  ///< class explained for each image
    Score score = Score::probability;     ///< differentiated score of the target class
    PostProcess post;                     ///< ReLU and normalisation (maps already have the input size)
    std::int64_t chunk_size = 256;        ///< images per forward/backward pass (bounds memory)
};

namespace detail {

/// Runs an input-gradient method over `images` in chunks. For each chunk, `raw_maps` receives
/// the probe of the clean images (graph from the input kept), the target classes, the chunk and
/// the index of its first image, and returns raw maps [n, H, W].
template <class T, class RawMaps>
Explanation explain_by_input(const Model<T>& model, const Tensor<T>& images, const GradientOptions& options,
                             const char* op, RawMaps&& raw_maps) {
    const auto [height, width] = check_explain_call(model, images, options.chunk_size, options.target, op);
    const std::int64_t n = images.dim(0);
    Explanation out;
    for (std::int64_t first = 0; first < n; first += options.chunk_size) {
        const std::int64_t count = std::min(options.chunk_size, n - first);
        const Tensor<T> chunk = images.rows(first, count);
        LayerProbe<T> probe(model, LayerProbe<T>::model_input, chunk);
        const Tensor<float> probabilities = to_float(probe.probabilities());
        const std::vector<int> targets = options.target.resolve(probabilities, probe.predicted(), first, op);
        const Tensor<T> raw = raw_maps(probe, targets, chunk, first);
        const Tensor<float> maps = postprocess_maps(to_float(raw), options.post, height, width);
        store_chunk(out, n, first, maps, probabilities, probe.predicted(), targets);
    }
    return out;
}

}  // namespace detail

/// Maps [N, H, W] = the largest |gradient| over the channels of each pixel ([N, C, H, W]).
template <class T>
Tensor<T> max_abs_over_channels(const Tensor<T>& gradients) {
    check(gradients.rank() == 4, "max_abs_over_channels: gradients must be [N, C, H, W], got ", gradients.shape());
    const std::int64_t n = gradients.dim(0), c = gradients.dim(1), hw = gradients.dim(2) * gradients.dim(3);
    Tensor<T> maps = Tensor<T>::uninitialized(Shape{n, gradients.dim(2), gradients.dim(3)});
    for (std::int64_t i = 0; i < n; ++i)
        maps.rows(i, 1).matrix(1, hw) = gradients.rows(i, 1).matrix(c, hw).array().abs().colwise().maxCoeff();
    return maps;
}

}  // namespace cnnlite::explain
