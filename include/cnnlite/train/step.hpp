// One optimiser step, and the pieces every way of taking one shares: the forward pass to the
// logits with the fused softmax cross-entropy (forward_and_loss), the count of correct
// predictions, the update with its recipe (clipping, per-step schedule, weight average:
// StepRecipe, update_weights) and what a step reports (StepResult). TrainStep is the step of
// one process; distributed/'s DataParallelStep adds gradient averaging between the same pieces.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "cnnlite/data/batching.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/ops/softmax_cross_entropy.hpp"
#include "cnnlite/optim/clip.hpp"
#include "cnnlite/optim/ema.hpp"
#include "cnnlite/optim/optimizer.hpp"
#include "cnnlite/optim/schedule.hpp"
#include "cnnlite/train/metrics.hpp"
#include "cnnlite/train/non_finite.hpp"

namespace cnnlite {

/// What one optimiser step measured, and what its epoch adds up.
struct StepResult {
    bool applied = false;      ///< false when the batch was skipped (non-finite values)
    double loss_sum = 0;       ///< sum of the per-sample losses of the batch
    std::int64_t correct = 0;  ///< samples whose arg-max logit is the label
    std::int64_t count = 0;    ///< samples in the batch

    /// The batch's mean loss (NaN for an empty batch).
    double loss() const {
        return count ? loss_sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
    }
};

/// The graph of one forward pass with its loss: kept together because backward() starts at
/// `loss` and the accuracy count reads `logits`.
template <class T>
struct ForwardAndLoss {
    Variable<T> input;   ///< the batch's images, a leaf without gradient
    Variable<T> logits;  ///< [N, classes]
    Variable<T> loss;    ///< the mean softmax cross-entropy, a scalar
    double mean_loss = 0;  ///< the loss's value, in double
};

/// Runs `model` on `batch` to its logits (with the dropout masks `ctx` selects) and the fused
/// softmax cross-entropy with the batch's labels, smoothed by `label_smoothing` (in [0, 1]).
template <class T>
ForwardAndLoss<T> forward_and_loss(const Model<T>& model, const Batch& batch, const ForwardContext& ctx,
                                   double label_smoothing = 0) {
    static_assert(sizeof(int) == sizeof(std::int32_t), "labels are passed to the loss as int32");
    ForwardAndLoss<T> f;
    if constexpr (std::is_same<T, float>::value) f.input = Variable<T>(batch.images);
    else f.input = Variable<T>(batch.images.template cast<T>());
    f.logits = model.forward_logits(f.input, ctx);
    f.loss = softmax_cross_entropy(f.logits, reinterpret_cast<const std::int32_t*>(batch.labels.data()), batch.size(),
                                   label_smoothing);
    f.mean_loss = static_cast<double>(f.loss.value()[0]);
    return f;
}

/// Samples of `batch` whose arg-max logit is their label; `predicted` is a reusable buffer.
template <class T>
std::int64_t count_correct(const Tensor<T>& logits, const Batch& batch, std::vector<int>& predicted) {
    argmax_rows(logits, predicted);
    std::int64_t correct = 0;
    for (std::int64_t i = 0; i < batch.size(); ++i)
        correct += predicted[static_cast<std::size_t>(i)] == batch.labels[static_cast<std::size_t>(i)];
    return correct;
}

/// What a step does besides forward, backward and the optimiser's plain update (fit() fills it
/// from FitOptions). The pointers are not owned and may be null.
template <class T>
struct StepRecipe {
    /// Label smoothing of the training loss, in [0, 1).
    double label_smoothing = 0;
    /// Largest global L2 norm of the gradients (clip_grad_norm); empty: no clipping.
    std::optional<double> clip_grad_norm;
    /// Its on_step_begin() runs before every update (a per-epoch schedule does nothing there).
    const LearningRateSchedule* schedule = nullptr;
    /// Updated after every update.
    ExponentialMovingAverage<T>* ema = nullptr;
};

/// The update of a step whose gradients are complete and finite: clipping to the recipe's
/// global norm, the per-step learning rate, the optimiser's step, then the weight average.
template <class T>
void update_weights(Optimizer<T>& optimizer, const StepRecipe<T>& recipe) {
    if (recipe.clip_grad_norm) clip_grad_norm(optimizer.parameters(), *recipe.clip_grad_norm);
    if (recipe.schedule) recipe.schedule->on_step_begin(optimizer);
    optimizer.step();
    if (recipe.ema) recipe.ema->update();
}

/// One optimiser step on one batch in this process: forward_and_loss, backward, the finiteness
/// checks, the update (update_weights). Holds the buffers it reuses, so a steady-state step
/// does not allocate.
template <class T>
class TrainStep {
public:
    /// What one step measured (StepResult; its loss() is the batch's mean loss).
    using Result = StepResult;

    /// A step of `optimizer` on `model`'s parameters, with `recipe`'s extras.
    TrainStep(const Model<T>& model, Optimizer<T>& optimizer, NonFinitePolicy policy = NonFinitePolicy::error,
              StepRecipe<T> recipe = {})
        : model_(model), optimizer_(optimizer), params_(model.parameters()), policy_(policy), recipe_(recipe) {}

    /// Trains on `batch`; `ctx` carries the step and seed for dropout. `epoch` and `step` only
    /// name the place in error messages.
    StepResult operator()(const Batch& batch, const ForwardContext& ctx, std::int64_t epoch, std::int64_t step) {
        StepResult r;
        r.count = batch.size();
        ForwardAndLoss<T> f = forward_and_loss(model_, batch, ctx, recipe_.label_smoothing);
        r.loss_sum = f.mean_loss * static_cast<double>(r.count);
        if (!std::isfinite(f.mean_loss)) {
            if (policy_ == NonFinitePolicy::skip_batch) return r;
            fail("fit: non-finite loss (", f.mean_loss, ") at epoch ", epoch, ", step ", step, " ",
                 detail::explain_non_finite_loss(model_, params_, f.input, batch, ctx),
                 " (check the learning rate and the input data; FitOptions::on_non_finite = skip_batch drops such batches)");
        }
        optimizer_.zero_grad();
        f.loss.backward();
        if (!check_gradients_finite(params_, epoch, step, policy_)) return r;
        update_weights(optimizer_, recipe_);
        r.applied = true;
        r.correct = count_correct(f.logits.value(), batch, predicted_);
        return r;
    }

private:
    const Model<T>& model_;
    Optimizer<T>& optimizer_;
    std::vector<NamedParameter<T>> params_;
    NonFinitePolicy policy_;
    StepRecipe<T> recipe_;
    std::vector<int> predicted_;
};

}  // namespace cnnlite
