// Exponential moving average of weights (Polyak averaging as in TensorFlow's
// ExponentialMovingAverage and timm's ModelEma): a shadow copy of the parameters, updated after
// each optimiser step, that is evaluated and saved in place of the live weights.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/kernels/optimizer.hpp"
#include "cnnlite/optim/optimizer.hpp"

namespace cnnlite {

/// Settings of ExponentialMovingAverage.
struct EmaOptions {
    /// Weight of the old average: average = decay * average + (1 - decay) * weight.
    double decay = 0.999;
    /// TensorFlow's num_updates warm-up: update n (counted from 0, so the first update uses
    /// n = 0 and decay 0.1) uses min(decay, (1 + n) / (10 + n)), so that the average forgets
    /// the initial weights quickly. Off: every update uses `decay` (timm's default).
    bool warmup = false;
};

/// The exponential moving average of a list of variables (a model's trainable variables, and
/// its buffers if they should be averaged too). The averages start as copies of the values at
/// construction; call update() after every optimiser step. Evaluate or save the averaged
/// weights by swapping them in (AveragedWeights, swap()) or copying them out (copy_to()).
///
/// state() gives named tensors for checkpoints, like Optimizer::state(): `ema.updates` ([1],
/// updates so far) and `ema.average.<i>` (the average of variable i).
template <class T = float>
class ExponentialMovingAverage {
    static_assert(std::is_floating_point<T>::value, "ExponentialMovingAverage<T> needs float or double");

public:
    /// Named tensors, the form a checkpoint writer stores (as Optimizer<T>::State).
    using State = typename Optimizer<T>::State;

    /// Averages of `variables` (at least one, each defined and listed once); decay in [0, 1].
    explicit ExponentialMovingAverage(std::vector<Variable<T>> variables, EmaOptions options = {})
        : variables_(std::move(variables)), options_(options) {
        check(!variables_.empty(), "ema: got an empty variable list");
        check(options.decay >= 0 && options.decay <= 1, "ema: decay must be in [0, 1], got ", options.decay);
        std::set<const void*> seen;
        for (std::size_t i = 0; i < variables_.size(); ++i) {
            check(variables_[i].defined(), "ema: variable ", i, " is an undefined variable");
            check(seen.insert(variables_[i].node()).second, "ema: variable ", i, " is listed twice");
            averages_.push_back(variables_[i].value().clone());
        }
    }

    ExponentialMovingAverage(const ExponentialMovingAverage&) = delete;
    ExponentialMovingAverage& operator=(const ExponentialMovingAverage&) = delete;

    /// Moves every average towards its variable's current value by 1 - next_decay(), then
    /// counts the update. Not allowed while the averages are swapped in.
    void update() {
        check(!swapped_, "ema.update: the averages are swapped into the variables; swap them out first");
        for (std::size_t i = 0; i < variables_.size(); ++i)
            check(variables_[i].value().shape() == averages_[i].shape(), "ema.update: variable ", i, " has shape ",
                  variables_[i].value().shape().str(), " but its average has shape ", averages_[i].shape().str());
        const T weight = static_cast<T>(1.0 - next_decay());
        for (std::size_t i = 0; i < variables_.size(); ++i)
            kernels::ema_update(averages_[i].data(), variables_[i].value().data(), averages_[i].numel(), weight);
        ++updates_;
    }

    /// The decay the next update() uses: decay, or min(decay, (1 + n) / (10 + n)) with n =
    /// updates() under warm-up.
    double next_decay() const {
        if (!options_.warmup) return options_.decay;
        const double n = static_cast<double>(updates_);
        return std::min(options_.decay, (1.0 + n) / (10.0 + n));
    }

    /// Calls of update() so far (restored by load_state()).
    std::int64_t updates() const { return updates_; }
    /// The settings given at construction.
    const EmaOptions& options() const { return options_; }
    /// The averaged variables, in the order that identifies them in the state.
    const std::vector<Variable<T>>& variables() const { return variables_; }
    /// Whether the averages are currently in the variables (swap()).
    bool swapped() const { return swapped_; }

    /// The average of variable `index` (a copy), wherever it currently lives.
    Tensor<T> average(std::size_t index) const {
        check(index < variables_.size(), "ema.average: index ", index, " out of range for ", variables_.size(),
              " variables");
        return (swapped_ ? variables_[index].value() : averages_[index]).clone();
    }

    /// Writes the averages into `targets` (e.g. the variables of a copy of the model that is
    /// then saved): the same number of variables, each shaped like its average.
    void copy_to(const std::vector<Variable<T>>& targets) const {
        check(targets.size() == variables_.size(), "ema.copy_to: got ", targets.size(), " variables, expected ",
              variables_.size());
        for (std::size_t i = 0; i < targets.size(); ++i)
            check(targets[i].defined() && targets[i].value().shape() == averages_[i].shape(), "ema.copy_to: variable ",
                  i, " has shape ", targets[i].defined() ? targets[i].value().shape().str() : std::string("(undefined)"),
                  " but its average has shape ", averages_[i].shape().str());
        for (std::size_t i = 0; i < targets.size(); ++i) {
            Variable<T> target = targets[i];  // a handle: writes go to the target's own value
            if (target.node() == variables_[i].node()) {
                if (!swapped_) target.value().copy_from(averages_[i]);
            } else {
                target.value().copy_from(swapped_ ? variables_[i].value() : averages_[i]);
            }
        }
    }

    /// Exchanges the variables' values with the averages: the first call puts the averages in
    /// the model (to evaluate or save it), the second puts the live weights back.
    void swap() {
        for (std::size_t i = 0; i < variables_.size(); ++i)
            check(variables_[i].value().shape() == averages_[i].shape(), "ema.swap: variable ", i, " has shape ",
                  variables_[i].value().shape().str(), " but its average has shape ", averages_[i].shape().str());
        for (std::size_t i = 0; i < variables_.size(); ++i) {
            Tensor<T>& value = variables_[i].value();
            // Element-wise, so that whoever holds the variable's storage sees the swap.
            std::swap_ranges(value.data(), value.data() + value.numel(), averages_[i].data());
        }
        swapped_ = !swapped_;
    }

    /// Deep copies of the update count and the averages, as named tensors (correct also while
    /// swapped); load_state() of these into an average built the same way continues bit for bit.
    State state() const {
        State out;
        out.emplace_back(updates_key(), Tensor<T>::full(Shape{1}, count_to_value(updates_)));
        for (std::size_t i = 0; i < variables_.size(); ++i) out.emplace_back(average_key(i), average(i));
        return out;
    }

    /// Restores state() output: every entry present once with the right shape, nothing else.
    /// Everything is validated before anything changes. Not allowed while swapped.
    void load_state(const State& state) {
        const std::string where = "ema.load_state: ";
        check(!swapped_, where, "the averages are swapped into the variables; swap them out first");
        std::map<std::string, const Tensor<T>*> given;
        for (const auto& [key, tensor] : state) {
            check(given.emplace(key, &tensor).second, where, "entry '", key, "' appears twice");
            check(tensor.defined(), where, "entry '", key, "' is an undefined tensor");
        }
        auto take = [&](const std::string& key, const Shape& shape) -> const Tensor<T>& {
            auto it = given.find(key);
            check(it != given.end(), where, "missing entry '", key, "'; expected '", updates_key(),
                  "' and 'ema.average.<i>' for i < ", variables_.size());
            check(it->second->shape() == shape, where, "entry '", key, "' has shape ", it->second->shape().str(),
                  " but needs shape ", shape.str());
            return *it->second;
        };
        const Tensor<T>& count = take(updates_key(), Shape{1});
        const T c = count[0];
        check(std::isfinite(c) && c >= 0 && c <= static_cast<T>(max_exact_count) && c == std::floor(c), where,
              updates_key(), " = ", c, " is not a valid count (a whole number from 0 to ", max_exact_count, ")");
        std::vector<const Tensor<T>*> sources;
        for (std::size_t i = 0; i < variables_.size(); ++i)
            sources.push_back(&take(average_key(i), variables_[i].value().shape()));
        for (const auto& [key, tensor] : given) {
            (void)tensor;
            bool known = key == updates_key();
            for (std::size_t i = 0; i < variables_.size() && !known; ++i) known = key == average_key(i);
            check(known, where, "unexpected entry '", key, "' (expected '", updates_key(),
                  "' and 'ema.average.<i>' for i < ", variables_.size(), ")");
        }

        updates_ = static_cast<std::int64_t>(c);
        for (std::size_t i = 0; i < variables_.size(); ++i) averages_[i] = sources[i]->clone();
    }

private:
    // The count is stored in T, which holds integers exactly up to 2^digits (2^24 for float).
    static constexpr std::int64_t max_exact_count = std::int64_t(1) << std::numeric_limits<T>::digits;

    static T count_to_value(std::int64_t count) {
        check(count <= max_exact_count, "ema.state: update count ", count, " exceeds ", max_exact_count,
              ", the largest integer the state tensor holds exactly");
        return static_cast<T>(count);
    }
    static std::string updates_key() { return "ema.updates"; }
    static std::string average_key(std::size_t i) { return "ema.average." + std::to_string(i); }

    std::vector<Variable<T>> variables_;
    std::vector<Tensor<T>> averages_;
    EmaOptions options_;
    std::int64_t updates_ = 0;
    bool swapped_ = false;
};

/// Puts an average's weights into its variables for the lifetime of this object (evaluation,
/// saving), and the live weights back when it ends, also when an exception leaves the scope.
template <class T = float>
class AveragedWeights {
public:
    /// Swaps the averages of `ema` in (it must not be swapped in already).
    explicit AveragedWeights(ExponentialMovingAverage<T>& ema) : ema_(ema) {
        check(!ema.swapped(), "AveragedWeights: the averages are already swapped in");
        ema_.swap();
    }
    /// Swaps the live weights back. (It throws, and so terminates, only if a variable's shape
    /// was changed inside the scope.)
    ~AveragedWeights() { ema_.swap(); }
    AveragedWeights(const AveragedWeights&) = delete;
    AveragedWeights& operator=(const AveragedWeights&) = delete;

private:
    ExponentialMovingAverage<T>& ema_;
};

}  // namespace cnnlite
