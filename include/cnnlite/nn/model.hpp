// Model: a network as a directed acyclic graph of layers with one input and one output — the
// model that fit(), evaluate(), checkpoints, model files, the explanation methods and MPI
// training take. Built with Keras' functional API:
//
//     auto x = Input({1, 28, 28});
//     auto h = Conv2D<>(32, 3).padding("same").activation("relu")(x);
//     auto y = Add<>()({Conv2D<>(32, 3).padding("same")(h), h});
//     Model<> model(x, Dense<>(10).activation("softmax")(Flatten<>()(y)));
//
// or layer by layer as a Sequential (nn/sequential.hpp), the special case of a chain. Layers are
// kept in a topological order (the order in which they were called), named like Keras (conv2d,
// conv2d_1, ... per model) and built with the model's seed, so the same calls always give the
// same weights.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/autograd/grad_mode.hpp"
#include "cnnlite/nn/fusion.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/symbolic.hpp"

namespace cnnlite {

/// A directed acyclic graph of layers from one input to one output, named like Keras and built
/// as layers are added; Sequential is the chain-shaped special case.
template <class T = float>
class Model {
public:
    /// Called with every layer's output during forward(); may retain_grad(), register hooks or
    /// replace the output (the replacement feeds the layers that consume it).
    using OutputTap = std::function<void(const Layer<T>& layer, Variable<T>& output)>;

    /// An empty model for per-sample inputs of `input_shape` (e.g. {1, 28, 28}); layers join with
    /// connect() (or Sequential::add). Weights are drawn from `seed` with the given scheme.
    explicit Model(Shape input_shape, std::uint64_t seed = 0, InitScheme scheme = InitScheme::keras)
        : input_shape_(input_shape), seed_(seed), scheme_(scheme) {
        check(input_shape.rank() >= 1 && input_shape.concrete() && input_shape.numel() > 0,
              "Model: invalid input shape ", input_shape);
    }

    /// The functional model from `input` (made by Input()) to `output` (a layer call that
    /// depends on it): copies and builds every layer that `output` depends on, in the order
    /// they were called. Throws when `output` needs another input than `input`.
    Model(const Symbolic<T>& input, const Symbolic<T>& output, std::uint64_t seed = 0,
          InitScheme scheme = InitScheme::keras)
        : Model(checked_input_shape(input), seed, scheme) {
        check(output.defined(), "Model: the output is an empty Symbolic");
        check(!output.is_input(), "Model: the output is the input itself; call at least one layer on it");
        // Every node the output depends on, once, in creation order (a topological order). Each
        // path ends at an Input, so an output that does not reach `input` reaches another one.
        std::vector<const detail::SymbolicNode<T>*> found;
        std::vector<const detail::SymbolicNode<T>*> stack{output.node().get()};
        while (!stack.empty()) {
            const auto* n = stack.back();
            stack.pop_back();
            if (std::find(found.begin(), found.end(), n) != found.end()) continue;
            found.push_back(n);
            for (const auto& in : n->inputs) stack.push_back(in.get());
        }
        std::sort(found.begin(), found.end(), [](const auto* a, const auto* b) { return a->order < b->order; });
        std::map<const detail::SymbolicNode<T>*, std::string> names;
        for (const auto* n : found) {
            if (!n->layer) {
                check(n == input.node().get(), "Model: the output depends on an Input that is not the model's input ",
                      "(a model has exactly one input)");
                names[n] = model_input_name();
                continue;
            }
            std::vector<std::string> inbound;
            for (const auto& in : n->inputs) inbound.push_back(names.at(in.get()));
            std::unique_ptr<Layer<T>> layer = n->layer->clone_config();
            layer->set_trainable(n->layer->trainable());
            names[n] = connect(std::move(layer), inbound).name();
        }
    }

    Model(Model&&) noexcept = default;             ///< Models move (layers are owned) but do not copy.
    Model& operator=(Model&&) noexcept = default;  ///< Takes over the layers of `other`.
    virtual ~Model() = default;

    /// Adds `layer` (unbuilt) fed by the outputs of the layers named in `inputs` (the model's
    /// input is "input"), names it (unless named) and builds it. The newest layer is the
    /// model's output; every earlier one must feed a later one by the time the model runs.
    Layer<T>& connect(std::unique_ptr<Layer<T>> layer, const std::vector<std::string>& inputs) {
        check(layer != nullptr, "Model::connect: null layer");
        if (layer->name().empty()) {
            const int count = name_counts_[layer->default_name()]++;
            layer->set_name(count == 0 ? std::string(layer->default_name())
                                       : std::string(layer->default_name()) + "_" + std::to_string(count));
        }
        check(layer->name() != model_input_name(), "Model: a layer may not be named '", model_input_name(),
              "' (the name of the model's input)");
        for (const auto& node : nodes_)
            check(node.layer->name() != layer->name(), "Model: a layer named '", layer->name(), "' exists already");
        check(!inputs.empty(), "Model: layer '", layer->name(), "' has no input");
        Node node;
        std::vector<Shape> shapes;
        for (const auto& name : inputs) {
            const std::size_t value = value_of(name, layer->name());
            node.inputs.push_back(value);
            shapes.push_back(value_shape(value));
        }
        if (layer->arity() == 1)
            check(inputs.size() == 1, "Model: layer '", layer->name(), "' (", layer->type(), ") takes one input, got ",
                  inputs.size());
        else
            check(inputs.size() >= 2, "Model: layer '", layer->name(), "' (", layer->type(),
                  ") takes two or more inputs, got ", inputs.size());
        LayerInit init{seed_, static_cast<std::int64_t>(nodes_.size()), scheme_};
        layer->build_once(shapes, init);
        node.layer = std::move(layer);
        nodes_.push_back(std::move(node));
        plan_ = make_plan();
        return *nodes_.back().layer;
    }

    /// Output of the model for a batch [N, input...]. `tap` sees each layer's output.
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
    bool ends_in_softmax() const { return !nodes_.empty() && nodes_.back().layer->ends_in_softmax(); }

    /// Outputs for all of `x` ([N, input...]) in inference mode, without recording a graph,
    /// processed in chunks of `batch_size` so that memory stays bounded. Safe to call from
    /// several threads at once.
    Tensor<T> predict(const Tensor<T>& x, std::int64_t batch_size = 256) const {
        return predict_in_chunks(x, batch_size, [&](const Tensor<T>& chunk) {
            return forward(Variable<T>(chunk), ForwardContext{}).value();
        });
    }

    /// What predict() does with its chunks, for other ways of running them (InferenceModel's):
    /// `x` checked as the model's input, and [N, output...] filled by `run_chunk` (a Tensor of
    /// at most `batch_size` images -> their outputs), in inference mode without a graph.
    template <class RunChunk>
    Tensor<T> predict_in_chunks(const Tensor<T>& x, std::int64_t batch_size, RunChunk&& run_chunk) const {
        check(batch_size > 0, "predict: batch size must be positive, got ", batch_size);
        check_batch(x.shape(), "predict");
        NoGrad no_grad;
        const std::int64_t n = x.shape()[0];
        Shape out_shape = output_shape();
        std::vector<std::int64_t> dims{n};
        for (std::int64_t d : out_shape) dims.push_back(d);
        Tensor<T> out = Tensor<T>::uninitialized(Shape(dims));
        const std::int64_t per_sample = out_shape.numel();
        for (std::int64_t first = 0; first < n; first += batch_size) {
            const std::int64_t count = std::min(batch_size, n - first);
            const Tensor<T> y = run_chunk(x.rows(first, count));
            std::copy(y.begin(), y.end(), out.data() + first * per_sample);
        }
        return out;
    }

    /// Parameters named "<layer>.<parameter>", e.g. "conv2d.weight", in layer order (frozen
    /// layers' included).
    std::vector<NamedParameter<T>> parameters() const {
        std::vector<NamedParameter<T>> all;
        for (const auto& node : nodes_)
            for (auto& p : node.layer->parameters()) all.push_back({node.layer->name() + "." + p.name, p.variable});
        return all;
    }
    /// Buffers named "<layer>.<buffer>", e.g. "batch_normalization.running_mean", in layer order.
    std::vector<NamedParameter<T>> buffers() const {
        std::vector<NamedParameter<T>> all;
        for (const auto& node : nodes_)
            for (auto& b : node.layer->buffers()) all.push_back({node.layer->name() + "." + b.name, b.variable});
        return all;
    }
    /// Counters named "<layer>.<counter>", e.g. "batch_normalization.num_batches_tracked", in
    /// layer order: integer state that model files and checkpoints store (as I64) besides state().
    std::vector<NamedCounter> counters() const {
        std::vector<NamedCounter> all;
        for (const auto& node : nodes_)
            for (auto& c : node.layer->counters()) all.push_back({node.layer->name() + "." + c.name, c.value});
        return all;
    }
    /// What a model file stores: each layer's parameters, then its buffers, in layer order (the
    /// order of PyTorch's state_dict); counters() are stored too.
    std::vector<NamedParameter<T>> state() const {
        std::vector<NamedParameter<T>> all;
        for (const auto& node : nodes_) {
            for (auto& p : node.layer->parameters()) all.push_back({node.layer->name() + "." + p.name, p.variable});
            for (auto& b : node.layer->buffers()) all.push_back({node.layer->name() + "." + b.name, b.variable});
        }
        return all;
    }
    /// The parameters of trainable layers, in layer order (what optimisers take).
    std::vector<Variable<T>> trainable_variables() const {
        std::vector<Variable<T>> vars;
        for (const auto& node : nodes_)
            if (node.layer->trainable())
                for (auto& p : node.layer->parameters()) vars.push_back(p.variable);
        return vars;
    }
    /// Names of trainable_variables(), in the same order.
    std::vector<std::string> trainable_names() const {
        std::vector<std::string> names;
        for (const auto& node : nodes_)
            if (node.layer->trainable())
                for (auto& p : node.layer->parameters()) names.push_back(node.layer->name() + "." + p.name);
        return names;
    }
    /// Number of parameter values of all layers (trainable or frozen).
    std::int64_t parameter_count() const {
        std::int64_t n = 0;
        for (const auto& node : nodes_) n += node.layer->parameter_count();
        return n;
    }
    /// Number of values the optimiser updates.
    std::int64_t trainable_count() const {
        std::int64_t n = 0;
        for (const auto& node : nodes_)
            if (node.layer->trainable()) n += node.layer->parameter_count();
        return n;
    }
    /// Number of values never trained: frozen layers' parameters and all buffers (Keras'
    /// "Non-trainable params").
    std::int64_t non_trainable_count() const {
        std::int64_t n = 0;
        for (const auto& node : nodes_) n += node.layer->buffer_count();
        return n + parameter_count() - trainable_count();
    }

    /// Number of layers.
    std::size_t size() const { return nodes_.size(); }
    /// Layer number `index` (from 0, in topological order).
    const Layer<T>& layer(std::size_t index) const {
        check(index < nodes_.size(), "Model: layer index ", index, " out of range (", nodes_.size(), " layers)");
        return *nodes_[index].layer;
    }
    /// Layer number `index`, for changing its state (freezing it).
    Layer<T>& layer(std::size_t index) {
        check(index < nodes_.size(), "Model: layer index ", index, " out of range (", nodes_.size(), " layers)");
        return *nodes_[index].layer;
    }
    /// The layer called `name`; the error lists the names that exist.
    const Layer<T>& layer(const std::string& name) const { return *nodes_[index_of(name)].layer; }
    /// The layer called `name`, for changing its state (freezing it).
    Layer<T>& layer(const std::string& name) { return *nodes_[index_of(name)].layer; }
    /// Position of the layer called `name`; the error lists the names that exist.
    std::size_t index_of(const std::string& name) const {
        std::string known;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (nodes_[i].layer->name() == name) return i;
            known += (i ? ", " : "") + nodes_[i].layer->name();
        }
        fail("Model: no layer named '", name, "' (layers: ", known, ")");
    }
    /// Whether a layer is called `name`.
    bool has_layer(const std::string& name) const {
        for (const auto& node : nodes_)
            if (node.layer->name() == name) return true;
        return false;
    }
    /// Names of the layers feeding layer number `index` ("input" for the model's input).
    std::vector<std::string> inbound(std::size_t index) const {
        check(index < nodes_.size(), "Model: layer index ", index, " out of range (", nodes_.size(), " layers)");
        std::vector<std::string> names;
        for (std::size_t v : nodes_[index].inputs)
            names.push_back(v == 0 ? std::string(model_input_name()) : nodes_[v - 1].layer->name());
        return names;
    }
    /// Whether every layer takes the output of the one before (a Sequential's shape).
    bool is_chain() const {
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (nodes_[i].inputs.size() != 1 || nodes_[i].inputs[0] != i) return false;
        return true;
    }

    /// Per-sample input shape, e.g. [1, 28, 28].
    const Shape& input_shape() const { return input_shape_; }
    /// Per-sample output shape (the input shape while there are no layers).
    Shape output_shape() const { return nodes_.empty() ? input_shape_ : nodes_.back().layer->output_shape(); }
    /// The seed the weights were drawn from.
    std::uint64_t seed() const { return seed_; }
    /// Keras' or PyTorch's initialisation.
    InitScheme init_scheme() const { return scheme_; }

    /// The hyper-parameters and inbound layers of every layer, in order: enough to rebuild the
    /// network.
    std::vector<LayerConfig> architecture() const {
        std::vector<LayerConfig> configs;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            configs.push_back(nodes_[i].layer->config());
            configs.back().inputs = inbound(i);
        }
        return configs;
    }

    /// Throws unless `shape` is [N, input_shape...] with N >= 1.
    void check_batch(const Shape& shape, const char* what) const {
        if (!is_batch_of(shape, input_shape_) || shape[0] < 1)
            fail(what, ": the model expects input [N, ", input_shape_.str().substr(1), " with N >= 1, got ", shape);
    }

    /// Throws unless the model can run: it has layers and every layer but the last feeds another
    /// (a layer whose output nobody uses is a mistake in a graph built by connect()).
    void check_complete() const {
        check(!nodes_.empty(), "Model: the model has no layers");
        for (std::size_t i = 0; i + 1 < nodes_.size(); ++i)
            check(plan_.consumers[i + 1] > 0, "Model: the output of layer '", nodes_[i].layer->name(),
                  "' feeds no other layer and is not the model's output (the last layer)");
    }

private:
    struct Node {
        std::unique_ptr<Layer<T>> layer;
        std::vector<std::size_t> inputs;  // value indices: 0 the model input, k + 1 layer k's output
    };
    // What run() derives from the graph as layers join: how many layers read each value and
    // after which layer it can be released.
    struct Plan {
        bool chain = true;
        std::vector<int> consumers;
        std::vector<std::size_t> last_use;
    };

    static Shape checked_input_shape(const Symbolic<T>& input) {
        check(input.defined() && input.is_input(), "Model: the first argument must be made by Input(shape)");
        return input.node()->input_shape;
    }

    std::size_t value_of(const std::string& name, const std::string& consumer) const {
        if (name == model_input_name()) return 0;
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            if (nodes_[i].layer->name() == name) return i + 1;
        std::string known = model_input_name();
        for (const auto& node : nodes_) known += ", " + node.layer->name();
        fail("Model: layer '", consumer, "' takes the output of '", name, "', which is not an earlier layer (known: ",
             known, ")");
    }
    const Shape& value_shape(std::size_t value) const {
        return value == 0 ? input_shape_ : nodes_[value - 1].layer->output_shape();
    }

    Plan make_plan() const {
        Plan p;
        p.consumers.assign(nodes_.size() + 1, 0);
        p.last_use.assign(nodes_.size() + 1, 0);
        for (std::size_t i = 0; i < nodes_.size(); ++i)
            for (std::size_t v : nodes_[i].inputs) {
                ++p.consumers[v];
                p.last_use[v] = i;
            }
        p.chain = is_chain();
        return p;
    }

    // Whether layer i's output feeds only layer i + 1 (and is not the model's output), so the
    // pair may run as one fused op.
    bool fusable_pair(const Plan& p, std::size_t i) const {
        return i + 1 < nodes_.size() && p.consumers[i + 1] == 1 && nodes_[i + 1].inputs.size() == 1 &&
               nodes_[i + 1].inputs[0] == i + 1;
    }

    Variable<T> run_layer(std::size_t i, const std::vector<Variable<T>>& args, const Variable<T>& single,
                          const ForwardContext& ctx, bool logits) const {
        const Layer<T>& layer = *nodes_[i].layer;
        const bool last = i + 1 == nodes_.size();
        if (nodes_[i].inputs.size() == 1)
            return (last && logits) ? layer.forward_logits(single, ctx) : layer.forward(single, ctx);
        return layer.forward_inputs(args, ctx);
    }

    Variable<T> run(const Variable<T>& x, const ForwardContext& ctx, const OutputTap& tap, bool logits) const {
        check_complete();
        check_batch(x.shape(), "Model::forward");
        const Plan& p = plan_;
        if (p.chain) return run_chain(x, ctx, tap, logits);
        ScratchLease lease;
        // values[v]: the model input (0) or layer v - 1's output, released after its last use.
        std::vector<Variable<T>>& values = lease.scratch.values;
        std::vector<Variable<T>>& args = lease.scratch.args;
        values.resize(nodes_.size() + 1);
        values[0] = x;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            const Node& node = nodes_[i];
            if (fusion_ && !tap && fusable_pair(p, i) && node.inputs.size() == 1) {
                Variable<T> fused = run_fused(*node.layer, *nodes_[i + 1].layer, values[node.inputs[0]], ctx);
                if (fused.defined()) {
                    release_inputs(p, values, i);
                    values[i + 2] = std::move(fused);
                    ++i;
                    release_inputs(p, values, i);
                    continue;
                }
            }
            args.clear();
            for (std::size_t v : node.inputs) args.push_back(values[v]);
            Variable<T> y = run_layer(i, args, values[node.inputs[0]], ctx, logits);
            if (tap) tap(*node.layer, y);
            release_inputs(p, values, i);
            values[i + 1] = std::move(y);
        }
        return std::move(values.back());
    }

    // The value table and argument list of run(), kept per thread with their capacity so that a
    // steady-state step does not allocate. A run nested in another on the same thread (a tap
    // that runs a model) gets fresh ones. The lease empties them when run() ends, also by an
    // exception, so no tensor outlives its step.
    struct RunScratch {
        std::vector<Variable<T>> values;
        std::vector<Variable<T>> args;
        bool busy = false;
    };
    struct ScratchLease {
        RunScratch own;
        RunScratch& scratch;
        ScratchLease() : scratch(thread_scratch().busy ? own : thread_scratch()) { scratch.busy = true; }
        ~ScratchLease() {
            scratch.values.clear();
            scratch.args.clear();
            scratch.busy = false;
        }
        ScratchLease(const ScratchLease&) = delete;
        ScratchLease& operator=(const ScratchLease&) = delete;
        static RunScratch& thread_scratch() {
            thread_local RunScratch s;
            return s;
        }
    };

    // Drops the values whose last reader is `layer` (the model input belongs to the caller).
    void release_inputs(const Plan& p, std::vector<Variable<T>>& values, std::size_t layer) const {
        for (std::size_t v : nodes_[layer].inputs)
            if (v != 0 && p.last_use[v] == layer) values[v] = Variable<T>();
    }

    // A chain needs no table of values: one running output, as a Sequential always ran.
    Variable<T> run_chain(const Variable<T>& x, const ForwardContext& ctx, const OutputTap& tap, bool logits) const {
        const Plan& p = plan_;
        Variable<T> h = x;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            // Fuse with the next layer only when no tap watches this layer's own output.
            if (fusion_ && !tap && fusable_pair(p, i)) {
                Variable<T> fused = run_fused(*nodes_[i].layer, *nodes_[i + 1].layer, h, ctx);
                if (fused.defined()) {
                    h = std::move(fused);
                    ++i;
                    continue;
                }
            }
            h = run_layer(i, {}, h, ctx, logits);
            if (tap) tap(*nodes_[i].layer, h);
        }
        return h;
    }

    Shape input_shape_;
    std::uint64_t seed_;
    InitScheme scheme_;
    std::vector<Node> nodes_;
    std::map<std::string, int> name_counts_;
    bool fusion_ = true;
    Plan plan_;
};

}  // namespace cnnlite
