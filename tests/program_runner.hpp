// Test support: running examples/fashion_mnist as a user runs it — a separate process with its
// own arguments, its output captured, optionally under an address-space limit (setrlimit, as
// `prlimit --as` does) and always under a time limit, so that a hang or a memory bomb fails the
// test instead of the machine.
//
// The program is found through $FASHION_MNIST_EXE, else at ../examples/fashion_mnist/fashion_mnist
// from the test's own executable (the layout of both the CMake and the Meson build).
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "error_message.hpp"

namespace test_support {

namespace fs = std::filesystem;

/// The fashion_mnist executable.
inline fs::path fashion_mnist_program() {
    if (const char* env = std::getenv("FASHION_MNIST_EXE"); env && *env) return env;
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    return self.parent_path().parent_path() / "examples" / "fashion_mnist" / "fashion_mnist";
}

/// A fresh folder under the system temp folder, removed with the object.
struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& prefix = "cnnlite_test") {
        std::string pattern = (fs::temp_directory_path() / (prefix + "_XXXXXX")).string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

/// The whole file as bytes ("" when it cannot be read).
inline std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

/// How a run ended and what it printed.
struct RunResult {
    int status = -1;      ///< exit status; -1 when a signal ended it
    int signal = 0;       ///< the signal that ended it, 0 when it exited
    bool timed_out = false;
    std::string out, err;
};

/// Limits of one run.
struct RunLimits {
    std::uint64_t address_space_bytes = 0;  ///< RLIMIT_AS of the program; 0: none
    double seconds = 600;                   ///< killed (SIGKILL) after this long
};

/// Whether this build runs under AddressSanitizer, whose shadow memory needs terabytes of
/// address space: address-space limits cannot be tested there.
constexpr bool address_sanitizer() {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

/// Starts the program with `args` (stdout and stderr to files in `scratch`); returns its pid.
inline pid_t start_program(const std::vector<std::string>& args, const fs::path& scratch, const RunLimits& limits = {}) {
    const fs::path exe = fashion_mnist_program();
    REQUIRE_MESSAGE(fs::exists(exe), "the fashion_mnist program is not at ", exe.string(),
                    "; build the fashion_mnist target (examples) first or set FASHION_MNIST_EXE");
    std::vector<std::string> argv_text = {exe.string()};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string out = (scratch / "stdout.txt").string(), err = (scratch / "stderr.txt").string();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child: only async-signal-safe calls until exec
        const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int in = ::open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0 || ::dup2(in, 0) < 0) ::_exit(126);
        if (limits.address_space_bytes) {
            const rlimit limit{limits.address_space_bytes, limits.address_space_bytes};
            if (::setrlimit(RLIMIT_AS, &limit) != 0) ::_exit(126);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

/// Waits for `pid` (started by start_program with `scratch`) and collects its result.
inline RunResult finish_program(pid_t pid, const fs::path& scratch, double seconds = 600) {
    RunResult r;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int raw = 0;
    for (;;) {
        const pid_t done = ::waitpid(pid, &raw, WNOHANG);
        if (done == pid) break;
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &raw, 0);
            r.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (WIFEXITED(raw)) r.status = WEXITSTATUS(raw);
    if (WIFSIGNALED(raw)) r.signal = WTERMSIG(raw);
    r.out = read_text(scratch / "stdout.txt");
    r.err = read_text(scratch / "stderr.txt");
    return r;
}

/// Runs the program with `args` to the end (or its time limit).
inline RunResult run_program(const std::vector<std::string>& args, const fs::path& scratch, const RunLimits& limits = {}) {
    return finish_program(start_program(args, scratch, limits), scratch, limits.seconds);
}

/// `bytes` (a model file, a checkpoint) with every run identity ("run.id":"<16 hex digits>")
/// zeroed: two runs with the same settings write the same bytes apart from their identities.
inline std::string without_run_ids(std::string bytes) {
    const std::string key = "\"run.id\":\"";
    for (std::size_t at = bytes.find(key); at != std::string::npos; at = bytes.find(key, at + 1))
        for (std::size_t i = at + key.size(); i < bytes.size() && i < at + key.size() + 16; ++i) bytes[i] = '0';
    return bytes;
}

}  // namespace test_support
