// Helpers every stage of the pipeline uses: progress lines, data and model loading with clear
// errors, the JSON files (metrics.json, run.json), seeded choice of images, titles.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <numeric>
#include <sstream>
#include <system_error>

#include <sys/resource.h>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/core/files.hpp"
#include "cnnlite/io/keras_weights.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/onnx_import.hpp"

#include "pipeline.hpp"

namespace fm {

std::string Settings::model_path() const { return model.empty() ? (fs::path(out) / "model.safetensors").string() : model; }

void say(const Settings& s, const std::string& stage, const std::string& message) {
    if (s.quiet || s.rank != 0) return;
    std::printf("[%s] %s\n", stage.c_str(), message.c_str());
    std::fflush(stdout);
}

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string format_seconds(double seconds) {
    char buffer[64];
    if (seconds < 60) {
        std::snprintf(buffer, sizeof buffer, "%.1f s", seconds);
    } else {
        const long total = std::lround(seconds);
        std::snprintf(buffer, sizeof buffer, "%ld min %02ld s", total / 60, total % 60);
    }
    return buffer;
}

std::string with_commas(std::int64_t n) {
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return n < 0 ? "-" + out : out;
}

void ensure_dir(const fs::path& dir) { cnnlite::create_directories(dir.string()); }

cnnlite::FashionMnist load_data(const Settings& s, const std::string& stage, const cnnlite::FashionMnistLimits& limits) {
    const double start = now_seconds();
    const cnnlite::FashionMnistFiles files = cnnlite::locate_fashion_mnist(s.data);
    say(s, stage, "reading Fashion-MNIST from " + files.folder.string());
    cnnlite::FashionMnist data = cnnlite::load_fashion_mnist(files, limits);
    std::string read;
    if (!data.train.empty()) read = with_commas(data.train.size()) + " training";
    if (!data.test.empty()) read += (read.empty() ? "" : " and ") + with_commas(data.test.size()) + " test";
    say(s, stage, read + " images read in " + format_seconds(now_seconds() - start));
    return data;
}

ModelFileKind model_file_kind(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return ModelFileKind::safetensors;  // its loader says what is wrong
    const cnnlite::InputFile file(path.string(), "model file");
    const std::string head = file.read_string(static_cast<std::size_t>(std::min<std::uint64_t>(file.size(), 9)), 0);
    if (head.compare(0, 8, std::string("\x89HDF\r\n\x1a\n", 8)) == 0 || head.compare(0, 4, "PK\x03\x04") == 0)
        return ModelFileKind::keras;
    // safetensors: an 8-byte little-endian header length, then the JSON header's '{'. A
    // protobuf (ONNX) has no signature: what is neither is read as ONNX where cnnlite has it.
    if (head.size() == 9 && head[8] == '{') return ModelFileKind::safetensors;
#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX
    return ModelFileKind::onnx;
#else
    return path.extension() == ".onnx" ? ModelFileKind::onnx : ModelFileKind::safetensors;
#endif
}

cnnlite::Model<float> load_trained_model(const Settings& s, const fs::path& path, const std::string& stage) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        cnnlite::fail("no trained model at '", path.string(), "': run `fashion_mnist train --out ", s.out,
                      "` first, or name a model file with --model FILE");
    const ModelFileKind kind = model_file_kind(path);
    if (kind == ModelFileKind::keras) {
        // Keras weights (HDF5 or a .keras zip, whatever the extension): the network is --arch's,
        // the paper's by default, whose layers carry Keras' names.
#if defined(CNNLITE_WITH_KERAS) && CNNLITE_WITH_KERAS
        cnnlite::check(s.rename.empty(), "--rename is for PyTorch's weights files; '", path.string(),
                       "' holds Keras weights, matched by Keras' layer names");
        const std::string arch = s.arch_or_default();
        say(s, stage, "Keras weights: loading them into the " + arch + " network");
        cnnlite::Model<float> model = architecture(arch).build(0);
        cnnlite::load_keras_weights(model, path.string());
        return model;
#else
        cnnlite::fail("'", path.string(), "' holds Keras weights (HDF5 or a .keras archive), and this fashion_mnist "
                      "was built without the Keras component: configure cnnlite with -DCNNLITE_WITH_KERAS=ON (Meson: "
                      "-Dkeras=enabled; Debian: apt-get install libhdf5-dev libzip-dev) and build it again");
#endif
    }
    if (kind == ModelFileKind::onnx) {
#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX
        cnnlite::check(s.rename.empty() && s.arch.empty(), "--rename and --arch are for weights-only files; '",
                       path.string(), "' is read as ONNX, which holds its own network");
        say(s, stage, "not a cnnlite model file or Keras weights: reading " + path.string() + " as ONNX");
        try {
            return cnnlite::load_onnx<float>(path.string());
        } catch (const cnnlite::Error& e) {
            cnnlite::fail("'", path.string(), "' is not a cnnlite model file (safetensors) or Keras weights, and "
                          "not an ONNX model cnnlite can read: ", e.what());
        }
#else
        cnnlite::fail("'", path.string(), "' looks like an ONNX model, and this fashion_mnist was built without the "
                      "ONNX component: configure cnnlite with -DCNNLITE_WITH_ONNX=ON (Meson: -Donnx=enabled; Debian: "
                      "apt-get install libonnx-dev libprotobuf-dev) and build it again");
#endif
    }
    say(s, stage, "loading the model " + path.string());
    const cnnlite::SafetensorsFile file = cnnlite::SafetensorsFile::load(path.string());
    if (cnnlite::has_architecture(file)) {
        cnnlite::check(s.rename.empty(), "--rename is for weights-only files; ", file.description(),
                       " is a cnnlite model file with its own layer names");
        // The file decides the network; --arch, when given, must agree with it.
        const auto recorded = file.metadata().find(arch_key);
        const std::string file_arch = recorded != file.metadata().end() ? recorded->second : "paper";
        cnnlite::check(s.arch.empty() || s.arch == file_arch, "--arch ", s.arch, " contradicts ", file.description(),
                       ", which holds a ", file_arch, " network; leave --arch out to use the file's");
        return cnnlite::load_model<float>(file);
    }
    // Weights without an architecture (PyTorch's): the network is --arch's (the paper's by default).
    const std::string arch = s.arch_or_default();
    say(s, stage, "weights only (no cnnlite architecture in the file): loading them into the " + arch + " network");
    cnnlite::WeightMatching matching;
    for (const std::string& pair : s.rename) {
        const auto eq = pair.find('=');
        cnnlite::check(matching.rename.emplace(pair.substr(0, eq), pair.substr(eq + 1)).second, "--rename names '",
                       pair.substr(0, eq), "' twice");
    }
    cnnlite::Model<float> model = architecture(arch).build(0);
    cnnlite::load_weights(model, file, matching);
    return model;
}

std::string recorded_arch(const Settings& s) {
    const bool resuming = s.resume;
    const fs::path path = resuming ? Paths(s).checkpoint() : fs::path(s.model_path());
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return "";
    try {
        const cnnlite::SafetensorsFile file = cnnlite::SafetensorsFile::load(path.string());
        const auto it = file.metadata().find(resuming ? "run.arch" : arch_key);
        if (it != file.metadata().end()) return it->second;
        // Files from before --arch hold the paper's network; weights-only files say nothing.
        return cnnlite::has_architecture(file) ? "paper" : "";
    } catch (const cnnlite::Error&) {
        return "";  // the stage that reads the file reports what is wrong with it
    }
}

Recipe recorded_recipe(const Settings& s, const fs::path& path) {
    Recipe recipe = s.recipe;
    std::error_code ec;
    if (!fs::exists(path, ec) || model_file_kind(path) != ModelFileKind::safetensors) return recipe;
    const cnnlite::SafetensorsFile file = cnnlite::SafetensorsFile::load(path.string());
    const auto it = file.metadata().find(recipe_key);
    if (it == file.metadata().end()) return recipe;
    const nlohmann::json saved = nlohmann::json::parse(it->second, nullptr, false);
    if (saved.is_object() && saved.contains("flip_tta") && saved["flip_tta"].is_boolean() && !s.overrides.flip_tta)
        recipe.flip_tta = saved["flip_tta"].get<bool>();
    return recipe;
}

TestStage open_test_stage(const Settings& s, const std::string& stage) {
    ModelOutputs target = outputs_for_model(s);
    if (!target.own)
        say(s, stage, "the model is not the run in " + s.out + ": its results go to " + target.paths.out.string());
    cnnlite::Model<float> model = load_trained_model(s, target.model, stage);
    cnnlite::FashionMnistLimits limits;
    limits.train_images = 0;  // the test set only
    cnnlite::FashionMnist data = load_data(s, stage, limits);
    return {std::move(target), std::move(model), std::move(data)};
}

nlohmann::json read_json_object(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return nlohmann::json::object();
    const cnnlite::InputFile file(path.string(), "JSON file");
    const std::vector<std::uint8_t> bytes = file.read_all(std::uint64_t(16) << 20);
    nlohmann::json value;
    try {
        value = nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception& e) {
        cnnlite::fail("'", path.string(), "' is not valid JSON (", e.what(), "); delete it or fix it");
    }
    cnnlite::check(value.is_object(), "'", path.string(), "' does not hold a JSON object; delete it or fix it");
    return value;
}

void write_json(const fs::path& path, const nlohmann::json& value) {
    ensure_dir(path.parent_path().empty() ? fs::path(".") : path.parent_path());
    cnnlite::write_file_atomically(path.string(), value.dump(2) + "\n");
}

namespace {
std::string local_time_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buffer[64];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return buffer;
}
}  // namespace

void record_stage(const Settings& s, const std::string& stage, double seconds, const nlohmann::json& extra) {
    record_stage(s, Paths(s), stage, seconds, extra);
}

void record_stage(const Settings& s, const Paths& paths, const std::string& stage, double seconds,
                  const nlohmann::json& extra) {
    nlohmann::json log = read_json_object(paths.run_log());
    nlohmann::json entry = extra.is_object() ? extra : nlohmann::json::object();
    entry["seconds"] = seconds;
    entry["finished"] = local_time_now();
    entry["threads"] = s.threads;
    entry["seed"] = s.seed;
    entry["command"] = s.command_line;
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) == 0)  // Linux reports kilobytes
        entry["peak_memory_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
    entry["data"] = s.data.empty() ? std::string("(search path)") : s.data;
    log["stages"][stage] = entry;
    write_json(paths.run_log(), log);
}

std::vector<std::int64_t> choose_indices(std::int64_t n, std::int64_t count, std::uint64_t seed, std::uint64_t stream) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
    std::iota(order.begin(), order.end(), std::int64_t(0));
    const std::int64_t k = std::min(n, count);
    const cnnlite::RandomStream random(seed, cnnlite::Purpose::data, stream);
    for (std::int64_t i = 0; i < k; ++i) {
        const auto j = i + static_cast<std::int64_t>(random.below(static_cast<std::uint64_t>(i),
                                                                  static_cast<std::uint64_t>(n - i)));
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
    order.resize(static_cast<std::size_t>(k));
    return order;
}

std::string pred_true_title(int predicted, int truth) {
    const auto& names = cnnlite::fashion_mnist_class_names();
    return names.at(static_cast<std::size_t>(predicted)) + " (" + names.at(static_cast<std::size_t>(truth)) + ")";
}

}  // namespace fm
