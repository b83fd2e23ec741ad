// Stage `train`: the network of --arch trained with its --recipe (architectures.hpp). Validation
// = the first --val training images, training = the rest (or its first --limit), shuffled every
// epoch; the weights of the epoch with the lowest validation loss (the weight average's, when
// the recipe keeps one) are kept in OUT/model.safetensors, which records the architecture and
// the recipe. After every epoch OUT/checkpoint.safetensors holds everything --resume needs
// (weights and buffers, the optimiser's state, the weight average, the kept weights, the
// history, the recipe); every random draw is keyed by the seed and the position in training,
// so a resumed run ends with the same bits as an uninterrupted one.
// Built with MPI and run under `mpirun -np N`, every rank trains its share of each batch
// (cnnlite::distributed::fit_data_parallel); rank 0 alone writes files and prints. --resume
// then needs the output folder readable by every rank.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "cnnlite/data/split.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/optim/sgd.hpp"
#include "cnnlite/optim/weight_decay.hpp"
#include "cnnlite/train/callbacks.hpp"
#include "cnnlite/train/checkpoint.hpp"
#include "cnnlite/train/fit.hpp"
#include "cnnlite/viz/line_chart.hpp"
#include "cnnlite/viz/svg.hpp"

#include "pipeline.hpp"

#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
#include "cnnlite/distributed/data_parallel.hpp"
#endif

namespace fm {

namespace {

/// The recipe's settings that a resumed run must repeat: all but the epoch count (a run may
/// be extended; a schedule that depends on it is compared by fit()'s own recipe check) and the
/// test-time augmentation, which does not touch training.
std::string training_settings(const Recipe& recipe) {
    nlohmann::json settings = recipe.to_json();
    settings.erase("epochs");
    settings.erase("flip_tta");
    return settings.dump();
}

/// Settings a checkpoint must share with the run that resumes it (its own metadata keys),
/// the data included: a fingerprint of the validation and training images and labels used.
std::map<std::string, std::string> run_identity(const Settings& s, const cnnlite::TrainValidationSplit& split) {
    char data[40];
    std::snprintf(data, sizeof data, "%016llx-%016llx",
                  static_cast<unsigned long long>(cnnlite::content_fingerprint(split.validation)),
                  static_cast<unsigned long long>(cnnlite::content_fingerprint(split.train)));
    return {{"run.seed", std::to_string(s.seed)},
            {"run.batch_size", std::to_string(s.batch_size)},
            {"run.validation_images", std::to_string(s.val)},
            {"run.train_images", std::to_string(split.train.size())},
            {"run.arch", s.arch_or_default()},
            {"run.recipe", training_settings(s.recipe)},
            {"run.data", data}};
}

/// The recipe's optimiser over `model`'s trainable weights; weight decay never applies to
/// biases and BatchNorm parameters.
std::unique_ptr<cnnlite::Optimizer<float>> make_optimizer(const Recipe& r, const cnnlite::Model<float>& model) {
    const std::vector<std::size_t> no_decay = cnnlite::no_decay_indices(model.trainable_names());
    if (r.optimizer == "sgd") {
        cnnlite::SGDOptions o;
        o.learning_rate = r.learning_rate;
        o.momentum = 0.9;
        o.nesterov = true;
        o.weight_decay = r.weight_decay;
        o.no_decay = no_decay;
        return std::make_unique<cnnlite::SGD<float>>(model.trainable_variables(), o);
    }
    if (r.optimizer == "adamw") {
        cnnlite::AdamWOptions o;
        o.learning_rate = r.learning_rate;
        o.weight_decay = r.weight_decay;
        o.no_decay = no_decay;
        return std::make_unique<cnnlite::AdamW<float>>(model.trainable_variables(), o);
    }
    cnnlite::AdamOptions o;  // the paper's Adam: Keras' defaults
    o.learning_rate = r.learning_rate;
    o.weight_decay = r.weight_decay;
    o.no_decay = no_decay;
    return std::make_unique<cnnlite::Adam<float>>(model.trainable_variables(), o);
}

/// fit()'s options for the recipe: batch, epochs, augmentation, smoothing, clipping, EMA and
/// the per-step schedule (linear warm-up from 0.1 x the rate, then constant or cosine to 0).
cnnlite::FitOptions fit_options(const Settings& s, const Recipe& r, std::int64_t train_images) {
    cnnlite::FitOptions options;
    options.batch_size = r.batch_size;
    options.epochs = r.epochs;
    options.seed = s.seed;
    options.verbosity = s.quiet ? cnnlite::Verbosity::silent : cnnlite::Verbosity::auto_;
    options.adapt_threads = s.adapt_threads;
    if (r.augment != "none") {
        cnnlite::Augmentation augmentation;
        augmentation.flip_horizontal().translate(2);
        if (r.augment == "flip-shift-erase") augmentation.random_erasing();
        options.augmentation = augmentation;
    }
    options.label_smoothing = r.label_smoothing;
    if (r.clip_norm > 0) options.clip_grad_norm = r.clip_norm;
    if (r.ema_decay > 0) options.ema_decay = r.ema_decay;
    if (r.schedule != "constant" || r.warmup_epochs > 0) {
        const std::int64_t steps_per_epoch = (train_images + r.batch_size - 1) / r.batch_size;
        const auto warmup = static_cast<std::int64_t>(std::llround(r.warmup_epochs * static_cast<double>(steps_per_epoch)));
        const std::int64_t rest = std::max<std::int64_t>(1, r.epochs * steps_per_epoch - warmup);
        cnnlite::LearningRateSchedule after = r.schedule == "cosine"
                                                  ? cnnlite::LearningRateSchedule::cosine(rest, 0, cnnlite::ScheduleUnit::step)
                                                  : cnnlite::LearningRateSchedule::constant(cnnlite::ScheduleUnit::step);
        options.schedule = warmup > 0 ? cnnlite::LearningRateSchedule::linear_warmup(warmup, after, 0.1) : after;
    }
    return options;
}

/// Model file metadata: deterministic (no clock), so a resumed run writes the same bytes.
std::map<std::string, std::string> model_extra(const Settings& s, const cnnlite::KeepBest<float>& best,
                                               const std::string& run_id) {
    return {{"class_names", nlohmann::json(cnnlite::fashion_mnist_class_names()).dump()},
            {"best_epoch", std::to_string(best.best_epoch())},
            {"best_val_loss", cnnlite::round_trip_text(best.best_value())},
            {arch_key, s.arch_or_default()},
            {recipe_key, s.recipe.to_json().dump()},
            {"run.id", run_id}};
}

/// What Ctrl-C (SIGINT) or SIGTERM prints while `train` runs, then the program ends at once:
/// everything already saved is complete (files are replaced atomically), so there is nothing to
/// wait for. The text is kept up to date after every epoch in one of two buffers, and the
/// handler reads the one not being written.
char interrupt_texts[2][2048];
std::atomic<int> interrupt_text{-1};  // -1: say nothing (ranks other than 0)

extern "C" void on_interrupt(int signal) {
    const int i = interrupt_text.load();
    if (i >= 0) {
        const ssize_t written = ::write(STDERR_FILENO, interrupt_texts[i], std::strlen(interrupt_texts[i]));
        (void)written;
    }
    ::_exit(128 + signal);
}

void set_interrupt_text(const std::string& text) {
    const int next = interrupt_text.load() == 0 ? 1 : 0;
    std::snprintf(interrupt_texts[next], sizeof interrupt_texts[next], "%s", text.c_str());
    interrupt_text.store(next);
}

/// Installs on_interrupt for SIGINT and SIGTERM while alive; the defaults come back after.
struct InterruptHandler {
    InterruptHandler() {
        struct sigaction action {};
        action.sa_handler = on_interrupt;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGINT, &action, nullptr);
        ::sigaction(SIGTERM, &action, nullptr);
    }
    ~InterruptHandler() {
        std::signal(SIGINT, SIG_DFL);
        std::signal(SIGTERM, SIG_DFL);
        interrupt_text.store(-1);
    }
    InterruptHandler(const InterruptHandler&) = delete;
    InterruptHandler& operator=(const InterruptHandler&) = delete;
};

/// The command that continues this run: the same one with --resume (and without --overwrite).
std::string resume_command(const Settings& s) {
    std::string command = s.command_line;
    for (std::size_t at; (at = command.find(" --overwrite")) != std::string::npos;) command.erase(at, 12);
    return s.resume ? command : command + " --resume";
}

/// figures/learning_curves: loss and accuracy per epoch, training and validation, with the
/// kept epoch marked.
void write_learning_curves(const Paths& paths, const cnnlite::History& history, std::int64_t best_epoch) {
    std::vector<double> epochs, loss, val_loss, accuracy, val_accuracy;
    for (const auto& e : history.epochs) {
        epochs.push_back(static_cast<double>(e.epoch));
        loss.push_back(e.loss);
        val_loss.push_back(e.val_loss);
        accuracy.push_back(e.accuracy);
        val_accuracy.push_back(e.val_accuracy);
    }
    const bool few = epochs.size() <= 20;
    const auto panel = [&](const std::string& what, const std::vector<double>& train, const std::vector<double>& val) {
        cnnlite::viz::LineChart chart;
        chart.title = "Model " + what;
        chart.x_label = "epoch";
        chart.y_label = what;
        chart.series = {{"training", epochs, train, std::nullopt, false, few},
                        {"validation", epochs, val, std::nullopt, false, few}};
        chart.markers = {{static_cast<double>(best_epoch), "kept: epoch " + std::to_string(best_epoch)}};
        chart.whole_x_ticks = true;
        chart.width = 560;
        chart.height = 400;
        return cnnlite::viz::to_svg(chart);
    };
    cnnlite::viz::write_svg(paths.figure("learning_curves", ".svg").string(),
                            cnnlite::viz::svg_side_by_side({panel("loss", loss, val_loss),
                                                            panel("accuracy", accuracy, val_accuracy)}, 24));
}

/// Where a run starts: the epochs already done, their history and the run's identity.
struct RunStart {
    std::int64_t done = 0;
    cnnlite::History history;
    std::string run_id;                                ///< empty for a new run
    std::optional<cnnlite::TrainingState> checkpoint;  ///< what --resume continues from
};

/// --resume: restores model, optimiser and kept weights from OUT's checkpoint, after checking
/// that it was written by this run's settings on this run's data.
RunStart resume_from_checkpoint(const Settings& s, const Paths& paths, const cnnlite::FashionMnist& data,
                                const cnnlite::TrainValidationSplit& split,
                                const std::map<std::string, std::string>& identity, cnnlite::Model<float>& model,
                                cnnlite::Optimizer<float>& optimizer, cnnlite::KeepBest<float>& best) {
    cnnlite::check(fs::exists(paths.checkpoint()), "--resume: there is no checkpoint at '", paths.checkpoint().string(),
                   "'; run `fashion_mnist train` without --resume to start a new run");
    say(s, "train", "resuming from " + paths.checkpoint().string());
    const cnnlite::TrainingState state = cnnlite::load_checkpoint(paths.checkpoint().string(), model, optimizer, &best);
    const auto saved = [&](const std::string& key) {
        const auto it = state.metadata.find(key);
        return it == state.metadata.end() ? std::string("(missing)") : it->second;
    };
    const std::string saved_data = saved("run.data");
    cnnlite::check(saved_data == "(missing)" || saved_data == identity.at("run.data"),
                   "--resume: the checkpoint was trained on other data (fingerprint ", saved_data, ") than the ",
                   split.validation.size(), " validation and ", split.train.size(), " training images of '",
                   data.files.folder.string(), "' (fingerprint ", identity.at("run.data"),
                   "); resume with the data it was trained on, or train without --resume");
    for (const auto& [key, value] : identity) {
        if (key == "run.data") continue;
        // Checkpoints of the paper's network from before --arch record neither.
        if ((key == "run.arch" || key == "run.recipe") && saved(key) == "(missing)" && s.arch_or_default() == "paper")
            continue;
        cnnlite::check(saved(key) == value, "--resume: the checkpoint was written with ", key.substr(4), " = ", saved(key),
                       " but this run has ", value, "; use the same --arch, --recipe and recipe options, --seed, ",
                       "--val and --limit (or train without --resume)");
    }
    if (saved_data == "(missing)")
        say(s, "train", "note: the checkpoint does not record its data (an older cnnlite wrote it); not checked");
    RunStart start;
    start.run_id = state.metadata.count("run.id") ? state.metadata.at("run.id") : folder_run_id(paths);
    start.done = state.epoch;
    start.history = state.history;
    start.checkpoint = state;
    say(s, "train", std::to_string(start.done) + " epoch(s) done, best epoch so far " + std::to_string(best.best_epoch()));
    return start;
}

/// Epochs done+1 .. --epochs of the recipe, with the callbacks that keep the best weights,
/// write history.csv, the checkpoint and the model after each epoch, and keep the Ctrl-C
/// message current. Returns the history of all epochs.
cnnlite::History train_epochs(const Settings& s, const Paths& paths, const cnnlite::TrainValidationSplit& split,
                              std::map<std::string, std::string> checkpoint_meta, const RunStart& start,
                              cnnlite::Model<float>& model, cnnlite::Optimizer<float>& optimizer,
                              cnnlite::KeepBest<float>& best) {
    const InterruptHandler interrupt_handler;
    const std::string& run_id = start.run_id;
    const auto note_saved = [&](std::int64_t epochs) {
        if (s.rank != 0) return;
        if (epochs == 0) {
            set_interrupt_text("\nfashion_mnist: interrupted before the first epoch of run " + run_id +
                               " ended; nothing of it is saved yet\n");
            return;
        }
        set_interrupt_text("\nfashion_mnist: interrupted. Run " + run_id + ": epochs 1-" + std::to_string(epochs) +
                           " are saved in " + paths.checkpoint().string() + " (the best so far, epoch " +
                           std::to_string(best.best_epoch()) + ", in " + paths.model().string() +
                           "). Continue with:\n  " + resume_command(s) + "\n");
    };
    note_saved(start.done);
    checkpoint_meta["run.threads"] = std::to_string(s.threads);
    checkpoint_meta["run.id"] = run_id;
    // The kept weights are KeepBest's copy (the weight average's, with EMA), saved from a
    // second network of the same architecture.
    cnnlite::Model<float> kept = architecture(s.arch_or_default()).build(s.seed);
    cnnlite::LambdaCallback<float> save_best([&](const cnnlite::Model<float>& trained, const cnnlite::History& h,
                                                 cnnlite::TrainControl&) {
        if (best.best_epoch() != h.epochs.back().epoch) return;
        best.restore(kept);
        // KeepBest keeps no counters (num_batches_tracked): the file gets the run's, as the final save does.
        const auto counts = trained.counters();
        auto into = kept.counters();
        for (std::size_t i = 0; i < counts.size(); ++i) into[i].value.copy_from(counts[i].value);
        cnnlite::save_model(kept, paths.model().string(), model_extra(s, best, run_id));
    });
    cnnlite::CsvLogger<float> csv(paths.history().string());
    cnnlite::Checkpointer<float> checkpointer(paths.checkpoint().string(), optimizer, &best, nullptr, checkpoint_meta);
    cnnlite::LambdaCallback<float> saved_note(
        [&](const cnnlite::Model<float>&, const cnnlite::History& h, cnnlite::TrainControl&) {
            note_saved(h.epochs.back().epoch);
        });

    cnnlite::FitOptions options = fit_options(s, s.recipe, split.train.size());
    options.initial_epoch = start.done;
    std::vector<cnnlite::Callback<float>*> callbacks = {&best, &save_best, &csv, &checkpointer, &saved_note};
    if (s.rank != 0) callbacks = {&best};  // only rank 0 writes
#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
    const cnnlite::distributed::Communicator comm;
    if (start.checkpoint)
        return cnnlite::distributed::resume_fit_data_parallel(comm, model, optimizer, split.train, &split.validation,
                                                              options, *start.checkpoint, callbacks);
    return cnnlite::distributed::fit_data_parallel(comm, model, optimizer, split.train, &split.validation, options,
                                                   callbacks);
#else
    if (start.checkpoint)
        return cnnlite::resume_fit(model, optimizer, split.train, &split.validation, options, *start.checkpoint,
                                   callbacks);
    return cnnlite::fit(model, optimizer, split.train, &split.validation, options, callbacks);
#endif
}

/// OUT/metrics.json after training: the kept epoch and the run's totals. A new model makes
/// earlier test results stale, so they are dropped unless the model did not change (--resume
/// with nothing left to train).
void write_train_metrics(const Settings& s, const Paths& paths, const cnnlite::TrainValidationSplit& split,
                         const cnnlite::History& history, const cnnlite::KeepBest<float>& best,
                         const std::string& run_id, bool model_changed) {
    // Totals over every epoch of the run, those before a resume included.
    double train_seconds = 0, pure_training_seconds = 0;
    for (const auto& e : history.epochs) {
        train_seconds += e.seconds;
        if (e.images_per_second > 0) pure_training_seconds += static_cast<double>(split.train.size()) / e.images_per_second;
    }
    const auto epochs_run = static_cast<std::int64_t>(history.epochs.size());
    const double images_per_second =
        pure_training_seconds > 0 ? static_cast<double>(split.train.size() * epochs_run) / pure_training_seconds : 0.0;
    const cnnlite::EpochRecord& kept = history.epochs.at(static_cast<std::size_t>(best.best_epoch() - 1));

    nlohmann::json metrics = read_json_object(paths.metrics());
    if (model_changed || metrics.value("run_id", std::string()) != run_id) metrics = nlohmann::json::object();
    metrics["run_id"] = run_id;
    metrics["best_epoch"] = best.best_epoch();
    metrics["epochs_run"] = epochs_run;
    metrics["train_seconds"] = train_seconds;
    metrics["train_images_per_second"] = images_per_second;
    metrics["seed"] = s.seed;
    metrics["threads"] = s.threads;
    metrics["adapt_threads"] = s.adapt_threads;
    double one_thread_steps = 0;  // share of all steps run on one thread (the governor's choice)
    for (const auto& e : history.epochs) one_thread_steps += e.one_thread_share / static_cast<double>(epochs_run);
    metrics["one_thread_share"] = one_thread_steps;
    metrics["ranks"] = s.ranks;
    metrics["class_names"] = cnnlite::fashion_mnist_class_names();
    metrics["best_val_loss"] = kept.val_loss;
    metrics["best_val_accuracy"] = kept.val_accuracy;
    metrics["batch_size"] = s.batch_size;
    metrics["arch"] = s.arch_or_default();
    metrics["recipe"] = s.recipe.to_json();
    metrics["recipe_text"] = s.recipe.describe();
    metrics["train_images"] = split.train.size();
    metrics["validation_images"] = split.validation.size();
    write_json(paths.metrics(), metrics);
}

}  // namespace

void run_train(const Settings& s) {
    const double start_time = now_seconds();
    const Paths paths(s);
    // Only the training file, and of it only what the split uses.
    cnnlite::FashionMnistLimits limits;
    limits.train_images = s.limit < 0 ? cnnlite::idx_all_items : s.val + s.limit;
    limits.test_images = 0;
    const cnnlite::FashionMnist data = load_data(s, "train", limits);
    const cnnlite::TrainValidationSplit split =
        cnnlite::split_train_validation(data.train, s.val, s.limit < 0 ? cnnlite::no_limit : s.limit);

    cnnlite::Model<float> model = architecture(s.arch_or_default()).build(s.seed);
    const std::unique_ptr<cnnlite::Optimizer<float>> optimizer = make_optimizer(s.recipe, model);
    cnnlite::KeepBest<float> best("val_loss");
    const auto identity = run_identity(s, split);

    RunStart start;
    if (s.resume) start = resume_from_checkpoint(s, paths, data, split, identity, model, *optimizer, best);
    if (start.run_id.empty()) start.run_id = new_run_id();
    if (s.rank == 0) {
        nlohmann::json log = read_json_object(paths.run_log());
        log["run_id"] = start.run_id;
        write_json(paths.run_log(), log);
    }
    say(s, "train",
        (s.resume ? "run " : "new run ") + start.run_id + ": " + with_commas(split.train.size()) + " training and " +
            with_commas(split.validation.size()) + " validation images; " + s.arch_or_default() + " network, " +
            s.recipe_name + " recipe: " + s.recipe.describe() + "; seed " + std::to_string(s.seed) + ", " +
            (s.ranks > 1 ? std::to_string(s.ranks) + " ranks x " : "") + std::to_string(s.threads) + " thread(s)");

    const bool trains = start.done < s.epochs;
    cnnlite::History history = start.history;
    if (trains) {
        history = train_epochs(s, paths, split, identity, start, model, *optimizer, best);
    } else {
        say(s, "train", "the checkpoint already holds " + std::to_string(start.done) + " epoch(s); nothing to train");
        if (s.rank == 0) history.write_csv(paths.history().string());
    }
    if (s.rank != 0) return;  // the other ranks' part ends with the training

    cnnlite::check(best.best_epoch() > 0, "train: the validation loss was never finite, so no weights were kept");
    best.restore(model);
    cnnlite::save_model(model, paths.model().string(), model_extra(s, best, start.run_id));
    ensure_dir(paths.figures());
    write_learning_curves(paths, history, best.best_epoch());
    write_train_metrics(s, paths, split, history, best, start.run_id, trains);

    const double seconds = now_seconds() - start_time;
    record_stage(s, "train", seconds,
                 {{"arch", s.arch_or_default()}, {"recipe", s.recipe.to_json()}, {"epochs", s.epochs},
                  {"batch_size", s.batch_size}, {"train_images", split.train.size()},
                  {"validation_images", split.validation.size()}, {"resumed_after_epoch", start.done},
                  {"data_folder", data.files.folder.string()}});
    const cnnlite::EpochRecord& kept = history.epochs.at(static_cast<std::size_t>(best.best_epoch() - 1));
    say(s, "train",
        "kept the weights of epoch " + std::to_string(best.best_epoch()) + " (val_loss " + fixed(kept.val_loss, 4) +
            ", val_accuracy " + fixed(kept.val_accuracy, 4) + ") -> " + paths.model().string());
    say(s, "train", "done in " + format_seconds(seconds));
}

}  // namespace fm
