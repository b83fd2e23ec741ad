// Learning-rate schedules: the rate as a pure function of the epoch or step index and the
// optimiser's initial rate, so a resumed run recomputes it instead of storing it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/number_text.hpp"
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
                unit, "step_decay(every=" + std::to_string(every) + ", factor=" + shortest_round_trip_text(factor) + ")"};
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
                unit, "cosine(period=" + std::to_string(period) + ", minimum=" + shortest_round_trip_text(minimum) + ")"};
    }

    /// Linear warm-up for `steps` indices, then `then` with its index counted from the end of
    /// the warm-up (as PyTorch's SequentialLR and the usual warm-up + cosine recipes do). During
    /// the warm-up the rate rises linearly from start_factor * r0 at index 0 towards r0, the rate
    /// `then` starts at (factor start_factor + (1 - start_factor) * index / steps, as PyTorch's
    /// LinearLR); start_factor 0 starts from rate 0, as Keras' warmup_target and Hugging Face's
    /// schedules do. The unit is that of `then`.
    static LearningRateSchedule linear_warmup(std::int64_t steps, LearningRateSchedule then,
                                              double start_factor = 0) {
        check(steps > 0, "linear_warmup: steps must be > 0, got ", steps);
        check(std::isfinite(start_factor) && start_factor >= 0 && start_factor <= 1,
              "linear_warmup: start_factor must be in [0, 1], got ", start_factor);
        const ScheduleUnit unit = then.unit();
        const std::string description = "linear_warmup(steps=" + std::to_string(steps) +
                                        ", start_factor=" + shortest_round_trip_text(start_factor) + ")+" + then.description();
        return {[steps, start_factor, then = std::move(then)](std::int64_t index, double initial) {
                    if (index >= steps) return then.rate(index - steps, initial);
                    const double progress = static_cast<double>(index) / static_cast<double>(steps);
                    return then.rate(0, initial) * (start_factor + (1.0 - start_factor) * progress);
                },
                unit, description};
    }

    /// One-cycle policy of PyTorch's OneCycleLR with cosine annealing and two phases (its
    /// default): over the first pct_start of `total_steps` the rate rises from max / div_factor
    /// to max, then falls to max / (div_factor * final_div_factor) at index total_steps - 1; max
    /// is the optimiser's initial rate. Indices past the cycle keep its last rate (PyTorch raises
    /// there). OneCycleLR's momentum cycling is not part of it.
    static LearningRateSchedule one_cycle(std::int64_t total_steps, double pct_start = 0.3, double div_factor = 25,
                                          double final_div_factor = 1e4, ScheduleUnit unit = ScheduleUnit::step) {
        check(total_steps > 0, "one_cycle: total_steps must be > 0, got ", total_steps);
        check(pct_start >= 0 && pct_start <= 1, "one_cycle: pct_start must be in [0, 1], got ", pct_start);
        check(std::isfinite(div_factor) && div_factor > 0, "one_cycle: div_factor must be finite and > 0, got ",
              div_factor);
        check(std::isfinite(final_div_factor) && final_div_factor > 0,
              "one_cycle: final_div_factor must be finite and > 0, got ", final_div_factor);
        return {[total_steps, pct_start, div_factor, final_div_factor](std::int64_t index, double max_rate) {
                    // PyTorch's arithmetic, step for step, so that the rates agree to the last bits.
                    const double pi = 3.141592653589793238462643383279502884;
                    const double start = max_rate / div_factor, end = start / final_div_factor;
                    const double warm_end = pct_start * static_cast<double>(total_steps) - 1;
                    const double last = static_cast<double>(total_steps - 1);
                    const double step = static_cast<double>(std::min(index, total_steps - 1));
                    auto anneal = [pi](double from, double to, double pct) {
                        return to + (from - to) / 2.0 * (std::cos(pi * pct) + 1);
                    };
                    auto pct = [](double at, double first, double end_step) {
                        // A phase of length 0 (pct_start * total_steps == 1) is at its end.
                        return end_step == first ? 1.0 : (at - first) / (end_step - first);
                    };
                    if (step <= warm_end) return anneal(start, max_rate, pct(step, 0.0, warm_end));
                    return anneal(max_rate, end, pct(step, warm_end, last));
                },
                unit, "one_cycle(total_steps=" + std::to_string(total_steps) + ", pct_start=" + shortest_round_trip_text(pct_start) +
                          ", div_factor=" + shortest_round_trip_text(div_factor) +
                          ", final_div_factor=" + shortest_round_trip_text(final_div_factor) + ")"};
    }

    /// Keras' PiecewiseConstantDecay: values[0] while index <= boundaries[0], values[k] while
    /// boundaries[k-1] < index <= boundaries[k], and values.back() after the last boundary.
    /// The values are rates (the optimiser's initial rate is not used); boundaries increase
    /// strictly and there is one more value than boundaries.
    static LearningRateSchedule piecewise_constant(std::vector<std::int64_t> boundaries, std::vector<double> values,
                                                   ScheduleUnit unit = ScheduleUnit::step) {
        check(values.size() == boundaries.size() + 1, "piecewise_constant: needs one more value than boundaries, got ",
              values.size(), " values for ", boundaries.size(), " boundaries");
        for (std::size_t k = 0; k < boundaries.size(); ++k) {
            check(boundaries[k] >= 0, "piecewise_constant: boundary ", k, " is ", boundaries[k], ", must be >= 0");
            check(k == 0 || boundaries[k] > boundaries[k - 1], "piecewise_constant: boundaries must increase, but ",
                  "boundary ", k, " is ", boundaries[k], " after ", boundaries[k == 0 ? 0 : k - 1]);
        }
        for (std::size_t k = 0; k < values.size(); ++k)
            check(std::isfinite(values[k]) && values[k] >= 0, "piecewise_constant: value ", k, " is ", values[k],
                  ", must be finite and >= 0");
        std::string description = "piecewise_constant(boundaries=[";
        for (std::size_t k = 0; k < boundaries.size(); ++k) description += (k ? "," : "") + std::to_string(boundaries[k]);
        description += "], values=[";
        for (std::size_t k = 0; k < values.size(); ++k) description += (k ? "," : "") + shortest_round_trip_text(values[k]);
        description += "])";
        return {[boundaries = std::move(boundaries), values = std::move(values)](std::int64_t index, double) {
                    const auto k = std::lower_bound(boundaries.begin(), boundaries.end(), index) - boundaries.begin();
                    return values[static_cast<std::size_t>(k)];
                },
                unit, description};
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
    /// The schedule's name with its settings, e.g. "cosine(period=4, minimum=0.02)" or
    /// "linear_warmup(steps=4, start_factor=0)+cosine(period=4, minimum=0.02)" ("constant", or
    /// the user's description): a resumed run must have the same (fit_recipe()).
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
