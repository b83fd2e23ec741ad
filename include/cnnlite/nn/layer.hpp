// Layer: the base of every network layer. A layer knows its name, builds its parameters once
// the input shape is known (as Keras does), and computes its output from differentiable ops,
// so that training runs through autograd and hooks work on any layer's output.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/nn/activation.hpp"
#include "cnnlite/nn/symbolic.hpp"
#include "cnnlite/ops/batch_norm.hpp"

namespace cnnlite {

/// What a forward pass needs besides its input.
struct ForwardContext {
    bool training = false;                      ///< dropout active
    std::uint64_t seed = 0;                     ///< keys dropout masks
    std::int64_t step = 0;                      ///< training step (keys dropout masks)
    const std::int64_t* sample_ids = nullptr;   ///< global index of each row; null: 0..N-1
    /// Sums BatchNormalization's per-channel values across processes in training (synchronised
    /// batch norm): its batch statistics in forward, so that it normalises with the global
    /// batch's mean and variance, and its per-channel gradient terms in backward, which needs
    /// every process to backpropagate its share of one global loss (see ChannelSumReducer;
    /// distributed::DataParallelStep sets this up). Null: this process's batch only. Must
    /// outlive the backward pass.
    const ChannelSumReducer* channel_sum_reducer = nullptr;
};

/// Initialisation schemes for weights.
enum class InitScheme {
    keras,  ///< glorot-uniform kernels, zero biases (the paper's)
    torch,  ///< PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
};

/// Where a layer draws its initial weights from.
struct LayerInit {
    /// The model's seed.
    std::uint64_t seed = 0;
    /// Position of the layer in the model (keys its streams).
    std::int64_t layer_index = 0;
    /// Keras' or PyTorch's initialisation.
    InitScheme scheme = InitScheme::keras;

    /// The stream for the layer's tensor number `tensor` (0 weight, 1 bias).
    RandomStream stream(std::int64_t tensor) const {
        return RandomStream(seed, Purpose::init, static_cast<std::uint64_t>(layer_index),
                            static_cast<std::uint64_t>(tensor));
    }
};

/// A layer's hyper-parameters as strings: what the model file stores to rebuild the network.
struct LayerConfig {
    std::string type;                          ///< "Conv2D", "Dense", ...
    std::string name;                          ///< "conv2d", "dense_1", ...
    std::map<std::string, std::string> args;   ///< e.g. {"filters": "64"}
    /// The layers whose outputs feed this one, in order ("input" is the model's input). Filled
    /// by Model::architecture(); empty in a layer's own config().
    std::vector<std::string> inputs;

    LayerConfig() = default;
    /// A configuration from its parts (`inputs` may stay empty: the layer before).
    LayerConfig(std::string type_name, std::string layer_name, std::map<std::string, std::string> arguments = {},
                std::vector<std::string> inbound = {})
        : type(std::move(type_name)), name(std::move(layer_name)), args(std::move(arguments)), inputs(std::move(inbound)) {}

    /// The value of `key`; throws when it is missing.
    const std::string& at(const std::string& key) const {
        auto it = args.find(key);
        check(it != args.end(), "layer '", name, "' (", type, "): configuration lacks '", key, "'");
        return it->second;
    }
    /// The value of `key` as an integer; throws when missing or not an integer.
    std::int64_t integer(const std::string& key) const {
        const std::string& v = at(key);
        std::size_t used = 0;
        std::int64_t x = 0;
        try {
            x = std::stoll(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        check(used == v.size() && !v.empty(), "layer '", name, "': '", key, "' = '", v, "' is not an integer");
        return x;
    }
    /// The value of `key` as a number; throws when missing or not a number.
    double real(const std::string& key) const {
        const std::string& v = at(key);
        std::size_t used = 0;
        double x = 0;
        try {
            x = std::stod(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        check(used == v.size() && !v.empty(), "layer '", name, "': '", key, "' = '", v, "' is not a number");
        return x;
    }
};

/// Whether `batch` is [N, sample...] for some N >= 0: the one shape test behind every "expects
/// input" error of layers and models.
inline bool is_batch_of(const Shape& batch, const Shape& sample) {
    if (batch.rank() != sample.rank() + 1) return false;
    for (int i = 0; i < sample.rank(); ++i)
        if (batch[i + 1] != sample[i]) return false;
    return true;
}

/// The name by which a model's architecture refers to the model's input; no layer may take it.
inline const char* model_input_name() { return "input"; }

/// A named parameter of a layer ("weight", "bias").
template <class T>
struct NamedParameter {
    /// Name within the layer ("weight", "bias").
    std::string name;
    /// The parameter (a leaf that requires a gradient).
    Variable<T> variable;
};

/// A named count of a layer (BatchNormalization's "num_batches_tracked"): state saved with the
/// model, as an I64 tensor, but never trained. Held as int64 rather than as a buffer of T, which
/// in float would stop counting exactly at 2^24.
struct NamedCounter {
    /// Name within the layer ("num_batches_tracked").
    std::string name;
    /// The count, a 0-d tensor sharing the layer's storage: writing it changes the layer.
    Tensor<std::int64_t> value;
};

/// Base of every layer: a name, parameters built once the input shape is known, and a forward pass made of differentiable ops.
template <class T = float>
class Layer {
public:
    virtual ~Layer() = default;

    /// Keras class name, e.g. "Conv2D".
    virtual const char* type() const = 0;
    /// Base of the automatic name, e.g. "conv2d" (the model appends _1, _2, ...).
    virtual const char* default_name() const = 0;

    /// Creates the parameters for per-sample input shape `input` (no batch axis) and returns the
    /// per-sample output shape. Throws when the input shape does not suit the layer.
    virtual Shape build(const Shape& input, const LayerInit& init) = 0;

    /// The layer's output for a batch `x` of shape [N, input...].
    virtual Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx) const = 0;

    /// How many inputs the layer takes: 1, or 0 for "two or more" (Add, Concatenate).
    virtual int arity() const { return 1; }
    /// build() for any number of inputs; layers with several inputs override it (and arity()).
    virtual Shape build_inputs(const std::vector<Shape>& inputs, const LayerInit& init) {
        check(inputs.size() == 1, "layer '", name_, "' (", type(), ") takes one input, got ", inputs.size());
        return build(inputs[0], init);
    }
    /// forward() for any number of inputs; layers with several inputs override it.
    virtual Variable<T> forward_inputs(const std::vector<Variable<T>>& xs, const ForwardContext& ctx) const {
        check(xs.size() == 1, "layer '", name_, "' (", type(), ") takes one input, got ", xs.size());
        return forward(xs[0], ctx);
    }

    /// The output before a final softmax activation (logits), for the fused loss. Layers whose
    /// activation is not softmax return forward().
    virtual Variable<T> forward_logits(const Variable<T>& x, const ForwardContext& ctx) const { return forward(x, ctx); }
    /// Whether the layer ends in a softmax (so a loss may use forward_logits()).
    virtual bool ends_in_softmax() const { return false; }

    /// Parameters (leaves that the optimiser may update), in a stable order; frozen layers
    /// (trainable() false) still list them.
    virtual std::vector<NamedParameter<T>> parameters() const { return {}; }
    /// State that is saved with the model but not trained (BatchNormalization's running
    /// statistics), in a stable order.
    virtual std::vector<NamedParameter<T>> buffers() const { return {}; }
    /// Counts saved with the model next to the buffers (BatchNormalization's
    /// num_batches_tracked), in a stable order; not included in buffer_count().
    virtual std::vector<NamedCounter> counters() const { return {}; }
    /// Hyper-parameters for the architecture description.
    virtual LayerConfig config() const { return {type(), name_, {}, {}}; }
    /// A fresh, unbuilt copy with the same hyper-parameters.
    virtual std::unique_ptr<Layer> clone_config() const = 0;

    /// The layer's name within its model.
    const std::string& name() const { return name_; }
    /// "Type 'name'", or the type alone before the layer is named: how errors name the layer.
    std::string label() const { return name_.empty() ? std::string(type()) : std::string(type()) + " '" + name_ + "'"; }
    /// Names the layer (before it is added to a model).
    void set_name(std::string name) { name_ = std::move(name); }
    /// Whether build() has run.
    bool built() const { return built_; }
    /// Per-sample input shape (known once built); the first input's for a layer with several.
    const Shape& input_shape() const { return input_shape_; }
    /// Per-sample shapes of all inputs (known once built).
    const std::vector<Shape>& input_shapes() const { return input_shapes_; }
    /// Per-sample output shape (known once built).
    const Shape& output_shape() const { return output_shape_; }
    /// Number of parameter values (trainable or frozen).
    std::int64_t parameter_count() const {
        std::int64_t n = 0;
        for (const auto& p : parameters()) n += p.variable.value().numel();
        return n;
    }
    /// Number of buffer values (never trained).
    std::int64_t buffer_count() const {
        std::int64_t n = 0;
        for (const auto& b : buffers()) n += b.variable.value().numel();
        return n;
    }

    /// Whether the optimiser updates the layer's parameters (Keras' `layer.trainable`). A frozen
    /// layer keeps its weights, and layers with a training behaviour of their own
    /// (BatchNormalization) run in inference mode, as in Keras.
    bool trainable() const { return trainable_; }
    /// Freezes (false) or unfreezes the layer, e.g. for fine-tuning.
    void set_trainable(bool on) { trainable_ = on; }

    /// Called by the model: builds once and remembers the shapes.
    void build_once(const std::vector<Shape>& inputs, const LayerInit& init) {
        check(!built_, "layer '", name_, "' is already built (a layer instance belongs to one model)");
        check(!inputs.empty(), "layer '", name_, "': no input");
        output_shape_ = build_inputs(inputs, init);
        input_shapes_ = inputs;
        input_shape_ = inputs[0];
        built_ = true;
    }
    /// build_once() for a layer with one input.
    void build_once(const Shape& input, const LayerInit& init) { build_once(std::vector<Shape>{input}, init); }

    /// Records a call of (a copy of) this layer on `x` for a functional model: see Model.
    Symbolic<T> operator()(const Symbolic<T>& x) const { return call({x}); }
    /// Records a call on several tensors (Add, Concatenate).
    Symbolic<T> operator()(const std::vector<Symbolic<T>>& xs) const { return call(xs); }

    /// Throws unless `x` is a batch of this layer's input shape.
    void check_input(const Variable<T>& x) const {
        if (!is_batch_of(x.shape(), input_shape_))
            fail("layer '", name_, "' (", type(), ") expects input [N, ", input_shape_.str().substr(1), ", got ", x.shape());
    }

protected:
    /// The layer's name.
    std::string name_;
    /// Whether build_once() has run.
    bool built_ = false;
    /// Whether the optimiser updates the parameters.
    bool trainable_ = true;
    Shape input_shape_;                 ///< Per-sample input shape (the first input's).
    std::vector<Shape> input_shapes_;   ///< Per-sample shapes of all inputs.
    Shape output_shape_;                ///< Per-sample output shape.

private:
    Symbolic<T> call(const std::vector<Symbolic<T>>& xs) const {
        check(!xs.empty(), "layer '", name_, "' (", type(), ") called on no tensor");
        for (std::size_t i = 0; i < xs.size(); ++i)
            check(xs[i].defined(), "layer '", name_, "' (", type(), "): input ", i, " is an empty Symbolic");
        if (arity() == 1)
            check(xs.size() == 1, "layer '", name_, "' (", type(), ") takes one input, called on ", xs.size());
        else
            check(xs.size() >= 2, "layer '", name_, "' (", type(), ") takes two or more inputs, called on ", xs.size());
        auto node = std::make_shared<detail::SymbolicNode<T>>();
        std::unique_ptr<Layer> copy = clone_config();
        copy->set_trainable(trainable_);
        node->layer = std::shared_ptr<const Layer>(std::move(copy));
        for (const auto& x : xs) node->inputs.push_back(x.node());
        node->order = detail::SymbolicNode<T>::next_order();
        return Symbolic<T>(std::move(node));
    }
};

}  // namespace cnnlite
