// The paper's Fashion-MNIST pipeline (examples/fashion_mnist): the settings every subcommand
// shares, where each stage writes under the output folder, and the stages themselves. Each
// stage reads what earlier stages left in the output folder, so they can run one at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/core/tensor.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/nn/sequential.hpp"

#include "architectures.hpp"

namespace fm {

namespace fs = std::filesystem;

/// Recipe settings given on the command line, each replacing the recipe's own.
struct RecipeOverrides {
    std::optional<std::int64_t> epochs, batch_size;
    std::optional<std::string> optimizer, schedule, augment;
    std::optional<double> learning_rate, weight_decay, warmup_epochs, ema_decay, label_smoothing, clip_norm;
    std::optional<bool> flip_tta;
};

/// The command line: one set of options shared by every subcommand.
struct Settings {
    std::string data;                      ///< folder of the four IDX files; empty = search path
    std::string out = "out/fashion_mnist"; ///< where every output goes
    std::string arch;                      ///< --arch; empty: the model file's, or "paper" for a new run
    std::string recipe_name = "fast";      ///< --recipe fast|long
    RecipeOverrides overrides;             ///< single recipe settings from the command line
    Recipe recipe;                         ///< the resolved recipe of arch (resolve_recipe)
    std::int64_t epochs = 50;              ///< = recipe.epochs once resolved
    std::int64_t batch_size = 64;          ///< = recipe.batch_size once resolved
    std::uint64_t seed = 0;
    int threads = 0;                       ///< 0 until main() fills in the available cores
    bool adapt_threads = true;             ///< --adapt-threads: each step on the team or one thread, whichever is faster
    int rank = 0;                          ///< this process's MPI rank (0 without MPI): only rank 0 writes and talks
    int ranks = 1;                         ///< MPI ranks running the program (`mpirun -np N`)
    std::int64_t val = 5000;               ///< validation = the first `val` training images
    std::int64_t limit = -1;               ///< train on the first `limit` of the rest; -1 = all
    std::int64_t methods_images = -1;      ///< --methods-images: explain's method comparison sample; -1 = default, 0 = skip
    std::string model;                     ///< weights for evaluate/explain/predict; empty = OUT/model.safetensors
    std::vector<std::string> rename;       ///< FILE_MODULE=LAYER pairs for weights-only (PyTorch) model files
    bool resume = false;
    bool overwrite = false;                ///< train/all may replace the run OUT holds
    bool quiet = false;
    std::vector<std::string> images;       ///< predict's inputs
    std::string export_format = "onnx";    ///< export's --format
    std::string export_to;                 ///< export's --to FILE
    std::string command_line;              ///< how the program was called (for run.json and the report)

    /// The weights file evaluate, explain and predict read.
    std::string model_path() const;
    /// The architecture a new run trains: --arch, or the paper's network.
    std::string arch_or_default() const { return arch.empty() ? architectures().front().name : arch; }
};

/// Fills s.recipe (and s.epochs, s.batch_size) from the architecture `arch`'s --recipe and the
/// overrides; errors name a setting whose value is out of range.
void resolve_recipe(Settings& s, const std::string& arch);

/// The files under the output folder, in one place so that stages and the report agree.
struct Paths {
    fs::path out;
    explicit Paths(const Settings& s) : out(s.out) {}
    explicit Paths(fs::path folder) : out(std::move(folder)) {}
    fs::path eda() const { return out / "eda"; }
    fs::path figures() const { return out / "figures"; }
    fs::path gradcam() const { return out / "gradcam"; }
    fs::path class_counts() const { return eda() / "class_counts.csv"; }
    fs::path pixel_ratio_stats() const { return eda() / "pixel_ratio_stats.csv"; }
    fs::path anova() const { return eda() / "anova.csv"; }
    fs::path umap() const { return eda() / "umap.csv"; }
    fs::path history() const { return out / "history.csv"; }
    fs::path model() const { return out / "model.safetensors"; }
    fs::path checkpoint() const { return out / "checkpoint.safetensors"; }
    fs::path metrics() const { return out / "metrics.json"; }
    fs::path run_log() const { return out / "run.json"; }
    fs::path model_summary() const { return out / "model_summary.txt"; }
    fs::path cams() const { return gradcam() / "cams.npy"; }
    fs::path cams_index() const { return gradcam() / "cams_index.csv"; }
    fs::path report() const { return out / "report.html"; }
    fs::path predictions() const { return out / "predict"; }
    /// figures/<name><ext>
    fs::path figure(const std::string& name, const std::string& ext) const { return figures() / (name + ext); }
};

// --- the command line (cli.cpp) ----------------------------------------------------------
/// A subcommand: its name and its line in --help.
struct Command {
    const char* name;
    const char* help;
};
/// The subcommands in --help order; `all` first.
const std::vector<Command>& commands();
/// Parses the command line into `s` (and s.command_line); returns the subcommand's name.
/// --help and bad options print CLI11's message and exit.
std::string parse_command_line(int argc, char** argv, Settings& s);

// --- the run an output folder holds (run_folder.cpp) ---------------------------------------
/// A fresh run identity: 16 hex digits.
std::string new_run_id();
/// OUT/run.json's "run_id" ("" when the folder has none).
std::string folder_run_id(const Paths& paths);
/// "run 5f3a..., 12 epoch(s) trained", for messages.
std::string describe_folder_run(const Paths& paths);
/// Whether OUT holds a run: an identity, a model or a checkpoint.
bool folder_holds_run(const Paths& paths);
/// Before a new run (train or all without --resume): refuses to start over the run that OUT
/// holds unless --overwrite, which removes that run's files first.
void prepare_new_run(const Settings& s);
/// The model evaluate and explain use, and where their results go.
struct ModelOutputs {
    fs::path model;      ///< the weights file
    Paths paths;         ///< OUT for the folder's own model, OUT/evaluations/<name>/ for another run's
    std::string run_id;  ///< the model's run ("" when the file records none)
    bool own = true;     ///< the model is the folder's own (or the folder has no run of its own)
};
/// Decides ModelOutputs for --model (default OUT/model.safetensors); errors when it is missing.
ModelOutputs outputs_for_model(const Settings& s);
/// What evaluate and explain start from: the model they examine, where its results go, and
/// the test set (the training file is not read).
struct TestStage {
    ModelOutputs target;
    cnnlite::Model<float> model;
    cnnlite::FashionMnist data;
};
/// Loads TestStage for `stage` ("evaluate", "explain"), saying where results of a model from
/// elsewhere go.
TestStage open_test_stage(const Settings& s, const std::string& stage);

// --- the program (program.cpp) ---------------------------------------------------------
/// A stage or `all`: runs with the parsed settings, throws cnnlite::Error on bad input.
using Stage = void (*)(const Settings&);
/// Parses the command line, sets up threads (and MPI ranks), locks the output folder, runs
/// the subcommand's entry of `stages`, refreshes the report, and turns errors into a message
/// and exit status 1. Returns main()'s exit status.
int run_program(int argc, char** argv, const std::map<std::string, Stage>& stages);

// --- stages (one source file each) ------------------------------------------------------
void run_eda(const Settings& s);
void run_summary(const Settings& s);
void run_train(const Settings& s);
void run_evaluate(const Settings& s);
void run_explain(const Settings& s);
void run_predict(const Settings& s);
/// export --to FILE: the folder's model (or --model) as ONNX.
void run_export(const Settings& s);
/// Rebuilds OUT/report.html from whatever the stages have written so far.
void write_report(const Settings& s);

// --- shared helpers (common.cpp) --------------------------------------------------------
/// Prints a progress line "[stage] message" (unless --quiet) and flushes.
void say(const Settings& s, const std::string& stage, const std::string& message);
/// Seconds since `start` (steady clock, from a value returned by now_seconds()).
double now_seconds();
/// "1.2 s", "3 min 04 s".
std::string format_seconds(double seconds);
/// Number with thousands separators: 60000 -> "60,000".
std::string with_commas(std::int64_t n);

/// Loads the data set (from --data, or the search path) and says where from; `limits` says how
/// many images of each part the stage needs (all by default), so nothing more is read.
cnnlite::FashionMnist load_data(const Settings& s, const std::string& stage,
                                const cnnlite::FashionMnistLimits& limits = {});

/// What a --model file holds.
enum class ModelFileKind { safetensors, keras, onnx };
/// The kind of model file `path` is, by its first bytes (see common.cpp).
ModelFileKind model_file_kind(const fs::path& path);
/// Loads the network in `path`: a cnnlite model file (its architecture decides; --arch must
/// agree), weights only, PyTorch's safetensors or Keras' HDF5 or .keras (loaded into --arch's
/// network, the paper's by default), or an ONNX model (its own network).
cnnlite::Model<float> load_trained_model(const Settings& s, const fs::path& path, const std::string& stage);
/// The architecture recorded by the run that evaluate, explain, predict, summary and train
/// --resume continue: the model file's (--model or OUT's), or for --resume the checkpoint's;
/// "" when there is none or it does not say.
std::string recorded_arch(const Settings& s);
/// The recipe to evaluate the model in `path` with: s.recipe, but with the test-time
/// augmentation the model was trained for (recorded in its file) unless --tta says otherwise.
Recipe recorded_recipe(const Settings& s, const fs::path& path);

/// Reads a JSON object file; an empty object when the file does not exist. A file that exists
/// but is not a regular file, is larger than 16 MiB or is not a JSON object is an error naming it.
nlohmann::json read_json_object(const fs::path& path);
/// Writes `value` (pretty-printed) atomically.
void write_json(const fs::path& path, const nlohmann::json& value);
/// Records a finished stage in run.json of `paths` (OUT by default): its wall time, when it
/// ended, and the settings.
void record_stage(const Settings& s, const std::string& stage, double seconds,
                  const nlohmann::json& extra = nlohmann::json::object());
void record_stage(const Settings& s, const Paths& paths, const std::string& stage, double seconds,
                  const nlohmann::json& extra = nlohmann::json::object());

/// `count` distinct indices in [0, n), drawn from the seed (partial Fisher-Yates over
/// RandomStream(seed, Purpose::data, stream)); fewer when n < count.
std::vector<std::int64_t> choose_indices(std::int64_t n, std::int64_t count, std::uint64_t seed, std::uint64_t stream);
/// The `stream` keys of the random choices, so that evaluate and explain draw the same images.
inline constexpr std::uint64_t sample_stream = 1;       ///< the 50 test images of test_samples / gradcam_samples
inline constexpr std::uint64_t per_class_stream = 2;    ///< gradcam_per_class
inline constexpr std::uint64_t shirt_stream = 3;        ///< gradcam_shirt
inline constexpr std::uint64_t methods_stream = 4;      ///< the sample of the explanation-method comparison
/// Test images the explanation methods are compared on: `requested` (--methods-images; 0 skips
/// the comparison), by default 1% of the test set, at least 8 and at most 100 (each image costs
/// every method a few hundred forward passes for its faithfulness metrics; 100 of the 10,000
/// take about a minute on two cores); never more than the test set holds.
inline std::int64_t methods_sample_size(std::int64_t test_images, std::int64_t requested) {
    const std::int64_t wanted = requested >= 0 ? requested : std::clamp<std::int64_t>(test_images / 100, 8, 100);
    return std::min<std::int64_t>(test_images, wanted);
}

/// "pred (true)" as the paper titles test images.
std::string pred_true_title(int predicted, int truth);

/// Creates `dir` (and parents); errors name the folder.
void ensure_dir(const fs::path& dir);

}  // namespace fm

namespace fm {

/// The paper's Grad-CAM of a batch: for each image the map of its predicted class.
struct GradCams {
    cnnlite::Tensor<float> cams;           ///< [N, H, W], each map ReLU'd and divided by its max (0 where all 0)
    std::vector<int> predicted;            ///< predicted label per image
    cnnlite::Tensor<float> probabilities;  ///< [N, classes] softmax output
    std::string layer;                     ///< the layer explained
    std::string layer_output;              ///< its per-image output shape, e.g. "[64, 28, 28]"
};

/// The layer whose feature maps the CAM methods explain: the input of a global pooling layer
/// (a residual network's last block, after its ReLU), or "" for the library's default, the
/// last Conv2D (the paper's choice).
std::string cam_layer(const cnnlite::Model<float>& model);

/// Grad-CAM (softmax probability of the predicted class, the last Conv2D's output after its
/// ReLU, channel-mean gradient weights, ReLU, divided by the max) of `images` [N, 1, 28, 28],
/// at cam_layer(model).
GradCams paper_gradcam(const cnnlite::Model<float>& model, const cnnlite::Tensor<float>& images);

/// The columns of explain/methods.csv: method, the four faithfulness means, images/s, then the
/// 95% bootstrap interval of the deletion and of the insertion AUC.
inline std::vector<std::string> methods_columns() {
    return {"method",          "deletion_auc",      "insertion_auc",    "road_morf",         "road_lerf",
            "images_per_second", "deletion_auc_low", "deletion_auc_high", "insertion_auc_low", "insertion_auc_high"};
}

/// Compares the library's explanation methods on a sample of `test`: writes explain/methods.csv
/// and figures/explain_methods.png under `paths`; returns the seconds it took. With an empty
/// sample (--methods-images 0) it removes those two files of an earlier explain instead, so that
/// the folder never shows a comparison of other weights.
double compare_explanation_methods(const Settings& s, const Paths& paths, const cnnlite::Model<float>& model,
                                   const cnnlite::Dataset& test);

/// `v` with `decimals` digits after the point.
std::string fixed(double v, int decimals);

}  // namespace fm
