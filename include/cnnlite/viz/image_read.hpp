// Reading a user's pictures: PNG through libpng and JPEG through libjpeg(-turbo), the maintained
// decoders Debian ships, recognised by their signatures; every other format is refused by name.
// A picture is untrusted input: the file must be a regular file of bounded size, the pixel count
// its header claims is checked before anything is decoded, and a picture that does not decode
// completely (truncated, corrupt) is an error naming the file, never a half-grey image.
#pragma once

#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/files.hpp"
#include "cnnlite/viz/image.hpp"

namespace cnnlite::viz {

/// Bounds on what reading one picture may cost.
struct ImageReadLimits {
    /// Largest file read (64 MiB; a 40-megapixel camera JPEG is ~15 MB).
    std::uint64_t max_file_bytes = std::uint64_t(64) << 20;
    /// Largest width x height decoded (40 megapixels: at most 120 MB of RGB).
    std::uint64_t max_pixels = 40'000'000;
    /// Most scans of a progressive JPEG (each scan is a pass over the whole picture; real
    /// files have about ten, and thousands are a way to burn CPU time with a small file).
    int max_jpeg_scans = 500;
};

/// The picture formats read_image() knows, by their signatures.
enum class ImageFormat { png, jpeg, unknown };

/// The format the first bytes announce (PNG's 8-byte signature, JPEG's SOI marker FF D8 FF).
inline ImageFormat sniff_image_format(const std::uint8_t* data, std::size_t size) {
    static const std::uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (size >= 8 && std::equal(png, png + 8, data)) return ImageFormat::png;
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::jpeg;
    return ImageFormat::unknown;
}

namespace detail {

/// A name for formats we refuse, so that the message says what the file is.
inline std::string describe_foreign_format(const std::uint8_t* data, std::size_t size) {
    const auto starts = [&](const std::string& magic, std::size_t at = 0) {
        return size >= at + magic.size() && std::equal(magic.begin(), magic.end(), data + at);
    };
    if (starts("BM")) return "a BMP picture";
    if (starts("GIF87a") || starts("GIF89a")) return "a GIF picture";
    if (starts(std::string("II*\0", 4)) || starts(std::string("MM\0*", 4))) return "a TIFF picture";
    if (starts("RIFF") && starts("WEBP", 8)) return "a WebP picture";
    if (starts(std::string("\0\0\1\0", 4))) return "an ICO picture";
    if (starts("ftyp", 4)) return "an HEIF/AVIF picture or a video";
    if (starts("<svg") || starts("<?xml")) return "an SVG or XML file";
    if (starts("%PDF")) return "a PDF file";
    if (size >= 2 && data[0] == 'P' && data[1] >= '1' && data[1] <= '6') return "a PNM picture";
    return "not a PNG or JPEG picture";
}

/// Composites grey+alpha or RGBA pixels over white, as a viewer shows a transparent picture.
inline void composite_over_white(const std::uint8_t* pixels, int with_alpha, Image& out) {
    const int c = out.channels(), n = c + with_alpha;
    const std::size_t count = static_cast<std::size_t>(out.width()) * static_cast<std::size_t>(out.height());
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint8_t* p = pixels + i * static_cast<std::size_t>(n);
        const int a = with_alpha ? p[n - 1] : 255;
        for (int k = 0; k < c; ++k)  // v * a + 255 * (255 - a), rounded
            out.data()[i * static_cast<std::size_t>(c) + static_cast<std::size_t>(k)] =
                static_cast<std::uint8_t>((p[k] * a + 255 * (255 - a) + 127) / 255);
    }
}

inline void check_pixel_count(std::uint64_t width, std::uint64_t height, const ImageReadLimits& limits,
                              const std::string& name, const char* format) {
    check(width >= 1 && height >= 1, "read_image: '", name, "': the ", format, " header claims a ", width, "x",
          height, " picture");
    check(width <= limits.max_pixels / height, "read_image: '", name, "': the ", format, " header claims ", width,
          "x", height, " pixels, more than the limit of ", limits.max_pixels,
          " pixels (ImageReadLimits::max_pixels); shrink the picture first");
}

// libpng's simplified API keeps its setjmp inside libpng; its own limits (chunk sizes, width
// and height at most 1,000,000) apply as well.
inline Image decode_png(const std::uint8_t* data, std::size_t size, const std::string& name,
                        const ImageReadLimits& limits) {
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    struct Release {
        png_image* image;
        ~Release() { png_image_free(image); }
    } release{&png};
    if (!png_image_begin_read_from_memory(&png, data, size))
        fail("read_image: '", name, "' is not a readable PNG (libpng: ", png.message, ")");
    check_pixel_count(png.width, png.height, limits, name, "PNG");
    const bool colour = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
    const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    png.format = (colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0u);
    std::vector<std::uint8_t> pixels(PNG_IMAGE_SIZE(png));
    if (!png_image_finish_read(&png, nullptr, pixels.data(), 0, nullptr))
        fail("read_image: '", name, "' is not a complete PNG (libpng: ", png.message, ")");
    Image out(static_cast<int>(png.width), static_cast<int>(png.height), colour ? 3 : 1);
    composite_over_white(pixels.data(), alpha ? 1 : 0, out);
    return out;
}

/// libjpeg reports errors through a callback that must not return: it longjmps back into
/// decode_jpeg with the message saved. Warnings (corrupt data, a premature end of the file)
/// are errors too, because libjpeg would otherwise fill the missing pixels with grey.
struct JpegErrorManager {
    jpeg_error_mgr library{};
    std::jmp_buf escape{};
    char message[JMSG_LENGTH_MAX] = {};
    int max_scans = 0;
};

inline void jpeg_fail(j_common_ptr info) {
    auto* errors = reinterpret_cast<JpegErrorManager*>(info->err);
    info->err->format_message(info, errors->message);
    std::longjmp(errors->escape, 1);
}

inline void jpeg_message(j_common_ptr info, int level) {
    if (level < 0) jpeg_fail(info);  // level -1: a warning, i.e. damaged data
}

inline void jpeg_progress(j_common_ptr info) {
    auto* errors = reinterpret_cast<JpegErrorManager*>(info->err);
    const auto* decompress = reinterpret_cast<j_decompress_ptr>(info);
    if (decompress->input_scan_number > errors->max_scans) {
        std::snprintf(errors->message, sizeof errors->message, "more than %d progressive scans", errors->max_scans);
        std::longjmp(errors->escape, 1);
    }
}

/// What the C-level JPEG decoder hands back: a malloc'd pixel buffer (or none) and the size.
struct JpegPixels {
    unsigned char* pixels = nullptr;
    JDIMENSION width = 0, height = 0;
    int channels = 0;
    bool too_large = false;
};

// Between setjmp and the longjmps that may return to it only C objects reached through
// pointers change (`out`, `info`), so none of them is stale after the jump; the C++ objects
// are made by the caller once this function has returned. False: errors->message says why.
inline bool decode_jpeg_pixels(const std::uint8_t* data, std::size_t size, const ImageReadLimits& limits,
                               JpegErrorManager* errors, JpegPixels* out) {
    jpeg_decompress_struct info{};
    jpeg_progress_mgr progress{};
    progress.progress_monitor = jpeg_progress;
    errors->max_scans = limits.max_jpeg_scans;
    info.err = jpeg_std_error(&errors->library);
    errors->library.error_exit = jpeg_fail;
    errors->library.emit_message = jpeg_message;
    if (setjmp(errors->escape)) {
        jpeg_destroy_decompress(&info);
        return false;
    }
    jpeg_create_decompress(&info);
    info.progress = &progress;
    jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
    jpeg_read_header(&info, TRUE);
    out->width = info.image_width;
    out->height = info.image_height;
    out->too_large = info.image_width < 1 || info.image_height < 1 ||
                     std::uint64_t(info.image_width) > limits.max_pixels / std::uint64_t(info.image_height);
    if (!out->too_large) {
        // CMYK and YCCK pictures (print work flows) would need colour management; libjpeg
        // makes every other colour space grey or RGB.
        info.out_color_space = info.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
        jpeg_start_decompress(&info);
        out->width = info.output_width;
        out->height = info.output_height;
        out->channels = info.output_components;
        const std::size_t row_bytes = std::size_t(out->width) * static_cast<std::size_t>(out->channels);
        out->pixels = static_cast<unsigned char*>(std::malloc(row_bytes * out->height));
        if (!out->pixels) {
            std::snprintf(errors->message, sizeof errors->message, "out of memory");
            jpeg_destroy_decompress(&info);
            return false;
        }
        while (info.output_scanline < info.output_height) {
            JSAMPROW row = out->pixels + std::size_t(info.output_scanline) * row_bytes;
            jpeg_read_scanlines(&info, &row, 1);
        }
        jpeg_finish_decompress(&info);
    }
    jpeg_destroy_decompress(&info);
    return true;
}

inline Image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                         const ImageReadLimits& limits) {
    JpegErrorManager errors;
    JpegPixels decoded;
    const bool ok = decode_jpeg_pixels(data, size, limits, &errors, &decoded);
    struct Release {
        JpegPixels* decoded;
        ~Release() { std::free(decoded->pixels); }
    } release{&decoded};
    if (!ok) fail("read_image: '", name, "' is not a complete JPEG (libjpeg: ", errors.message, ")");
    if (decoded.too_large) check_pixel_count(decoded.width, decoded.height, limits, name, "JPEG");
    Image out(static_cast<int>(decoded.width), static_cast<int>(decoded.height), decoded.channels == 1 ? 1 : 3);
    composite_over_white(decoded.pixels, 0, out);
    return out;
}

}  // namespace detail

/// Decodes PNG or JPEG file contents into a grey (1-channel) or RGB (3-channel) image; a
/// transparent PNG is composited over white, as a viewer shows it. `name` labels errors. Other
/// formats, pictures above the limits and pictures that do not decode completely are errors.
inline Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name = "image data",
                          const ImageReadLimits& limits = {}) {
    check(size > 0, "read_image: '", name, "' is empty");
    check(size <= limits.max_file_bytes, "read_image: '", name, "' is ", size, " bytes, more than the limit of ",
          limits.max_file_bytes, " bytes (ImageReadLimits::max_file_bytes)");
    switch (sniff_image_format(data, size)) {
        case ImageFormat::png:
            return detail::decode_png(data, size, name, limits);
        case ImageFormat::jpeg:
            return detail::decode_jpeg(data, size, name, limits);
        case ImageFormat::unknown:
            break;
    }
    fail("read_image: '", name, "' is ", detail::describe_foreign_format(data, size),
         "; only PNG and JPEG pictures are read");
}

/// Reads a PNG or JPEG file as a grey or RGB image (see decode_image). Only regular files are
/// read (a FIFO or a device such as /dev/zero is refused before reading), and only up to
/// `limits.max_file_bytes`; every error names the file.
inline Image read_image(const std::string& path, const ImageReadLimits& limits = {}) {
    const cnnlite::InputFile file(path, "picture");
    const std::vector<std::uint8_t> bytes = file.read_all(limits.max_file_bytes);
    return decode_image(bytes.data(), bytes.size(), path, limits);
}

}  // namespace cnnlite::viz
