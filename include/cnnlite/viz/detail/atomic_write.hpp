// Private: writes a whole file atomically (temporary file in the same folder, flushed, then
// renamed over the target), so that a reader never sees a half-written figure or report. viz may
// only use core, hence its own small helper rather than io's.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "cnnlite/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define CNNLITE_VIZ_HAVE_FSYNC 1
#endif

namespace cnnlite::viz::detail {

/// A temporary name next to `path`, unique per process and call.
inline std::string temporary_name(const std::string& path) {
    static std::atomic<unsigned long> counter{0};
#ifdef CNNLITE_VIZ_HAVE_FSYNC
    const long pid = static_cast<long>(::getpid());
#else
    const long pid = 0;
#endif
    return path + ".tmp-" + std::to_string(pid) + "-" + std::to_string(counter.fetch_add(1));
}

/// Writes `size` bytes to `path` atomically; throws cnnlite::Error naming `what` and the path.
inline void write_file_atomically(const std::string& path, const void* data, std::size_t size,
                                  const char* what = "write") {
    check(!path.empty(), what, ": empty output path");
    const std::string tmp = temporary_name(path);
    std::FILE* file = std::fopen(tmp.c_str(), "wb");
    if (!file)
        fail(what, ": cannot create '", tmp, "' to write '", path, "': ", std::strerror(errno));
    bool ok = size == 0 || std::fwrite(data, 1, size, file) == size;
    ok = ok && std::fflush(file) == 0;
#ifdef CNNLITE_VIZ_HAVE_FSYNC
    // The data must reach the disk before the rename makes it visible under the final name.
    ok = ok && ::fsync(::fileno(file)) == 0;
#endif
    int reason = ok ? 0 : errno;
    if (std::fclose(file) != 0 && ok) {
        ok = false;
        reason = errno;
    }
    if (!ok) {
        std::remove(tmp.c_str());
        fail(what, ": writing '", path, "' failed: ", std::strerror(reason));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        fail(what, ": cannot move '", tmp, "' to '", path, "': ", ec.message());
    }
}

/// Writes `text` to `path` atomically.
inline void write_file_atomically(const std::string& path, std::string_view text, const char* what = "write") {
    write_file_atomically(path, text.data(), text.size(), what);
}

}  // namespace cnnlite::viz::detail
