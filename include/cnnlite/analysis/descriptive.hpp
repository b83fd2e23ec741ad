// Descriptive statistics for the EDA tables: quantiles by NumPy's default (linear interpolation
// between order statistics), mean, population variance, and the non-background pixel ratio.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnlite/core/error.hpp"

namespace cnnlite {

namespace detail {

/// Rejects empty input and NaNs with a message naming the operation and the offending index.
inline void check_sample(const char* op, const double* values, std::int64_t n) {
    check(n > 0, op, ": needs at least one value, got ", n);
    check(values != nullptr, op, ": null data pointer for ", n, " values");
    for (std::int64_t i = 0; i < n; ++i)
        check(!std::isnan(values[i]), op, ": value ", i, " is NaN");
}

/// Pairwise summation (as NumPy does) keeps the rounding error at O(log n) ulp.
inline double pairwise_sum(const double* v, std::int64_t n) {
    if (n <= 32) {
        double s = 0;
        for (std::int64_t i = 0; i < n; ++i) s += v[i];
        return s;
    }
    const std::int64_t half = n / 2;
    return pairwise_sum(v, half) + pairwise_sum(v + half, n - half);
}

}  // namespace detail

/// Quantile `q` in [0, 1] of values already sorted ascending, by linear interpolation between
/// order statistics at position (n - 1) * q (NumPy's default method, 'linear').
inline double quantile_sorted(const double* sorted, std::int64_t n, double q) {
    check(n > 0, "quantile: needs at least one value");
    check(q >= 0.0 && q <= 1.0, "quantile: q = ", q, " is outside [0, 1]");
    const double position = static_cast<double>(n - 1) * q;
    const auto lo = static_cast<std::int64_t>(std::floor(position));
    const std::int64_t hi = std::min(lo + 1, n - 1);
    const double t = position - static_cast<double>(lo);
    const double a = sorted[lo], b = sorted[hi];
    // NumPy's lerp form: exact at both ends, monotone in t.
    return t < 0.5 ? a + (b - a) * t : b - (b - a) * (1.0 - t);
}

/// Quantile `q` in [0, 1] of `n` values (any order; NaN is an error).
inline double quantile(const double* values, std::int64_t n, double q) {
    detail::check_sample("quantile", values, n);
    std::vector<double> sorted(values, values + n);
    std::sort(sorted.begin(), sorted.end());
    return quantile_sorted(sorted.data(), n, q);
}
/// Quantile `q` in [0, 1] of `values`.
inline double quantile(const std::vector<double>& values, double q) {
    return quantile(values.data(), static_cast<std::int64_t>(values.size()), q);
}

/// Arithmetic mean of `n` values (n >= 1, no NaN).
inline double mean(const double* values, std::int64_t n) {
    detail::check_sample("mean", values, n);
    return detail::pairwise_sum(values, n) / static_cast<double>(n);
}
/// Arithmetic mean of `values`.
inline double mean(const std::vector<double>& values) {
    return mean(values.data(), static_cast<std::int64_t>(values.size()));
}

/// Population variance: mean squared deviation from the mean (divides by n, not n - 1).
inline double population_variance(const double* values, std::int64_t n) {
    const double m = mean(values, n);
    // Two passes: summing squared deviations avoids the cancellation of E[x^2] - E[x]^2.
    std::vector<double> squared(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) squared[static_cast<std::size_t>(i)] = (values[i] - m) * (values[i] - m);
    return detail::pairwise_sum(squared.data(), n) / static_cast<double>(n);
}
/// Population variance of `values`.
inline double population_variance(const std::vector<double>& values) {
    return population_variance(values.data(), static_cast<std::int64_t>(values.size()));
}

/// The EDA table row of one sample: count, quartiles, maximum, mean and population variance.
struct Summary {
    std::int64_t count = 0;  ///< number of values
    double q1 = 0;           ///< 25% quantile (linear interpolation)
    double median = 0;       ///< 50% quantile
    double q3 = 0;           ///< 75% quantile
    double max = 0;          ///< largest value
    double mean = 0;         ///< arithmetic mean
    double variance = 0;     ///< population variance (divides by n)
};

/// Summary statistics of `n` values (n >= 1, no NaN).
inline Summary summarize(const double* values, std::int64_t n) {
    detail::check_sample("summarize", values, n);
    std::vector<double> sorted(values, values + n);
    std::sort(sorted.begin(), sorted.end());
    Summary s;
    s.count = n;
    s.q1 = quantile_sorted(sorted.data(), n, 0.25);
    s.median = quantile_sorted(sorted.data(), n, 0.5);
    s.q3 = quantile_sorted(sorted.data(), n, 0.75);
    s.max = sorted.back();
    s.mean = mean(values, n);
    s.variance = population_variance(values, n);
    return s;
}
/// Summary statistics of `values`.
inline Summary summarize(const std::vector<double>& values) {
    return summarize(values.data(), static_cast<std::int64_t>(values.size()));
}

/// Fraction of the `pixels` raw uint8 values that are above 0 (the paper's "instance size").
inline double nonbackground_ratio(const std::uint8_t* pixels, std::int64_t count) {
    check(count > 0, "nonbackground_ratio: image has no pixels (count ", count, ")");
    check(pixels != nullptr, "nonbackground_ratio: null pixel pointer");
    std::int64_t lit = 0;
    for (std::int64_t i = 0; i < count; ++i) lit += pixels[i] > 0;
    return static_cast<double>(lit) / static_cast<double>(count);
}

/// Non-background ratio of each of `images` consecutive images of `pixels_per_image` bytes.
inline std::vector<double> nonbackground_ratios(const std::uint8_t* pixels, std::int64_t images,
                                                std::int64_t pixels_per_image) {
    check(images >= 0, "nonbackground_ratios: negative image count ", images);
    check(pixels_per_image > 0, "nonbackground_ratios: image size ", pixels_per_image, " must be positive");
    std::vector<double> ratios(static_cast<std::size_t>(images));
    for (std::int64_t i = 0; i < images; ++i)
        ratios[static_cast<std::size_t>(i)] = nonbackground_ratio(pixels + i * pixels_per_image, pixels_per_image);
    return ratios;
}

}  // namespace cnnlite
