// LayerProbe: one forward pass of a batch that keeps the graph from a chosen layer's output
// (or from the input) to the logits, so that the gradient of every image's class score with
// respect to that output is one backward pass away, as often as needed.
//
// Why the probed output is made a leaf instead of retaining the gradient of the layer's own
// output: the scores of different images are independent, so one backward of the sum of the
// scores gives every image its own gradient, and nothing below the probed layer needs a graph.
// Cutting there (and freezing the parameters while probing) skips the weight gradients of every
// layer, roughly halving the backward cost, and leaves the model's parameter gradients untouched.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

#include "cnnlite/autograd/grad_mode.hpp"
#include "cnnlite/explain/target.hpp"
#include "cnnlite/kernels/argmax.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/ops/activation.hpp"

namespace cnnlite::explain {

namespace detail {

/// Switches gradient tracking off on every parameter of a model while alive and restores it
/// after. Explaining therefore must not run at the same time as training the same model. A
/// process-wide lock held meanwhile makes explanations from several threads take turns, so
/// that one cannot restore the flags while another still relies on them; it is recursive
/// because a method may probe again while its first probe is alive.
template <class T>
class FrozenParameters {
public:
    explicit FrozenParameters(const Model<T>& model) : lock_(mutex()) {
        for (auto& p : model.parameters()) {
            saved_.emplace_back(p.variable, p.variable.requires_grad());
            p.variable.set_requires_grad(false);
        }
    }
    ~FrozenParameters() {
        for (auto& [variable, on] : saved_) variable.set_requires_grad(on);
    }
    FrozenParameters(const FrozenParameters&) = delete;
    FrozenParameters& operator=(const FrozenParameters&) = delete;

private:
    static std::recursive_mutex& mutex() {
        static std::recursive_mutex m;
        return m;
    }
    std::lock_guard<std::recursive_mutex> lock_;
    std::vector<std::pair<Variable<T>, bool>> saved_;
};

/// Turns graph recording on while alive (an explanation needs its graph even when the caller
/// runs under NoGrad) and restores the previous mode after.
class RecordGraph {
public:
    RecordGraph() : previous_(cnnlite::detail::grad_enabled_flag()) { cnnlite::detail::grad_enabled_flag() = true; }
    ~RecordGraph() { cnnlite::detail::grad_enabled_flag() = previous_; }
    RecordGraph(const RecordGraph&) = delete;
    RecordGraph& operator=(const RecordGraph&) = delete;

private:
    bool previous_;
};

/// The predicted class of each row of [rows, cols] (kernels::argmax_rows).
template <class T>
std::vector<int> argmax_rows(const Tensor<T>& m) {
    std::vector<int> out(static_cast<std::size_t>(m.dim(0)));
    kernels::argmax_rows(m.data(), m.dim(0), m.dim(1), out.data());
    return out;
}

/// Throws unless every value of `images` is finite (a NaN would flow into every map).
template <class T>
void check_finite_images(const Tensor<T>& images, const char* op) {
    const std::int64_t n = images.dim(0), per = n ? images.numel() / n : 0;
    for (std::int64_t i = 0; i < images.numel(); ++i)
        if (!std::isfinite(static_cast<double>(images.data()[i])))
            fail(op, ": image ", i / per, " holds a non-finite value (", images.data()[i], ") at element ", i % per);
}

}  // namespace detail

/// A forward pass of `images` through `model` that records the graph from the output of one
/// layer (or the input) to the logits. Parameters are frozen while the probe lives, and probes
/// on other threads wait for it.
template <class T>
class LayerProbe {
public:
    /// Pass as `layer` to differentiate with respect to the model's input.
    static constexpr std::size_t model_input = std::numeric_limits<std::size_t>::max();

    /// Runs the forward pass of `images` ([N, input...]) in inference mode.
    LayerProbe(const Model<T>& model, std::size_t layer, const Tensor<T>& images) : frozen_(model) {
        check(layer == model_input || layer < model.size(), "LayerProbe: layer index ", layer, " out of range (",
              model.size(), " layers)");
        check(model.output_shape().rank() == 1, "LayerProbe: the model's output must be a vector of class scores, got ",
              model.output_shape());
        model.check_batch(images.shape(), "LayerProbe");
        detail::RecordGraph record;
        if (layer == model_input) {
            probed_ = Variable<T>(images, true);
            logits_ = model.forward_logits(probed_);
        } else {
            const Layer<T>* target = &model.layer(layer);
            logits_ = model.forward_logits(Variable<T>(images), ForwardContext{},
                                           [&](const Layer<T>& l, Variable<T>& out) {
                                               if (&l != target) return;
                                               probed_ = Variable<T>(out.value(), true);
                                               out = probed_;
                                           });
        }
        probabilities_ = softmax(logits_);
        predicted_ = detail::argmax_rows(probabilities_.value());
    }

    /// The probed output A (the layer's output after its fused activation, or the input).
    const Tensor<T>& activations() const { return probed_.value(); }
    /// Logits [N, classes].
    const Tensor<T>& logits() const { return logits_.value(); }
    /// Softmax probabilities [N, classes].
    const Tensor<T>& probabilities() const { return probabilities_.value(); }
    /// The class of highest probability for each image.
    const std::vector<int>& predicted() const { return predicted_; }
    /// Number of images.
    std::int64_t batch() const { return logits_.shape()[0]; }
    /// Number of classes of the model's output.
    std::int64_t num_classes() const { return logits_.shape()[1]; }

    /// Gradient of the sum over images of score_i (the `score` of class `classes[i]` of image
    /// i) with respect to the probed output: image i's slice is d score_i / d A_i.
    Tensor<T> gradient(const std::vector<int>& classes, Score score) {
        check(static_cast<std::int64_t>(classes.size()) == batch(), "LayerProbe::gradient: ", classes.size(),
              " classes for ", batch(), " images");
        Tensor<T> one_hot(logits_.shape());
        for (std::int64_t i = 0; i < batch(); ++i) {
            const int c = classes[static_cast<std::size_t>(i)];
            check(c >= 0 && c < num_classes(), "LayerProbe::gradient: class ", c, " outside [0, ", num_classes(), ")");
            one_hot(i, c) = T(1);
        }
        return gradient(one_hot, score);
    }

    /// Gradient of sum(output_weights * output) with respect to the probed output, where output
    /// is the probabilities or the logits ([N, classes], like `output_weights`): the gradient
    /// that backward() starts from at the output.
    Tensor<T> gradient(const Tensor<T>& output_weights, Score score) {
        probed_.zero_grad();
        (score == Score::probability ? probabilities_ : logits_).backward(output_weights);
        Tensor<T> g = probed_.has_grad() ? probed_.grad() : Tensor<T>(probed_.shape());
        probed_.zero_grad();
        return g;
    }

private:
    detail::FrozenParameters<T> frozen_;
    Variable<T> probed_, logits_, probabilities_;
    std::vector<int> predicted_;
};

}  // namespace cnnlite::explain
