// The program around the pipeline: the command line, MPI ranks and their threads, the lock on
// the output folder, the report after every stage, and errors as one line on stderr with exit
// status 1 (under MPI, an error on some ranks only ends the whole job). main.cpp has the
// pipeline itself.
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

int fm::run_program(int argc, char** argv, const std::map<std::string, Stage>& stages) {
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
        // Without --arch, a run that continues from files takes their network; a new run trains the paper's.
        if (settings.arch.empty() && (!trains || settings.resume)) settings.arch = fm::recorded_arch(settings);
        fm::resolve_recipe(settings, settings.arch_or_default());
        cnnlite::check(!(settings.resume && settings.overwrite), "--resume and --overwrite contradict each other");
        cnnlite::check(trains || (!settings.resume && !settings.overwrite), "--resume and --overwrite apply to train and all, not ",
                       command);
        // One run at a time in a folder: rank 0, the only one that writes, holds its lock.
        // export only reads the folder (model files are replaced atomically) and writes --to.
        const bool writes_out = command != "export";
        std::optional<cnnlite::FolderLock> lock;
        if (settings.rank == 0 && writes_out) lock.emplace(settings.out, describe_this_process(settings));
        if (trains && !settings.resume && settings.rank == 0) fm::prepare_new_run(settings);
        if (settings.rank == 0 || trains) stages.at(command)(settings);
        if (command != "predict" && writes_out && settings.rank == 0) {
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
