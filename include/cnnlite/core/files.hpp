// Files on disk, done safely: atomic writes (the target holds either its old content or the
// complete new content, never a half-written file, even if the process dies or the disk fills
// mid-write), folder creation, and the size-checked reads that every reader of untrusted files
// shares (regular files only, so a FIFO or a device never hangs or floods a reader).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"

namespace cnnlite {

namespace detail {

/// strerror text for `err`, without strerror's thread-safety problem.
inline std::string errno_text(int err) { return std::generic_category().message(err); }

/// The folder a file path lives in ("." for a bare file name).
inline std::string parent_folder(const std::string& path) {
    const std::string parent = std::filesystem::path(path).parent_path().string();
    return parent.empty() ? std::string(".") : parent;
}

}  // namespace detail

/// A read-only, regular file whose real size is known before anything is allocated from it:
/// readers check every length a header claims against size() first. Every reader of cnnlite
/// opens its files through this class, and programs can read their own inputs the same way.
class InputFile {
public:
    /// Opens `path`; `what` ("safetensors file", ...) starts every error message.
    InputFile(const std::string& path, std::string what) : path_(path), what_(std::move(what)) {
        // O_NONBLOCK so that a FIFO given by mistake is rejected instead of hanging the open.
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd_ < 0) fail(what_, " '", path_, "': cannot open: ", detail::errno_text(errno));
        struct stat info {};
        if (::fstat(fd_, &info) != 0) {
            const int err = errno;
            ::close(fd_);
            fail(what_, " '", path_, "': cannot stat: ", detail::errno_text(err));
        }
        if (!S_ISREG(info.st_mode)) {
            ::close(fd_);
            fail(what_, " '", path_, "': not a regular file");
        }
        size_ = static_cast<std::uint64_t>(info.st_size);
    }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;
    ~InputFile() { ::close(fd_); }

    /// The file's size in bytes when it was opened.
    std::uint64_t size() const { return size_; }
    /// The path it was opened by.
    const std::string& path() const { return path_; }

    /// Reads exactly `count` bytes at `offset`; a file that shrank meanwhile is an error.
    void read(void* destination, std::size_t count, std::uint64_t offset) const {
        auto* out = static_cast<char*>(destination);
        while (count > 0) {
            const ssize_t got = ::pread(fd_, out, count, static_cast<off_t>(offset));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) fail(what_, " '", path_, "': read failed: ", detail::errno_text(errno));
            if (got == 0) fail(what_, " '", path_, "': file ended early (truncated while reading?)");
            out += got;
            offset += static_cast<std::uint64_t>(got);
            count -= static_cast<std::size_t>(got);
        }
    }

    /// The bytes [offset, offset + count) as a string (count already checked against size()).
    std::string read_string(std::size_t count, std::uint64_t offset) const {
        std::string bytes(count, '\0');
        if (count) read(&bytes[0], count, offset);
        return bytes;
    }

    /// The whole file, refused before anything is allocated when it is empty or larger than
    /// `max_bytes` (both named in the message).
    std::vector<std::uint8_t> read_all(std::uint64_t max_bytes) const {
        check(size_ > 0, what_, " '", path_, "' is empty");
        check(size_ <= max_bytes, what_, " '", path_, "' is ", size_, " bytes, more than the limit of ", max_bytes,
              " bytes");
        std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size_));
        read(bytes.data(), bytes.size(), 0);
        return bytes;
    }

private:
    std::string path_;
    std::string what_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

/// Creates folder `dir` and any missing parents; throws cnnlite::Error naming the folder.
inline void create_directories(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) fail("cannot create folder '", dir, "': ", ec.message());
    check(std::filesystem::is_directory(dir, ec), "cannot create folder '", dir, "': a file of that name exists");
}

/// Creates the folders above the file `path` that do not exist yet.
inline void create_parent_directories(const std::string& path) {
    const std::string parent = std::filesystem::path(path).parent_path().string();
    if (!parent.empty()) create_directories(parent);
}

/// Streams a file to a uniquely named temp file beside `path` and renames it over `path` on
/// commit(). Destroyed without commit() (an exception mid-write), it removes the temp file and
/// leaves `path` untouched. Parent folders must exist (see create_parent_directories).
class AtomicFileWriter {
public:
    /// Creates the temp file; throws cnnlite::Error naming `path` and the errno text.
    explicit AtomicFileWriter(std::string path) : path_(std::move(path)) {
        check(!path_.empty(), "atomic write: empty file path");
        const std::filesystem::path target(path_);
        // Same folder as the target, so that rename() is atomic (one file system); a leading dot
        // hides it from globs; the base is shortened so the name stays under NAME_MAX.
        std::string base = target.filename().string().substr(0, 100);
        static std::atomic<unsigned> counter{0};
        for (int attempt = 0; attempt < 100; ++attempt) {
            // pid + counter are unique within this machine's live processes; the clock only
            // helps after a crash left a stale temp file of an earlier process with our pid.
            const auto nonce = static_cast<unsigned long long>(
                std::chrono::steady_clock::now().time_since_epoch().count() & 0xffffffff);
            const std::string name = "." + base + ".tmp-" + std::to_string(::getpid()) + "-" +
                                     std::to_string(counter.fetch_add(1)) + "-" + std::to_string(nonce);
            temp_path_ = (target.parent_path() / name).string();
            // 0666 minus the umask: the final file gets the same permissions a plain open would give.
            const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd < 0 && errno == EEXIST) continue;
            if (fd < 0) {
                const int err = errno;
                temp_path_.clear();
                fail("atomic write of '", path_, "': cannot create a temp file in '", detail::parent_folder(path_),
                     "': ", detail::errno_text(err));
            }
            file_ = ::fdopen(fd, "wb");
            if (!file_) {
                const int err = errno;
                ::close(fd);
                discard_temp();
                fail("atomic write of '", path_, "': fdopen failed: ", detail::errno_text(err));
            }
            return;
        }
        temp_path_.clear();
        fail("atomic write of '", path_, "': could not find an unused temp file name");
    }

    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    ~AtomicFileWriter() { abort(); }

    /// Appends `size` bytes; throws cnnlite::Error (and discards the temp file) on failure.
    void write(const void* data, std::size_t size) {
        check(file_ != nullptr, "atomic write of '", path_, "': write after commit or abort");
        if (size == 0) return;
        if (std::fwrite(data, 1, size, file_) != size) fail_and_discard("write failed");
    }
    /// Appends the bytes of `text`.
    void write(std::string_view text) { write(text.data(), text.size()); }

    /// Flushes, fsyncs and closes the temp file, renames it over the target and fsyncs the
    /// folder so that the rename itself survives a power cut.
    void commit() {
        check(file_ != nullptr, "atomic write of '", path_, "': commit after commit or abort");
        if (std::fflush(file_) != 0) fail_and_discard("flush failed");
        if (::fsync(::fileno(file_)) != 0) fail_and_discard("fsync failed");
        std::FILE* file = file_;
        file_ = nullptr;
        if (std::fclose(file) != 0) fail_and_discard("close failed");
        if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail_and_discard("rename over the target failed");
        temp_path_.clear();
        sync_folder();
    }

    /// Drops the temp file; the target keeps its old content. Safe to call more than once.
    void abort() noexcept {
        if (file_) {
            std::fclose(file_);
            file_ = nullptr;
        }
        discard_temp();
    }

    /// The file this writer replaces on commit().
    const std::string& path() const { return path_; }
    /// The temp file being written (empty once committed or aborted).
    const std::string& temp_path() const { return temp_path_; }

private:
    [[noreturn]] void fail_and_discard(const char* step) {
        const int err = errno;
        abort();
        fail("atomic write of '", path_, "': ", step, ": ", detail::errno_text(err));
    }

    void discard_temp() noexcept {
        if (!temp_path_.empty()) {
            ::unlink(temp_path_.c_str());
            temp_path_.clear();
        }
    }

    void sync_folder() {
        const std::string folder = detail::parent_folder(path_);
        const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        // A folder we may write but not read cannot be opened for fsync; the data is in place.
        if (fd < 0) return;
        const int result = ::fsync(fd);
        const int err = errno;
        ::close(fd);
        // EINVAL: the file system does not support syncing folders; nothing more can be done.
        if (result != 0 && err != EINVAL)
            fail("atomic write of '", path_, "': fsync of folder '", folder, "' failed: ", detail::errno_text(err));
    }

    std::string path_;
    std::string temp_path_;
    std::FILE* file_ = nullptr;
};

/// Writes `size` bytes to `path` atomically (temp file, fsync, rename, folder fsync).
inline void write_file_atomically(const std::string& path, const void* data, std::size_t size) {
    AtomicFileWriter writer(path);
    writer.write(data, size);
    writer.commit();
}

/// Writes `bytes` to `path` atomically.
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
    write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace cnnlite
