// An output folder describes one run at every moment. `train` gives each new run an identity
// (run.json's "run_id"), which the checkpoint, the model file and metrics.json carry too; a new
// run does not start over another one unless asked (--overwrite clears the old run's files
// first); and evaluate/explain of a model from elsewhere write under OUT/evaluations/<name>/,
// never into the folder's own results.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "cnnlite/io/safetensors.hpp"

#include "pipeline.hpp"

namespace fm {

namespace {

/// Every file and folder the stages write directly under OUT (the lock file excepted).
const std::vector<std::string>& run_outputs() {
    static const std::vector<std::string> names = {
        "run.json",    "metrics.json", "history.csv", "model.safetensors", "checkpoint.safetensors",
        "model_summary.txt", "report.html", "eda", "figures", "gradcam", "explain", "predict", "evaluations"};
    return names;
}

bool present(const fs::path& path) {
    std::error_code ec;
    return fs::exists(path, ec);
}

/// The model file's metadata key `key`, "" when absent or the file is unreadable (the loader
/// reports unreadable files properly when the model is loaded).
std::string model_metadata(const fs::path& path, const std::string& key) {
    try {
        const auto file = cnnlite::SafetensorsFile::load(path.string());
        const auto it = file.metadata().find(key);
        return it == file.metadata().end() ? std::string() : it->second;
    } catch (const cnnlite::Error&) {
        return {};
    }
}

}  // namespace

std::string new_run_id() {
    std::random_device entropy;
    const std::uint64_t id = (std::uint64_t(entropy()) << 32) ^ entropy() ^
                             static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(id));
    return text;
}

std::string folder_run_id(const Paths& paths) {
    const nlohmann::json run = read_json_object(paths.run_log());
    const auto it = run.find("run_id");
    return it != run.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string describe_folder_run(const Paths& paths) {
    const std::string id = folder_run_id(paths);
    std::string text = id.empty() ? "a run" : "run " + id;
    const nlohmann::json metrics = read_json_object(paths.metrics());
    if (metrics.contains("epochs_run")) text += ", " + metrics["epochs_run"].dump() + " epoch(s) trained";
    else if (present(paths.checkpoint())) text += ", interrupted (its checkpoint is there)";
    return text;
}

bool folder_holds_run(const Paths& paths) {
    return !folder_run_id(paths).empty() || present(paths.model()) || present(paths.checkpoint());
}

void prepare_new_run(const Settings& s) {
    const Paths paths(s);
    if (!folder_holds_run(paths)) return;
    cnnlite::check(s.overwrite, "'", s.out, "' already holds ", describe_folder_run(paths),
                   ": continue it with --resume, replace it with --overwrite, or choose another --out");
    say(s, "train", "--overwrite: removing the previous run's files from " + s.out);
    for (const std::string& name : run_outputs()) {
        std::error_code ec;
        fs::remove_all(paths.out / name, ec);
        cnnlite::check(!ec, "--overwrite: cannot remove '", (paths.out / name).string(), "': ", ec.message());
    }
}

ModelOutputs outputs_for_model(const Settings& s) {
    const Paths paths(s);
    ModelOutputs target{s.model_path(), paths, "", true};
    cnnlite::check(present(target.model), "no trained model at '", target.model.string(), "': run `fashion_mnist train --out ",
                   s.out, "` first, or name a model file with --model FILE");
    target.run_id = model_metadata(target.model, "run.id");
    const std::string folder_run = folder_run_id(paths);
    std::error_code ec;
    const bool folder_model = present(paths.model()) && fs::equivalent(target.model, paths.model(), ec);
    if (folder_model) {
        cnnlite::check(folder_run.empty() || target.run_id.empty() || folder_run == target.run_id, "'",
                       paths.model().string(), "' belongs to run ", target.run_id, " but '", paths.run_log().string(),
                       "' describes run ", folder_run, ": the folder mixes two runs; train again with --overwrite");
        return target;
    }
    const bool folder_has_run = !folder_run.empty() || present(paths.model());
    target.own = !folder_has_run || (!target.run_id.empty() && target.run_id == folder_run);
    if (target.own) return target;

    // Another run's model: its results go to a folder of their own, named after the file.
    std::string stem = target.model.stem().string();
    if (stem.empty() || stem[0] == '.') stem = "model" + stem;
    fs::path folder = paths.out / "evaluations" / stem;
    for (int k = 2; present(folder); ++k) {
        const nlohmann::json earlier = read_json_object(folder / "metrics.json");
        if (earlier.value("evaluated_model", std::string()) == fs::absolute(target.model).string()) break;
        folder = paths.out / "evaluations" / (stem + "_" + std::to_string(k));
    }
    target.paths = Paths(folder);
    return target;
}

}  // namespace fm
