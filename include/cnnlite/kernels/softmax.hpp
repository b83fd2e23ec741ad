// Row-wise softmax, log-softmax and fused softmax cross-entropy on raw buffers. All use the
// max-subtraction (log-sum-exp) form, so large logits never overflow.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace cnnlite::kernels {

/// y[r, :] = softmax(x[r, :]) for `rows` rows of `cols` values.
template <class T>
void softmax_rows(const T* x, T* y, std::int64_t rows, std::int64_t cols) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        const T m = *std::max_element(xr, xr + cols);
        T total = 0;
        for (std::int64_t j = 0; j < cols; ++j) total += (yr[j] = std::exp(xr[j] - m));
        const T inv = T(1) / total;
        for (std::int64_t j = 0; j < cols; ++j) yr[j] *= inv;
    }
}

/// y[r, :] = x[r, :] - logsumexp(x[r, :]).
template <class T>
void log_softmax_rows(const T* x, T* y, std::int64_t rows, std::int64_t cols) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        const T m = *std::max_element(xr, xr + cols);
        T total = 0;
        for (std::int64_t j = 0; j < cols; ++j) total += std::exp(xr[j] - m);
        const T lse = m + std::log(total);
        for (std::int64_t j = 0; j < cols; ++j) yr[j] = xr[j] - lse;
    }
}

/// Fused softmax cross-entropy against probability targets (one-hot or soft), mean over rows.
/// Writes softmax(x) into `probs` (kept for the backward pass) and returns the mean loss.
/// Accumulates in double so that the loss of a large batch stays accurate in float.
template <class T>
double softmax_cross_entropy_rows(const T* logits, const T* targets, T* probs, std::int64_t rows,
                                  std::int64_t cols) {
    double loss = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
        const T* xr = logits + r * cols;
        const T* tr = targets + r * cols;
        T* pr = probs + r * cols;
        const T m = *std::max_element(xr, xr + cols);
        double total = 0;
        for (std::int64_t j = 0; j < cols; ++j) total += (pr[j] = std::exp(xr[j] - m));
        const double lse = static_cast<double>(m) + std::log(total);
        const T inv = static_cast<T>(1.0 / total);
        for (std::int64_t j = 0; j < cols; ++j) {
            pr[j] *= inv;
            if (tr[j] != T(0)) loss -= static_cast<double>(tr[j]) * (static_cast<double>(xr[j]) - lse);
        }
    }
    return rows ? loss / static_cast<double>(rows) : 0.0;
}

}  // namespace cnnlite::kernels
