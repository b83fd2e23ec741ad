// Optimizer<T>: the base every optimiser derives from. It owns the parameter list, the learning
// rate, the step counters and the per-parameter state buffers, and turns them into named
// tensors for checkpoints; a subclass only writes the update of one parameter.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/tensor.hpp"

namespace cnnlite {

/// Base of all optimisers. Parameters are identified by their position in the list given at
/// construction (models list them in a stable order). step() updates every parameter that has a
/// gradient and skips the others, as PyTorch does; each parameter counts its own updates.
///
/// Weight decay, where a subclass has it, applies to every parameter except those given to
/// exclude_from_decay() at construction (decays() tells which): biases and normalisation
/// parameters in the usual recipes, chosen by name with no_decay_indices() (weight_decay.hpp).
///
/// state() names every tensor `<name>.<entry>`: `<name>.steps` ([1], calls of step()),
/// `<name>.param_steps` ([P], updates of each parameter) and `<name>.<buffer>.<i>` (a buffer of
/// parameter i, e.g. `adam.m.0`). Hyperparameters and the learning rate are configuration, not
/// state: a resumed run rebuilds the optimiser with the same options (and schedule).
template <class T = float>
class Optimizer {
    static_assert(std::is_floating_point<T>::value, "Optimizer<T> needs float or double");

public:
    /// Named tensors, the form a checkpoint writer stores (e.g. in a safetensors file).
    using State = std::vector<std::pair<std::string, Tensor<T>>>;

    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;
    virtual ~Optimizer() = default;

    /// Applies one update to every parameter that has a gradient, then counts the step.
    /// Every gradient's shape is checked before any parameter changes.
    void step() {
        for (std::size_t i = 0; i < params_.size(); ++i) {
            const Variable<T>& p = params_[i];
            if (!p.has_grad()) continue;
            check(p.grad().shape() == p.value().shape(), name_, ".step: gradient of parameter ", i, " has shape ",
                  p.grad().shape().str(), " but the parameter has shape ", p.value().shape().str());
        }
        for (std::size_t i = 0; i < params_.size(); ++i) {
            Variable<T>& p = params_[i];
            if (!p.has_grad()) continue;
            update(i, p.value(), p.grad(), ++param_steps_[i]);
        }
        ++steps_;
    }

    /// Drops every parameter's gradient (the buffers go back to the pool).
    void zero_grad() {
        for (Variable<T>& p : params_) p.zero_grad();
    }

    /// The learning rate the next step() uses.
    double learning_rate() const { return learning_rate_; }
    /// Sets the learning rate (finite, >= 0) for the following steps.
    void set_learning_rate(double lr) {
        check(std::isfinite(lr) && lr >= 0, name_, ".set_learning_rate: learning rate must be finite and >= 0, got ",
              lr);
        learning_rate_ = lr;
    }
    /// The learning rate given at construction; schedules scale from it.
    double initial_learning_rate() const { return initial_learning_rate_; }

    /// Calls of step() so far (restored by load_state()).
    std::int64_t steps() const { return steps_; }
    /// Updates parameter `index` has received so far (it has none on steps without a gradient).
    std::int64_t parameter_steps(std::size_t index) const {
        check(index < params_.size(), name_, ".parameter_steps: index ", index, " out of range for ",
              params_.size(), " parameters");
        return param_steps_[index];
    }

    /// Whether weight decay applies to parameter `index` (false for the no_decay indices).
    bool decays(std::size_t index) const {
        check(index < params_.size(), name_, ".decays: index ", index, " out of range for ", params_.size(),
              " parameters");
        return decays_[index];
    }

    /// The parameters, in the order that identifies them in the state.
    const std::vector<Variable<T>>& parameters() const { return params_; }
    /// Prefix of the state entries: "adam", "adamw", "sgd".
    const std::string& name() const { return name_; }

    /// Deep copies of the step counters and every buffer, as named tensors; load_state() of
    /// these into an optimiser built the same way continues bit for bit.
    State state() const {
        State out;
        out.emplace_back(steps_key(), Tensor<T>::full(Shape{1}, count_to_value(steps_)));
        Tensor<T> per_param = Tensor<T>::uninitialized(Shape{static_cast<std::int64_t>(params_.size())});
        for (std::size_t i = 0; i < params_.size(); ++i)
            per_param[static_cast<std::int64_t>(i)] = count_to_value(param_steps_[i]);
        out.emplace_back(param_steps_key(), std::move(per_param));
        for (std::size_t s = 0; s < buffer_names_.size(); ++s)
            for (std::size_t i = 0; i < params_.size(); ++i)
                out.emplace_back(buffer_key(s, i), buffers_[s][i].clone());
        return out;
    }

    /// Restores state() output: every entry must be present once with the right shape, and
    /// nothing else. Everything is validated before anything changes.
    void load_state(const State& state) {
        const std::string where = name_ + ".load_state: ";
        std::map<std::string, const Tensor<T>*> given;
        for (const auto& [key, tensor] : state) {
            check(given.emplace(key, &tensor).second, where, "entry '", key, "' appears twice");
            check(tensor.defined(), where, "entry '", key, "' is an undefined tensor");
        }
        std::set<std::string> expected;
        auto take = [&](const std::string& key, const Shape& shape, const char* what) -> const Tensor<T>& {
            expected.insert(key);
            auto it = given.find(key);
            check(it != given.end(), where, "missing entry '", key, "' (", what, "); the state has ", state.size(),
                  " entries, expected ", expected_entries());
            check(it->second->shape() == shape, where, "entry '", key, "' has shape ", it->second->shape().str(),
                  " but ", what, " needs shape ", shape.str());
            return *it->second;
        };

        const Tensor<T>& steps = take(steps_key(), Shape{1}, "the step count");
        const auto num_params = static_cast<std::int64_t>(params_.size());
        const Tensor<T>& per_param = take(param_steps_key(), Shape{num_params}, "one update count per parameter");
        const std::int64_t new_steps = value_to_count(steps[0], where, steps_key());
        std::vector<std::int64_t> new_param_steps(params_.size());
        for (std::int64_t i = 0; i < num_params; ++i) {
            const std::string key = param_steps_key() + "[" + std::to_string(i) + "]";
            new_param_steps[static_cast<std::size_t>(i)] = value_to_count(per_param[i], where, key);
            check(new_param_steps[static_cast<std::size_t>(i)] <= new_steps, where, key, " = ",
                  new_param_steps[static_cast<std::size_t>(i)], " exceeds the step count ", new_steps);
        }
        std::vector<std::vector<const Tensor<T>*>> sources(buffer_names_.size());
        for (std::size_t s = 0; s < buffer_names_.size(); ++s)
            for (std::size_t i = 0; i < params_.size(); ++i) {
                const std::string what = "the " + buffer_names_[s] + " buffer of parameter " + std::to_string(i);
                sources[s].push_back(&take(buffer_key(s, i), params_[i].value().shape(), what.c_str()));
            }
        for (const auto& [key, tensor] : given) {
            (void)tensor;
            check(expected.count(key) != 0, where, "unexpected entry '", key, "' (expected ", expected_entries(),
                  "): is this the state of another optimiser or model?");
        }

        steps_ = new_steps;
        param_steps_ = std::move(new_param_steps);
        for (std::size_t s = 0; s < buffer_names_.size(); ++s)
            for (std::size_t i = 0; i < params_.size(); ++i) buffers_[s][i].copy_from(*sources[s][i]);
    }

protected:
    /// Takes the parameters (at least one, each defined and listed once) and the learning rate.
    Optimizer(std::string name, std::vector<Variable<T>> params, double learning_rate)
        : name_(std::move(name)), params_(std::move(params)), param_steps_(params_.size(), 0),
          decays_(params_.size(), true) {
        check(!params_.empty(), name_, ": got an empty parameter list");
        std::set<const void*> seen;
        for (std::size_t i = 0; i < params_.size(); ++i) {
            check(params_[i].defined(), name_, ": parameter ", i, " is an undefined variable");
            check(seen.insert(params_[i].node()).second, name_, ": parameter ", i,
                  " is listed twice (it would be updated twice per step)");
        }
        set_learning_rate(learning_rate);
        initial_learning_rate_ = learning_rate;
    }

    /// Turns weight decay off for the parameters at `indices` (each in range, listed once).
    void exclude_from_decay(const std::vector<std::size_t>& indices) {
        std::vector<bool> mask(params_.size(), true);
        for (const std::size_t i : indices) {
            check(i < params_.size(), name_, ": no_decay index ", i, " is out of range for ", params_.size(),
                  " parameters");
            check(mask[i], name_, ": no_decay lists parameter ", i, " twice");
            mask[i] = false;
        }
        decays_ = std::move(mask);
    }

    /// Registers a per-parameter buffer (zeros shaped like each parameter), saved in the state
    /// as NAME.KIND.INDEX (e.g. `adam.m.0`); returns the slot for buffer().
    std::size_t add_buffer(const std::string& kind) {
        buffer_names_.push_back(kind);
        std::vector<Tensor<T>> per_param;
        per_param.reserve(params_.size());
        for (const Variable<T>& p : params_) per_param.push_back(Tensor<T>::zeros(p.value().shape()));
        buffers_.push_back(std::move(per_param));
        return buffer_names_.size() - 1;
    }
    /// Buffer `slot` of parameter `index`.
    Tensor<T>& buffer(std::size_t slot, std::size_t index) { return buffers_[slot][index]; }

    /// Updates parameter `index` in place from its gradient (same shape, checked); `t` is the
    /// parameter's 1-based update count, this update included.
    virtual void update(std::size_t index, Tensor<T>& value, const Tensor<T>& grad, std::int64_t t) = 0;

private:
    // Counts are stored in T, which holds integers exactly up to 2^digits (2^24 for float).
    static constexpr std::int64_t max_exact_count = std::int64_t(1) << std::numeric_limits<T>::digits;

    T count_to_value(std::int64_t count) const {
        check(count <= max_exact_count, name_, ".state: count ", count, " exceeds ", max_exact_count,
              ", the largest integer a ", sizeof(T) == 4 ? "float" : "double", " state tensor holds exactly");
        return static_cast<T>(count);
    }
    static std::int64_t value_to_count(T value, const std::string& where, const std::string& key) {
        check(std::isfinite(value) && value >= 0 && value <= static_cast<T>(max_exact_count) &&
                  value == std::floor(value),
              where, key, " = ", value, " is not a valid count (a whole number from 0 to ", max_exact_count, ")");
        return static_cast<std::int64_t>(value);
    }

    std::string steps_key() const { return name_ + ".steps"; }
    std::string param_steps_key() const { return name_ + ".param_steps"; }
    std::string buffer_key(std::size_t slot, std::size_t index) const {
        return name_ + "." + buffer_names_[slot] + "." + std::to_string(index);
    }
    std::string expected_entries() const {
        std::string s = "'" + steps_key() + "', '" + param_steps_key() + "'";
        for (const std::string& b : buffer_names_) s += ", '" + name_ + "." + b + ".<i>'";
        if (!buffer_names_.empty()) s += " for i < " + std::to_string(params_.size());
        return s;
    }

    std::string name_;
    std::vector<Variable<T>> params_;
    double learning_rate_ = 0;
    double initial_learning_rate_ = 0;
    std::int64_t steps_ = 0;
    std::vector<std::int64_t> param_steps_;
    std::vector<bool> decays_;
    std::vector<std::string> buffer_names_;
    std::vector<std::vector<Tensor<T>>> buffers_;  // [slot][parameter]
};

}  // namespace cnnlite
