// The model-randomisation sanity check (Adebayo et al., 2018, "Sanity checks for saliency
// maps"): the weights are re-initialised layer by layer from the top (cascading), and after
// each layer the maps are compared with the trained model's by Spearman rank correlation. A
// method whose maps stay similar while the model it explains is destroyed does not explain
// the model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/explain/gradcam.hpp"
#include "cnnlite/nn/layer_registry.hpp"

namespace cnnlite::explain {

/// Spearman rank correlation of a[0..n) and b[0..n), ties given their average rank; 0 when
/// either is constant (the correlation is undefined there), so the result is never NaN.
inline double spearman(const float* a, const float* b, std::int64_t n) {
    const auto ranks = [n](const float* v) {
        std::vector<std::int64_t> order(static_cast<std::size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [v](std::int64_t x, std::int64_t y) { return v[x] < v[y]; });
        std::vector<double> rank(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n;) {
            std::int64_t j = i;
            while (j + 1 < n && v[order[static_cast<std::size_t>(j + 1)]] == v[order[static_cast<std::size_t>(i)]]) ++j;
            for (std::int64_t k = i; k <= j; ++k) rank[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])] = 0.5 * (i + j);
            i = j + 1;
        }
        return rank;
    };
    const std::vector<double> ra = ranks(a), rb = ranks(b);
    const double mean = 0.5 * static_cast<double>(n - 1);
    double sab = 0, saa = 0, sbb = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        const double da = ra[static_cast<std::size_t>(i)] - mean, db = rb[static_cast<std::size_t>(i)] - mean;
        sab += da * db, saa += da * da, sbb += db * db;
    }
    if (!(saa > 0 && sbb > 0)) return 0.0;
    return sab / std::sqrt(saa * sbb);
}

/// Maps [N, H, W] of `images` under a model: the method the sanity check examines.
template <class T>
using MapMethod = std::function<Tensor<float>(const Model<T>& model, const Tensor<T>& images)>;

/// One step of the cascade.
struct RandomisationStep {
    std::string layer;              ///< re-initialised at this step (with every layer above it)
    double mean_spearman = 0;       ///< mean over images of the rank correlation with the trained maps
    std::vector<double> spearman;   ///< per image
};

namespace detail {
/// Overwrites the parameters and buffers of `to` with those of `from`, the same layer of a
/// freshly built model: a re-initialised layer is a freshly built one, running statistics too.
template <class T>
void copy_layer_state(const Layer<T>& to, const Layer<T>& from) {
    auto params = to.parameters();
    const auto fresh = from.parameters();
    for (std::size_t p = 0; p < params.size(); ++p) params[p].variable.value().copy_from(fresh[p].variable.value());
    auto buffers = to.buffers();
    const auto fresh_buffers = from.buffers();
    for (std::size_t b = 0; b < buffers.size(); ++b)
        buffers[b].variable.value().copy_from(fresh_buffers[b].variable.value());
}
}  // namespace detail

/// A copy of `model` with its own weights and buffers (same architecture, same values).
template <class T>
Model<T> copy_model(const Model<T>& model) {
    Model<T> copy = make_model<T>(model.input_shape(), model.architecture(), model.seed(), model.init_scheme());
    const auto from = model.state();
    auto to = copy.state();
    for (std::size_t i = 0; i < from.size(); ++i) to[i].variable.value().copy_from(from[i].variable.value());
    return copy;
}

/// A copy of `model` whose parameters are drawn afresh by the model's initialisation scheme,
/// the model-randomisation baseline: every layer (full randomisation) or, when `down_to` names a
/// layer, that layer and every layer after it in the model's order (the cascade's step at that
/// layer), the others keeping the trained values. Re-initialised layers get fresh buffers too
/// (running statistics), and parameters the scheme initialises to a constant (biases, BatchNorm's
/// scale and offset) get that constant. The fresh weights are keyed by `seed` and the model's own
/// seed and never drawn from the latter, which would give back the weights training started from.
/// `model` is not changed. Throws for an unknown `down_to`, listing the layers.
template <class T>
Model<T> randomized_weights_copy(const Model<T>& model, std::uint64_t seed, const std::string& down_to = "") {
    std::uint64_t fresh_seed = RandomStream(seed, Purpose::user, model.seed(), 0x72616e64).bits(0);
    if (fresh_seed == model.seed()) ++fresh_seed;
    Model<T> fresh = make_model<T>(model.input_shape(), model.architecture(), fresh_seed, model.init_scheme());
    if (down_to.empty()) return fresh;
    if (!model.has_layer(down_to)) {
        std::string known;
        for (std::size_t i = 0; i < model.size(); ++i) known += (i ? ", " : "") + model.layer(i).name();
        fail("randomized_weights_copy: no layer named '", down_to, "'; the model's layers are: ", known);
    }
    Model<T> copy = copy_model(model);
    for (std::size_t l = model.index_of(down_to); l < model.size(); ++l)
        detail::copy_layer_state(copy.layer(l), fresh.layer(l));
    return copy;
}

/// Cascading randomisation of `model`'s layers with parameters, from the output down, with
/// fresh weights drawn by the model's initialisation scheme from `seed`. `method` defaults to
/// Grad-CAM of the trained model's predicted class without ReLU or normalisation (rank
/// correlation ignores scale; the sign is kept).
template <class T>
std::vector<RandomisationStep> model_randomisation(const Model<T>& model, const Tensor<T>& images,
                                                   MapMethod<T> method = {}, std::uint64_t seed = 12345) {
    detail::check_explain_call(model, images, 1, Target::predicted(), "model_randomisation");
    if (!method) {
        const std::vector<int> classes =
            detail::argmax_rows(detail::class_scores(model, images, Score::probability, 256));
        method = [classes](const Model<T>& m, const Tensor<T>& x) {
            CamOptions o;
            o.target = Target::classes(classes);
            o.post.relu = false;
            o.post.normalization = Normalization::none;
            return grad_cam(m, x, o).maps;
        };
    }
    const Tensor<float> trained = method(model, images);
    check(trained.rank() >= 2 && trained.dim(0) == images.dim(0), "model_randomisation: the method returned maps of shape ",
          trained.shape(), " for ", images.dim(0), " images");
    const std::int64_t n = trained.dim(0), per = trained.numel() / n;

    Model<T> cascade = copy_model(model);
    const Model<T> fresh = make_model<T>(model.input_shape(), model.architecture(), seed, model.init_scheme());
    std::vector<RandomisationStep> steps;
    for (std::size_t l = model.size(); l-- > 0;) {
        const Layer<T>& layer = cascade.layer(l);
        if (layer.parameters().empty()) continue;
        detail::copy_layer_state(layer, fresh.layer(l));
        const Tensor<float> maps = method(cascade, images);
        check(maps.shape() == trained.shape(), "model_randomisation: the method returned maps of shape ", maps.shape(),
              " after randomising '", layer.name(), "' but ", trained.shape(), " for the trained model");
        RandomisationStep step;
        step.layer = layer.name();
        for (std::int64_t i = 0; i < n; ++i)
            step.spearman.push_back(spearman(trained.data() + i * per, maps.data() + i * per, per));
        step.mean_spearman = std::accumulate(step.spearman.begin(), step.spearman.end(), 0.0) / static_cast<double>(n);
        steps.push_back(std::move(step));
    }
    return steps;
}

}  // namespace cnnlite::explain
