// Test support: picture files made in memory — JPEGs through libjpeg's encoder (baseline or
// progressive, grey or colour), PNGs through the library's own encoder — and the surgery that
// turns them into hostile files: a header that claims another size (with its checksum mended,
// so that only the size is wrong), or a file cut short.
#pragma once

#include <jpeglib.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/image_io.hpp"

namespace test_support {

using Bytes = std::vector<std::uint8_t>;

/// A picture with some structure: a light disc on a dark background (grey or colour).
inline cnnlite::viz::Image disc_picture(int width, int height, int channels) {
    cnnlite::viz::Image image(width, height, channels);
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            const double dx = (x - width / 2.0) / width, dy = (y - height / 2.0) / height;
            const bool inside = dx * dx + dy * dy < 0.09;
            for (int c = 0; c < channels; ++c)
                image.at(x, y, c) = static_cast<std::uint8_t>(inside ? 200 + 20 * c : 10 + (x * 7 + y * 3 + c) % 20);
        }
    return image;
}

/// The JPEG file of `image` (quality 90; `progressive` writes several scans).
inline Bytes encode_jpeg(const cnnlite::viz::Image& image, bool progressive = false) {
    jpeg_compress_struct info{};
    jpeg_error_mgr errors{};
    info.err = jpeg_std_error(&errors);
    jpeg_create_compress(&info);
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&info, &buffer, &size);
    info.image_width = static_cast<JDIMENSION>(image.width());
    info.image_height = static_cast<JDIMENSION>(image.height());
    info.input_components = image.channels();
    info.in_color_space = image.channels() == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, 90, TRUE);
    if (progressive) jpeg_simple_progression(&info);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(image.data() + static_cast<std::size_t>(info.next_scanline) *
                                                               static_cast<std::size_t>(image.stride()));
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    Bytes bytes(buffer, buffer + size);
    std::free(buffer);
    return bytes;
}

/// The PNG file of `image`.
inline Bytes encode_png(const cnnlite::viz::Image& image) { return cnnlite::viz::encode_png(image); }

inline void put_be32(Bytes& bytes, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

/// The PNG with its IHDR claiming `width` x `height` and the IHDR's CRC recomputed.
inline Bytes png_claiming(Bytes png, std::uint32_t width, std::uint32_t height) {
    // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), 5 more bytes, CRC (4).
    put_be32(png, 16, width);
    put_be32(png, 20, height);
    put_be32(png, 29, static_cast<std::uint32_t>(crc32(0, png.data() + 12, 17)));
    return png;
}

/// The JPEG with its frame header (SOF0 or SOF2) claiming `width` x `height`.
inline Bytes jpeg_claiming(Bytes jpeg, std::uint16_t width, std::uint16_t height) {
    for (std::size_t i = 2; i + 9 < jpeg.size(); ++i)
        if (jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2)) {
            // FF Cn, length (2), precision (1), height (2), width (2)
            jpeg[i + 5] = static_cast<std::uint8_t>(height >> 8);
            jpeg[i + 6] = static_cast<std::uint8_t>(height);
            jpeg[i + 7] = static_cast<std::uint8_t>(width >> 8);
            jpeg[i + 8] = static_cast<std::uint8_t>(width);
            return jpeg;
        }
    return {};
}

/// The first `fraction` of the file.
inline Bytes cut(const Bytes& bytes, double fraction) {
    return Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() * fraction));
}

/// A 54-byte BMP header claiming `width` x `height` 24-bit pixels, with no pixels after it.
inline Bytes bmp_claiming(std::uint32_t width, std::uint32_t height) {
    Bytes b(54, 0);
    const auto le32 = [&](std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
    };
    b[0] = 'B';
    b[1] = 'M';
    le32(2, 54);
    le32(10, 54);
    le32(14, 40);
    le32(18, width);
    le32(22, height);
    b[26] = 1;
    b[28] = 24;
    return b;
}

inline std::string as_string(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

}  // namespace test_support
