// Shared by the fuzz targets: the readers under test take file paths, so each input is written
// to a file in a private temporary folder (removed at exit) before it is read.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fuzz {

/// A private folder for this process's scratch files; removed when the process exits normally.
inline const std::filesystem::path& scratch_folder() {
    static const std::filesystem::path folder = [] {
        std::string pattern = (std::filesystem::temp_directory_path() / "cnnlite-fuzz-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) {
            std::perror("mkdtemp");
            std::abort();
        }
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_folder(), ec);
        });
        return std::filesystem::path(pattern);
    }();
    return folder;
}

/// Writes `size` bytes to scratch file `name` (replacing it) and returns its path.
inline std::string write_scratch(const std::string& name, const void* data, std::size_t size) {
    const std::string path = (scratch_folder() / name).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) {
        std::perror(path.c_str());
        std::abort();
    }
    return path;
}

/// Stops the fuzzer with a message: a property that must hold did not.
[[noreturn]] inline void violated(const char* what) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
}

}  // namespace fuzz
