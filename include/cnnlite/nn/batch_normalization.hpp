// BatchNormalization layer (Keras' BatchNormalization, PyTorch's BatchNorm1d/2d) over the
// channel axis 1 of [N, C, H, W] batches, or the features of [N, F]. Training normalises with
// the batch's statistics and updates the running statistics; inference, and a frozen layer
// even in training (Keras 2+), normalises with the running statistics. Parameters and buffers
// carry PyTorch's names (weight = gamma, bias = beta, running_mean, running_var, and the
// count num_batches_tracked), so model files and PyTorch's state_dict agree.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/batch_norm.hpp"

namespace cnnlite {

/// Whose definition of momentum and of the running variance a BatchNormalization follows.
enum class BatchNormConvention {
    /// Keras: running = momentum * running + (1 - momentum) * batch, with the batch's biased
    /// variance (defaults momentum 0.99, epsilon 1e-3).
    keras,
    /// PyTorch: running = (1 - momentum) * running + momentum * batch, with the batch's
    /// unbiased variance (divided by n - 1) for running_var (defaults momentum 0.1, epsilon 1e-5).
    torch,
};

/// "keras" or "torch".
inline const char* to_string(BatchNormConvention c) { return c == BatchNormConvention::torch ? "torch" : "keras"; }

/// Reads a BatchNormConvention option ("keras" or "torch") from a model file.
inline void parse_option(const std::string& text, BatchNormConvention& out) {
    check(text == "keras" || text == "torch", "unknown batch-norm convention '", text, "' (known: keras, torch)");
    out = text == "torch" ? BatchNormConvention::torch : BatchNormConvention::keras;
}

/// The options of a BatchNormalization layer; the defaults are Keras'. for_convention(torch)
/// gives PyTorch's.
struct BatchNormOptions {
    double momentum = 0.99;  ///< weight of the running statistics' update, in [0, 1), in `convention`'s sense
    double epsilon = 1e-3;   ///< added to the variance before the square root; positive
    bool center = true;      ///< learn an offset beta (PyTorch: affine)
    bool scale = true;       ///< learn a scale gamma (PyTorch: affine)
    BatchNormConvention convention = BatchNormConvention::keras;  ///< meaning of momentum, running variance

    /// The defaults of Keras (momentum 0.99, epsilon 1e-3) or PyTorch (momentum 0.1, epsilon 1e-5).
    static BatchNormOptions for_convention(BatchNormConvention c) {
        BatchNormOptions o;
        o.convention = c;
        if (c == BatchNormConvention::torch) o.momentum = 0.1, o.epsilon = 1e-5;
        return o;
    }

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("momentum", momentum);
        v("epsilon", epsilon);
        v("center", center);
        v("scale", scale);
        v("convention", convention);
    }
};

/// Batch normalisation over channels (Keras' BatchNormalization): y = gamma (x - mean) /
/// sqrt(var + epsilon) + beta per channel, for per-sample inputs [C, H, W] or [features].
///
/// In training (ForwardContext::training) mean and var are the batch's (over N, H, W; across
/// processes when ForwardContext::channel_sum_reducer is set), and the running statistics move
/// towards them as the convention says. Otherwise, and always when the layer is frozen
/// (set_trainable(false): Keras 2+'s fine-tuning semantics, unlike PyTorch's train()), the
/// running statistics are used and nothing is updated. Parameters: "weight" (gamma, [C]) and
/// "bias" (beta, [C]), each only when scale/center is on; buffers: "running_mean" (zeros) and
/// "running_var" (ones), saved with the model but never trained; counter: "num_batches_tracked",
/// PyTorch's count of the training forwards that updated the running statistics (an int64,
/// exact however long training runs; 0-d I64 in files, as PyTorch's state_dict holds it). Keras
/// has no such counter; a layer of Keras' convention counts too, so that every file of the layer
/// has the same tensors. No convention's update depends on it (PyTorch's momentum=None
/// cumulative average is not offered).
template <class T = float>
class BatchNormalization : public LayerWithOptions<T, BatchNormalization<T>, BatchNormOptions> {
public:
    /// The layer's options type.
    using Options = BatchNormOptions;

    /// Batch normalisation with all its options.
    explicit BatchNormalization(BatchNormOptions options)
        : LayerWithOptions<T, BatchNormalization<T>, BatchNormOptions>(options) {
        check_momentum(options.momentum);
        check_epsilon(options.epsilon);
    }
    /// Keras' defaults: momentum 0.99, epsilon 1e-3.
    BatchNormalization() : BatchNormalization(BatchNormOptions{}) {}
    /// The defaults of `convention` (PyTorch's: momentum 0.1, epsilon 1e-5).
    explicit BatchNormalization(BatchNormConvention convention)
        : BatchNormalization(BatchNormOptions::for_convention(convention)) {}

    /// Momentum in [0, 1), in the sense of the layer's convention.
    BatchNormalization& momentum(double m) {
        check_momentum(m);
        this->options_.momentum = m;
        return *this;
    }
    /// Epsilon, positive.
    BatchNormalization& epsilon(double e) {
        check_epsilon(e);
        this->options_.epsilon = e;
        return *this;
    }
    /// Whether the layer learns an offset beta (default true).
    BatchNormalization& center(bool on) { this->options_.center = on; return *this; }
    /// Whether the layer learns a scale gamma (default true).
    BatchNormalization& scale(bool on) { this->options_.scale = on; return *this; }
    /// Sets the layer's name (default: batch_normalization, batch_normalization_1, ...).
    BatchNormalization& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "BatchNormalization"; }
    const char* default_name() const override { return "batch_normalization"; }

    Shape build(const Shape& in, const LayerInit&) override {
        check(in.rank() == 1 || in.rank() == 3, "BatchNormalization '", this->name_,
              "': input must be [C, H, W] or [features] (channel axis 1 of the batch), got ", in);
        const Shape channels{in[0]};
        if (this->options_.scale) weight_ = Variable<T>(Tensor<T>::full(channels, T(1)), true);
        if (this->options_.center) bias_ = Variable<T>(Tensor<T>::zeros(channels), true);
        running_mean_ = Variable<T>(Tensor<T>::zeros(channels));
        running_var_ = Variable<T>(Tensor<T>::full(channels, T(1)));
        num_batches_tracked_ = Tensor<std::int64_t>::zeros(Shape{});
        return in;
    }

    /// Normalised x: with the batch's statistics (and an update of the running ones) when
    /// ctx.training and the layer is trainable, with the running statistics otherwise.
    Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx) const override {
        this->check_input(x);
        const double eps = this->options_.epsilon;
        if (!ctx.training || !this->trainable())
            return batch_norm_inference(x, weight_, bias_, running_mean_.value(), running_var_.value(), eps);
        return forward_training(x, ctx, false);
    }

    /// relu(forward(x, ctx)) in one op (batch_norm_relu) when ctx.training and the layer is
    /// trainable, the same bits as this layer and a ReLU layer; an undefined Variable otherwise
    /// (the fusion table's rule for BatchNormalization + ReLU, nn/fusion.hpp).
    Variable<T> forward_relu(const Variable<T>& x, const ForwardContext& ctx) const {
        if (!ctx.training || !this->trainable()) return Variable<T>();
        this->check_input(x);
        return forward_training(x, ctx, true);
    }

    std::vector<NamedParameter<T>> parameters() const override {
        std::vector<NamedParameter<T>> p;
        if (this->options_.scale) p.push_back({"weight", weight_});
        if (this->options_.center) p.push_back({"bias", bias_});
        return p;
    }
    std::vector<NamedParameter<T>> buffers() const override {
        return {{"running_mean", running_mean_}, {"running_var", running_var_}};
    }
    std::vector<NamedCounter> counters() const override { return {{"num_batches_tracked", num_batches_tracked_}}; }

    /// Gamma, [C]; undefined without scale.
    const Variable<T>& gamma() const { return weight_; }
    /// Beta, [C]; undefined without center.
    const Variable<T>& beta() const { return bias_; }
    /// The running mean, [C].
    const Tensor<T>& running_mean() const { return running_mean_.value(); }
    /// The running variance, [C].
    const Tensor<T>& running_var() const { return running_var_.value(); }
    /// Training forwards that updated the running statistics (PyTorch's num_batches_tracked);
    /// 0 before build().
    std::int64_t num_batches_tracked() const {
        return num_batches_tracked_.defined() ? num_batches_tracked_.data()[0] : 0;
    }
    /// The momentum, in the sense of convention().
    double momentum() const { return this->options_.momentum; }
    /// The epsilon.
    double epsilon() const { return this->options_.epsilon; }
    /// Keras' or PyTorch's momentum and running variance.
    BatchNormConvention convention() const { return this->options_.convention; }

private:
    static void check_momentum(double m) {
        check(m >= 0.0 && m < 1.0, "BatchNormalization: momentum ", m, " outside [0, 1)");
    }
    static void check_epsilon(double e) {
        check(std::isfinite(e) && e > 0.0, "BatchNormalization: epsilon ", e,
              " must be positive and finite (it keeps a constant channel's 1/sqrt(var + epsilon) finite)");
    }

    // Normalises with the batch's statistics (then rectifies, when `relu`) and moves the running ones.
    Variable<T> forward_training(const Variable<T>& x, const ForwardContext& ctx, bool relu) const {
        // Across processes the count is known only after the reduction; the op checks it then.
        if (ctx.channel_sum_reducer == nullptr)
            check(x.value().numel() > x.shape()[1], "BatchNormalization '", this->name_,
                  "': training needs more than one value per channel, got input ", x.shape(),
                  " (a batch of one sample without spatial extent)");
        BatchStats stats;
        const double eps = this->options_.epsilon;
        Variable<T> y = relu ? batch_norm_relu(x, weight_, bias_, eps, &stats, ctx.channel_sum_reducer)
                             : batch_norm(x, weight_, bias_, eps, &stats, ctx.channel_sum_reducer);
        update_running_statistics(stats);
        ++num_batches_tracked_.data()[0];
        return y;
    }

    // One serial pass per channel in double, from the op's double statistics: the same bits for
    // any thread count.
    void update_running_statistics(const BatchStats& stats) const {
        const double m = this->options_.momentum;
        const bool torch = this->options_.convention == BatchNormConvention::torch;
        const double keep = torch ? 1.0 - m : m;  // weight of the old running value
        const double n = static_cast<double>(stats.count);
        const double unbias = torch ? n / (n - 1.0) : 1.0;
        Tensor<T>& mean = running_mean_.value();
        Tensor<T>& var = running_var_.value();
        for (std::int64_t c = 0; c < mean.numel(); ++c) {
            mean[c] = static_cast<T>(keep * static_cast<double>(mean[c]) + (1.0 - keep) * stats.mean[c]);
            var[c] = static_cast<T>(keep * static_cast<double>(var[c]) + (1.0 - keep) * stats.variance[c] * unbias);
        }
    }

    Variable<T> weight_, bias_;
    // forward() is const because a model runs its layers through const references (predict may
    // run on several threads at once), yet a training forward must move the running
    // statistics, as Keras and PyTorch do. Only a training forward writes them, and training has
    // one caller at a time (architecture.md, "Thread safety").
    mutable Variable<T> running_mean_, running_var_;
    mutable Tensor<std::int64_t> num_batches_tracked_;
};

}  // namespace cnnlite
