// InferenceModel: a trained model prepared once for prediction. Model::predict must see every
// change of the weights, so it forms what it derives from them at every call: the batch norms
// folded into the convolutions before them, and the filters rearranged for the convolution
// kernels. For one image that work costs as much as a fifth of the prediction. An
// InferenceModel copies the weights when it is made and does that work once; it is a snapshot,
// as a deployed classifier is, and later changes of the model do not reach it. It then runs
// the convolutional part of the network with its activations channels-last
// (nn/channels_last_plan.hpp), which Model::predict cannot: its layers hand planes to each other.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/thread_governor.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/channels_last_plan.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/fusion.hpp"
#include "cnnlite/nn/layer_registry.hpp"
#include "cnnlite/nn/model.hpp"

namespace cnnlite {

/// How an InferenceModel runs.
struct InferenceOptions {
    /// Run the convolutions, ReLU and Add layers, pooling and dropout up to the global pooling
    /// with their activations channels-last, a few images at a time (nn/channels_last_plan.hpp;
    /// float, in builds with AVX2 or AVX-512). Off: the prepared model's layers one after
    /// another on planes, as Model::predict runs them.
    bool channels_last = true;
    /// Run each chunk of a prediction with all num_threads() threads or with one, whichever a
    /// thread governor times faster (core/thread_governor.hpp), as fit() runs its steps: with
    /// another process holding one of two cores, one image predicts several times faster on one
    /// thread than on two (benchmarks/README.md, "Inference with channels-last activations").
    /// Chunks of a few images (fewer groups of four than threads, which the threads share) and
    /// larger ones are governed apart. The outputs have the same bits either way. Off: every
    /// chunk runs on num_threads() threads.
    bool adapt_threads = true;
    /// The governor's settings. Its steps are runs of consecutive chunks of at least
    /// `governor_step_seconds` together (one image takes a fraction of a millisecond: timed
    /// alone, its noise would start probes and decide them at random).
    ThreadGovernorOptions thread_governor = {};
    /// The shortest step the governor is given, in seconds (0: every chunk is a step).
    double governor_step_seconds = 0.002;
    /// Run the 3x3 stride-1 convolutions by Winograd's minimal filtering where
    /// kernels::winograd_tile_for chooses it and the source's Conv2D allows it
    /// (Conv2D::winograd; kernels/winograd.hpp), channels-last or on planes: 3-4x fewer
    /// multiplications, outputs equal to the exact sums to a few parts per million of their
    /// terms' magnitudes (the direct product's to a few parts in ten million) instead of the
    /// direct product's bits. Off: every convolution by the direct product.
    bool winograd = true;
};

/// A copy of a model's network and weights, prepared for prediction: every BatchNormalization
/// that alone reads a Conv2D without activation is folded into that convolution's weights and
/// bias (the layer disappears), a ReLU layer that alone reads such a convolution becomes its
/// activation, and the convolutions' filters are packed once in the layout their kernels read.
/// Then the convolutional part runs channels-last where it can (InferenceOptions).
///
/// Without channels_last, predictions equal Model::predict's bit for bit where the model fuses
/// the same pairs (consecutive layers, as Sequential and the residual blocks have them), and to
/// rounding elsewhere. With it, each convolution sums in the order of the indirect product
/// (kernels/indirect_conv.hpp): Model::predict's bits where its convolutions run as indirect
/// products too, to rounding elsewhere, and to a few more bits of rounding where Winograd's
/// transforms run it (InferenceOptions::winograd); and what the channels-last part hands to the layers
/// after it has the same bits for an image whatever batch it comes in and at any thread count
/// (where a dense layer's products run on Eigen, in double or without AVX2, they may round
/// differently at another batch size, as in Model::predict). The copy is independent: training
/// or loading weights into the source afterwards does not change it. Safe to use from several threads at once (each caller's
/// chunks run on a team of its own, the governors' bookkeeping under a lock). Neither copied
/// nor moved (its plan points into its own model).
template <class T = float>
class InferenceModel {
public:
    /// Copies `source` (which must be complete) and prepares the copy.
    explicit InferenceModel(const Model<T>& source, InferenceOptions options = {})
        : model_(source.input_shape(), source.seed(), source.init_scheme()), options_(options) {
        (void)ThreadGovernor(1, options.thread_governor);  // checks the settings now, not at the first prediction
        check(options.governor_step_seconds >= 0, "InferenceModel: governor_step_seconds must be >= 0, got ",
              options.governor_step_seconds);
        source.check_complete();
        std::vector<LayerConfig> configs = source.architecture();
        const std::map<std::string, std::string> folds = foldable_pairs(source, configs);  // batch norm -> conv
        configs = without(configs, folds);
        for (const auto& [bn, conv] : folds) config_of(configs, conv).args["use_bias"] = "true";  // the folded shift
        const std::map<std::string, std::string> rectified = relu_readers(configs);  // ReLU -> conv
        configs = without(configs, rectified);
        for (const auto& [relu, conv] : rectified) config_of(configs, conv).args["activation"] = "relu";
        for (const LayerConfig& c : configs) model_.connect(make_layer<T>(c), c.inputs);
        model_.set_fusion(source.fusion());
        model_.check_complete();

        std::map<std::string, const Tensor<T>*> values;
        for (const auto& p : source.state()) values[p.name] = &p.variable.value();
        for (auto& p : model_.state())
            if (values.count(p.name)) p.variable.value().copy_from(*values.at(p.name));
        for (const auto& [bn_name, conv_name] : folds) fold(source, conv_name, bn_name);
        for (std::size_t i = 0; i < model_.size(); ++i)
            if (auto* conv = dynamic_cast<Conv2D<T>*>(&model_.layer(model_.layer(i).name()))) {
                packed_ += conv->pack_filters() ? 1 : 0;
                // Winograd's transforms where the options and the source's layer both allow them.
                const auto* original = dynamic_cast<const Conv2D<T>*>(&source.layer(model_.layer(i).name()));
                conv->winograd(options.winograd && (original == nullptr || original->winograd()));
            }
        folded_ = folds.size();
        rectified_ = rectified.size();
        if (options.channels_last) plan_ = std::make_unique<ChannelsLastPlan<T>>(model_, configs, options.winograd);
    }
    InferenceModel(const InferenceModel&) = delete;
    InferenceModel& operator=(const InferenceModel&) = delete;

    /// Outputs for all of `x` ([N, input...]), in chunks of `batch_size` images, as
    /// Model::predict.
    Tensor<T> predict(const Tensor<T>& x, std::int64_t batch_size = 256) const {
        return model_.predict_in_chunks(x, batch_size, [&](const Tensor<T>& chunk) { return governed(chunk); });
    }
    /// Per-sample input shape, e.g. [1, 28, 28].
    const Shape& input_shape() const { return model_.input_shape(); }
    /// Per-sample output shape.
    Shape output_shape() const { return model_.output_shape(); }
    /// The batch norms folded into convolutions.
    std::size_t folded_batch_norms() const { return folded_; }
    /// The ReLU layers that became their convolution's activation (applied as the convolution
    /// writes its output, instead of in a pass of their own).
    std::size_t fused_relus() const { return rectified_; }
    /// The convolutions whose filters were packed once (float convolutions on the
    /// register-blocked kernels; none in builds without AVX2 or AVX-512).
    std::size_t packed_convolutions() const { return packed_; }
    /// Layers left after folding.
    std::size_t size() const { return model_.size(); }
    /// The convolutions that run channels-last (0: the layers run on planes).
    std::size_t channels_last_convolutions() const { return plan_ ? plan_->convolutions() : 0; }
    /// The channels-last convolutions that run by Winograd's transforms (InferenceOptions::winograd).
    std::size_t winograd_convolutions() const { return plan_ ? plan_->winograd_convolutions() : 0; }
    /// Of those, the ones that add a residual (an Add layer's other input) as they store their
    /// output.
    std::size_t fused_additions() const { return plan_ ? plan_->fused_additions() : 0; }
    /// Chunks predicted so far on one thread, because the thread governor chose it (probes
    /// included; 0 without InferenceOptions::adapt_threads or with one thread).
    std::int64_t chunks_on_one_thread() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return chunks_on_one_thread_;
    }
    /// Probes the thread governors have decided so far (each times a few steps with the team
    /// and a few with one thread; InferenceOptions).
    std::int64_t thread_probes() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        std::int64_t probes = 0;
        for (const Governed& g : governed_)
            if (g.governor) probes += g.governor->probes();
        return probes;
    }

private:
    // One chunk on the plan, or on the layers where the plan takes nothing.
    Tensor<T> run(const Tensor<T>& chunk) const {
        if constexpr (std::is_same_v<T, float> && kernels::register_gemm_available)
            if (plan_ && plan_->active()) return plan_->predict_chunk(chunk);
        return model_.forward(Variable<T>(chunk), ForwardContext{}).value();
    }

    // One chunk on the thread count its governor gives, its time added to the governor's step.
    Tensor<T> governed(const Tensor<T>& chunk) const {
        const int team = num_threads();
        const std::int64_t n = chunk.shape()[0];
        // Inside a parallel region of the caller's, the chunk runs on that thread alone anyway.
        if (!options_.adapt_threads || team == 1 || team_size() > 1 || n == 0) return run(chunk);
        // The threads share each group when there are fewer groups than threads (one image):
        // a slow thread then holds the others at every step, unlike with many groups.
        const std::int64_t groups = (n + kernels::channels_last_group - 1) / kernels::channels_last_group;
        const std::size_t kind = groups < team ? 0 : 1;
        int threads = team;
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            Governed& g = governed_[kind];
            if (!g.governor) g.governor.emplace(team, options_.thread_governor);
            if (g.governor->team() != team) {  // the caller changed its thread count
                g.governor->restart(team);
                g.step_seconds = 0;
                g.step_images = 0;
            }
            threads = g.governor->next_threads();
            if (threads == 1) ++chunks_on_one_thread_;
        }
        const auto start = std::chrono::steady_clock::now();
        Tensor<T> y;
        {
            const CallingThreadCount count(threads);
            y = run(chunk);
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::lock_guard<std::mutex> lock(mutex_);
        Governed& g = governed_[kind];
        // A time counts where it is the one the governor asked for: another caller may have
        // moved it on (to the next half of a probe, or a new team) meanwhile.
        if (g.governor->team() != team || g.governor->next_threads() != threads) return y;
        g.step_seconds += seconds;
        g.step_images += n;
        if (g.step_seconds >= options_.governor_step_seconds) {
            g.governor->record(g.step_seconds / static_cast<double>(g.step_images));
            g.step_seconds = 0;
            g.step_images = 0;
        }
        return y;
    }

    // A thread governor and the step it is being given.
    struct Governed {
        std::optional<ThreadGovernor> governor;  // made at the first chunk, for the caller's team
        double step_seconds = 0;                 // the chunks of the step so far
        std::int64_t step_images = 0;
    };

    // The layers but the last (it names the model's output) whose one input is another layer
    // that nothing else reads: the pairs that can merge into one layer.
    static std::vector<const LayerConfig*> sole_readers(const std::vector<LayerConfig>& configs) {
        std::map<std::string, int> readers;
        for (const LayerConfig& c : configs)
            for (const std::string& in : c.inputs) ++readers[in];
        std::vector<const LayerConfig*> found;
        for (std::size_t i = 0; i + 1 < configs.size(); ++i) {
            const LayerConfig& c = configs[i];
            if (c.inputs.size() == 1 && c.inputs[0] != model_input_name() && readers[c.inputs[0]] == 1)
                found.push_back(&c);
        }
        return found;
    }

    // Batch norms (by name) that alone read a Conv2D without activation, mapped to that
    // convolution.
    static std::map<std::string, std::string> foldable_pairs(const Model<T>& source, const std::vector<LayerConfig>& configs) {
        std::map<std::string, std::string> folds;
        for (const LayerConfig* c : sole_readers(configs)) {
            const auto* bn = dynamic_cast<const BatchNormalization<T>*>(&source.layer(c->name));
            const auto* conv = dynamic_cast<const Conv2D<T>*>(&source.layer(c->inputs[0]));
            if (bn != nullptr && conv != nullptr && conv->activation() == Activation::none &&
                bn->running_mean().rank() == 1 && bn->running_mean().numel() == conv->weight().shape()[0])
                folds[c->name] = c->inputs[0];
        }
        return folds;
    }

    // ReLU layers (by name) that alone read a Conv2D without activation, mapped to that
    // convolution.
    static std::map<std::string, std::string> relu_readers(const std::vector<LayerConfig>& configs) {
        std::map<std::string, std::string> found;
        for (const LayerConfig* c : sole_readers(configs)) {
            const LayerConfig& conv = config_of(configs, c->inputs[0]);
            if (c->type == "ReLU" && conv.type == "Conv2D" && conv.args.count("activation") &&
                conv.args.at("activation") == "linear")
                found[c->name] = conv.name;
        }
        return found;
    }

    // `configs` without the layers named by the keys of `dropped`, their readers reading the
    // layer each maps to instead.
    static std::vector<LayerConfig> without(const std::vector<LayerConfig>& configs,
                                            const std::map<std::string, std::string>& dropped) {
        std::vector<LayerConfig> kept;
        for (LayerConfig c : configs) {
            if (dropped.count(c.name)) continue;
            for (std::string& in : c.inputs)
                if (dropped.count(in)) in = dropped.at(in);
            kept.push_back(std::move(c));
        }
        return kept;
    }

    template <class Configs>
    static auto& config_of(Configs& configs, const std::string& name) {
        for (auto& c : configs)
            if (c.name == name) return c;
        fail("InferenceModel: no layer '", name, "'");  // unreachable: names come from the configurations
    }

    // The copy's convolution `conv_name` becomes the source's convolution followed by its
    // batch norm `bn_name`, folded as the fusion table folds them.
    void fold(const Model<T>& source, const std::string& conv_name, const std::string& bn_name) {
        auto& target = dynamic_cast<Conv2D<T>&>(model_.layer(conv_name));
        Variable<T> folded_w = target.weight(), folded_b = target.bias();
        detail::fold_into_convolution(dynamic_cast<const Conv2D<T>&>(source.layer(conv_name)),
                                      dynamic_cast<const BatchNormalization<T>&>(source.layer(bn_name)),
                                      folded_w.value().data(), folded_b.value().data());
    }

    Model<T> model_;
    std::size_t folded_ = 0;
    std::size_t rectified_ = 0;
    std::size_t packed_ = 0;
    std::unique_ptr<ChannelsLastPlan<T>> plan_;  // null without InferenceOptions::channels_last
    InferenceOptions options_;
    mutable std::mutex mutex_;
    mutable std::array<Governed, 2> governed_;  // chunks of few images, of many
    mutable std::int64_t chunks_on_one_thread_ = 0;
};

}  // namespace cnnlite
