// fit(): the training loop. Each epoch shuffles the training set from (seed, epoch), runs one
// optimiser step per mini-batch (a model ending in softmax trains on its logits with the fused
// loss), evaluates the validation set, records the epoch and calls the callbacks. The recipe
// options of FitOptions (fit_options.hpp: augmentation, label smoothing, clipping, schedules,
// weight average) act inside the same loop for every step strategy. How a batch
// is trained and an epoch validated is the step strategy's business: LocalTraining in this
// process, distributed::DataParallelTraining across MPI ranks; the loop is the same. Every
// random draw is keyed by (seed, epoch/step, sample), so the same seed and thread count give
// bitwise-identical weights at any thread count, and a resumed run continues exactly. A thread
// governor (thread_governor.hpp) picks the team or one thread for each step, by speed alone.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/core/denormals.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/batching.hpp"
#include "cnnlite/data/dataset.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/optim/ema.hpp"
#include "cnnlite/optim/optimizer.hpp"
#include "cnnlite/train/callbacks.hpp"
#include "cnnlite/train/checkpoint.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/train/fit_options.hpp"
#include "cnnlite/train/history.hpp"
#include "cnnlite/train/non_finite.hpp"
#include "cnnlite/train/progress.hpp"
#include "cnnlite/train/step.hpp"
#include "cnnlite/core/thread_governor.hpp"

namespace cnnlite {

/// The checks fit() makes of its arguments before training (data-parallel training makes them
/// too, once the ranks agree on the arguments). Throws cnnlite::Error naming the problem.
template <class T>
void check_fit_arguments(const Model<T>& model, const Dataset& train, const Dataset* validation,
                         const FitOptions& options) {
    check(!train.empty(), "fit: the training set is empty");
    check(options.batch_size >= 1, "fit: batch size must be at least 1, got ", options.batch_size);
    check(options.batch_size <= train.size(), "fit: batch size ", options.batch_size, " exceeds the ", train.size(),
          " training samples");
    check(options.epochs >= options.initial_epoch, "fit: epochs (", options.epochs, ") below initial_epoch (",
          options.initial_epoch, ")");
    check(validation == nullptr || !validation->empty(), "fit: the validation set is empty (pass null for none)");
    check_fit_options(options);
    model.check_batch(train.images().shape(), "fit (training set)");
    if (options.augmentation) {
        const Shape sample = train.sample_shape();
        check(sample.rank() == 3, "fit: FitOptions::augmentation needs images [C, H, W], the training samples are ",
              sample);
        options.augmentation->check_image(sample[1], sample[2]);
    }
    if (validation) model.check_batch(validation->images().shape(), "fit (validation set)");
    const Shape out = model.output_shape();
    check(out.rank() == 1 && out[0] == train.num_classes(), "fit: the model's output shape ", out,
          " does not match the ", train.num_classes(), " classes of the training set");
}

namespace detail {

inline std::string epoch_summary(const EpochRecord& r, std::int64_t epochs) {
    char buffer[256];
    int n = std::snprintf(buffer, sizeof buffer, "Epoch %lld/%lld - %.1fs - loss %.4f - accuracy %.4f",
                          static_cast<long long>(r.epoch), static_cast<long long>(epochs), r.seconds, r.loss, r.accuracy);
    if (std::isfinite(r.val_loss))
        n += std::snprintf(buffer + n, sizeof buffer - static_cast<std::size_t>(n), " - val_loss %.4f - val_accuracy %.4f",
                           r.val_loss, r.val_accuracy);
    n += std::snprintf(buffer + n, sizeof buffer - static_cast<std::size_t>(n), " - %.0f img/s", r.images_per_second);
    // Said when the governor mostly ran one thread: another process holds a core.
    if (r.one_thread_share >= 0.5)
        std::snprintf(buffer + n, sizeof buffer - static_cast<std::size_t>(n), " - 1 thread for %.0f%% of steps (busy cores)",
                      100 * r.one_thread_share);
    return buffer;
}

/// The StepRecipe of a run's options and weight average.
template <class T>
StepRecipe<T> step_recipe(FitRun<T>& run) {
    const FitOptions& o = run.options();
    StepRecipe<T> r;
    r.label_smoothing = o.label_smoothing;
    r.clip_grad_norm = o.clip_grad_norm;
    r.schedule = o.schedule ? &*o.schedule : nullptr;
    r.ema = run.ema();
    return r;
}

/// Puts the weight average of a checkpoint (`resume.ema`) into the run's; throws naming
/// FitOptions::ema_decay when one of them has an average and the other has none.
template <class T>
void restore_ema(FitRun<T>& run, const TrainingState& resume) {
    ExponentialMovingAverage<T>* ema = run.ema();
    if (!ema) {
        check(resume.ema.empty(), "fit: the checkpoint holds a weight average but FitOptions::ema_decay is not set");
        return;
    }
    if (resume.ema.empty()) {
        check(resume.epoch == 0, "fit: FitOptions::ema_decay is set but the checkpoint of epoch ", resume.epoch,
              " holds no weight average (it was trained without one)");
        return;
    }
    typename ExponentialMovingAverage<T>::State state;
    for (const auto& [key, tensor] : resume.ema) state.emplace_back(key, tensor.template cast<T>());
    ema->load_state(state);
}

}  // namespace detail

/// The step strategy of training in this process: a TrainStep per mini-batch, validation with
/// evaluate(). A strategy is what fit()'s loop asks of the outside world:
///  - `StepResult train_batch(const Batcher&, epoch, b)`: train mini-batch `b` of the epoch;
///  - `void end_epoch(EpochRecord&)`: fill in the validation figures (and do anything else
///    that belongs to the epoch's time);
///  - `bool stop(bool asked)`: whether the run stops, given that a callback `asked` to;
///  - `Verbosity verbosity(Verbosity wanted)`: how much this process prints.
template <class T>
class LocalTraining {
public:
    /// Training of `model` by `optimizer` with the options and weight average of `run`,
    /// validating on `validation` (null: none).
    LocalTraining(const Model<T>& model, Optimizer<T>& optimizer, const Dataset* validation, FitRun<T>& run)
        : model_(model), validation_(validation), run_(run), options_(run.options()),
          step_(model, optimizer, run.options().on_non_finite, detail::step_recipe(run)) {}

    /// Trains mini-batch `b` of `epoch` with a TrainStep.
    StepResult train_batch(const Batcher& batcher, std::int64_t epoch, std::int64_t b) {
        batcher.fill(b, batch_);
        // Dropout masks are keyed by the global step and each sample's index in the data set.
        const ForwardContext ctx{true, options_.seed, (epoch - 1) * batcher.num_batches() + b, batch_.indices.data()};
        return step_(batch_, ctx, epoch, b + 1);
    }

    /// Fills in the validation loss and accuracy (evaluate(), of the averaged weights when the
    /// run keeps an average).
    void end_epoch(EpochRecord& record) {
        if (!validation_) return;
        std::optional<AveragedWeights<T>> averaged;
        if (run_.ema()) averaged.emplace(*run_.ema());
        const Evaluation v = evaluate(model_, *validation_, options_.validation_batch_size);
        record.val_loss = v.loss;
        record.val_accuracy = v.accuracy;
    }

    /// Stops when a callback asked to.
    bool stop(bool asked) const { return asked; }
    /// Prints as much as asked.
    Verbosity verbosity(Verbosity wanted) const { return wanted; }

private:
    const Model<T>& model_;
    const Dataset* validation_;
    FitRun<T>& run_;
    const FitOptions& options_;
    TrainStep<T> step_;
    Batch batch_;
};

/// The epoch loop with a step strategy (see LocalTraining): epochs initial_epoch+1 .. epochs
/// of `run`'s options, `history` holding the earlier ones when resuming. The caller has checked
/// the arguments (check_fit_arguments) and built the strategy on the same `run`. Returns the
/// history of all epochs.
template <class T, class Strategy>
History fit(Model<T>& model, Optimizer<T>& optimizer, const Dataset& train, FitRun<T>& run, Strategy& strategy,
            const std::vector<Callback<T>*>& callbacks = {}, History history = {}) {
    const FitOptions& options = run.options();
    const FlushDenormals flush(options.flush_denormals);
    Batcher batcher(train, BatchOptions{options.batch_size, options.shuffle, false, options.seed});
    if (options.augmentation) batcher.set_augmentation(*options.augmentation);
    const std::int64_t steps = batcher.num_batches();
    ProgressBar bar(strategy.verbosity(options.verbosity));
    const ThreadCountGuard team_after_fit;
    ThreadGovernor governor(options.adapt_threads ? num_threads() : 1, options.thread_governor);
    for (auto* cb : callbacks) cb->on_fit_setup(run);
    for (auto* cb : callbacks) cb->on_train_begin(model, history);

    for (std::int64_t epoch = options.initial_epoch + 1; epoch <= options.epochs; ++epoch) {
        if (options.learning_rate_schedule) optimizer.set_learning_rate(options.learning_rate_schedule(epoch));
        if (options.schedule) options.schedule->on_epoch_begin(optimizer, epoch - 1);
        for (auto* cb : callbacks) cb->on_epoch_begin(epoch);
        const auto start = std::chrono::steady_clock::now();
        batcher.start_epoch(static_cast<std::uint64_t>(epoch - 1));
        bar.start_epoch(epoch, options.epochs, steps);
        double loss_sum = 0;
        std::int64_t correct = 0, seen = 0, one_thread_steps = 0;

        for (std::int64_t b = 0; b < steps; ++b) {
            const int threads = governor.next_threads();
            if (governor.team() > 1) set_num_threads(threads);
            const auto step_start = std::chrono::steady_clock::now();
            const StepResult r = strategy.train_batch(batcher, epoch, b);
            governor.record(std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count());
            one_thread_steps += governor.team() > 1 && threads == 1 ? 1 : 0;
            if (!r.applied) continue;  // a skipped batch (NonFinitePolicy::skip_batch) counts nowhere
            correct += r.correct;
            loss_sum += r.loss_sum;
            seen += r.count;
            bar.update(b + 1, loss_sum / static_cast<double>(seen), static_cast<double>(correct) / static_cast<double>(seen),
                       seen);
        }
        const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        EpochRecord record;
        record.epoch = epoch;
        record.loss = seen ? loss_sum / static_cast<double>(seen) : std::numeric_limits<double>::quiet_NaN();
        record.accuracy = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
        record.images_per_second = train_seconds > 0 ? static_cast<double>(seen) / train_seconds : 0.0;
        record.one_thread_share = steps > 0 ? static_cast<double>(one_thread_steps) / static_cast<double>(steps) : 0.0;
        record.learning_rate = optimizer.learning_rate();
        strategy.end_epoch(record);
        record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        history.epochs.push_back(record);
        bar.end_epoch(detail::epoch_summary(record, options.epochs));

        TrainControl control;
        for (auto* cb : callbacks) cb->on_epoch_end(model, history, control);
        if (strategy.stop(control.stop)) break;
    }
    if (run.ema() && options.ema_overwrite_at_end) run.ema()->copy_to(run.ema()->variables());
    for (auto* cb : callbacks) cb->on_train_end(model, history);
    return history;
}

/// Trains `model` with `optimizer` on `train`, validating on `validation` (null: none) after
/// every epoch, in this process. Epochs initial_epoch+1 .. epochs run; `history` holds earlier
/// epochs when resuming. Returns the history of all epochs.
/// A run with a weight average (FitOptions::ema_decay) resumes only through resume_fit(), which
/// takes the checkpoint's TrainingState, holding the average.
template <class T>
History fit(Model<T>& model, Optimizer<T>& optimizer, const Dataset& train, const Dataset* validation,
            const FitOptions& options, const std::vector<Callback<T>*>& callbacks = {}, History history = {}) {
    check_fit_arguments(model, train, validation, options);
    check(!options.ema_decay || options.initial_epoch == 0, "fit: resuming at epoch ", options.initial_epoch,
          " with FitOptions::ema_decay needs the weight average: resume with resume_fit() and the TrainingState of ",
          "load_checkpoint");
    FitRun<T> run(model, options);
    LocalTraining<T> local(model, optimizer, validation, run);
    return fit(model, optimizer, train, run, local, callbacks, std::move(history));
}

/// fit() resuming a run from `resume`, what load_checkpoint() returned (after it restored the
/// model, optimiser and callbacks): checks that `options` repeat the checkpoint's recipe
/// (check_resumable) and start at its epoch, restores the weight average, and trains epochs
/// resume.epoch+1 .. options.epochs. Gives the weights of the uninterrupted run bit for bit.
template <class T>
History resume_fit(Model<T>& model, Optimizer<T>& optimizer, const Dataset& train, const Dataset* validation,
                   const FitOptions& options, const TrainingState& resume,
                   const std::vector<Callback<T>*>& callbacks = {}) {
    check_fit_arguments(model, train, validation, options);
    check_resumable(resume, options);
    FitRun<T> run(model, options);
    detail::restore_ema(run, resume);
    LocalTraining<T> local(model, optimizer, validation, run);
    return fit(model, optimizer, train, run, local, callbacks, resume.history);
}

}  // namespace cnnlite
