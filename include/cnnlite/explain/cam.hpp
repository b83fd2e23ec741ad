// The batched driver shared by the class-activation-map methods (Grad-CAM, Grad-CAM++,
// HiResCAM, Score-CAM): options, the result type, and the loop that explains a whole batch in
// chunks so that memory stays bounded, one forward pass with a graph per chunk.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "cnnlite/explain/layer_probe.hpp"
#include "cnnlite/ops/activation.hpp"
#include "cnnlite/explain/postprocess.hpp"
#include "cnnlite/explain/target.hpp"
#include "cnnlite/explain/target_layer.hpp"

namespace cnnlite::explain {

/// Options of the class-activation-map methods.
struct CamOptions {
    std::string layer;                    ///< Conv2D layer to explain; empty: the model's last Conv2D
    Target target = Target::predicted();  ///< class explained for each image
    Score score = Score::probability;     ///< differentiated score of the target class
    PostProcess post;                     ///< ReLU, normalisation, upsampling
    std::int64_t chunk_size = 256;        ///< images per forward/backward pass (bounds memory)
};

/// Maps explaining a batch, with what the model said about each image.
struct Explanation {
    Tensor<float> maps;             ///< [N, H, W]: input size, or the layer's size when not upsampled
    std::vector<int> targets;       ///< class explained for each image
    std::vector<int> predicted;     ///< class of highest probability for each image
    Tensor<float> probabilities;    ///< [N, classes] softmax output
    std::string layer;              ///< name of the layer explained ("" for input-gradient methods)
};

namespace detail {

/// Checks the batch and options common to every method; returns the input's (height, width).
template <class T>
std::pair<std::int64_t, std::int64_t> check_explain_call(const Model<T>& model, const Tensor<T>& images,
                                                         std::int64_t chunk_size, const Target& target, const char* op) {
    check(images.defined() && images.rank() >= 1 && images.dim(0) > 0, op, ": empty batch (shape ",
          images.defined() ? images.shape() : Shape{}, "); give at least one image");
    model.check_batch(images.shape(), op);
    const Shape& in = model.input_shape();
    check(in.rank() == 3, op, ": the model's input must be images [C, H, W], got ", in);
    check(model.output_shape().rank() == 1, op, ": the model's output must be a vector of class scores, got ",
          model.output_shape());
    check(chunk_size > 0, op, ": chunk size must be positive, got ", chunk_size);
    target.check_batch(images.dim(0), op);
    check_finite_images(images, op);
    return {in[1], in[2]};
}

/// Copies rows [first, first + rows) of a chunk result into the whole-batch result.
inline void store_chunk(Explanation& out, std::int64_t n, std::int64_t first, const Tensor<float>& maps,
                        const Tensor<float>& probabilities, const std::vector<int>& predicted,
                        const std::vector<int>& targets) {
    if (!out.maps.defined()) {
        Shape s = maps.shape();
        s[0] = n;
        out.maps = Tensor<float>::uninitialized(s);
        out.probabilities = Tensor<float>::uninitialized(Shape{n, probabilities.dim(1)});
        out.predicted.resize(static_cast<std::size_t>(n));
        out.targets.resize(static_cast<std::size_t>(n));
    }
    out.maps.rows(first, maps.dim(0)).copy_from(maps);
    out.probabilities.rows(first, probabilities.dim(0)).copy_from(probabilities);
    std::copy(predicted.begin(), predicted.end(), out.predicted.begin() + first);
    std::copy(targets.begin(), targets.end(), out.targets.begin() + first);
}

template <class T>
Tensor<float> to_float(const Tensor<T>& t) {
    if constexpr (std::is_same<T, float>::value) return t;
    else return t.template cast<float>();
}

/// Runs a class-activation-map method over `images` in chunks. For each chunk, `raw_maps`
/// receives the probe (forward pass done, graph from the layer's output kept), the target
/// classes and the chunk's images, and returns the chunk's raw maps [n, h, w] at the layer's
/// resolution.
template <class T, class RawMaps>
Explanation explain_by_layer(const Model<T>& model, const Tensor<T>& images, const CamOptions& options,
                             const char* op, RawMaps&& raw_maps) {
    const auto [height, width] = check_explain_call(model, images, options.chunk_size, options.target, op);
    const std::size_t layer = find_conv_layer(model, options.layer, op);
    const std::int64_t n = images.dim(0);
    Explanation out;
    out.layer = model.layer(layer).name();
    for (std::int64_t first = 0; first < n; first += options.chunk_size) {
        const std::int64_t count = std::min(options.chunk_size, n - first);
        const Tensor<T> chunk = images.rows(first, count);
        LayerProbe<T> probe(model, layer, chunk);
        const Tensor<float> probabilities = to_float(probe.probabilities());
        const std::vector<int> targets = options.target.resolve(probabilities, probe.predicted(), first, op);
        const Tensor<T> raw = raw_maps(probe, targets, chunk);
        const Tensor<float> maps = postprocess_maps(to_float(raw), options.post, height, width);
        store_chunk(out, n, first, maps, probabilities, probe.predicted(), targets);
    }
    return out;
}


/// The model's class scores for `x` in inference mode, in batches of `batch`: softmax
/// probabilities or logits, [N, classes].
template <class T>
Tensor<T> class_scores(const Model<T>& model, const Tensor<T>& x, Score score, std::int64_t batch) {
    NoGrad no_grad;
    const std::int64_t n = x.dim(0);
    Tensor<T> out;
    for (std::int64_t first = 0; first < n; first += batch) {
        const std::int64_t count = std::min(batch, n - first);
        Variable<T> y = model.forward_logits(Variable<T>(x.rows(first, count)));
        if (score == Score::probability) y = softmax(y);
        if (!out.defined()) out = Tensor<T>::uninitialized(Shape{n, y.shape()[1]});
        out.rows(first, count).copy_from(y.value());
    }
    return out;
}

}  // namespace detail

/// Maps [N, h, w] = sum over channels k of weights[n, k] * A[n, k] for activations A
/// [N, K, h, w] and channel weights [N, K]: the weighted sum every CAM method ends with.
template <class T>
Tensor<T> weighted_channel_sum(const Tensor<T>& activations, const Tensor<T>& weights) {
    check(activations.rank() == 4 && weights.rank() == 2 && weights.dim(0) == activations.dim(0) &&
              weights.dim(1) == activations.dim(1),
          "weighted_channel_sum: activations ", activations.shape(), " and weights ", weights.shape(),
          " do not fit ([N, K, h, w] and [N, K])");
    const std::int64_t n = activations.dim(0), k = activations.dim(1);
    const std::int64_t h = activations.dim(2), w = activations.dim(3);
    Tensor<T> maps = Tensor<T>::uninitialized(Shape{n, h, w});
    for (std::int64_t i = 0; i < n; ++i) {
        const auto a = activations.rows(i, 1).matrix(k, h * w);
        const auto alpha = weights.rows(i, 1).matrix(1, k);
        maps.rows(i, 1).matrix(1, h * w).noalias() = alpha * a;
    }
    return maps;
}

}  // namespace cnnlite::explain
