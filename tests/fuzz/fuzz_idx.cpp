// Fuzz target: the IDX reader (data/idx.hpp), plain and gzip. Every input must either read or
// throw cnnlite::Error; anything else (a crash, a sanitizer report, another exception, a hang)
// is a finding. Each input is also gzip-compressed and read again: a valid gzip stream of the
// same bytes must give exactly the same result as the plain file (same tensor, or an error).
#include <zlib.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cnnlite/data/idx.hpp"
#include "fuzz_support.hpp"

namespace {

std::vector<unsigned char> gzip(const std::uint8_t* data, std::size_t size) {
    z_stream s{};
    if (deflateInit2(&s, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fuzz::violated("deflateInit2");
    std::vector<unsigned char> out(deflateBound(&s, static_cast<uLong>(size)) + 32);
    s.next_in = const_cast<Bytef*>(data);
    s.avail_in = static_cast<uInt>(size);
    s.next_out = out.data();
    s.avail_out = static_cast<uInt>(out.size());
    if (deflate(&s, Z_FINISH) != Z_STREAM_END) fuzz::violated("deflate");
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

template <class Read>
auto outcome(Read&& read) -> std::optional<decltype(read())> {
    try {
        return read();
    } catch (const cnnlite::Error&) {
        return std::nullopt;
    }
}

bool same(const std::optional<cnnlite::Tensor<std::uint8_t>>& a, const std::optional<cnnlite::Tensor<std::uint8_t>>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->shape() == b->shape() && std::equal(a->begin(), a->end(), b->begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string plain = fuzz::write_scratch("input.idx", data, size);
    const auto images = outcome([&] { return cnnlite::read_idx_images(plain); });
    const auto labels = outcome([&] { return cnnlite::read_idx_labels(plain, 10); });
    if (images && (images->rank() != 3 || images->dim(1) == 0 || images->dim(2) == 0)) fuzz::violated("image shape");
    if (labels)
        for (int v : *labels)
            if (v < 0 || v >= 10) fuzz::violated("label out of range");

    const bool already_gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!already_gzip) {
        const auto packed = gzip(data, size);
        const std::string gz = fuzz::write_scratch("input.idx.gz", packed.data(), packed.size());
        if (!same(images, outcome([&] { return cnnlite::read_idx_images(gz); })))
            fuzz::violated("gzip and plain images differ");
        const auto gz_labels = outcome([&] { return cnnlite::read_idx_labels(gz, 10); });
        if (labels.has_value() != gz_labels.has_value() || (labels && *labels != *gz_labels))
            fuzz::violated("gzip and plain labels differ");
    }
    return 0;
}
