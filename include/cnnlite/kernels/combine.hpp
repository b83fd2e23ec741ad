// Kernels that join several tensors into one: the element-wise sum of n arrays (add_n) and the
// strided row copies of concatenation along an axis (forward) and its split (backward).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

/// y = xs[0] + xs[1] + ... + xs[n-1] over `count` elements, added in input order. Blocks of
/// elements are spread over the threads; each block reads every input once.
template <class T>
void add_n_forward(const T* const* xs, std::int64_t n, std::int64_t count, T* y) {
    constexpr std::int64_t block = 4096;
    const std::int64_t blocks = (count + block - 1) / block;
#pragma omp parallel for schedule(static) if (n * count >= parallel_threshold)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t begin = b * block, end = std::min(count, begin + block);
        std::memcpy(y + begin, xs[0] + begin, static_cast<std::size_t>(end - begin) * sizeof(T));
        for (std::int64_t k = 1; k < n; ++k) {
            const T* x = xs[k];
#pragma omp simd
            for (std::int64_t i = begin; i < end; ++i) y[i] += x[i];
        }
    }
}

/// dst[r * dst_stride + j] = src[r * src_stride + j] (or +=, when `accumulate`) for `rows` rows
/// of `width` values: one input's block of a concatenation, copied in or (backward) out.
template <class T>
void copy_rows(const T* src, std::int64_t src_stride, T* dst, std::int64_t dst_stride, std::int64_t rows,
               std::int64_t width, bool accumulate) {
#pragma omp parallel for schedule(static) if (rows * width >= parallel_threshold)
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* s = src + r * src_stride;
        T* d = dst + r * dst_stride;
        if (accumulate) {
#pragma omp simd
            for (std::int64_t j = 0; j < width; ++j) d[j] += s[j];
        } else {
            std::memcpy(d, s, static_cast<std::size_t>(width) * sizeof(T));
        }
    }
}

}  // namespace cnnlite::kernels
