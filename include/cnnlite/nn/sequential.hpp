// Sequential: a stack of layers run one after the other, named like Keras (conv2d, dense,
// dense_1, ... with counters per model), built as layers are added, with access to any layer's
// output for explanation methods and a batched, thread-safe predict.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/autograd/grad_mode.hpp"
#include "cnnlite/nn/fusion.hpp"
#include "cnnlite/nn/layer.hpp"

namespace cnnlite {

/// A stack of layers run in order, named like Keras, built as they are added; the model that fit(), evaluate() and the explanation methods take.
template <class T = float>
class Sequential {
public:
    /// Called with every layer's output during forward(); may retain_grad() or register hooks.
    using OutputTap = std::function<void(const Layer<T>& layer, Variable<T>& output)>;

    /// A model for per-sample inputs of `input_shape` (e.g. {1, 28, 28}); weights drawn from
    /// `seed` with the given initialisation scheme.
    explicit Sequential(Shape input_shape, std::uint64_t seed = 0, InitScheme scheme = InitScheme::keras)
        : input_shape_(input_shape), seed_(seed), scheme_(scheme) {
        check(input_shape.rank() >= 1 && input_shape.concrete() && input_shape.numel() > 0,
              "Sequential: invalid input shape ", input_shape);
    }
    /// Models move (layers are owned) but do not copy.
    Sequential(Sequential&&) noexcept = default;
    /// Takes over the layers of `other`.
    Sequential& operator=(Sequential&&) noexcept = default;

    /// Adds a copy of `layer`, names it (unless named) and builds it; returns the added layer.
    template <class L, class = std::enable_if_t<std::is_base_of<Layer<T>, L>::value>>
    L& add(const L& layer) {
        auto owned = std::make_unique<L>(layer);
        L& ref = *owned;
        add(std::unique_ptr<Layer<T>>(std::move(owned)));
        return ref;
    }

    /// Adds `layer` (unbuilt), names it (unless named) and builds it.
    Layer<T>& add(std::unique_ptr<Layer<T>> layer) {
        check(layer != nullptr, "Sequential::add: null layer");
        if (layer->name().empty()) {
            const int count = name_counts_[layer->default_name()]++;
            layer->set_name(count == 0 ? std::string(layer->default_name())
                                       : std::string(layer->default_name()) + "_" + std::to_string(count));
        }
        for (const auto& other : layers_)
            check(other->name() != layer->name(), "Sequential::add: a layer named '", layer->name(), "' exists already");
        LayerInit init{seed_, static_cast<std::int64_t>(layers_.size()), scheme_};
        layer->build_once(output_shape(), init);
        layers_.push_back(std::move(layer));
        return *layers_.back();
    }

    /// Output of the whole stack for a batch [N, input...]. `tap` sees each layer's output.
    Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx = {}, const OutputTap& tap = nullptr) const {
        return run(x, ctx, tap, false);
    }
    /// As forward(), but a final softmax is left out: the logits for the fused loss.
    Variable<T> forward_logits(const Variable<T>& x, const ForwardContext& ctx = {}, const OutputTap& tap = nullptr) const {
        return run(x, ctx, tap, true);
    }
    /// Turns layer fusion (e.g. Conv2D+ReLU+MaxPool2D as one kernel) on or off; on by default.
    /// Fusion never happens during a forward with a tap, so taps see every layer's output.
    void set_fusion(bool on) { fusion_ = on; }
    /// Whether layer fusion is on.
    bool fusion() const { return fusion_; }

    /// Whether the model's output is a softmax (then losses train on forward_logits()).
    bool ends_in_softmax() const { return !layers_.empty() && layers_.back()->ends_in_softmax(); }

    /// Outputs for all of `x` ([N, input...]) in inference mode, without recording a graph,
    /// processed in chunks of `batch_size` so that memory stays bounded. Safe to call from
    /// several threads at once.
    Tensor<T> predict(const Tensor<T>& x, std::int64_t batch_size = 256) const {
        check(batch_size > 0, "predict: batch size must be positive, got ", batch_size);
        check_batch(x.shape(), "predict");
        NoGrad no_grad;
        const std::int64_t n = x.shape()[0];
        Shape out_shape = output_shape();
        Shape full = prepend(n, out_shape);
        Tensor<T> out = Tensor<T>::uninitialized(full);
        const std::int64_t per_sample = out_shape.numel();
        for (std::int64_t first = 0; first < n; first += batch_size) {
            const std::int64_t count = std::min(batch_size, n - first);
            Variable<T> y = forward(Variable<T>(x.rows(first, count)), ForwardContext{});
            std::copy(y.value().begin(), y.value().end(), out.data() + first * per_sample);
        }
        return out;
    }

    /// Parameters named "<layer>.<parameter>", e.g. "conv2d.weight", in layer order.
    std::vector<NamedParameter<T>> parameters() const {
        std::vector<NamedParameter<T>> all;
        for (const auto& layer : layers_)
            for (auto& p : layer->parameters()) all.push_back({layer->name() + "." + p.name, p.variable});
        return all;
    }
    /// The parameter variables alone, in the same order (what optimisers take).
    std::vector<Variable<T>> trainable_variables() const {
        std::vector<Variable<T>> vars;
        for (auto& p : parameters()) vars.push_back(p.variable);
        return vars;
    }
    /// Number of trainable values of all layers.
    std::int64_t parameter_count() const {
        std::int64_t n = 0;
        for (const auto& layer : layers_) n += layer->parameter_count();
        return n;
    }

    /// Number of layers.
    std::size_t size() const { return layers_.size(); }
    /// Layer number `index` (from 0).
    const Layer<T>& layer(std::size_t index) const {
        check(index < layers_.size(), "Sequential: layer index ", index, " out of range (", layers_.size(), " layers)");
        return *layers_[index];
    }
    /// The layer called `name`; the error lists the names that exist.
    const Layer<T>& layer(const std::string& name) const { return *layers_[index_of(name)]; }
    /// Position of the layer called `name`; the error lists the names that exist.
    std::size_t index_of(const std::string& name) const {
        std::string known;
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            if (layers_[i]->name() == name) return i;
            known += (i ? ", " : "") + layers_[i]->name();
        }
        fail("Sequential: no layer named '", name, "' (layers: ", known, ")");
    }
    /// Whether a layer is called `name`.
    bool has_layer(const std::string& name) const {
        for (const auto& l : layers_)
            if (l->name() == name) return true;
        return false;
    }

    /// Per-sample input shape, e.g. [1, 28, 28].
    const Shape& input_shape() const { return input_shape_; }
    /// Per-sample output shape (the input shape while there are no layers).
    Shape output_shape() const { return layers_.empty() ? input_shape_ : layers_.back()->output_shape(); }
    /// The seed the weights were drawn from.
    std::uint64_t seed() const { return seed_; }
    /// Keras' or PyTorch's initialisation.
    InitScheme init_scheme() const { return scheme_; }

    /// The hyper-parameters of every layer, in order: enough to rebuild the network.
    std::vector<LayerConfig> architecture() const {
        std::vector<LayerConfig> configs;
        for (const auto& layer : layers_) configs.push_back(layer->config());
        return configs;
    }

    /// Throws unless `shape` is [N, input_shape...] with N >= 1.
    void check_batch(const Shape& shape, const char* what) const {
        if (!is_batch_of(shape, input_shape_) || shape[0] < 1)
            fail(what, ": the model expects input [N, ", input_shape_.str().substr(1), " with N >= 1, got ", shape);
    }

private:
    Variable<T> run(const Variable<T>& x, const ForwardContext& ctx, const OutputTap& tap, bool logits) const {
        check(!layers_.empty(), "Sequential: the model has no layers");
        check_batch(x.shape(), "Sequential::forward");
        Variable<T> h = x;
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            const bool last = i + 1 == layers_.size();
            // Fuse with the next layer only when no tap watches this layer's own output.
            if (fusion_ && !tap && i + 1 < layers_.size()) {
                Variable<T> fused = run_fused(*layers_[i], *layers_[i + 1], h, ctx);
                if (fused.defined()) {
                    h = std::move(fused);
                    ++i;
                    continue;
                }
            }
            h = (last && logits) ? layers_[i]->forward_logits(h, ctx) : layers_[i]->forward(h, ctx);
            if (tap) tap(*layers_[i], h);
        }
        return h;
    }
    static Shape prepend(std::int64_t n, const Shape& s) {
        std::vector<std::int64_t> dims{n};
        for (std::int64_t d : s) dims.push_back(d);
        return Shape(dims);
    }

    Shape input_shape_;
    std::uint64_t seed_;
    InitScheme scheme_;
    std::vector<std::unique_ptr<Layer<T>>> layers_;
    std::map<std::string, int> name_counts_;
    bool fusion_ = true;
};

}  // namespace cnnlite
