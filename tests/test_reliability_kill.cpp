// Crash safety of training, end to end: the fashion_mnist program is killed with SIGKILL in
// the middle of an epoch, in the middle of writing its checkpoint, after the checkpoint's temp
// file is complete but before it is renamed into place, and right after the rename, and each
// time `train --resume` continues. The final model file, history and metrics must be bitwise
// identical to those of an uninterrupted run with the same seed (timing values excluded).
//
// The kills are placed exactly, without any hook in the program or the library: the test
// traces the program's system calls (ptrace) and kills it at the chosen write(2) to the
// checkpoint's temp file or at the rename(2) of the checkpoint. The mid-epoch kill comes a set
// time after a checkpoint's rename, and at the latest when the program opens its first output of
// the next epoch, so that a slow or loaded machine cannot move it past that epoch. Linux only.
//
// The program is found as tests/program_runner.hpp says.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/io/csv.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/checkpoint.hpp"
#include "program_runner.hpp"
#include "source_dir.hpp"

namespace test_reliability_kill {

namespace fs = std::filesystem;

namespace {

const fs::path source_dir = test_support::source_dir();

using test_support::read_text;
using test_support::TempDir;

/// Where to kill the traced program, relative to the n-th checkpoint this process writes.
enum class KillAt {
    nothing,        ///< run to the end
    mid_epoch,      ///< `delay` after the n-th checkpoint's rename, before the next epoch creates a file
    mid_write,      ///< at a write(2) to the n-th checkpoint's temp file once it holds `bytes`
    before_rename,  ///< the n-th checkpoint's temp file complete, its rename(2) not yet done
    after_rename,   ///< the n-th checkpoint renamed into place, nothing after that
};

struct Run {
    bool killed = false;  ///< ended by our SIGKILL
    int status = -1;      ///< exit status otherwise
    std::string err;      ///< its standard error
};

/// ptrace's data argument is a pointer-sized value (ptrace is variadic: pass exactly that).
void* as_arg(long value) { return reinterpret_cast<void*>(value); }

/// A check inside the tracing loop, which runs for every system call: silent unless it fails.
void must(bool ok, const char* what) {
    if (!ok) FAIL("tracing the program failed: ", what, " (", std::strerror(errno), ")");
}

/// Reads the NUL-terminated string at `address` in process `pid`'s memory.
std::string peek_string(pid_t pid, unsigned long long address) {
    const int fd = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    char buffer[4096] = {};
    const ssize_t got = ::pread(fd, buffer, sizeof buffer - 1, static_cast<off_t>(address));
    ::close(fd);
    return got > 0 ? std::string(buffer) : std::string();
}

/// What file descriptor `fd` of process `pid` refers to.
std::string fd_target(pid_t pid, unsigned long long fd) {
    std::error_code ec;
    return fs::read_symlink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd), ec).string();
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

/// Waits for traced process `pid` to stop or end, until `deadline` at most; false if it is
/// still running then. Polls: the process waits at each system call until it is seen.
bool wait_until(pid_t pid, int& status, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        const pid_t got = ::waitpid(pid, &status, WNOHANG);
        if (got == pid) return true;
        must(got == 0, "waitpid");
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) return false;
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::microseconds(100)));
    }
}

/// Whether the system call entry `nr` with arguments `a` creates or truncates a file.
bool creates_file(long nr, const std::uint64_t* a) {
    if (nr == SYS_openat) return (a[2] & (O_CREAT | O_TRUNC)) != 0;
#ifdef SYS_open
    if (nr == SYS_open) return (a[1] & (O_CREAT | O_TRUNC)) != 0;
#endif
#ifdef SYS_creat
    if (nr == SYS_creat) return true;
#endif
    return false;
}

/// Runs the program with `args`, stdout and stderr to files in `scratch`, and kills it where
/// `at` says, counting checkpoints from the first this process writes (`nth` = 1).
Run run(const std::vector<std::string>& args, const fs::path& scratch, KillAt at = KillAt::nothing, int nth = 0,
        std::uint64_t bytes = 0, std::chrono::milliseconds delay = {}) {
    const fs::path exe = test_support::fashion_mnist_program();
    REQUIRE_MESSAGE(fs::exists(exe), "the fashion_mnist program is not at ", exe.string(),
                    "; build the fashion_mnist target (examples) first or set FASHION_MNIST_EXE");
    const fs::path err_path = scratch / "stderr.txt";
    std::vector<std::string> argv_text = {exe.string()};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    const bool trace = at != KillAt::nothing;

    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int out = ::open((scratch / "stdout.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
        if (trace && ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) ::_exit(125);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }

    Run result;
    int status = 0;
    if (trace) {
        // The child stops at its exec; from then on it stops at every system call's entry and exit.
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE_MESSAGE(WIFSTOPPED(status), "the program did not stop for tracing (status ", status, ")");
        REQUIRE(::ptrace(PTRACE_SETOPTIONS, pid, nullptr,
                         as_arg(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC)) == 0);
        const std::string checkpoint_name = "/checkpoint.safetensors";
        const std::string temp_marker = "/.checkpoint.safetensors.tmp-";
        int checkpoints = 0;       // checkpoint renames completed
        bool in_rename = false;    // between a checkpoint rename's entry and exit
        int signal_to_pass = 0;
        bool kill_now = false, stop_tracing = false;
        std::optional<std::chrono::steady_clock::time_point> deadline;  // mid_epoch: kill then
        const int wanted = nth;
        while (!kill_now && !stop_tracing) {
            must(::ptrace(PTRACE_SYSCALL, pid, nullptr, as_arg(signal_to_pass)) == 0, "PTRACE_SYSCALL");
            signal_to_pass = 0;
            if (deadline) {
                if (!wait_until(pid, status, *deadline)) {
                    kill_now = true;  // running, or stopped at a system call, inside the epoch
                    break;
                }
            } else {
                must(::waitpid(pid, &status, 0) == pid, "waitpid");
            }
            if (WIFEXITED(status) || WIFSIGNALED(status)) break;
            if (!WIFSTOPPED(status)) continue;
            if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
                // An exec event (status >> 16 set) passes silently; real signals are delivered.
                if (!(status >> 16)) signal_to_pass = WSTOPSIG(status);
                continue;
            }
            __ptrace_syscall_info info{};
            must(::ptrace(PTRACE_GET_SYSCALL_INFO, pid, as_arg(sizeof info), &info) > 0, "PTRACE_GET_SYSCALL_INFO");
            if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
                const auto nr = static_cast<long>(info.entry.nr);
                const auto* a = info.entry.args;
                if (deadline && creates_file(nr, a)) {
                    // The epoch's training is over and its outputs begin: this is the last
                    // moment that is still before them (a loaded machine ran the epoch faster
                    // than `delay`, relative to the rest).
                    MESSAGE("mid-epoch kill: the epoch's training ended within ", delay.count(),
                            " ms; killed before its first output instead");
                    kill_now = true;
                    break;
                }
                if (at == KillAt::mid_write && nr == SYS_write && checkpoints + 1 == wanted) {
                    const std::string file = fd_target(pid, a[0]);
                    std::error_code ec;
                    if (file.find(temp_marker) != std::string::npos && fs::file_size(file, ec) >= bytes && !ec)
                        kill_now = true;
                }
                std::string target;
                if (nr == SYS_rename) target = peek_string(pid, a[1]);
                if (nr == SYS_renameat || nr == SYS_renameat2) target = peek_string(pid, a[3]);
                if (ends_with(target, checkpoint_name)) {
                    in_rename = true;
                    if (at == KillAt::before_rename && checkpoints + 1 == wanted) kill_now = true;
                }
            } else if (info.op == PTRACE_SYSCALL_INFO_EXIT && in_rename) {
                in_rename = false;
                ++checkpoints;
                if (checkpoints == wanted && at == KillAt::after_rename) kill_now = true;
                // Still traced, so that the first file the next epoch creates stops it in time.
                if (checkpoints == wanted && at == KillAt::mid_epoch)
                    deadline = std::chrono::steady_clock::now() + delay;
            }
        }
        if (kill_now) {
            ::kill(pid, SIGKILL);
            REQUIRE(::waitpid(pid, &status, 0) == pid);
        }
        REQUIRE_MESSAGE(kill_now, "the program ended before reaching the kill point");
    } else {
        REQUIRE(::waitpid(pid, &status, 0) == pid);
    }
    result.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.err = read_text(err_path);
    return result;
}

/// The epochs a checkpoint holds (read with the library, which validates the whole file).
std::int64_t checkpoint_epochs(const fs::path& path) {
    auto model = cnnlite::fashion_mnist_cnn<float>(0);
    cnnlite::Adam<float> adam(model.trainable_variables());
    cnnlite::KeepBest<float> best;
    return cnnlite::load_checkpoint<float>(path.string(), model, adam, &best, nullptr).epoch;
}

/// The temp files that killed writes left behind in `dir`.
std::vector<fs::path> stale_temp_files(const fs::path& dir) {
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().rfind(".checkpoint.safetensors.tmp-", 0) == 0) found.push_back(e.path());
    return found;
}

/// A checkpoint's history without its timing fields (seconds, images_per_second).
nlohmann::json history_without_timing(const cnnlite::SafetensorsFile& file) {
    nlohmann::json history = nlohmann::json::parse(file.require_metadata("history"));
    for (auto& e : history) {
        e.erase("seconds");
        e.erase("images_per_second");
    }
    return history;
}

}  // namespace

TEST_CASE("SIGKILL mid-epoch, mid-checkpoint-write, before and after its rename: --resume ends bitwise identical") {
    TempDir tmp;
    const std::vector<std::string> common = {"train",  "--data", (source_dir / "data" / "fixtures").string(),
                                             "--val",  "500",    "--limit",
                                             "1500",   "--epochs", "3",
                                             "--seed", "11",     "--threads",
                                             "1",      "--quiet"};
    const auto with = [&](const fs::path& out, bool resume) {
        std::vector<std::string> args = common;
        args.insert(args.end(), {"--out", out.string()});
        if (resume) args.push_back("--resume");
        return args;
    };
    const fs::path whole = tmp.path / "whole", killed = tmp.path / "killed";

    Run r = run(with(whole, false), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);

    // 1. Killed in the middle of epoch 2, half as long after the checkpoint of epoch 1 as epoch 2
    // of the uninterrupted run took (traced, the program is slower still): that checkpoint is
    // what is left.
    const auto whole_history = cnnlite::read_csv((whole / "history.csv").string());
    REQUIRE(whole_history.size() == 4);
    const auto half_epoch = std::chrono::milliseconds(
        std::max<long long>(1, std::llround(std::stod(whole_history[2][6]) * 500)));
    r = run(with(killed, false), tmp.path, KillAt::mid_epoch, 1, 0, half_epoch);
    REQUIRE(r.killed);
    CHECK(checkpoint_epochs(killed / "checkpoint.safetensors") == 1);
    CHECK(stale_temp_files(killed).empty());

    // 2. Resumed, and killed while writing the checkpoint of epoch 2, once a third of it is on
    // disk: a partial temp file, and the checkpoint of epoch 1 intact.
    const auto complete_size = fs::file_size(killed / "checkpoint.safetensors");
    r = run(with(killed, true), tmp.path, KillAt::mid_write, 1, complete_size / 3);
    REQUIRE(r.killed);
    CHECK(checkpoint_epochs(killed / "checkpoint.safetensors") == 1);
    auto temps = stale_temp_files(killed);
    REQUIRE(temps.size() == 1);
    MESSAGE("killed mid-write: the temp file holds ", fs::file_size(temps[0]), " of ", complete_size, " bytes");
    CHECK(fs::file_size(temps[0]) >= complete_size / 3);
    CHECK(fs::file_size(temps[0]) < complete_size);
    CHECK_THROWS_AS(cnnlite::SafetensorsFile::load(temps[0].string()), cnnlite::Error);

    // 3. Resumed, and killed with the temp file of epoch 2's checkpoint complete but not yet
    // renamed: still the checkpoint of epoch 1.
    r = run(with(killed, true), tmp.path, KillAt::before_rename, 1);
    REQUIRE(r.killed);
    CHECK(checkpoint_epochs(killed / "checkpoint.safetensors") == 1);
    temps = stale_temp_files(killed);
    REQUIRE(temps.size() == 2);
    CHECK(fs::file_size(temps[0]) + fs::file_size(temps[1]) > complete_size);  // one of them is complete

    // 4. Resumed (from epoch 1 again), and killed right after the rename of its second
    // checkpoint, that of epoch 3 (the last epoch),
    // before the folder was synced and before model.safetensors and metrics.json were final.
    r = run(with(killed, true), tmp.path, KillAt::after_rename, 2);
    REQUIRE(r.killed);
    CHECK(checkpoint_epochs(killed / "checkpoint.safetensors") == 3);

    // 5. Resumed: nothing left to train; it writes the outputs from the checkpoint.
    r = run(with(killed, true), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);

    // Bitwise identical outputs. Excluded: wall times (history's `seconds`, metrics'
    // train_seconds and train_images_per_second) and run.json, which logs each invocation.
    CHECK(test_support::without_run_ids(read_text(whole / "model.safetensors")) ==
          test_support::without_run_ids(read_text(killed / "model.safetensors")));
    const auto history_a = cnnlite::read_csv((whole / "history.csv").string());
    const auto history_b = cnnlite::read_csv((killed / "history.csv").string());
    REQUIRE(history_a.size() == 4);
    REQUIRE(history_b.size() == 4);
    REQUIRE(history_a[0][6] == "seconds");
    for (std::size_t e = 0; e < 4; ++e)
        for (std::size_t c = 0; c < 6; ++c) CHECK(history_a[e][c] == history_b[e][c]);
    nlohmann::json metrics_a = nlohmann::json::parse(read_text(whole / "metrics.json"));
    nlohmann::json metrics_b = nlohmann::json::parse(read_text(killed / "metrics.json"));
    for (auto* m : {&metrics_a, &metrics_b}) {
        REQUIRE(m->contains("train_seconds"));
        m->erase("train_seconds");
        m->erase("train_images_per_second");
        CHECK(m->value("run_id", std::string()).size() == 16);
        m->erase("run_id");
    }
    CHECK(metrics_a.dump() == metrics_b.dump());
    CHECK(metrics_b["epochs_run"] == 3);
    CHECK(read_text(whole / "figures" / "learning_curves.svg") == read_text(killed / "figures" / "learning_curves.svg"));

    // The checkpoints agree too: every tensor (weights, Adam's moments and counts, the kept
    // weights) bit for bit, and the training state in the metadata.
    const auto ca = cnnlite::SafetensorsFile::load((whole / "checkpoint.safetensors").string());
    const auto cb = cnnlite::SafetensorsFile::load((killed / "checkpoint.safetensors").string());
    REQUIRE(ca.entries().size() == cb.entries().size());
    for (const auto& item : ca.entries()) {
        const auto& name = item.first;  // not a binding: INFO captures it in a lambda (C++17)
        INFO(name);
        REQUIRE(cb.contains(name));
        CHECK(ca.tensor<float>(name).to_vector() == cb.tensor<float>(name).to_vector());
    }
    for (const char* key : {"epoch", "finished", "best_epoch", "best_value", "learning_rate", "architecture"})
        CHECK(ca.require_metadata(key) == cb.require_metadata(key));
    CHECK(history_without_timing(ca) == history_without_timing(cb));
}

}  // namespace test_reliability_kill
