// fashion_mnist: the paper "Fashion-MNIST Image Classification using CNN and Grad-CAM" rebuilt
// step by step — exploratory analysis, the CNN, training, evaluation, Grad-CAM — with every
// table as CSV/JSON, every figure as PNG/SVG and one HTML report under the output folder.
//
//   fashion_mnist                      everything with the paper's recipe (= `all`)
//   fashion_mnist train --epochs 1     one stage, options after the subcommand
//   fashion_mnist predict shirt.jpg    classify your own pictures
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <exception>
#include <map>
#include <new>
#include <optional>
#include <string>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/folder_lock.hpp"
#include "cnnlite/core/threading.hpp"

#include "pipeline.hpp"

#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/distributed/threads.hpp"
#endif

namespace {

// Under mpirun only `train` runs on every rank; the other stages run on rank 0 alone.
void run_all(const fm::Settings& s) {
    if (s.rank == 0) fm::run_eda(s);
    if (s.rank == 0) fm::run_summary(s);
    fm::run_train(s);
    if (s.rank == 0) fm::run_evaluate(s);
    if (s.rank == 0) fm::run_explain(s);
}

void run_command(const std::string& name, const fm::Settings& s) {
    static const std::map<std::string, void (*)(const fm::Settings&)> stages = {
        {"all", run_all},           {"eda", fm::run_eda},         {"summary", fm::run_summary},
        {"train", fm::run_train},   {"evaluate", fm::run_evaluate}, {"explain", fm::run_explain},
        {"predict", fm::run_predict}};
    stages.at(name)(s);
}

/// "process 1234 on host, since 2026-12-04 10:00:00: fashion_mnist train ...", for the lock file.
std::string describe_this_process(const fm::Settings& s) {
    char host[256] = "?";
    ::gethostname(host, sizeof host - 1);
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char when[64];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    return "process " + std::to_string(::getpid()) + " on " + host + ", since " + when + ": " + s.command_line;
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
    const std::string command = fm::parse_command_line(argc, argv, settings);
    try {
#if defined(CNNLITE_WITH_MPI) && CNNLITE_WITH_MPI
        if (settings.threads == 0) settings.threads = cnnlite::distributed::threads_per_rank(world);
#else
        if (settings.threads == 0) settings.threads = cnnlite::available_cores();
#endif
        cnnlite::set_num_threads(settings.threads);
        const bool trains = command == "train" || command == "all";
        cnnlite::check(!(settings.resume && settings.overwrite), "--resume and --overwrite contradict each other");
        cnnlite::check(trains || (!settings.resume && !settings.overwrite), "--resume and --overwrite apply to train and all, not ",
                       command);
        // One run at a time in a folder: rank 0, the only one that writes, holds its lock.
        std::optional<cnnlite::FolderLock> lock;
        if (settings.rank == 0) lock.emplace(settings.out, describe_this_process(settings));
        if (trains && !settings.resume && settings.rank == 0) fm::prepare_new_run(settings);
        if (settings.rank == 0 || trains) run_command(command, settings);
        if (command != "predict" && settings.rank == 0) {
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
