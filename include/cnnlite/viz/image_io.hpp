// Writing images: PNG encoding (stb_image_write), written atomically. Reading a user's pictures
// is image_read.hpp's job.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/files.hpp"
#include "cnnlite/viz/detail/stb_image_write.hpp"
#include "cnnlite/viz/image.hpp"

namespace cnnlite::viz {

/// The PNG file contents of `image` (8-bit grey or RGB).
inline std::vector<std::uint8_t> encode_png(const Image& image) {
    check(!image.empty(), "encode_png: empty image");
    std::vector<std::uint8_t> bytes;
    const auto append = [](void* context, void* data, int size) {
        auto* out = static_cast<std::vector<std::uint8_t>*>(context);
        const auto* p = static_cast<const std::uint8_t*>(data);
        out->insert(out->end(), p, p + size);
    };
    const int ok = stbi_write_png_to_func(append, &bytes, image.width(), image.height(), image.channels(),
                                          image.data(), image.stride());
    check(ok != 0 && !bytes.empty(), "encode_png: stb_image_write failed for a ", image.width(), "x",
          image.height(), "x", image.channels(), " image");
    return bytes;
}

/// Writes `image` as a PNG file, atomically (readers never see a partial file).
inline void write_png(const std::string& path, const Image& image) {
    const std::vector<std::uint8_t> bytes = encode_png(image);
    cnnlite::write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace cnnlite::viz
