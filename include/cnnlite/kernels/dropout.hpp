// Inverted dropout masks drawn from a counter-based stream: element j of the sample with
// global index i keeps its value with probability 1 - rate, decided by 16 bits of draw
// i*ceil(features/4) + j/4 of the layer's stream for this step (one 64-bit draw serves four
// elements, bits 16*(j%4) and up). The keep probability is thus 1 - rate rounded to 1/65536.
// The mask depends only on (seed, layer, step, sample), never on the batch composition, the
// thread count or the process count.
#pragma once

#include <cmath>
#include <cstdint>

#include "cnnlite/core/random.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"

namespace cnnlite::kernels {

/// mask = (u >= rate) / (1 - rate); y = x * mask. `sample_ids[r]` is the global index of row r.
template <class T>
void dropout_forward(const T* x, T* y, T* mask, std::int64_t rows, std::int64_t features,
                     const std::int64_t* sample_ids, const RandomStream& stream, double rate) {
    const T scale = static_cast<T>(1.0 / (1.0 - rate));
    // u = bits / 2^16 >= rate  <=>  bits >= ceil(rate * 2^16), compared in integers.
    const std::uint64_t threshold = static_cast<std::uint64_t>(std::ceil(rate * 65536.0));
    const std::uint64_t draws = static_cast<std::uint64_t>((features + 3) / 4);
#pragma omp parallel for schedule(static) if (rows * features >= parallel_threshold)
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::uint64_t base = static_cast<std::uint64_t>(sample_ids[r]) * draws;
        const T* xr = x + r * features;
        T* yr = y + r * features;
        T* mr = mask + r * features;
#pragma omp simd
        for (std::int64_t j = 0; j < features; ++j) {
            const std::uint64_t bits = stream.bits(base + static_cast<std::uint64_t>(j / 4));
            const std::uint64_t u16 = (bits >> (16 * (j % 4))) & 0xFFFFu;
            const T m = u16 >= threshold ? scale : T(0);
            mr[j] = m;
            yr[j] = xr[j] * m;
        }
    }
}

}  // namespace cnnlite::kernels
