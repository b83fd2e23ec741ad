// An exclusive claim on an output folder, so that two programs writing into one folder at the
// same time are refused instead of mixing their files. The claim is an flock(2) on the file
// <folder>/.lock, which also names its holder: the operating system drops the lock when the
// holder exits or dies, so a crashed run never leaves a stale claim behind.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/files.hpp"

namespace cnnlite {

/// Fails, naming the folder and the system's reason, unless a new file can be created in
/// `folder` (a read-only mount, an immutable folder or a full disk show up here, before any
/// long work starts, rather than when the first result is saved).
inline void check_folder_writable(const std::string& folder) {
    const std::string probe = folder + "/.write-test-" + std::to_string(::getpid());
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail("cannot write in folder '", folder, "': ", detail::errno_text(errno));
    const bool wrote = ::write(fd, "x", 1) == 1;
    const int err = errno;
    ::close(fd);
    ::unlink(probe.c_str());
    if (!wrote) fail("cannot write in folder '", folder, "': ", detail::errno_text(err));
}

/// Holds the lock file `.lock` of a folder exclusively for its lifetime. A second FolderLock on the same folder,
/// in this or another process, fails with an Error that names the folder and what the holder
/// wrote into the lock file (its process, host, start time and command).
class FolderLock {
public:
    /// Creates `folder` if needed, checks that it is writable and takes the lock; `holder`
    /// describes this process to whoever is refused later.
    FolderLock(const std::string& folder, const std::string& holder) : path_(folder + "/.lock") {
        create_directories(folder);
        check_folder_writable(folder);
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) fail("cannot create the lock file '", path_, "': ", detail::errno_text(errno));
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            const std::string other = holder_of();
            ::close(fd_);
            fd_ = -1;
            if (err == EWOULDBLOCK)
                fail("folder '", folder, "' is in use by another run",
                     other.empty() ? std::string() : " (" + other + ")",
                     "; wait for it to finish or choose another folder");
            fail("cannot lock '", path_, "': ", detail::errno_text(err));
        }
        // Ours now: replace the previous holder's description with this one.
        const std::string text = holder + "\n";
        if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
            fail("cannot write the lock file '", path_, "': ", detail::errno_text(errno));
    }
    FolderLock(const FolderLock&) = delete;
    FolderLock& operator=(const FolderLock&) = delete;
    ~FolderLock() {
        if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
    }

    /// The lock file.
    const std::string& path() const { return path_; }

private:
    /// The first line of the lock file (the holder's description), at most 512 bytes.
    std::string holder_of() const {
        char buffer[512];
        const ssize_t got = ::pread(fd_, buffer, sizeof buffer, 0);
        if (got <= 0) return {};
        std::string text(buffer, static_cast<std::size_t>(got));
        return text.substr(0, text.find('\n'));
    }

    std::string path_;
    int fd_ = -1;
};

}  // namespace cnnlite
