// Deterministic geometric transforms of images: the building blocks of data augmentation
// (which decides at random which ones to apply) and of test-time augmentation (which averages
// a model's predictions over the original and the flipped images). The per-image functions
// work in place on one [C, H, W] image and allocate nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/shape.hpp"
#include "cnnlite/core/tensor.hpp"

namespace cnnlite {

/// Moves the content of a [channels, height, width] image in place: afterwards
/// image(c, y, x) = old(c, y + dy, x + dx), or `fill` where (y + dy, x + dx) lies outside the
/// image. This is padding by p >= |dy|, |dx| pixels of `fill` and cropping the original size
/// back at offset (dy, dx) from the centre, so a positive dx moves the content to the left.
inline void shift_image(float* image, std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t dy,
                        std::int64_t dx, float fill) {
    const std::int64_t plane_size = height * width;
    const auto shift_row = [&](float* plane, std::int64_t y) {
        float* out = plane + y * width;
        const std::int64_t source_y = y + dy;
        if (source_y < 0 || source_y >= height || dx >= width || -dx >= width) {
            std::fill(out, out + width, fill);
            return;
        }
        const float* in = plane + source_y * width;
        const auto kept = static_cast<std::size_t>(width - (dx >= 0 ? dx : -dx));
        // memmove: with dy = 0 a row is shifted onto itself.
        if (dx >= 0) {
            std::memmove(out, in + dx, kept * sizeof(float));
            std::fill(out + kept, out + width, fill);
        } else {
            std::memmove(out - dx, in, kept * sizeof(float));
            std::fill(out, out - dx, fill);
        }
    };
    for (std::int64_t c = 0; c < channels; ++c) {
        float* plane = image + c * plane_size;
        // Each output row reads row y + dy; walking away from the rows still to be read keeps
        // every source row intact until it has been used, so no scratch copy is needed.
        if (dy >= 0) {
            for (std::int64_t y = 0; y < height; ++y) shift_row(plane, y);
        } else {
            for (std::int64_t y = height - 1; y >= 0; --y) shift_row(plane, y);
        }
    }
}

/// Mirrors a [channels, height, width] image left to right in place.
inline void flip_image_horizontally(float* image, std::int64_t channels, std::int64_t height, std::int64_t width) {
    for (std::int64_t row = 0; row < channels * height; ++row) std::reverse(image + row * width, image + (row + 1) * width);
}

/// A new batch holding `images` [N, C, H, W] mirrored left to right (for test-time
/// augmentation: average the model's predictions on `images` and on this copy).
inline Tensor<float> flipped_horizontally(const Tensor<float>& images) {
    check(images.defined() && images.rank() == 4, "flipped_horizontally: images must have shape [N, C, H, W], got ",
          images.defined() ? images.shape().str() : std::string("an undefined tensor"));
    Tensor<float> out = Tensor<float>::uninitialized(images.shape());
    const std::int64_t width = images.dim(3);
    const std::int64_t rows = width == 0 ? 0 : images.numel() / width;
    const float* in = images.data();
    float* result = out.data();
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (images.numel() >= (std::int64_t(1) << 16))
#endif
    for (std::int64_t row = 0; row < rows; ++row)
        std::reverse_copy(in + row * width, in + (row + 1) * width, result + row * width);
    return out;
}

}  // namespace cnnlite
