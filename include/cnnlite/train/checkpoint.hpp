// Training checkpoints: everything a run's future depends on, in one safetensors file written
// atomically — the weights, buffers and counters, the optimiser state, the epoch, the kept best
// weights and value, the early-stopping state, the history, the weight average of
// FitOptions::ema_decay and the recipe of the run (fit_recipe()). Random draws are pure
// functions of the seed and the position in training, so nothing else is needed: a resumed run
// continues bit for bit, and one whose settings differ from the recipe is refused
// (check_resumable).
#pragma once

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/core/number_text.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/optim/optimizer.hpp"
#include "cnnlite/train/callbacks.hpp"
#include "cnnlite/train/fit_options.hpp"
#include "cnnlite/train/history.hpp"

namespace cnnlite {

/// Where a run stands, as saved in and restored from a checkpoint (the weights and optimiser
/// state travel separately, in the model and the optimiser).
struct TrainingState {
    std::int64_t epoch = 0;          ///< epochs completed
    bool finished = false;           ///< early stopping ended the run
    /// The epochs so far.
    History history;
    std::map<std::string, std::string> metadata;  ///< user entries (e.g. the run's settings)
    /// The settings the run was trained with (fit_recipe()); empty when not recorded.
    std::map<std::string, std::string> recipe;
    /// The weight average of FitOptions::ema_decay as ExponentialMovingAverage::state() names it
    /// (`ema.updates`, `ema.average.N` for parameter N), in double (which holds float values exactly); empty
    /// without one.
    std::vector<std::pair<std::string, Tensor<double>>> ema;
};

/// Throws cnnlite::Error unless `options` start at the epoch of `state` and repeat the recipe it
/// was trained with (a resumed run must, to continue bit for bit), naming every FitOptions
/// member that differs and both values. A state without a recorded recipe is not compared.
inline void check_resumable(const TrainingState& state, const FitOptions& options) {
    check(options.initial_epoch == state.epoch, "fit: the checkpoint holds ", state.epoch,
          " epoch(s) but FitOptions::initial_epoch is ", options.initial_epoch, "; resume at the checkpoint's epoch");
    if (state.recipe.empty()) return;
    const std::map<std::string, std::string> now = fit_recipe(options);
    std::string differences;
    auto differ = [&](const std::string& key, const std::string& then, const std::string& here) {
        differences += (differences.empty() ? "" : "; ") + std::string("FitOptions::") + key + " was " + then +
                       ", now " + here;
    };
    for (const auto& [key, value] : now) {
        const auto it = state.recipe.find(key);
        const std::string then = it == state.recipe.end() ? std::string("(not recorded)") : it->second;
        if (then != value) differ(key, then, value);
    }
    for (const auto& [key, value] : state.recipe)
        if (!now.count(key)) differ(key, value, "(unknown to this cnnlite)");
    check(differences.empty(), "fit: cannot resume from the checkpoint of epoch ", state.epoch,
          " with other training settings (", differences, "); resume with the settings it was trained with");
}

/// The former name of TrainingState, whose parameter was never used.
template <class T = float>
using TrainingProgress [[deprecated("use cnnlite::TrainingState")]] = TrainingState;

namespace detail {

/// `T` in a position that template argument deduction skips, so that a plain `nullptr` can be
/// passed for it (std::type_identity_t of C++20).
template <class T>
struct ExactlyType {
    using type = T;
};
template <class T>
using Exactly = typename ExactlyType<T>::type;

/// Metadata `key` of a checkpoint as a whole integer (the file is untrusted: "3x", "" and
/// out-of-range values are errors naming the file and key, not std::stoll's exceptions).
inline std::int64_t checkpoint_integer(const SafetensorsFile& file, const std::string& key) {
    const std::string& text = file.require_metadata(key);
    std::size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    check(!text.empty() && used == text.size(), file.description(), ": metadata '", key, "' = '", text,
          "' is not an integer");
    return value;
}

/// Metadata `key` of a checkpoint as a number written by round_trip_text ("nan" allowed).
inline double checkpoint_real(const SafetensorsFile& file, const std::string& key) {
    const std::string& text = file.require_metadata(key);
    try {
        return parse_round_trip_text(text);
    } catch (const std::exception&) {
        fail(file.description(), ": metadata '", key, "' = '", text, "' is not a number");
    }
}
}  // namespace detail

/// Writes a checkpoint to `path` atomically. `best` and `stopping` may be null.
template <class T>
void save_checkpoint(const std::string& path, const Model<T>& model, const Optimizer<T>& optimizer,
                     const TrainingState& state, const KeepBest<T>* best, const EarlyStopping<T>* stopping) {
    SafetensorsWriter writer;
    for (const auto& p : model.state()) writer.add("model." + p.name, p.variable.value());
    for (const auto& c : model.counters()) writer.add("model." + c.name, c.value);
    for (const auto& [key, tensor] : optimizer.state()) writer.add("optimizer." + key, tensor);
    for (const auto& [key, tensor] : state.ema) {
        check(key.rfind("ema.", 0) == 0, "save_checkpoint: weight-average entry '", key,
              "' does not start with 'ema.'");
        writer.add(key, tensor.template cast<T>());
    }
    auto meta = model_metadata(model);
    meta["checkpoint"] = "1";
    meta["epoch"] = std::to_string(state.epoch);
    meta["finished"] = state.finished ? "true" : "false";
    meta["history"] = state.history.to_json().dump();
    meta["learning_rate"] = round_trip_text(optimizer.learning_rate());
    if (!state.recipe.empty()) meta["recipe"] = nlohmann::json(state.recipe).dump();
    if (best) {
        meta["best_epoch"] = std::to_string(best->best_epoch());
        meta["best_value"] = round_trip_text(best->best_value());
        const auto entries = model.state();
        check(best->weights().empty() || best->weights().size() == entries.size(), "save_checkpoint: KeepBest holds ",
              best->weights().size(), " tensors but the model has ", entries.size(), " parameters and buffers");
        for (std::size_t i = 0; i < best->weights().size(); ++i)
            writer.add("best." + entries[i].name, best->weights()[i]);
    }
    if (stopping) {
        meta["early_stopping"] = nlohmann::json{{"seen", stopping->seen()}, {"best", stopping->seen() ? stopping->best() : 0.0},
                                                {"wait", stopping->wait()}}.dump();
    }
    for (const auto& [key, value] : state.metadata) {
        check(!meta.count(key), "save_checkpoint: metadata key '", key, "' is reserved");
        meta[key] = value;
    }
    for (const auto& [key, value] : meta) writer.set_metadata(key, value);
    writer.save(path);
}

/// Restores `model` (parameters, buffers and counters), `optimizer`, `best` and `stopping`
/// (either may be null or left out) from the checkpoint in `path`, which must come from the same
/// architecture. Everything is validated before any state is changed; counters missing from the
/// file (checkpoints from before format version 3) keep their values. Returns the epoch,
/// history, user metadata, recipe and weight average: pass it to resume_fit().
template <class T>
TrainingState load_checkpoint(const std::string& path, const Model<T>& model, Optimizer<T>& optimizer,
                              detail::Exactly<KeepBest<T>>* best = nullptr,
                              detail::Exactly<EarlyStopping<T>>* stopping = nullptr) {
    const SafetensorsFile file = SafetensorsFile::load(path);
    detail::check_model_format(file);
    check(file.metadata().count("checkpoint"), file.description(), ": not a training checkpoint (no 'checkpoint' metadata)");
    const std::string arch = file.require_metadata("architecture");
    check(arch == model_metadata(model).at("architecture"), file.description(),
          ": the checkpoint was written for another architecture than this model");

    // The training state first: it decides which tensors must be present. Every value is
    // checked for range, since the file is untrusted and resuming from nonsense would go on
    // silently from a wrong place.
    TrainingState state;
    state.epoch = detail::checkpoint_integer(file, "epoch");
    const std::string& finished = file.require_metadata("finished");
    check(finished == "true" || finished == "false", file.description(), ": metadata 'finished' = '", finished,
          "' is not true or false");
    state.finished = finished == "true";
    try {
        state.history = History::from_json(nlohmann::json::parse(file.require_metadata("history")));
    } catch (const std::exception& e) {  // nlohmann's parse and type errors, History's own
        fail(file.description(), ": unreadable history (", e.what(), ")");
    }
    check(state.epoch >= 0 && static_cast<std::uint64_t>(state.epoch) == state.history.epochs.size(),
          file.description(), ": the history has ", state.history.epochs.size(), " epochs but the checkpoint says ",
          state.epoch);
    for (std::size_t i = 0; i < state.history.epochs.size(); ++i)
        check(state.history.epochs[i].epoch == static_cast<std::int64_t>(i) + 1, file.description(),
              ": history record ", i, " is of epoch ", state.history.epochs[i].epoch, ", expected ", i + 1);
    const double learning_rate = detail::checkpoint_real(file, "learning_rate");
    check(std::isfinite(learning_rate) && learning_rate >= 0, file.description(), ": metadata 'learning_rate' = ",
          learning_rate, " is not a finite, non-negative number");
    const std::int64_t best_epoch = file.metadata().count("best_epoch") ? detail::checkpoint_integer(file, "best_epoch") : 0;
    check(best_epoch >= 0 && best_epoch <= state.epoch, file.description(), ": metadata 'best_epoch' = ", best_epoch,
          " is not in 0..", state.epoch, " (the epochs done)");
    double best_value = 0;
    if (best_epoch > 0) {
        best_value = detail::checkpoint_real(file, "best_value");
        check(std::isfinite(best_value), file.description(), ": metadata 'best_value' = ", best_value, " is not finite");
    }
    bool es_seen = false;
    double es_best = 0;
    std::int64_t es_wait = 0;
    const bool has_stopping = file.metadata().count("early_stopping") != 0;
    if (has_stopping) {
        try {
            const auto es = nlohmann::json::parse(file.metadata().at("early_stopping"));
            es_seen = es.at("seen").get<bool>();
            es_best = es.at("best").get<double>();
            es_wait = es.at("wait").get<std::int64_t>();
        } catch (const std::exception& e) {
            fail(file.description(), ": unreadable 'early_stopping' metadata (", e.what(), ")");
        }
        check(std::isfinite(es_best) && es_wait >= 0 && es_wait <= state.epoch, file.description(),
              ": 'early_stopping' metadata out of range (best ", es_best, ", wait ", es_wait, ")");
    }

    if (file.metadata().count("recipe")) {
        try {
            const auto recipe = nlohmann::json::parse(file.metadata().at("recipe"));
            check(recipe.is_object(), "not an object");
            for (auto it = recipe.begin(); it != recipe.end(); ++it)
                state.recipe[it.key()] = it.value().template get<std::string>();
        } catch (const std::exception& e) {
            fail(file.description(), ": unreadable 'recipe' metadata (", e.what(), ")");
        }
    }

    auto params = model.state();
    std::vector<Tensor<T>> weights, best_weights;
    for (const auto& p : params) weights.push_back(file.require<T>("model." + p.name, p.variable.shape()));
    // Counters: absent in checkpoints from before format version 3, which leave them as they are.
    auto counters = model.counters();
    std::vector<Tensor<std::int64_t>> counts(counters.size());
    for (std::size_t i = 0; i < counters.size(); ++i) {
        const std::string name = "model." + counters[i].name;
        if (!file.contains(name)) continue;
        const SafetensorsEntry& e = file.entry(name);
        check(e.dtype == SafetensorsDtype::I64, file.description(), ": tensor '", name, "' has dtype ",
              dtype_name(e.dtype), ", expected I64 (a count)");
        counts[i] = file.require<std::int64_t>(name, counters[i].value.shape());
        for (std::int64_t k = 0; k < counts[i].numel(); ++k)
            check(counts[i].data()[k] >= 0, file.description(), ": tensor '", name, "' = ", counts[i].data()[k],
                  " is negative, but it counts batches");
    }
    if (best && best_epoch > 0)
        for (const auto& p : params) best_weights.push_back(file.require<T>("best." + p.name, p.variable.shape()));
    typename Optimizer<T>::State optimizer_state;
    for (const auto& [name, entry] : file.entries()) {
        if (name.rfind("optimizer.", 0) == 0) optimizer_state.emplace_back(name.substr(10), file.tensor<T>(name));
        if (name.rfind("ema.", 0) == 0)
            state.ema.emplace_back(name, file.template tensor<T>(name).template cast<double>());
    }

    // Everything read and checked: now change state (load_state validates before it changes).
    optimizer.load_state(optimizer_state);
    optimizer.set_learning_rate(learning_rate);
    for (std::size_t i = 0; i < params.size(); ++i) params[i].variable.value().copy_from(weights[i]);
    for (std::size_t i = 0; i < counters.size(); ++i)
        if (counts[i].defined()) counters[i].value.copy_from(counts[i]);
    if (best) best->set_state(best_epoch, best_value, std::move(best_weights));
    if (stopping && has_stopping) stopping->set_state(es_seen, es_best, es_wait);
    static const std::map<std::string, bool> reserved{{"format", 1}, {"format_version", 1}, {"cnnlite_version", 1},
                                                      {"architecture", 1}, {"checkpoint", 1}, {"epoch", 1},
                                                      {"finished", 1}, {"history", 1}, {"learning_rate", 1},
                                                      {"best_epoch", 1}, {"best_value", 1}, {"early_stopping", 1},
                                                      {"recipe", 1}};
    for (const auto& [key, value] : file.metadata())
        if (!reserved.count(key)) state.metadata[key] = value;
    return state;
}

/// Saves a checkpoint after every epoch. Put it after KeepBest/EarlyStopping in the callback
/// list so that their state of this epoch is included. Inside fit() it also saves the run's
/// recipe and weight average (on_fit_setup tells it what they are).
template <class T = float>
class Checkpointer : public Callback<T> {
public:
    /// Saves to `path` after every epoch: the model, the optimiser's state, and the state of `best` and `stopping` (each may be null).
    Checkpointer(std::string path, const Optimizer<T>& optimizer, const KeepBest<T>* best, const EarlyStopping<T>* stopping,
                 std::map<std::string, std::string> metadata = {})
        : path_(std::move(path)), optimizer_(optimizer), best_(best), stopping_(stopping), metadata_(std::move(metadata)) {}

    /// Remembers the run whose recipe and weight average the checkpoints hold.
    void on_fit_setup(const FitRun<T>& run) override { run_ = &run; }
    /// Writes the checkpoint (atomically).
    void on_epoch_end(const Model<T>& model, const History& history, TrainControl& control) override {
        TrainingState state;
        state.epoch = history.epochs.back().epoch;
        state.finished = control.stop;
        state.history = history;
        state.metadata = metadata_;
        if (run_) {
            state.recipe = fit_recipe(run_->options());
            if (const ExponentialMovingAverage<T>* ema = run_->ema())
                for (auto& [key, tensor] : ema->state()) state.ema.emplace_back(key, tensor.template cast<double>());
        }
        save_checkpoint(path_, model, optimizer_, state, best_, stopping_);
    }
    /// Forgets the run.
    void on_train_end(const Model<T>&, const History&) override { run_ = nullptr; }

private:
    std::string path_;
    const Optimizer<T>& optimizer_;
    const KeepBest<T>* best_;
    const EarlyStopping<T>* stopping_;
    std::map<std::string, std::string> metadata_;
    const FitRun<T>* run_ = nullptr;
};

}  // namespace cnnlite
