// Learning-rate schedules: the rate as a pure function of the epoch or step index and the
// optimiser's initial rate, so a resumed run recomputes it instead of storing it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "cnnlite/core/error.hpp"
#include "cnnlite/optim/optimizer.hpp"

namespace cnnlite {

/// What a schedule's index counts: epochs (as PyTorch's schedulers usually do) or optimiser
/// steps (as Keras' schedules do).
enum class ScheduleUnit { epoch, step };

/// A learning-rate schedule: rate(index, initial_rate) for a 0-based epoch or step index.
/// The training loop calls on_epoch_begin() at each epoch and on_step_begin() before each
/// step; the one matching unit() sets the optimiser's rate, the other does nothing.
class LearningRateSchedule {
public:
    /// rate = function(index, initial_rate).
    using Function = std::function<double(std::int64_t index, double initial_rate)>;

    /// A user schedule; `description` names it in error messages.
    LearningRateSchedule(Function function, ScheduleUnit unit, std::string description = "custom schedule")
        : function_(std::move(function)), unit_(unit), description_(std::move(description)) {
        check(static_cast<bool>(function_), "LearningRateSchedule: empty function for ", description_);
    }

    /// The initial rate throughout.
    static LearningRateSchedule constant(ScheduleUnit unit = ScheduleUnit::epoch) {
        return {[](std::int64_t, double initial) { return initial; }, unit, "constant"};
    }

    /// initial * factor^floor(index / every), as PyTorch's StepLR(step_size=every, gamma=factor).
    static LearningRateSchedule step_decay(std::int64_t every, double factor,
                                           ScheduleUnit unit = ScheduleUnit::epoch) {
        check(every > 0, "step_decay: 'every' must be > 0, got ", every);
        check(std::isfinite(factor) && factor >= 0, "step_decay: factor must be finite and >= 0, got ", factor);
        return {[every, factor](std::int64_t index, double initial) {
                    return initial * std::pow(factor, static_cast<double>(index / every));
                },
                unit, "step_decay"};
    }

    /// Half a cosine from the initial rate down to `minimum` over `period` indices, then
    /// `minimum` (as Keras' CosineDecay with alpha = minimum / initial; PyTorch's
    /// CosineAnnealingLR in closed form up to T_max = period).
    static LearningRateSchedule cosine(std::int64_t period, double minimum = 0,
                                       ScheduleUnit unit = ScheduleUnit::epoch) {
        check(period > 0, "cosine: period must be > 0, got ", period);
        check(std::isfinite(minimum) && minimum >= 0, "cosine: minimum must be finite and >= 0, got ", minimum);
        return {[period, minimum](std::int64_t index, double initial) {
                    const double pi = 3.141592653589793238462643383279502884;
                    const double progress = static_cast<double>(std::min(index, period)) / static_cast<double>(period);
                    return minimum + (initial - minimum) * 0.5 * (1.0 + std::cos(pi * progress));
                },
                unit, "cosine"};
    }

    /// The rate at `index` (>= 0) for an optimiser that started at `initial_rate`; checks that
    /// the schedule gives a finite, non-negative rate.
    double rate(std::int64_t index, double initial_rate) const {
        check(index >= 0, description_, ": index must be >= 0, got ", index);
        const double r = function_(index, initial_rate);
        check(std::isfinite(r) && r >= 0, description_, ": learning rate ", r, " at ",
              unit_ == ScheduleUnit::epoch ? "epoch " : "step ", index, " is not finite and >= 0");
        return r;
    }

    /// Whether the index counts epochs or steps.
    ScheduleUnit unit() const { return unit_; }
    /// The schedule's name ("constant", "step_decay", "cosine" or the user's description).
    const std::string& description() const { return description_; }

    /// At the start of epoch `epoch` (0-based): sets the rate if this is a per-epoch schedule.
    template <class T>
    void on_epoch_begin(Optimizer<T>& optimizer, std::int64_t epoch) const {
        if (unit_ == ScheduleUnit::epoch) optimizer.set_learning_rate(rate(epoch, optimizer.initial_learning_rate()));
    }

    /// Before each step: sets the rate for step optimizer.steps() if this is a per-step schedule.
    template <class T>
    void on_step_begin(Optimizer<T>& optimizer) const {
        if (unit_ == ScheduleUnit::step)
            optimizer.set_learning_rate(rate(optimizer.steps(), optimizer.initial_learning_rate()));
    }

private:
    Function function_;
    ScheduleUnit unit_;
    std::string description_;
};

}  // namespace cnnlite
