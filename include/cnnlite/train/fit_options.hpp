// The settings of fit() (FitOptions), with the training recipes of modern CNNs: on-the-fly
// augmentation, label smoothing, gradient clipping, per-step learning-rate schedules and an
// exponential moving average of the weights. Also what a run builds from them (FitRun: the
// weight average) and the text of the settings a resumed run must repeat (fit_recipe()), which
// checkpoints store and compare.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/number_text.hpp"
#include "cnnlite/data/augmentation.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/optim/ema.hpp"
#include "cnnlite/optim/schedule.hpp"
#include "cnnlite/train/non_finite.hpp"
#include "cnnlite/train/progress.hpp"
#include "cnnlite/core/thread_governor.hpp"

namespace cnnlite {

/// Settings of fit().
///
/// The recipe options (all off by default) change training only:
///  - `augmentation` transforms every training batch (keyed by seed, epoch and sample, so runs
///    repeat); validation and evaluation always see the data as it is.
///  - `label_smoothing` smooths the targets of the training loss (Keras' and PyTorch's
///    definition); the reported training loss is the smoothed one that is optimised, while the
///    validation loss is the plain cross-entropy, as timm reports it, so that val_loss (which
///    KeepBest and EarlyStopping watch by default) compares across smoothing settings and
///    equals evaluate()'s loss. (Keras would report a smoothed val_loss.)
///  - `clip_grad_norm` rescales the gradients to at most this global L2 norm (PyTorch's
///    clip_grad_norm_) after the non-finite check and before the optimiser's step.
///  - `schedule` sets the learning rate per epoch or before every optimiser step, by its unit.
///  - `ema_decay` keeps an exponential moving average of the trainable weights, updated after
///    every optimiser step. The validation figures are those of the averaged weights; callbacks
///    see the live weights in the model, except KeepBest, which keeps the averaged weights (the
///    ones its monitored value measured); checkpoints save both. With `ema_overwrite_at_end`
///    the model holds the averaged weights when fit() returns (timm's and Keras' use of the
///    average as the result); otherwise it keeps the live ones.
struct FitOptions {
    /// Samples per optimiser step.
    std::int64_t batch_size = 64;
    std::int64_t epochs = 1;          ///< train until this epoch (counted from 1)
    std::int64_t initial_epoch = 0;   ///< epochs already done (resuming)
    std::uint64_t seed = 0;           ///< keys shuffling, dropout and augmentation
    /// Reshuffle the training set every epoch.
    bool shuffle = true;
    /// Progress display.
    Verbosity verbosity = Verbosity::auto_;
    /// What a NaN or infinite loss or gradient does.
    NonFinitePolicy on_non_finite = NonFinitePolicy::error;
    /// Batch size of the validation pass.
    std::int64_t validation_batch_size = 1000;
    /// Learning rate per epoch (counted from 1), set before the epoch starts; empty: unchanged.
    /// A plain function: prefer `schedule`, which also works per step and is checked on resume.
    std::function<double(std::int64_t epoch)> learning_rate_schedule;
    /// Flush denormal floats to zero while training, as TensorFlow does (core/denormals.hpp says
    /// why); false keeps IEEE gradual underflow at the cost of microcode assists.
    bool flush_denormals = true;
    /// Run each step with the team of num_threads() threads or with one thread, whichever the
    /// governor's timings find faster (core/thread_governor.hpp): where another process holds
    /// a core, one thread trains faster than a team that waits for its descheduled member. A
    /// quiet machine pays for three steps on one thread. Results are the same bits either way;
    /// false keeps the team throughout.
    bool adapt_threads = true;
    /// The governor's probing settings (with adapt_threads).
    ThreadGovernorOptions thread_governor;

    /// Augmentation of the training batches (data/augmentation.hpp); none when empty.
    std::optional<Augmentation> augmentation;
    /// Label smoothing of the training loss, in [0, 1): targets onehot * (1 - s) + s / classes.
    double label_smoothing = 0;
    /// Largest global L2 norm of the gradients (> 0); larger gradients are scaled down. Empty:
    /// no clipping.
    std::optional<double> clip_grad_norm;
    /// Learning-rate schedule (optim/schedule.hpp): with ScheduleUnit::epoch it sets the rate
    /// for epoch e (0-based index e - 1) before the epoch starts; with ScheduleUnit::step before
    /// every optimiser step, for index optimizer.steps() (so a resumed run continues it).
    /// Not together with learning_rate_schedule.
    std::optional<LearningRateSchedule> schedule;
    /// Decay of an exponential moving average of the trainable weights, in [0, 1); empty: none.
    std::optional<double> ema_decay;
    /// TensorFlow's warm-up of the average's decay (EmaOptions::warmup).
    bool ema_warmup = false;
    /// With ema_decay: leave the averaged weights in the model when fit() returns (the live
    /// weights otherwise). Callbacks' on_train_end already sees them.
    bool ema_overwrite_at_end = true;
};

/// Throws cnnlite::Error, naming the option, unless the recipe options of `options` are in
/// range (fit() checks this with its other arguments).
inline void check_fit_options(const FitOptions& options) {
    check(options.label_smoothing >= 0 && options.label_smoothing < 1,
          "fit: FitOptions::label_smoothing must be in [0, 1), got ", options.label_smoothing);
    if (options.clip_grad_norm)
        check(*options.clip_grad_norm > 0, "fit: FitOptions::clip_grad_norm must be > 0, got ",
              *options.clip_grad_norm);
    if (options.ema_decay)
        check(*options.ema_decay >= 0 && *options.ema_decay < 1, "fit: FitOptions::ema_decay must be in [0, 1), got ",
              *options.ema_decay);
    check(!(options.schedule && options.learning_rate_schedule),
          "fit: FitOptions::schedule and FitOptions::learning_rate_schedule are both set; use one");
}

/// A text that names every step of `augmentation` and all of its options, e.g.
/// "translate(padding=2, fill=0); flip_horizontal(probability=0.5)"; "none" without steps.
inline std::string describe(const Augmentation& augmentation) {
    if (augmentation.empty()) return "none";
    std::string out;
    for (const AugmentationStep& step : augmentation.steps()) {
        if (!out.empty()) out += "; ";
        std::visit(
            [&out](const auto& s) {
                using Step = std::decay_t<decltype(s)>;
                if constexpr (std::is_same<Step, RandomTranslation>::value) {
                    out += "translate(padding=" + std::to_string(s.options().padding) +
                           ", fill=" + round_trip_text(s.options().fill) + ")";
                } else if constexpr (std::is_same<Step, RandomHorizontalFlip>::value) {
                    out += "flip_horizontal(probability=" + round_trip_text(s.options().probability) + ")";
                } else {
                    const RandomErasingOptions& o = s.options();
                    out += "random_erasing(probability=" + round_trip_text(o.probability) +
                           ", min_area=" + round_trip_text(o.min_area) + ", max_area=" + round_trip_text(o.max_area) +
                           ", min_aspect=" + round_trip_text(o.min_aspect) +
                           ", fill=" + (o.fill == ErasingFill::random ? "random" : "constant") +
                           ", value=" + round_trip_text(o.value) + ", random_min=" + round_trip_text(o.random_min) +
                           ", random_max=" + round_trip_text(o.random_max) +
                           ", max_attempts=" + std::to_string(o.max_attempts) + ")";
                }
            },
            step);
    }
    return out;
}

/// The settings that shape a run's weights beyond the model and optimiser, as FitOptions
/// member name -> exact text: batch_size, seed, shuffle, augmentation, label_smoothing,
/// clip_grad_norm, the schedules, ema_decay and ema_warmup. A checkpoint stores them; a run
/// resumed from it must have the same (check_resumable) to continue bit for bit. A schedule is
/// known by its description and unit, a learning_rate_schedule function only by being set.
inline std::map<std::string, std::string> fit_recipe(const FitOptions& options) {
    std::map<std::string, std::string> r;
    r["batch_size"] = std::to_string(options.batch_size);
    r["seed"] = std::to_string(options.seed);
    r["shuffle"] = options.shuffle ? "true" : "false";
    r["augmentation"] = options.augmentation ? describe(*options.augmentation) : "none";
    r["label_smoothing"] = round_trip_text(options.label_smoothing);
    r["clip_grad_norm"] = options.clip_grad_norm ? round_trip_text(*options.clip_grad_norm) : "none";
    r["schedule"] = options.schedule ? options.schedule->description() +
                                           (options.schedule->unit() == ScheduleUnit::epoch ? " per epoch" : " per step")
                                     : "none";
    r["learning_rate_schedule"] = options.learning_rate_schedule ? "a function" : "none";
    r["ema_decay"] = options.ema_decay ? round_trip_text(*options.ema_decay) : "none";
    r["ema_warmup"] = options.ema_decay && options.ema_warmup ? "true" : "false";
    return r;
}

/// What one fit() call builds from its options and shares with its step, its validation and
/// the callbacks (Callback::on_fit_setup): the options and the weight average.
template <class T>
class FitRun {
public:
    /// The run of `options` on `model`: with ema_decay, an average of model.trainable_variables()
    /// starting at their current values.
    FitRun(const Model<T>& model, const FitOptions& options) : options_(options) {
        if (options.ema_decay)
            ema_.emplace(model.trainable_variables(), EmaOptions{*options.ema_decay, options.ema_warmup});
    }
    FitRun(const FitRun&) = delete;
    FitRun& operator=(const FitRun&) = delete;

    /// The options of the run.
    const FitOptions& options() const { return options_; }
    /// The exponential moving average of the weights; null without FitOptions::ema_decay.
    ExponentialMovingAverage<T>* ema() { return ema_ ? &*ema_ : nullptr; }
    /// The same, read-only.
    const ExponentialMovingAverage<T>* ema() const { return ema_ ? &*ema_ : nullptr; }

private:
    const FitOptions& options_;
    std::optional<ExponentialMovingAverage<T>> ema_;
};

}  // namespace cnnlite
