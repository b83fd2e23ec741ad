// Cross-entropy of predicted probabilities (not logits) as Keras computes it with
// from_logits=False: each row is rescaled to sum to 1, clipped to [eps, 1 - eps] so that a zero
// probability gives a large finite loss instead of infinity, and -sum(target * log(p)) is
// averaged over the rows.
#pragma once

#include <cmath>
#include <cstdint>

namespace cnnlite::kernels {

/// The mean over `rows` rows of -sum_j t[j] * log(clip(p[j] / sum(p), eps, 1 - eps)),
/// accumulated in double.
template <class T>
double probability_cross_entropy_rows(const T* probs, const T* targets, std::int64_t rows, std::int64_t cols,
                                      T eps) {
    double loss = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* p = probs + r * cols;
        const T* t = targets + r * cols;
        T total = 0;
        for (std::int64_t j = 0; j < cols; ++j) total += p[j];
        for (std::int64_t j = 0; j < cols; ++j) {
            if (t[j] == T(0)) continue;
            T q = p[j] / total;
            q = q < eps ? eps : (q > T(1) - eps ? T(1) - eps : q);  // NaN stays NaN
            loss -= static_cast<double>(t[j]) * std::log(static_cast<double>(q));
        }
    }
    return rows ? loss / static_cast<double>(rows) : 0.0;
}

/// Gradient of probability_cross_entropy_rows times `scale` (the loss's incoming gradient):
/// g[j] = -t[j] / (rows * q[j]) where q is inside the clip range, 0 where it was clipped, then
/// through the rescaling: dp[k] = (g[k] - sum_j g[j] q[j]) / sum(p). dp is overwritten, or
/// added to when `accumulate`.
template <class T>
void probability_cross_entropy_backward(const T* probs, const T* targets, std::int64_t rows, std::int64_t cols, T eps,
                                        T scale, T* dp, bool accumulate) {
    const T factor = scale / static_cast<T>(rows);
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* p = probs + r * cols;
        const T* t = targets + r * cols;
        T* d = dp + r * cols;
        T total = 0;
        for (std::int64_t j = 0; j < cols; ++j) total += p[j];
        T dot = 0;  // sum_j g[j] q[j]
        for (std::int64_t j = 0; j < cols; ++j) {
            const T q = p[j] / total;
            if (t[j] != T(0) && q >= eps && q <= T(1) - eps) dot += -t[j] * factor;  // g[j] q[j] = -t[j] * factor
        }
        for (std::int64_t k = 0; k < cols; ++k) {
            const T q = p[k] / total;
            const T g = t[k] != T(0) && q >= eps && q <= T(1) - eps ? -t[k] * factor / q : T(0);
            const T v = (g - dot) / total;
            d[k] = accumulate ? d[k] + v : v;
        }
    }
}

}  // namespace cnnlite::kernels
