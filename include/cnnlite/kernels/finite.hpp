// Whether an array holds only finite values, for the non-finite gradient check after every
// training step: a pass over all 806K gradients that must not run on one core while the
// other waits.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

/// True when none of the `n` values is a NaN or an infinity. x * 0 is 0 for every finite x and
/// NaN otherwise, so a sum of those products detects both without the overflow a plain sum of
/// the values could run into.
template <class T>
bool all_finite(const T* x, std::int64_t n) {
    constexpr std::int64_t block = 4096;
    const std::int64_t blocks = (n + block - 1) / block;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= parallel_threshold)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t end = std::min(n, (b + 1) * block);
        T zero = 0;
#pragma omp simd reduction(+ : zero)
        for (std::int64_t i = b * block; i < end; ++i) zero += x[i] * T(0);
        bad |= zero != T(0);  // NaN compares unequal
    }
    return bad == 0;
}

}  // namespace cnnlite::kernels
