// Reader for IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain. A file is
// untrusted input: every header field is checked against the file's real length before any
// large allocation, so a truncated, corrupt or lying file becomes a cnnlite::Error naming it.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/shape.hpp"
#include "cnnlite/core/tensor.hpp"

namespace cnnlite {

/// Largest IDX payload read by default (1 GiB; Fashion-MNIST's training images are 47 MB).
inline constexpr std::uint64_t idx_default_max_bytes = std::uint64_t(1) << 30;

/// IDX magic number of unsigned-byte data of rank `rank` (0x00000803 for images, 0x00000801
/// for labels).
constexpr std::uint32_t idx_u8_magic(int rank) { return 0x00000800u | static_cast<std::uint32_t>(rank); }

namespace detail {

// Deflate never expands more than 1032:1, so a gzip file of `n` bytes cannot decompress to
// more than this; it bounds what a header may claim before we trust it with an allocation.
constexpr std::uint64_t deflate_max_ratio = 1032;

/// Sequential reader over a plain or gzip file, chosen by the gzip magic bytes 1f 8b. Gzip is
/// decoded with zlib's inflate rather than gzread, because gzread silently ignores bytes after
/// the last gzip member, and a file with garbage appended should be reported, not accepted.
class IdxByteSource {
public:
    explicit IdxByteSource(const std::filesystem::path& path) : path_(path) {
        std::error_code ec;
        const auto status = std::filesystem::status(path, ec);
        if (ec || !std::filesystem::exists(status)) fail(where(), "cannot open: file does not exist");
        check(std::filesystem::is_regular_file(status), where(), "cannot open: not a regular file");
        file_size_ = std::filesystem::file_size(path, ec);
        check(!ec, where(), "cannot read its size: ", ec.message());

        file_ = std::fopen(path.c_str(), "rb");
        if (!file_) fail(where(), "cannot open: ", std::strerror(errno));
        unsigned char magic[2] = {0, 0};
        compressed_ = std::fread(magic, 1, 2, file_) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        std::rewind(file_);
        if (compressed_) {
            input_.resize(std::size_t(1) << 16);
            check(inflateInit2(&stream_, 15 + 16) == Z_OK, where(), "zlib could not start decompressing");
            inflating_ = true;
        }
    }
    IdxByteSource(const IdxByteSource&) = delete;
    IdxByteSource& operator=(const IdxByteSource&) = delete;
    ~IdxByteSource() {
        if (inflating_) inflateEnd(&stream_);
        if (file_) std::fclose(file_);
    }

    bool compressed() const { return compressed_; }
    std::uint64_t file_size() const { return file_size_; }
    /// "IDX file '<path>': ", the start of every message about this file.
    std::string where() const { return "IDX file '" + path_.string() + "': "; }

    /// Reads up to `count` bytes; returns how many arrived (fewer only at the end of the data).
    /// Corrupt or cut-off gzip data throws, naming the file and zlib's diagnosis.
    std::uint64_t read(unsigned char* destination, std::uint64_t count) {
        return compressed_ ? inflate_into(destination, count) : read_plain(destination, count);
    }

    /// Throws unless the data ends here; for gzip this also makes zlib verify the CRC trailer.
    void expect_end(const std::string& after) {
        unsigned char extra = 0;
        check(read(&extra, 1) == 0, where(), "trailing data after ", after);
    }

private:
    std::uint64_t read_plain(unsigned char* destination, std::uint64_t count) {
        std::uint64_t done = 0;
        while (done < count) {
            const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(count - done, 1u << 30));
            const std::size_t got = std::fread(destination + done, 1, chunk, file_);
            if (got < chunk && std::ferror(file_)) fail(where(), "read error: ", std::strerror(errno));
            done += got;
            if (got < chunk) break;
        }
        return done;
    }

    // Refills the input buffer; false at the end of the file.
    bool refill() {
        const std::size_t got = std::fread(input_.data(), 1, input_.size(), file_);
        if (got == 0 && std::ferror(file_)) fail(where(), "read error: ", std::strerror(errno));
        stream_.next_in = input_.data();
        stream_.avail_in = static_cast<uInt>(got);
        return got > 0;
    }

    std::uint64_t inflate_into(unsigned char* destination, std::uint64_t count) {
        std::uint64_t done = 0;
        while (done < count && !finished_) {
            if (stream_.avail_in == 0 && !refill()) {
                if (in_member_) fail(where(), "corrupt or truncated gzip data (the file ends inside the compressed stream)");
                finished_ = true;
                break;
            }
            const auto space = static_cast<uInt>(std::min<std::uint64_t>(count - done, 1u << 30));
            stream_.next_out = destination + done;
            stream_.avail_out = space;
            in_member_ = true;
            const int status = inflate(&stream_, Z_NO_FLUSH);
            done += space - stream_.avail_out;
            if (status == Z_STREAM_END) {
                // The gzip format allows several members back to back; anything else is garbage.
                in_member_ = false;
                if (stream_.avail_in == 0 && !refill()) {
                    finished_ = true;
                    break;
                }
                check(stream_.next_in[0] == 0x1f, where(), "trailing bytes after the end of the gzip stream");
                inflateReset(&stream_);
            } else if (status != Z_OK) {
                fail(where(), "corrupt or truncated gzip data (zlib: ", stream_.msg ? stream_.msg : zError(status), ")");
            }
        }
        return done;
    }

    std::filesystem::path path_;
    std::uint64_t file_size_ = 0;
    std::FILE* file_ = nullptr;
    bool compressed_ = false;
    z_stream stream_{};
    bool inflating_ = false;  // stream_ initialised
    bool in_member_ = false;  // inside a gzip member whose end has not been seen
    bool finished_ = false;   // all members decoded and the file fully read
    std::vector<unsigned char> input_;
};

inline std::uint32_t idx_read_u32(const unsigned char* bytes) {
    return (std::uint32_t(bytes[0]) << 24) | (std::uint32_t(bytes[1]) << 16) | (std::uint32_t(bytes[2]) << 8) |
           std::uint32_t(bytes[3]);
}

/// "0x00000803" for 0x803 with `digits` = 8.
inline std::string idx_hex(std::uint32_t value, int digits = 8) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%0*X", digits, value);
    return text;
}

}  // namespace detail

/// `max_items` value meaning: read every item the header announces.
inline constexpr std::int64_t idx_all_items = -1;

namespace detail {

/// Reads and checks the magic number and the dimensions of an IDX file of unsigned bytes of
/// rank `rank`, leaving `source` at the first data byte.
inline Shape read_idx_u8_header(IdxByteSource& source, int rank) {
    check(rank >= 1 && rank < Shape::max_rank, "read_idx_u8: rank ", rank, " is not supported");
    const std::string where = source.where();
    unsigned char header[4 * Shape::max_rank];
    const std::uint64_t header_bytes = 4 + 4 * static_cast<std::uint64_t>(rank);
    std::uint64_t got = source.read(header, 4);
    check(got == 4, where, source.file_size() == 0 ? "empty file" : "truncated header", " (", got,
          " bytes; an IDX header needs ", header_bytes, ")");

    const std::uint32_t magic = idx_read_u32(header);
    const std::uint32_t expected = idx_u8_magic(rank);
    check((magic >> 16) == 0, where, "not an IDX file: magic number ", idx_hex(magic), ", expected ", idx_hex(expected));
    check(((magic >> 8) & 0xFF) == 0x08, where, "magic number ", idx_hex(magic), " says element type ",
          idx_hex((magic >> 8) & 0xFF, 2), ", expected 0x08 (unsigned byte); expected magic ", idx_hex(expected));
    check((magic & 0xFF) == static_cast<std::uint32_t>(rank), where, "magic number ", idx_hex(magic), " says rank ",
          magic & 0xFF, ", expected rank ", rank, " (magic ", idx_hex(expected), ")");

    got = source.read(header + 4, header_bytes - 4);
    check(got == header_bytes - 4, where, "truncated header (", 4 + got, " bytes; an IDX header of rank ", rank,
          " needs ", header_bytes, ")");
    std::vector<std::int64_t> dims(static_cast<std::size_t>(rank));
    for (int axis = 0; axis < rank; ++axis) dims[static_cast<std::size_t>(axis)] = idx_read_u32(header + 4 + 4 * axis);
    return Shape(dims);
}

/// Bytes of `shape`, or max + 1 once past `max` (so that no product can overflow).
inline std::uint64_t idx_payload_bytes(const Shape& shape, std::uint64_t max) {
    std::uint64_t bytes = 1;
    for (int axis = 0; axis < shape.rank(); ++axis) {
        const auto extent = static_cast<std::uint64_t>(shape[axis]);
        if (extent != 0 && bytes > max / extent) return max + 1;
        bytes *= extent;
    }
    return bytes;
}

}  // namespace detail

/// The dimensions an IDX file of unsigned bytes of rank `rank` announces in its header (the
/// magic number is checked; no data is read), e.g. to budget memory before reading it.
inline Shape read_idx_u8_shape(const std::filesystem::path& path, int rank) {
    detail::IdxByteSource source(path);
    return detail::read_idx_u8_header(source, rank);
}

/// Reads an IDX file of unsigned bytes with exactly `rank` dimensions into a tensor of those
/// dimensions. Checks the magic number, that the data fits `max_bytes`, that the file can hold
/// what the header claims (before allocating), and that no data is missing or left over.
/// With `max_items` >= 0 only the first `max_items` items along the first axis are read (the
/// rest of the file is neither read nor checked), so that memory follows what is used rather
/// than what the header claims.
inline Tensor<std::uint8_t> read_idx_u8(const std::filesystem::path& path, int rank,
                                        std::uint64_t max_bytes = idx_default_max_bytes,
                                        std::int64_t max_items = idx_all_items) {
    check(max_items >= idx_all_items, "read_idx_u8: max_items ", max_items, " is negative");
    detail::IdxByteSource source(path);
    const std::string where = source.where();
    const Shape claimed = detail::read_idx_u8_header(source, rank);
    const std::uint64_t header_bytes = 4 + 4 * static_cast<std::uint64_t>(rank);
    const bool prefix = max_items != idx_all_items && max_items < claimed[0];
    Shape shape = claimed;
    if (prefix) shape[0] = max_items;

    const std::uint64_t data_bytes = detail::idx_payload_bytes(shape, max_bytes);
    check(data_bytes <= max_bytes, where, "header claims dimensions ", claimed.str(),
          prefix ? ", and its first " + std::to_string(max_items) + " items alone are" : std::string(","),
          " more than the limit of ", max_bytes, " bytes");
    const std::uint64_t claimed_bytes = prefix ? detail::idx_payload_bytes(claimed, ~std::uint64_t(0) - 1) : data_bytes;

    if (source.compressed()) {
        const std::uint64_t most = source.file_size() * detail::deflate_max_ratio + 1024;
        check(data_bytes <= most, where, "header claims dimensions ", claimed.str(), " (", claimed_bytes,
              " bytes), more than a gzip file of ", source.file_size(), " bytes can hold");
    } else {
        const std::uint64_t size = source.file_size();
        const std::uint64_t present = size > header_bytes ? size - header_bytes : 0;
        check(present >= data_bytes, where, "truncated data: header claims dimensions ", claimed.str(), " (",
              claimed_bytes, " bytes) but the file holds ", present, " bytes after the header");
        check(prefix || present == data_bytes, where, "trailing data: ", present - data_bytes, " bytes after the ",
              data_bytes, " bytes that the header's dimensions ", claimed.str(), " account for");
    }

    Tensor<std::uint8_t> values = Tensor<std::uint8_t>::uninitialized(shape);
    const std::uint64_t got = source.read(values.data(), data_bytes);
    check(got == data_bytes, where, "truncated data: header claims dimensions ", claimed.str(), " (", claimed_bytes,
          " bytes) but only ", got, " bytes follow the header");
    if (!prefix) source.expect_end("the " + std::to_string(data_bytes) + " bytes of dimensions " + shape.str());
    return values;
}

/// Reads an IDX image file (magic 0x00000803) into a [count, rows, cols] uint8 tensor.
/// With `max_items` >= 0 only the first `max_items` images are read.
inline Tensor<std::uint8_t> read_idx_images(const std::filesystem::path& path,
                                            std::uint64_t max_bytes = idx_default_max_bytes,
                                            std::int64_t max_items = idx_all_items) {
    Tensor<std::uint8_t> images = read_idx_u8(path, 3, max_bytes, max_items);
    check(images.dim(1) > 0 && images.dim(2) > 0, "IDX file '", path.string(), "': images of size ",
          images.dim(1), "x", images.dim(2), " have no pixels");
    return images;
}

/// Reads an IDX label file (magic 0x00000801); every label must lie in [0, num_classes).
/// With `max_items` >= 0 only the first `max_items` labels are read.
inline std::vector<int> read_idx_labels(const std::filesystem::path& path, int num_classes,
                                        std::uint64_t max_bytes = idx_default_max_bytes,
                                        std::int64_t max_items = idx_all_items) {
    check(num_classes >= 1 && num_classes <= 256, "read_idx_labels: num_classes ", num_classes,
          " is not in 1..256 (labels are bytes)");
    const Tensor<std::uint8_t> raw = read_idx_u8(path, 1, max_bytes, max_items);
    std::vector<int> labels(raw.begin(), raw.end());
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] >= num_classes)
            fail("IDX file '", path.string(), "': label ", labels[i], " at index ", i, " is outside the class range 0..",
                 num_classes - 1);
    return labels;
}

}  // namespace cnnlite
