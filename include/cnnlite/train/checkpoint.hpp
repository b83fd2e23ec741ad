// Training checkpoints: everything a run's future depends on, in one safetensors file written
// atomically — the weights, the optimiser state, the epoch, the kept best weights and value,
// the early-stopping state and the history. Random draws are pure functions of the seed and
// the position in training, so nothing else is needed: a resumed run continues bit for bit.
#pragma once

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/optim/optimizer.hpp"
#include "cnnlite/train/callbacks.hpp"
#include "cnnlite/train/history.hpp"

namespace cnnlite {

/// Where a run stands, as saved in and restored from a checkpoint.
template <class T = float>
struct TrainingProgress {
    std::int64_t epoch = 0;          ///< epochs completed
    bool finished = false;           ///< early stopping ended the run
    /// The epochs so far.
    History history;
    std::map<std::string, std::string> metadata;  ///< user entries (e.g. the run's settings)
};

namespace detail {
inline std::string real_text(double v) {
    if (std::isnan(v)) return "nan";
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.17g", v);
    return buffer;
}
inline double parse_real(const std::string& s) {
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    return std::stod(s);
}
}  // namespace detail

/// Writes a checkpoint to `path` atomically. `best` and `stopping` may be null.
template <class T>
void save_checkpoint(const std::string& path, const Sequential<T>& model, const Optimizer<T>& optimizer,
                     const TrainingProgress<T>& progress, const KeepBest<T>* best, const EarlyStopping<T>* stopping) {
    SafetensorsWriter writer;
    for (const auto& p : model.parameters()) writer.add("model." + p.name, p.variable.value());
    for (const auto& [key, tensor] : optimizer.state()) writer.add("optimizer." + key, tensor);
    auto meta = model_metadata(model);
    meta["checkpoint"] = "1";
    meta["epoch"] = std::to_string(progress.epoch);
    meta["finished"] = progress.finished ? "true" : "false";
    meta["history"] = progress.history.to_json().dump();
    meta["learning_rate"] = detail::real_text(optimizer.learning_rate());
    if (best) {
        meta["best_epoch"] = std::to_string(best->best_epoch());
        meta["best_value"] = detail::real_text(best->best_value());
        auto params = model.parameters();
        for (std::size_t i = 0; i < best->weights().size(); ++i) writer.add("best." + params[i].name, best->weights()[i]);
    }
    if (stopping) {
        meta["early_stopping"] = nlohmann::json{{"seen", stopping->seen()}, {"best", stopping->seen() ? stopping->best() : 0.0},
                                                {"wait", stopping->wait()}}.dump();
    }
    for (const auto& [key, value] : progress.metadata) {
        check(!meta.count(key), "save_checkpoint: metadata key '", key, "' is reserved");
        meta[key] = value;
    }
    for (const auto& [key, value] : meta) writer.set_metadata(key, value);
    writer.save(path);
}

/// Restores `model`, `optimizer`, `best` and `stopping` (either may be null) from the checkpoint
/// in `path`, which must come from the same architecture. Everything is validated before any
/// state is changed. Returns the epoch, history and user metadata.
template <class T>
TrainingProgress<T> load_checkpoint(const std::string& path, const Sequential<T>& model, Optimizer<T>& optimizer,
                                    KeepBest<T>* best, EarlyStopping<T>* stopping) {
    const SafetensorsFile file = SafetensorsFile::load(path);
    detail::check_model_format(file);
    check(file.metadata().count("checkpoint"), file.description(), ": not a training checkpoint (no 'checkpoint' metadata)");
    const std::string arch = file.require_metadata("architecture");
    check(arch == model_metadata(model).at("architecture"), file.description(),
          ": the checkpoint was written for another architecture than this model");

    auto params = model.parameters();
    std::vector<std::pair<std::string, Shape>> expected;
    for (const auto& p : params) expected.emplace_back("model." + p.name, p.variable.shape());
    std::vector<Tensor<T>> weights, best_weights;
    for (const auto& p : params) weights.push_back(file.require<T>("model." + p.name, p.variable.shape()));
    const std::int64_t best_epoch = std::stoll(file.metadata().count("best_epoch") ? file.metadata().at("best_epoch") : "0");
    if (best && best_epoch > 0)
        for (const auto& p : params) best_weights.push_back(file.require<T>("best." + p.name, p.variable.shape()));
    typename Optimizer<T>::State state;
    for (const auto& [name, entry] : file.entries())
        if (name.rfind("optimizer.", 0) == 0) state.emplace_back(name.substr(10), file.tensor<T>(name));

    TrainingProgress<T> progress;
    try {
        progress.epoch = std::stoll(file.require_metadata("epoch"));
        progress.finished = file.require_metadata("finished") == "true";
        progress.history = History::from_json(nlohmann::json::parse(file.require_metadata("history")));
    } catch (const std::exception& e) {
        fail(file.description(), ": unreadable training state (", e.what(), ")");
    }
    check(static_cast<std::int64_t>(progress.history.epochs.size()) == progress.epoch, file.description(), ": the history has ",
          progress.history.epochs.size(), " epochs but the checkpoint says ", progress.epoch);

    // Everything read and checked: now change state.
    optimizer.load_state(state);
    optimizer.set_learning_rate(detail::parse_real(file.require_metadata("learning_rate")));
    for (std::size_t i = 0; i < params.size(); ++i) params[i].variable.value().copy_from(weights[i]);
    if (best) best->set_state(best_epoch, best_epoch > 0 ? detail::parse_real(file.require_metadata("best_value")) : 0.0,
                              std::move(best_weights));
    if (stopping && file.metadata().count("early_stopping")) {
        const auto es = nlohmann::json::parse(file.metadata().at("early_stopping"));
        stopping->set_state(es.at("seen").get<bool>(), es.at("best").get<double>(), es.at("wait").get<std::int64_t>());
    }
    static const std::map<std::string, bool> reserved{{"format", 1}, {"format_version", 1}, {"cnnlite_version", 1},
                                                      {"architecture", 1}, {"checkpoint", 1}, {"epoch", 1},
                                                      {"finished", 1}, {"history", 1}, {"learning_rate", 1},
                                                      {"best_epoch", 1}, {"best_value", 1}, {"early_stopping", 1}};
    for (const auto& [key, value] : file.metadata())
        if (!reserved.count(key)) progress.metadata[key] = value;
    return progress;
}

/// Saves a checkpoint after every epoch. Put it after KeepBest/EarlyStopping in the callback
/// list so that their state of this epoch is included.
template <class T = float>
class Checkpointer : public Callback<T> {
public:
    /// Saves to `path` after every epoch: the model, the optimiser's state, and the state of `best` and `stopping` (each may be null).
    Checkpointer(std::string path, const Optimizer<T>& optimizer, const KeepBest<T>* best, const EarlyStopping<T>* stopping,
                 std::map<std::string, std::string> metadata = {})
        : path_(std::move(path)), optimizer_(optimizer), best_(best), stopping_(stopping), metadata_(std::move(metadata)) {}

    /// Writes the checkpoint (atomically).
    void on_epoch_end(const Sequential<T>& model, const History& history, TrainControl& control) override {
        TrainingProgress<T> progress;
        progress.epoch = history.epochs.back().epoch;
        progress.finished = control.stop;
        progress.history = history;
        progress.metadata = metadata_;
        save_checkpoint(path_, model, optimizer_, progress, best_, stopping_);
    }

private:
    std::string path_;
    const Optimizer<T>& optimizer_;
    const KeepBest<T>* best_;
    const EarlyStopping<T>* stopping_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace cnnlite
