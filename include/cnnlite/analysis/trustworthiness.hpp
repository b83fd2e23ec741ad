// Quality of an embedding: trustworthiness (Venna & Kaski 2001; how few of a point's embedded
// neighbours are strangers in the original space) and the accuracy of a k-NN classifier run in
// the embedding.
//
// Functions that reach Eigen's products or Spectra are templates (`template <class Lazy = void>`)
// for one reason: a template is compiled only by the programs that call it, while an inline
// function is compiled by every program that includes its header (README.md, "Compile
// time"). Call them as ordinary functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "cnnlite/analysis/knn.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"

namespace cnnlite {

/// Trustworthiness at k of the embedding `y` (n x dim_y) of the points `x` (n x dim_x), exact
/// over all pairs (O(n^2 dim) time, O(n) memory per thread; use a sample for large n):
/// T = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in embedded kNN(i) but not original kNN(i)} (r(i, j) - k),
/// with r(i, j) the rank of j among i's neighbours in the original space (1 = nearest; ties by
/// index). Needs 1 <= k < n / 2 so that the normaliser stays positive, as scikit-learn does.
template <class Lazy = void>
double trustworthiness(const float* x, std::int64_t n, std::int64_t dim_x, const float* y, std::int64_t dim_y,
                       std::int64_t k) {
    detail::check_points("trustworthiness (original)", x, n, dim_x);
    detail::check_points("trustworthiness (embedding)", y, n, dim_y);
    check(k >= 1 && 2 * k < n, "trustworthiness: k = ", k, " must be in [1, n / 2) for n = ", n);
    const KnnGraph embedded = knn_exact(y, n, dim_y, k + 1);  // self first, then k neighbours
    double penalty = 0;
#pragma omp parallel
    {
        std::vector<std::pair<float, std::int32_t>> order(static_cast<std::size_t>(n));
        std::vector<std::int32_t> rank(static_cast<std::size_t>(n));
#pragma omp for schedule(dynamic, 16) reduction(+ : penalty)
        for (std::int64_t i = 0; i < n; ++i) {
            for (std::int64_t j = 0; j < n; ++j)
                order[static_cast<std::size_t>(j)] = {
                    j == i ? -1.0f : detail::squared_distance(x + i * dim_x, x + j * dim_x, dim_x),
                    static_cast<std::int32_t>(j)};
            std::sort(order.begin(), order.end());
            for (std::int64_t r = 0; r < n; ++r) rank[static_cast<std::size_t>(order[static_cast<std::size_t>(r)].second)] = static_cast<std::int32_t>(r);
            double row = 0;
            for (std::int64_t a = 1; a <= k; ++a) {
                const std::int32_t r = rank[static_cast<std::size_t>(embedded.index(i, a))];
                if (r > k) row += static_cast<double>(r - k);
            }
            penalty += row;
        }
    }
    const double nd = static_cast<double>(n), kd = static_cast<double>(k);
    return 1.0 - 2.0 / (nd * kd * (2.0 * nd - 3.0 * kd - 1.0)) * penalty;
}

/// Trustworthiness at k on `sample` points drawn without repeats by `seed` (all points when
/// sample >= n): the statistic of the sub-dataset, as scikit-learn computes it on X[idx], Y[idx].
template <class Lazy = void>
double trustworthiness_sample(const float* x, std::int64_t n, std::int64_t dim_x, const float* y,
                              std::int64_t dim_y, std::int64_t k, std::int64_t sample, std::uint64_t seed = 0) {
    check(n > 0 && sample > 0, "trustworthiness_sample: need points and a positive sample size (n = ", n,
          ", sample = ", sample, ")");
    check(x != nullptr && y != nullptr, "trustworthiness_sample: null data pointer");
    const std::int64_t m = std::min(n, sample);
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    const RandomStream rs(seed, Purpose::data, 0x7472757374);
    for (std::int64_t i = 0; i < m; ++i)
        std::swap(order[static_cast<std::size_t>(i)],
                  order[static_cast<std::size_t>(i + static_cast<std::int64_t>(rs.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(n - i))))]);
    std::sort(order.begin(), order.begin() + m);  // keep file order among the sampled points
    std::vector<float> xs(static_cast<std::size_t>(m * dim_x)), ys(static_cast<std::size_t>(m * dim_y));
    for (std::int64_t s = 0; s < m; ++s) {
        std::copy_n(x + order[static_cast<std::size_t>(s)] * dim_x, dim_x, xs.data() + s * dim_x);
        std::copy_n(y + order[static_cast<std::size_t>(s)] * dim_y, dim_y, ys.data() + s * dim_y);
    }
    return trustworthiness(xs.data(), m, dim_x, ys.data(), dim_y, k);
}

/// Accuracy of a k-nearest-neighbour majority vote (uniform weights; a tied vote goes to the
/// smallest label, as scikit-learn's KNeighborsClassifier) that classifies `test` points
/// (n_test x dim) from `train` points (n_train x dim) with integer labels >= 0.
template <class Lazy = void>
double knn_classifier_accuracy(const float* train, const std::int32_t* train_labels, std::int64_t n_train,
                               const float* test, const std::int32_t* test_labels, std::int64_t n_test,
                               std::int64_t dim, std::int64_t k) {
    check(train_labels != nullptr && test_labels != nullptr, "knn_classifier_accuracy: null label pointer");
    check(k >= 1 && k <= n_train, "knn_classifier_accuracy: k = ", k, " must be in [1, ", n_train,
          "] (the number of training points)");
    std::int32_t classes = 0;
    for (std::int64_t i = 0; i < n_train; ++i) {
        check(train_labels[i] >= 0, "knn_classifier_accuracy: training label ", i, " is negative (", train_labels[i], ")");
        classes = std::max(classes, train_labels[i] + 1);
    }
    const KnnGraph g = knn_exact_query(train, n_train, test, n_test, dim, k);
    std::int64_t correct = 0;
    std::vector<std::int64_t> votes(static_cast<std::size_t>(classes));
    for (std::int64_t q = 0; q < n_test; ++q) {
        std::fill(votes.begin(), votes.end(), 0);
        for (std::int64_t j = 0; j < k; ++j) ++votes[static_cast<std::size_t>(train_labels[g.index(q, j)])];
        const auto best = std::max_element(votes.begin(), votes.end()) - votes.begin();  // first = smallest label
        correct += best == test_labels[q];
    }
    return static_cast<double>(correct) / static_cast<double>(n_test);
}

}  // namespace cnnlite
