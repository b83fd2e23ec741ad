// Percentile bootstrap confidence interval of a mean (Efron and Tibshirani, 1993, ch. 13): the
// values are resampled with replacement, and the interval is the quantiles of the resampled
// means. Used for the per-image faithfulness scores of the methods table, where the images are
// a sample and the mean alone hides how much it would move on another sample. Draws come from a
// counter-based stream, so an interval is a pure function of the values, the seed and the
// number of resamples.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"

namespace cnnlite::explain {

/// A mean with its bootstrap confidence interval.
struct BootstrapInterval {
    double mean = 0;  ///< mean of the values themselves
    double low = 0;   ///< lower end of the interval
    double high = 0;  ///< upper end of the interval
};

/// How bootstrap_mean_interval() resamples.
struct BootstrapOptions {
    int resamples = 2000;      ///< resampled means the quantiles are taken from
    double confidence = 0.95;  ///< coverage of the interval, in (0, 1)
    std::uint64_t seed = 0;    ///< keys the draws (with `stream`)
    std::uint64_t stream = 0;  ///< independent draws for the same seed, e.g. one per statistic
};

namespace detail {
/// Quantile `q` of ascending `sorted` values by linear interpolation between order statistics
/// at position (n - 1) q (NumPy's default).
inline double sorted_quantile(const std::vector<double>& sorted, double q) {
    const double position = static_cast<double>(sorted.size() - 1) * q;
    const auto lo = static_cast<std::size_t>(std::floor(position));
    const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
    const double t = position - static_cast<double>(lo);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * t;
}
}  // namespace detail

/// The percentile bootstrap interval of the mean of `values`: `options.resamples` samples of
/// the same size drawn with replacement, and the (1 - confidence) / 2 and (1 + confidence) / 2
/// quantiles of their means. Resample r draws value indices r * n ... r * n + n - 1 of the
/// stream keyed by (seed, stream), so the same seed gives the same interval, and the same
/// resampled index sets for every series of the same length (paired comparisons). Throws for
/// no values, a non-finite value, fewer than one resample or a confidence outside (0, 1).
inline BootstrapInterval bootstrap_mean_interval(const std::vector<double>& values,
                                                 const BootstrapOptions& options = {}) {
    const char* op = "bootstrap_mean_interval";
    check(!values.empty(), op, ": no values to resample");
    check(options.resamples >= 1, op, ": resamples must be at least 1, got ", options.resamples);
    check(options.confidence > 0 && options.confidence < 1, op, ": confidence must be in (0, 1), got ",
          options.confidence);
    const std::size_t n = values.size();
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        check(std::isfinite(values[i]), op, ": value ", i, " is not finite (", values[i], ")");
        total += values[i];
    }
    BootstrapInterval out;
    out.mean = total / static_cast<double>(n);
    const RandomStream draws(options.seed, Purpose::user, 0x626f6f74, options.stream);
    std::vector<double> means(static_cast<std::size_t>(options.resamples));
    for (std::size_t r = 0; r < means.size(); ++r) {
        double sum = 0;
        for (std::size_t j = 0; j < n; ++j) sum += values[draws.below(r * n + j, n)];
        means[r] = sum / static_cast<double>(n);
    }
    std::sort(means.begin(), means.end());
    const double tail = 0.5 * (1 - options.confidence);
    out.low = detail::sorted_quantile(means, tail);
    out.high = detail::sorted_quantile(means, 1 - tail);
    return out;
}

}  // namespace cnnlite::explain
