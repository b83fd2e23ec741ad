// fashion_mnist: the paper "Fashion-MNIST Image Classification using CNN and Grad-CAM" rebuilt
// step by step — exploratory analysis, the CNN, training, evaluation, Grad-CAM — with every
// table as CSV/JSON, every figure as PNG/SVG and one HTML report under the output folder.
//
//   fashion_mnist                      everything with the paper's recipe (= `all`)
//   fashion_mnist train --epochs 1     one stage, options after the subcommand
//   fashion_mnist predict shirt.jpg    classify your own pictures
#include <cstdio>
#include <exception>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/threading.hpp"

#include "pipeline.hpp"

#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/distributed/threads.hpp"
#endif

namespace {

/// The options every subcommand takes, bound to one Settings.
void add_options(CLI::App& app, fm::Settings& s, bool predict) {
    app.add_option("--data", s.data,
                   "Folder with the four Fashion-MNIST IDX files (default: $CNNLITE_DATA, ./data/fashion-mnist, "
                   "then /usr/share/datasets/fashion-mnist)")
        ->type_name("DIR");
    app.add_option("--out", s.out, "Folder for every output (tables, figures, model, report)")
        ->type_name("DIR")
        ->capture_default_str();
    app.add_option("--epochs", s.epochs, "Training epochs")->type_name("N")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--batch-size", s.batch_size, "Mini-batch size")
        ->type_name("N")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--seed", s.seed, "Seed of the weights, shuffling, dropout and the images picked for figures")
        ->type_name("N")
        ->capture_default_str();
    app.add_option("--threads", s.threads, "Threads (default: the cores available to this process)")
        ->type_name("N")
        ->check(CLI::PositiveNumber);
    app.add_option("--val", s.val, "Validation set = the first N training images")
        ->type_name("N")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--limit", s.limit, "Train on only the first N of the remaining training images (quick runs)")
        ->type_name("N")
        ->check(CLI::PositiveNumber);
    app.add_option("--model", s.model, "Weights for evaluate/explain/predict (default: OUT/model.safetensors)")
        ->type_name("FILE");
    app.add_flag("--resume", s.resume, "Continue training from OUT/checkpoint.safetensors");
    app.add_flag("--quiet", s.quiet, "Print only errors (and predict's results)");
    if (predict)
        app.add_option("images", s.images, "PNG or JPEG pictures of clothing, any size or colour")
            ->type_name("IMAGE...")
            ->required();
}

// Under mpirun only `train` runs on every rank; the other stages run on rank 0 alone.
void run_all(const fm::Settings& s) {
    if (s.rank == 0) fm::run_eda(s);
    if (s.rank == 0) fm::run_summary(s);
    fm::run_train(s);
    if (s.rank == 0) fm::run_evaluate(s);
    if (s.rank == 0) fm::run_explain(s);
}

/// " (rank r of n)" when several ranks run, so that each error says where it happened.
std::string rank_label(const fm::Settings& s) {
    return s.ranks > 1 ? " (rank " + std::to_string(s.rank) + " of " + std::to_string(s.ranks) + ")" : "";
}

}  // namespace

int main(int argc, char** argv) {
    fm::Settings settings;
#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
    // Built with MPI: under `mpirun -np N` every rank runs this program (see README.md).
    cnnlite::distributed::MpiEnvironment mpi(&argc, &argv);
    const cnnlite::distributed::Communicator world;
    settings.rank = world.rank();
    settings.ranks = world.size();
#endif
    CLI::App app{
        "fashion_mnist: the Fashion-MNIST CNN + Grad-CAM paper, reproduced with cnnlite.\n"
        "Without a subcommand it runs `all`. Options go after the subcommand, e.g.\n"
        "  fashion_mnist train --epochs 1 --out /tmp/fm\n"
        "Outputs (under --out): eda/*.csv, history.csv, model.safetensors, checkpoint.safetensors,\n"
        "metrics.json, gradcam/cams.npy, figures/*.png|svg and report.html.",
        "fashion_mnist"};
    app.require_subcommand(0, 1);
    app.fallthrough(false);
    // Options are also accepted without a subcommand (then `all` runs).
    add_options(app, settings, false);

    struct Command {
        const char* name;
        const char* help;
        std::function<void(const fm::Settings&)> run;
    };
    const std::vector<Command> commands = {
        {"all", "Everything in order: eda, summary, train, evaluate, explain (the default)", run_all},
        {"eda", "Exploratory analysis: class counts, pixel-ratio statistics, ANOVA, UMAP (when available)",
         fm::run_eda},
        {"summary", "Print the network's layers, output shapes and parameter counts", fm::run_summary},
        {"train", "Train the paper's CNN (Adam, batch 64) and keep the weights with the lowest validation loss",
         fm::run_train},
        {"evaluate", "Test accuracy, per-class accuracy, confusion matrix and 50 sample predictions",
         fm::run_evaluate},
        {"explain", "Grad-CAM maps and figures for test images", fm::run_explain},
        {"predict", "Classify your own pictures and write a Grad-CAM overlay for each", fm::run_predict},
    };
    std::vector<CLI::App*> subcommands;
    for (const Command& c : commands) {
        CLI::App* sub = app.add_subcommand(c.name, c.help);
        add_options(*sub, settings, std::string(c.name) == "predict");
        subcommands.push_back(sub);
    }

    CLI11_PARSE(app, argc, argv);
    for (int i = 0; i < argc; ++i) {
        const std::string arg = i == 0 ? std::string("fashion_mnist") : std::string(argv[i]);
        const bool plain = !arg.empty() && arg.find_first_of(" \t'\"$\\") == std::string::npos;
        settings.command_line += (i ? " " : "") + (plain ? arg : "'" + arg + "'");
    }

    try {
#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
        if (settings.threads == 0) settings.threads = cnnlite::distributed::threads_per_rank(world);
#else
        if (settings.threads == 0) settings.threads = cnnlite::available_cores();
#endif
        cnnlite::set_num_threads(settings.threads);
        std::size_t chosen = 0;  // `all` unless a subcommand was given
        for (std::size_t i = 0; i < subcommands.size(); ++i)
            if (subcommands[i]->parsed()) chosen = i;
        const Command& command = commands[chosen];
        const std::string name = command.name;
        if (settings.rank == 0 || name == "train" || name == "all") command.run(settings);
        if (name != "predict" && settings.rank == 0) {
            fm::write_report(settings);
            fm::say(settings, "report", "wrote " + fm::Paths(settings).report().string());
        }
        return 0;
    } catch (const cnnlite::Error& e) {
        std::fprintf(stderr, "fashion_mnist: error%s: %s\n", rank_label(settings).c_str(), e.what());
#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
        // An error every rank raised together ends the run normally; one seen by some ranks
        // only must end the job, or the others would wait for them forever.
        if (dynamic_cast<const cnnlite::distributed::CollectiveError*>(&e)) return 1;
#endif
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "fashion_mnist: error%s: out of memory\n", rank_label(settings).c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fashion_mnist: error%s: %s\n", rank_label(settings).c_str(), e.what());
    }
#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
    if (settings.ranks > 1) world.abort(1);
#endif
    return 1;
}
