// Callbacks of fit(): hooks at the start and end of training and of every epoch, and the
// standard ones — keep the best weights, stop early, log the history to CSV.
#pragma once

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/train/fit_options.hpp"
#include "cnnlite/train/history.hpp"

namespace cnnlite {

/// Whether a monitored metric improves when it goes down (losses) or up (accuracies).
enum class MonitorMode { auto_, min, max };

namespace detail {
inline bool minimise(const std::string& metric, MonitorMode mode) {
    if (mode == MonitorMode::min) return true;
    if (mode == MonitorMode::max) return false;
    return metric.find("loss") != std::string::npos;
}

/// Copies of `model.state()` (parameters and buffers, in that order per layer), with the
/// averages of `ema` (may be null) in place of the variables it averages.
template <class T>
std::vector<Tensor<T>> state_copy(const Model<T>& model, const ExponentialMovingAverage<T>* ema) {
    std::vector<Tensor<T>> out;
    for (const auto& s : model.state()) {
        bool averaged = false;
        if (ema)
            for (std::size_t k = 0; k < ema->variables().size() && !averaged; ++k)
                if (ema->variables()[k].node() == s.variable.node()) {
                    out.push_back(ema->average(k));
                    averaged = true;
                }
        if (!averaged) out.push_back(s.variable.value().clone());
    }
    return out;
}

/// Copies `values` (in model.state() order) into `model`; `who` names the caller in errors.
template <class T>
void copy_into_state(const Model<T>& model, const std::vector<Tensor<T>>& values, const char* who) {
    auto state = model.state();
    check(state.size() == values.size(), who, ": the model has ", state.size(), " parameters and buffers, got ",
          values.size());
    for (std::size_t i = 0; i < state.size(); ++i)
        check(state[i].variable.value().shape() == values[i].shape(), who, ": '", state[i].name, "' has shape ",
              state[i].variable.value().shape().str(), ", the copy ", values[i].shape().str());
    for (std::size_t i = 0; i < state.size(); ++i) state[i].variable.value().copy_from(values[i]);
}
}  // namespace detail

/// What callbacks may ask of the training loop.
struct TrainControl {
    bool stop = false;  ///< end training after this epoch
};

/// Hooks into fit(): called when training starts and ends and around every epoch; on_epoch_end may stop the run.
template <class T = float>
class Callback {
public:
    virtual ~Callback() = default;
    /// Before on_train_begin: what this fit() trains with, its options and weight average
    /// (`run` lives until on_train_end returns; callbacks that save the run keep a pointer).
    virtual void on_fit_setup(const FitRun<T>& /*run*/) {}
    /// Before the first epoch; `history` holds earlier epochs when resuming.
    virtual void on_train_begin(const Model<T>&, const History&) {}
    /// Before epoch `epoch` (counted from 1) starts.
    virtual void on_epoch_begin(std::int64_t /*epoch*/) {}
    /// After the epoch's record was appended to `history`.
    virtual void on_epoch_end(const Model<T>&, const History& /*history*/, TrainControl&) {}
    /// After the last epoch (or when a callback stopped the run).
    virtual void on_train_end(const Model<T>&, const History&) {}
};

/// Keeps a copy of the weights of the best epoch so far on a monitored metric (val_loss by
/// default, as Keras' ModelCheckpoint(save_best_only=True)); restore() puts them back. The copy
/// is of Model::state(): parameters and buffers (BatchNormalization's running statistics), not
/// the counters (num_batches_tracked keeps counting every batch trained). When fit() keeps a
/// weight average (FitOptions::ema_decay), the averaged weights are kept, since the validation
/// figures are theirs.
template <class T = float>
class KeepBest : public Callback<T> {
public:
    /// Watches `monitor` (val_loss, val_accuracy, loss, accuracy); auto mode minimises losses and maximises accuracies.
    explicit KeepBest(std::string monitor = "val_loss", MonitorMode mode = MonitorMode::auto_)
        : monitor_(std::move(monitor)), minimise_(detail::minimise(monitor_, mode)) {}

    /// Remembers the run's weight average, if any.
    void on_fit_setup(const FitRun<T>& run) override { ema_ = run.ema(); }
    /// Copies the weights when the monitored value improved.
    void on_epoch_end(const Model<T>& model, const History& history, TrainControl&) override {
        const double value = history.epochs.back().metric(monitor_);
        if (!std::isfinite(value)) return;
        if (best_epoch_ == 0 || (minimise_ ? value < best_ : value > best_)) {
            best_ = value;
            best_epoch_ = history.epochs.back().epoch;
            weights_ = detail::state_copy(model, ema_);
        }
    }
    /// Forgets the run's weight average.
    void on_train_end(const Model<T>&, const History&) override { ema_ = nullptr; }

    /// Copies the best weights and buffers into `model` (no-op before any epoch was kept).
    void restore(const Model<T>& model) const {
        if (weights_.empty()) return;
        detail::copy_into_state(model, weights_, "KeepBest::restore");
    }

    std::int64_t best_epoch() const { return best_epoch_; }  ///< 0 until an epoch was kept
    /// The best monitored value so far.
    double best_value() const { return best_; }
    /// The monitored metric.
    const std::string& monitor() const { return monitor_; }
    /// Copies of the best weights and buffers, in Model::state() order.
    const std::vector<Tensor<T>>& weights() const { return weights_; }
    /// Restores the state (for resuming a run).
    void set_state(std::int64_t epoch, double value, std::vector<Tensor<T>> weights) {
        best_epoch_ = epoch, best_ = value, weights_ = std::move(weights);
    }

private:
    std::string monitor_;
    bool minimise_;
    double best_ = std::numeric_limits<double>::quiet_NaN();
    std::int64_t best_epoch_ = 0;
    std::vector<Tensor<T>> weights_;
    const ExponentialMovingAverage<T>* ema_ = nullptr;
};

/// Stops training when the monitored metric has not improved by more than `min_delta` for
/// `patience` epochs (Keras' EarlyStopping).
template <class T = float>
class EarlyStopping : public Callback<T> {
public:
    /// Stops after `patience` epochs without an improvement of `monitor` by more than `min_delta`.
    explicit EarlyStopping(std::int64_t patience, std::string monitor = "val_loss", double min_delta = 0.0,
                           MonitorMode mode = MonitorMode::auto_)
        : monitor_(std::move(monitor)), patience_(patience), min_delta_(min_delta),
          minimise_(detail::minimise(monitor_, mode)) {
        check(patience >= 0, "EarlyStopping: negative patience ", patience);
    }
    /// Counts epochs without improvement and stops the run after `patience` of them.
    void on_epoch_end(const Model<T>&, const History& history, TrainControl& control) override {
        const double value = history.epochs.back().metric(monitor_);
        const bool improved = std::isfinite(value) &&
                              (!seen_ || (minimise_ ? value < best_ - min_delta_ : value > best_ + min_delta_));
        if (improved) {
            best_ = value, seen_ = true, wait_ = 0;
        } else if (++wait_ >= patience_) {  // Keras: stop once `patience` epochs did not improve
            control.stop = true;
            stopped_epoch_ = history.epochs.back().epoch;
        }
    }
    std::int64_t stopped_epoch() const { return stopped_epoch_; }  ///< 0 when it never stopped
    /// Epochs since the last improvement.
    std::int64_t wait() const { return wait_; }
    /// Best monitored value so far.
    double best() const { return best_; }
    /// Whether any epoch has been seen.
    bool seen() const { return seen_; }
    /// Restores the state (for resuming a run).
    void set_state(bool seen, double best, std::int64_t wait) { seen_ = seen, best_ = best, wait_ = wait; }

private:
    std::string monitor_;
    std::int64_t patience_;
    double min_delta_;
    bool minimise_;
    bool seen_ = false;
    double best_ = 0;
    std::int64_t wait_ = 0;
    std::int64_t stopped_epoch_ = 0;
};

/// Rewrites the history as CSV (atomically) after every epoch.
template <class T = float>
class CsvLogger : public Callback<T> {
public:
    /// Writes the history to `path` (CSV) after every epoch.
    explicit CsvLogger(std::string path) : path_(std::move(path)) {}
    /// Rewrites the CSV file with all epochs so far.
    void on_epoch_end(const Model<T>&, const History& history, TrainControl&) override { history.write_csv(path_); }

private:
    std::string path_;
};

/// A callback from a function called at the end of every epoch.
template <class T = float>
class LambdaCallback : public Callback<T> {
public:
    /// The function called at the end of each epoch.
    using EpochEnd = std::function<void(const Model<T>&, const History&, TrainControl&)>;
    /// Calls `fn` at the end of every epoch.
    explicit LambdaCallback(EpochEnd fn) : fn_(std::move(fn)) {}
    /// Calls the function.
    void on_epoch_end(const Model<T>& model, const History& history, TrainControl& control) override {
        fn_(model, history, control);
    }

private:
    EpochEnd fn_;
};

}  // namespace cnnlite
