// The predicted class of each row of scores: used by training's accuracy count, by evaluation
// and by the explanation methods, which must all agree on what "predicted" means.
#pragma once

#include <cstdint>

namespace cnnlite::kernels {

/// Index of the largest of the `cols` values in each of `rows` rows of `scores` (row-major),
/// written to `out[rows]`: the first on ties, and never a NaN over an earlier value.
template <class T>
void argmax_rows(const T* scores, std::int64_t rows, std::int64_t cols, int* out) {
    for (std::int64_t i = 0; i < rows; ++i) {
        const T* row = scores + i * cols;
        std::int64_t best = 0;
        for (std::int64_t j = 1; j < cols; ++j)
            if (row[j] > row[best]) best = j;
        out[i] = static_cast<int>(best);
    }
}

}  // namespace cnnlite::kernels
