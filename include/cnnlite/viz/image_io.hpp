// Reading and writing images: PNG encoding (stb_image_write) written atomically, and decoding a
// user's PNG, JPEG or BMP (stb_image) into a grey or RGB Image.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/viz/detail/atomic_write.hpp"
#include "cnnlite/viz/detail/stb_image.hpp"
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
    detail::write_file_atomically(path, bytes.data(), bytes.size(), "write_png");
}

namespace detail {

/// The whole file; a cnnlite::Error names `what` and the path when it cannot be read.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(what, ": cannot open '", path, "': ", std::strerror(errno));
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    check(!in.bad(), what, ": error while reading '", path, "'");
    return bytes;
}

}  // namespace detail

/// Decodes PNG, JPEG or BMP file contents into a grey (1-channel) or RGB (3-channel) image;
/// a transparent image is composited over white, as a viewer shows it. `name` labels errors.
inline Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name = "image data") {
    check(size > 0, "decode_image: '", name, "' is empty");
    check(size <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "decode_image: '", name,
          "' is too large (", size, " bytes)");
    int w = 0, h = 0, n = 0;
    stbi_uc* pixels = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &n, 0);
    if (!pixels) {
        const char* reason = stbi_failure_reason();
        fail("decode_image: cannot decode '", name, "' as PNG, JPEG or BMP (", reason ? reason : "unknown format",
             ")");
    }
    const bool grey = n <= 2, alpha = n == 2 || n == 4;
    Image out(w, h, grey ? 1 : 3);
    const int c = out.channels();
    for (std::size_t i = 0, count = static_cast<std::size_t>(w) * h; i < count; ++i) {
        const stbi_uc* p = pixels + i * n;
        const int a = alpha ? p[n - 1] : 255;
        for (int k = 0; k < c; ++k)  // over white: v * a + 255 * (255 - a), rounded
            out.data()[i * c + k] = static_cast<std::uint8_t>((p[k] * a + 255 * (255 - a) + 127) / 255);
    }
    stbi_image_free(pixels);
    return out;
}

/// Reads a PNG, JPEG or BMP file as a grey or RGB image (see decode_image); a clear
/// cnnlite::Error names the file when it is missing or not a readable image.
inline Image read_image(const std::string& path) {
    const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, "read_image");
    check(!bytes.empty(), "read_image: '", path, "' is empty");
    return decode_image(bytes.data(), bytes.size(), path);
}

}  // namespace cnnlite::viz
