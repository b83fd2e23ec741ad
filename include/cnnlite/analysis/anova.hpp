// One-way analysis of variance: the F statistic of k groups and its upper-tail p-value from the
// F distribution (Boost.Math), as scipy.stats.f_oneway computes them.
#pragma once

#include <boost/math/distributions/fisher_f.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cnnlite/analysis/descriptive.hpp"
#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// F statistic, p-value and degrees of freedom of a one-way ANOVA.
struct AnovaResult {
    double f_value = 0;            ///< between-group over within-group mean square
    double p_value = 1;            ///< P(F' >= f_value) for F' ~ F(df_between, df_within)
    std::int64_t df_between = 0;   ///< k - 1
    std::int64_t df_within = 0;    ///< N - k
};

/// One-way ANOVA of the `groups` (at least two, each non-empty, N > k values in all, no NaN).
/// When every group is constant the F statistic is +inf (p = 0) if the group means differ and
/// NaN (p NaN) if they do not, as in SciPy.
inline AnovaResult one_way_anova(const std::vector<std::vector<double>>& groups) {
    const auto k = static_cast<std::int64_t>(groups.size());
    check(k >= 2, "one_way_anova: needs at least two groups, got ", k);
    std::int64_t total = 0;
    for (std::int64_t g = 0; g < k; ++g) {
        const auto& values = groups[static_cast<std::size_t>(g)];
        check(!values.empty(), "one_way_anova: group ", g, " is empty");
        for (std::size_t i = 0; i < values.size(); ++i)
            check(!std::isnan(values[i]), "one_way_anova: value ", i, " of group ", g, " is NaN");
        total += static_cast<std::int64_t>(values.size());
    }
    check(total > k, "one_way_anova: ", total, " values in ", k, " groups leave no degrees of freedom within groups");

    // Deviations from the grand mean and the group means (not raw sums of squares), so that
    // ratios near 0.3 with tiny differences lose no digits.
    double grand = 0;
    for (const auto& values : groups) grand += mean(values) * static_cast<double>(values.size());
    grand /= static_cast<double>(total);
    double ss_between = 0, ss_within = 0;
    for (const auto& values : groups) {
        const double m = mean(values);
        ss_between += static_cast<double>(values.size()) * (m - grand) * (m - grand);
        ss_within += population_variance(values) * static_cast<double>(values.size());
    }

    AnovaResult r;
    r.df_between = k - 1;
    r.df_within = total - k;
    const double ms_between = ss_between / static_cast<double>(r.df_between);
    const double ms_within = ss_within / static_cast<double>(r.df_within);
    if (ms_within == 0) {
        r.f_value = ms_between == 0 ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
        r.p_value = ms_between == 0 ? std::numeric_limits<double>::quiet_NaN() : 0.0;
        return r;
    }
    r.f_value = ms_between / ms_within;
    const boost::math::fisher_f_distribution<double> f(static_cast<double>(r.df_between),
                                                       static_cast<double>(r.df_within));
    r.p_value = boost::math::cdf(boost::math::complement(f, r.f_value));
    return r;
}

/// One-way ANOVA of two samples (e.g. the train and test ratios of one class).
inline AnovaResult one_way_anova(const std::vector<double>& a, const std::vector<double>& b) {
    return one_way_anova(std::vector<std::vector<double>>{a, b});
}

}  // namespace cnnlite
