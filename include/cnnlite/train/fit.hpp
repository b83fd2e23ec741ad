// fit(): the training loop. Each epoch shuffles the training set from (seed, epoch), runs one
// optimiser step per mini-batch through autograd (a model ending in softmax trains on its
// logits with the fused loss), evaluates the validation set, records the epoch and calls the
// callbacks. Every random draw is keyed by (seed, epoch/step, sample), so the same seed and
// thread count give bitwise-identical weights, and a resumed run continues exactly.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/core/denormals.hpp"
#include "cnnlite/data/batching.hpp"
#include "cnnlite/data/dataset.hpp"
#include "cnnlite/kernels/finite.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/ops/softmax_cross_entropy.hpp"
#include "cnnlite/optim/optimizer.hpp"
#include "cnnlite/train/callbacks.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/train/history.hpp"
#include "cnnlite/train/progress.hpp"

namespace cnnlite {

/// What to do when a loss or gradient is NaN or infinite.
enum class NonFinitePolicy {
    error,       ///< throw a cnnlite::Error naming the epoch, step and parameter
    skip_batch,  ///< drop the batch (no optimiser step) and carry on
};

/// Settings of fit().
struct FitOptions {
    /// Samples per optimiser step.
    std::int64_t batch_size = 64;
    std::int64_t epochs = 1;          ///< train until this epoch (counted from 1)
    std::int64_t initial_epoch = 0;   ///< epochs already done (resuming)
    std::uint64_t seed = 0;           ///< keys shuffling and dropout
    /// Reshuffle the training set every epoch.
    bool shuffle = true;
    /// Progress display.
    Verbosity verbosity = Verbosity::auto_;
    /// What a NaN or infinite loss or gradient does.
    NonFinitePolicy on_non_finite = NonFinitePolicy::error;
    /// Batch size of the validation pass.
    std::int64_t validation_batch_size = 1000;
    /// Learning rate per epoch (counted from 1), set before the epoch starts; empty: unchanged.
    std::function<double(std::int64_t epoch)> learning_rate_schedule;
    /// Flush denormal floats to zero while training, as TensorFlow does (core/denormals.hpp says
    /// why); false keeps IEEE gradual underflow at the cost of microcode assists.
    bool flush_denormals = true;
};

namespace detail {

/// Index of the first NaN or infinity in `t`, or -1 when every element is finite.
template <class T>
std::int64_t first_non_finite(const Tensor<T>& t) {
    // One vectorised sum first: NaN or infinite whenever any element is (or when finite
    // values overflow it, which the scan below tells apart).
    if (std::isfinite(static_cast<double>(t.array().sum()))) return -1;
    for (std::int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(static_cast<double>(t.data()[i]))) return i;
    return -1;
}

/// "NaN at element 5 of [64, 10]" for the non-finite element `index` of `t`.
template <class T>
std::string non_finite_text(const Tensor<T>& t, std::int64_t index) {
    const double v = static_cast<double>(t.data()[index]);
    return std::string(std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf") + " at element " + std::to_string(index) +
           " of " + t.shape().str();
}

/// The layer a parameter name ("dense_1.bias") belongs to.
inline std::string layer_of(const std::string& parameter) { return parameter.substr(0, parameter.rfind('.')); }

/// Throws (or returns false to skip) when a gradient holds a NaN or infinity.
template <class T>
bool gradients_finite(const std::vector<NamedParameter<T>>& params, std::int64_t epoch, std::int64_t step,
                      NonFinitePolicy policy) {
    for (const auto& p : params) {
        if (!p.variable.has_grad()) continue;
        const Tensor<T>& g = p.variable.grad();
        if (kernels::all_finite(g.data(), g.numel())) continue;  // the parallel pass, every step
        const std::int64_t bad = first_non_finite(g);            // only on the way to an error
        if (policy == NonFinitePolicy::skip_batch) return false;
        fail("fit: non-finite gradient at epoch ", epoch, ", step ", step, " in layer '", layer_of(p.name),
             "': the gradient of '", p.name, "' holds ", non_finite_text(p.variable.grad(), bad),
             " (check the learning rate and the input data; FitOptions::on_non_finite = skip_batch drops such batches)");
    }
    return true;
}

/// Why a batch's loss is not finite, for the error message: a parameter that already holds
/// NaN/Inf, a non-finite input, or the first layer whose output turns non-finite (found by
/// repeating the forward pass, with the same dropout masks, and watching every layer).
template <class T>
std::string explain_non_finite_loss(const Sequential<T>& model, const std::vector<NamedParameter<T>>& params,
                                    const Variable<T>& x, const Batch& batch, const ForwardContext& ctx) {
    for (const auto& p : params) {
        const std::int64_t bad = first_non_finite(p.variable.value());
        if (bad >= 0)
            return "in layer '" + layer_of(p.name) + "': its parameter '" + p.name + "' holds non-finite values (" +
                   non_finite_text(p.variable.value(), bad) + "; an earlier step diverged)";
    }
    const std::int64_t bad_input = first_non_finite(x.value());
    if (bad_input >= 0) {
        const std::int64_t per_sample = x.value().numel() / std::max<std::int64_t>(batch.size(), 1);
        const std::int64_t row = bad_input / per_sample;
        return "in the input, before the first layer: sample " +
               std::to_string(batch.indices[static_cast<std::size_t>(row)]) + " of the data set holds a non-finite value (" +
               non_finite_text(x.value(), bad_input) + ")";
    }
    std::string found;
    NoGrad no_grad;
    model.forward_logits(x, ctx, [&](const Layer<T>& layer, Variable<T>& output) {
        if (!found.empty()) return;
        const std::int64_t bad = first_non_finite(output.value());
        if (bad >= 0)
            found = "in layer '" + layer.name() + "' (" + layer.type() + "), the first whose output is not finite (" +
                    non_finite_text(output.value(), bad) + ")";
    });
    return found.empty() ? "in the loss itself: every layer's output is finite" : found;
}

inline std::string epoch_summary(const EpochRecord& r, std::int64_t epochs) {
    char buffer[256];
    int n = std::snprintf(buffer, sizeof buffer, "Epoch %lld/%lld - %.1fs - loss %.4f - accuracy %.4f",
                          static_cast<long long>(r.epoch), static_cast<long long>(epochs), r.seconds, r.loss, r.accuracy);
    if (std::isfinite(r.val_loss))
        n += std::snprintf(buffer + n, sizeof buffer - static_cast<std::size_t>(n), " - val_loss %.4f - val_accuracy %.4f",
                           r.val_loss, r.val_accuracy);
    std::snprintf(buffer + n, sizeof buffer - static_cast<std::size_t>(n), " - %.0f img/s", r.images_per_second);
    return buffer;
}

}  // namespace detail

/// One optimiser step on one batch: forward (logits), fused loss, backward, finiteness check,
/// optimiser update. Holds the buffers it reuses, so a steady-state step does not allocate.
template <class T>
class TrainStep {
public:
    /// What one step measured.
    struct Result {
        double loss = 0;            ///< mean loss of the batch
        std::int64_t correct = 0;   ///< samples whose arg-max logit is the label
        bool applied = false;       ///< false when the batch was skipped (non-finite values)
    };

    /// A step of `optimizer` on `model`'s parameters.
    TrainStep(const Sequential<T>& model, Optimizer<T>& optimizer, NonFinitePolicy policy = NonFinitePolicy::error)
        : model_(model), optimizer_(optimizer), params_(model.parameters()), policy_(policy) {
        static_assert(sizeof(int) == sizeof(std::int32_t), "labels are passed to the loss as int32");
    }

    /// Trains on `batch`; `ctx` carries the step and seed for dropout. `epoch` and `step` only
    /// name the place in error messages.
    Result operator()(const Batch& batch, const ForwardContext& ctx, std::int64_t epoch, std::int64_t step) {
        Result r;
        const std::int64_t count = batch.size();
        Variable<T> x;
        if constexpr (std::is_same<T, float>::value) x = Variable<T>(batch.images);
        else x = Variable<T>(batch.images.template cast<T>());
        Variable<T> logits = model_.forward_logits(x, ctx);
        Variable<T> loss =
            softmax_cross_entropy(logits, reinterpret_cast<const std::int32_t*>(batch.labels.data()), count);
        r.loss = static_cast<double>(loss.value()[0]);
        if (!std::isfinite(r.loss)) {
            if (policy_ == NonFinitePolicy::skip_batch) return r;
            fail("fit: non-finite loss (", r.loss, ") at epoch ", epoch, ", step ", step, " ",
                 detail::explain_non_finite_loss(model_, params_, x, batch, ctx),
                 " (check the learning rate and the input data; FitOptions::on_non_finite = skip_batch drops such batches)");
        }
        optimizer_.zero_grad();
        loss.backward();
        if (!detail::gradients_finite(params_, epoch, step, policy_)) return r;
        optimizer_.step();
        r.applied = true;
        argmax_rows(logits.value(), predicted_);
        for (std::int64_t i = 0; i < count; ++i)
            r.correct += predicted_[static_cast<std::size_t>(i)] == batch.labels[static_cast<std::size_t>(i)];
        return r;
    }

private:
    const Sequential<T>& model_;
    Optimizer<T>& optimizer_;
    std::vector<NamedParameter<T>> params_;
    NonFinitePolicy policy_;
    std::vector<int> predicted_;
};

namespace detail {

/// The argument checks of fit() and of its data-parallel variant.
template <class T>
void check_fit_arguments(const Sequential<T>& model, const Dataset& train, const Dataset* validation,
                         const FitOptions& options) {
    check(!train.empty(), "fit: the training set is empty");
    check(options.batch_size >= 1, "fit: batch size must be at least 1, got ", options.batch_size);
    check(options.batch_size <= train.size(), "fit: batch size ", options.batch_size, " exceeds the ", train.size(),
          " training samples");
    check(options.epochs >= options.initial_epoch, "fit: epochs (", options.epochs, ") below initial_epoch (",
          options.initial_epoch, ")");
    check(validation == nullptr || !validation->empty(), "fit: the validation set is empty (pass null for none)");
    model.check_batch(train.images().shape(), "fit (training set)");
    if (validation) model.check_batch(validation->images().shape(), "fit (validation set)");
    const Shape out = model.output_shape();
    check(out.rank() == 1 && out[0] == train.num_classes(), "fit: the model's output shape ", out,
          " does not match the ", train.num_classes(), " classes of the training set");
}

/// What one mini-batch added to its epoch's running loss and accuracy.
struct BatchOutcome {
    bool applied = false;      ///< false when the batch was skipped (non-finite values)
    double loss_sum = 0;       ///< sum of the per-sample losses
    std::int64_t correct = 0;  ///< samples classified right
    std::int64_t count = 0;    ///< samples the step trained on
};

/// The epoch loop that fit() and data-parallel training share: learning-rate schedule,
/// reshuffle, one `train_batch(batcher, epoch, b)` -> BatchOutcome per mini-batch, progress,
/// the epoch's record (`end_of_epoch(record)` fills the validation figures and does any other
/// work the epoch's seconds include), callbacks, and stopping when `agree_stop(asked)` says so
/// (a callback asked: `asked`). Denormals are flushed while it runs when the options say so.
template <class T, class TrainBatch, class EndOfEpoch, class AgreeStop>
History run_epochs(Sequential<T>& model, Optimizer<T>& optimizer, const Dataset& train, const FitOptions& options,
                   Verbosity verbosity, const std::vector<Callback<T>*>& callbacks, History history,
                   TrainBatch&& train_batch, EndOfEpoch&& end_of_epoch, AgreeStop&& agree_stop) {
    const FlushDenormals flush(options.flush_denormals);
    Batcher batcher(train, BatchOptions{options.batch_size, options.shuffle, false, options.seed});
    const std::int64_t steps = batcher.num_batches();
    ProgressBar progress(verbosity);
    for (auto* cb : callbacks) cb->on_train_begin(model, history);

    for (std::int64_t epoch = options.initial_epoch + 1; epoch <= options.epochs; ++epoch) {
        if (options.learning_rate_schedule) optimizer.set_learning_rate(options.learning_rate_schedule(epoch));
        for (auto* cb : callbacks) cb->on_epoch_begin(epoch);
        const auto start = std::chrono::steady_clock::now();
        batcher.start_epoch(static_cast<std::uint64_t>(epoch - 1));
        progress.start_epoch(epoch, options.epochs, steps);
        double loss_sum = 0;
        std::int64_t correct = 0, seen = 0;

        for (std::int64_t b = 0; b < steps; ++b) {
            const BatchOutcome r = train_batch(batcher, epoch, b);
            if (!r.applied) continue;
            correct += r.correct;
            loss_sum += r.loss_sum;
            seen += r.count;
            progress.update(b + 1, loss_sum / static_cast<double>(seen),
                            static_cast<double>(correct) / static_cast<double>(seen), seen);
        }
        const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        EpochRecord record;
        record.epoch = epoch;
        record.loss = seen ? loss_sum / static_cast<double>(seen) : std::numeric_limits<double>::quiet_NaN();
        record.accuracy = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
        record.images_per_second = train_seconds > 0 ? static_cast<double>(seen) / train_seconds : 0.0;
        end_of_epoch(record);
        record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        history.epochs.push_back(record);
        progress.end_epoch(epoch_summary(record, options.epochs));

        TrainControl control;
        for (auto* cb : callbacks) cb->on_epoch_end(model, history, control);
        if (agree_stop(control.stop)) break;
    }
    for (auto* cb : callbacks) cb->on_train_end(model, history);
    return history;
}

}  // namespace detail

/// Trains `model` with `optimizer` on `train`, validating on `validation` (null: none) after
/// every epoch. Epochs initial_epoch+1 .. epochs run; `history` holds earlier epochs when
/// resuming. Returns the history of all epochs.
template <class T>
History fit(Sequential<T>& model, Optimizer<T>& optimizer, const Dataset& train, const Dataset* validation,
            const FitOptions& options, const std::vector<Callback<T>*>& callbacks = {}, History history = {}) {
    detail::check_fit_arguments(model, train, validation, options);
    TrainStep<T> train_step(model, optimizer, options.on_non_finite);
    Batch batch;
    const auto train_batch = [&](const Batcher& batcher, std::int64_t epoch, std::int64_t b) {
        batcher.fill(b, batch);
        // Dropout masks are keyed by the global step and each sample's index in the data set.
        const ForwardContext ctx{true, options.seed, (epoch - 1) * batcher.num_batches() + b, batch.indices.data()};
        const auto r = train_step(batch, ctx, epoch, b + 1);
        const std::int64_t count = batch.size();
        return detail::BatchOutcome{r.applied, r.loss * static_cast<double>(count), r.correct, count};
    };
    const auto end_of_epoch = [&](EpochRecord& record) {
        if (!validation) return;
        const Evaluation v = evaluate(model, *validation, options.validation_batch_size);
        record.val_loss = v.loss;
        record.val_accuracy = v.accuracy;
    };
    return detail::run_epochs(model, optimizer, train, options, options.verbosity, callbacks, std::move(history),
                              train_batch, end_of_epoch, [](bool asked) { return asked; });
}

}  // namespace cnnlite
