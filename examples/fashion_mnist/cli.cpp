// The command line of fashion_mnist: the subcommands, the options every subcommand shares, and
// the ranges they accept. A number outside its range, or one that does not fit, is refused with
// the range named; nothing is clamped or wrapped.
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/threading.hpp"

#include "pipeline.hpp"

namespace fm {

namespace {

/// A CLI11 check that the text is a whole number in [lo, hi] written plainly (digits, a leading
/// '-' only where lo < 0), so that the conversion after it is exact.
template <class Int>
CLI::Validator whole_number(Int lo, Int hi, const std::string& why_hi = "") {
    const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
    return CLI::Validator(
        [lo, hi, range, why_hi](std::string& text) -> std::string {
            Int value{};
            const char* first = text.data();
            const char* last = first + text.size();
            const bool plain = !text.empty() && text.front() != '+';
            const auto [end, error] = std::from_chars(first, last, value);
            if (!plain || error != std::errc() || end != last)
                return "'" + text + "' is not a whole number in " + range;
            if (value < lo || value > hi)
                return text + " is outside " + range + (value > hi && !why_hi.empty() ? " (" + why_hi + ")" : "");
            return {};
        },
        range);
}

std::vector<std::string> architecture_list() {
    std::vector<std::string> names;
    for (const Architecture& a : architectures()) names.push_back(a.name);
    return names;
}

void add_options(CLI::App& app, Settings& s, const std::string& command) {
    constexpr std::int64_t most_images = std::numeric_limits<std::int32_t>::max();
    app.add_option("--data", s.data,
                   "Folder with the four Fashion-MNIST IDX files (default: $CNNLITE_DATA, ./data/fashion-mnist, "
                   "then /usr/share/datasets/fashion-mnist)")
        ->type_name("DIR");
    app.add_option("--out", s.out, "Folder for every output of one run (tables, figures, model, report)")
        ->type_name("DIR")
        ->capture_default_str();
    app.add_option("--arch", s.arch,
                   "Network: " + architecture_names() + " (default: the model file's for evaluate/explain/predict, "
                   "paper for a new run)")
        ->type_name("NAME")
        ->check(CLI::IsMember(architecture_list()));
    app.add_option("--recipe", s.recipe_name, "Training recipe of the architecture: fast or long")
        ->type_name("NAME")
        ->check(CLI::IsMember({"fast", "long"}))
        ->capture_default_str();
    RecipeOverrides& o = s.overrides;
    app.add_option_function<std::int64_t>("--epochs", [&o](const std::int64_t& v) { o.epochs = v; },
                                          "Training epochs (default: the recipe's)")
        ->type_name("N")
        ->check(whole_number<std::int64_t>(1, 100000));
    app.add_option_function<std::int64_t>("--batch-size", [&o](const std::int64_t& v) { o.batch_size = v; },
                                          "Mini-batch size (default: the recipe's)")
        ->type_name("N")
        ->check(whole_number<std::int64_t>(1, 65536));
    app.add_option_function<std::string>("--optimizer", [&o](const std::string& v) { o.optimizer = v; },
                                         "Optimiser: adam, adamw or sgd (Nesterov momentum 0.9)")
        ->type_name("NAME")
        ->check(CLI::IsMember({"adam", "adamw", "sgd"}));
    app.add_option_function<double>("--lr", [&o](const double& v) { o.learning_rate = v; },
                                    "Peak learning rate")
        ->type_name("RATE")
        ->check(CLI::Range(1e-8, 10.0));
    app.add_option_function<double>("--weight-decay", [&o](const double& v) { o.weight_decay = v; },
                                    "Weight decay (L2 for sgd, decoupled for adamw), never on biases or BatchNorm")
        ->type_name("X")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option_function<std::string>("--schedule", [&o](const std::string& v) { o.schedule = v; },
                                         "Learning-rate schedule per step: constant or cosine")
        ->type_name("NAME")
        ->check(CLI::IsMember({"constant", "cosine"}));
    app.add_option_function<double>("--warmup", [&o](const double& v) { o.warmup_epochs = v; },
                                    "Epochs of linear learning-rate warm-up")
        ->type_name("EPOCHS")
        ->check(CLI::Range(0.0, 1000.0));
    app.add_option_function<std::string>("--augment", [&o](const std::string& v) { o.augment = v; },
                                         "Training augmentation: none, flip-shift or flip-shift-erase")
        ->type_name("NAME")
        ->check(CLI::IsMember({"none", "flip-shift", "flip-shift-erase"}));
    app.add_option_function<double>("--ema", [&o](const double& v) { o.ema_decay = v; },
                                    "Decay of the weights' moving average (0: off)")
        ->type_name("DECAY")
        ->check(CLI::Range(0.0, 0.999999));
    app.add_option_function<double>("--label-smoothing", [&o](const double& v) { o.label_smoothing = v; },
                                    "Label smoothing of the training loss")
        ->type_name("X")
        ->check(CLI::Range(0.0, 0.99));
    app.add_option_function<double>("--clip-norm", [&o](const double& v) { o.clip_norm = v; },
                                    "Clip the gradients' global norm (0: off)")
        ->type_name("NORM")
        ->check(CLI::Range(0.0, 1e6));
    app.add_option_function<std::string>("--tta", [&o](const std::string& v) { o.flip_tta = v == "on"; },
                                         "Flip test-time augmentation in evaluate: on or off (default: the recipe's)")
        ->type_name("on|off")
        ->check(CLI::IsMember({"on", "off"}));
    app.add_option("--seed", s.seed, "Seed of the weights, shuffling, dropout and the images picked for figures")
        ->type_name("N")
        ->check(whole_number<std::uint64_t>(0, std::numeric_limits<std::uint64_t>::max()))
        ->capture_default_str();
    app.add_option("--threads", s.threads, "Threads (default: the cores available to this process)")
        ->type_name("N")
        ->check(whole_number<int>(1, cnnlite::max_threads(),
                                  "four per core; this process may use " + std::to_string(cnnlite::available_cores()) +
                                      " core(s)"));
    app.add_option_function<std::string>(
           "--adapt-threads", [&s](const std::string& v) { s.adapt_threads = v == "on"; },
           "Train each step on all threads or on one, whichever measures faster (another process on a core makes "
           "one thread faster); the weights are the same either way (default: on)")
        ->type_name("on|off")
        ->check(CLI::IsMember({"on", "off"}));
    app.add_option("--val", s.val, "Validation set = the first N training images")
        ->type_name("N")
        ->check(whole_number<std::int64_t>(1, most_images))
        ->capture_default_str();
    app.add_option("--limit", s.limit, "Train on only the first N of the remaining training images (quick runs)")
        ->type_name("N")
        ->check(whole_number<std::int64_t>(1, most_images));
    if (command == "explain" || command == "all")
        app.add_option("--methods-images", s.methods_images,
                       "Test images the explanation methods are compared on (0: no comparison; default: 1% of the "
                       "test set, 8 to 100)")
            ->type_name("N")
            ->check(whole_number<std::int64_t>(0, most_images));
    app.add_option("--model", s.model,
                   "Weights for evaluate/explain/predict/export (default: OUT/model.safetensors): a cnnlite model file, "
                   "--arch's weights saved by PyTorch (safetensors.torch.save_file of its state_dict), Keras weights "
                   "(.weights.h5 or .keras of Keras 3, .h5 of Keras 2), or an ONNX model (the last two in builds "
                   "with the Keras and ONNX components); recognised by content")
        ->type_name("FILE");
    app.add_option("--rename", s.rename,
                   "For PyTorch weights: read the file's module FILE_MODULE (a tensor name before its last '.') as "
                   "the paper network's layer LAYER (conv2d, dense, dense_1); repeatable")
        ->type_name("FILE_MODULE=LAYER")
        ->check([](const std::string& pair) {
            const auto eq = pair.find('=');
            return eq == std::string::npos || eq == 0 || eq + 1 == pair.size()
                       ? "'" + pair + "' is not FILE_MODULE=LAYER"
                       : std::string();
        });
    app.add_flag("--resume", s.resume, "Continue the run in OUT from its checkpoint");
    app.add_flag("--overwrite", s.overwrite, "Replace the run that OUT holds with a new one (train, all)");
    app.add_flag("--quiet", s.quiet, "Print only errors (and predict's results)");
    if (command == "predict")
        app.add_option("images", s.images, "PNG or JPEG pictures of clothing, any size or colour")
            ->type_name("IMAGE...")
            ->required();
    if (command == "export") {
        app.add_option("--format", s.export_format,
                       "Format of the file written: onnx (opset 17, inference graph) or keras (Keras 3 .weights.h5)")
            ->type_name("NAME")
            ->check(CLI::IsMember({"onnx", "keras"}))
            ->capture_default_str();
        app.add_option("--to", s.export_to, "The file to write (atomically; --out stays the run's folder)")
            ->type_name("FILE")
            ->required();
    }
}

}  // namespace

const std::vector<Command>& commands() {
    static const std::vector<Command> list = {
        {"all", "Everything in order: eda, summary, train, evaluate, explain (the default)"},
        {"eda", "Exploratory analysis: class counts, pixel-ratio statistics, ANOVA, UMAP"},
        {"summary", "Print the network's layers, output shapes and parameter counts"},
        {"train", "Train the network (--arch) with its recipe (--recipe) and keep the weights with the lowest "
                  "validation loss"},
        {"evaluate", "Test accuracy, per-class accuracy, confusion matrix and 50 sample predictions"},
        {"explain", "Grad-CAM maps and figures for test images"},
        {"predict", "Classify your own pictures and write a Grad-CAM overlay for each"},
        {"export", "Write the trained model (OUT's or --model) for other runtimes: --format onnx|keras --to FILE"},
    };
    return list;
}

std::string parse_command_line(int argc, char** argv, Settings& s) {
    CLI::App app{
        "fashion_mnist: the Fashion-MNIST CNN + Grad-CAM paper, reproduced with cnnlite.\n"
        "Without a subcommand it runs `all`. Options go after the subcommand, e.g.\n"
        "  fashion_mnist train --epochs 1 --out /tmp/fm\n"
        "Outputs (under --out): eda/*.csv, history.csv, model.safetensors, checkpoint.safetensors,\n"
        "metrics.json, gradcam/cams.npy, figures/*.png|svg and report.html.",
        "fashion_mnist"};
    app.require_subcommand(0, 1);
    app.fallthrough(false);
    add_options(app, s, "all");  // options are also accepted without a subcommand (then `all` runs)
    std::vector<CLI::App*> subcommands;
    for (const Command& c : commands()) {
        CLI::App* sub = app.add_subcommand(c.name, c.help);
        add_options(*sub, s, c.name);
        subcommands.push_back(sub);
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::exit(app.exit(e));
    }
    for (int i = 0; i < argc; ++i) {
        const std::string arg = i == 0 ? std::string("fashion_mnist") : std::string(argv[i]);
        const bool plain = !arg.empty() && arg.find_first_of(" \t'\"$\\") == std::string::npos;
        s.command_line += (i ? " " : "") + (plain ? arg : "'" + arg + "'");
    }
    std::string command = "all";
    for (std::size_t i = 0; i < subcommands.size(); ++i)
        if (subcommands[i]->parsed()) command = commands()[i].name;
    return command;
}

void resolve_recipe(Settings& s, const std::string& arch) {
    const Architecture& a = architecture(arch);
    Recipe r = s.recipe_name == "long" ? a.long_recipe : a.fast;
    const RecipeOverrides& o = s.overrides;
    if (o.epochs) r.epochs = *o.epochs;
    if (o.batch_size) r.batch_size = *o.batch_size;
    if (o.optimizer) r.optimizer = *o.optimizer;
    if (o.learning_rate) r.learning_rate = *o.learning_rate;
    if (o.weight_decay) r.weight_decay = *o.weight_decay;
    if (o.schedule) r.schedule = *o.schedule;
    if (o.warmup_epochs) r.warmup_epochs = *o.warmup_epochs;
    if (o.augment) r.augment = *o.augment;
    if (o.ema_decay) r.ema_decay = *o.ema_decay;
    if (o.label_smoothing) r.label_smoothing = *o.label_smoothing;
    if (o.clip_norm) r.clip_norm = *o.clip_norm;
    if (o.flip_tta) r.flip_tta = *o.flip_tta;
    cnnlite::check(r.warmup_epochs <= static_cast<double>(r.epochs), "--warmup ", r.warmup_epochs,
                   " is longer than the ", r.epochs, " epochs of the run");
    s.recipe = r;
    s.epochs = r.epochs;
    s.batch_size = r.batch_size;
}

}  // namespace fm
