// k-nearest-neighbour graphs under the Euclidean metric: an exact search built on blocked GEMM
// (|q - x|^2 = |q|^2 + |x|^2 - 2 q.x) and an approximate one for large data (exact search in a
// PCA projection for candidates, re-ranked by true distance, then refined by neighbours of
// neighbours). Both are deterministic: every query's result depends only on the data.
//
// Functions that reach Eigen's products or Spectra are templates (`template <class Lazy = void>`)
// for one reason: a template is compiled only by the programs that call it, while an inline
// function is compiled by every program that includes its header (README.md, "Compile
// time"). Call them as ordinary functions.
#pragma once

#include <Eigen/Core>
#include <Spectra/MatOp/DenseSymMatProd.h>
#include <Spectra/SymEigsSolver.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"

namespace cnnlite {

/// The k nearest neighbours of n points: row i lists k point indices sorted by ascending
/// distance (ties by index) and their Euclidean (not squared) distances.
struct KnnGraph {
    std::int64_t n = 0;                 ///< number of points (rows)
    std::int64_t k = 0;                 ///< neighbours per point
    std::vector<std::int32_t> indices;  ///< n * k neighbour indices, row-major
    std::vector<float> distances;       ///< n * k distances, row-major

    /// Neighbour `j` of point `i`.
    std::int32_t index(std::int64_t i, std::int64_t j) const { return indices[static_cast<std::size_t>(i * k + j)]; }
    /// Distance to neighbour `j` of point `i`.
    float distance(std::int64_t i, std::int64_t j) const { return distances[static_cast<std::size_t>(i * k + j)]; }
};

/// Settings of the approximate search.
struct KnnOptions {
    std::int64_t exact_below = 10000;  ///< data sets with fewer points are searched exactly
    int pca_dims = 64;                 ///< dimensions of the projection that proposes candidates
    int candidates = 60;               ///< candidates per point proposed by the projection (>= k)
    int probes = 12;                   ///< k-means cells searched for each cell's points
    int refine_iterations = 0;         ///< rounds of "my neighbours' neighbours" re-ranking

    /// Chainable setters.
    KnnOptions& set_exact_below(std::int64_t v) { exact_below = v; return *this; }
    /// Sets pca_dims.
    KnnOptions& set_pca_dims(int v) { pca_dims = v; return *this; }
    /// Sets candidates.
    KnnOptions& set_candidates(int v) { candidates = v; return *this; }
    /// Sets probes.
    KnnOptions& set_probes(int v) { probes = v; return *this; }
    /// Sets refine_iterations.
    KnnOptions& set_refine_iterations(int v) { refine_iterations = v; return *this; }
};

namespace detail {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMapF = Eigen::Map<const RowMatrixF>;

/// Throws unless `data` is a non-null, finite n x dim matrix.
inline void check_points(const char* op, const float* data, std::int64_t n, std::int64_t dim) {
    check(n > 0, op, ": no points (n = ", n, ")");
    check(dim > 0, op, ": points have dimension ", dim, "; need at least 1");
    check(data != nullptr, op, ": null data pointer for ", n, " x ", dim, " values");
    check(n < std::numeric_limits<std::int32_t>::max(), op, ": ", n, " points exceed the 32-bit index range");
    const std::int64_t total = n * dim;
    for (std::int64_t i = 0; i < total; ++i)
        if (!std::isfinite(data[i]))
            fail(op, ": value ", data[i], " at row ", i / dim, ", column ", i % dim, " is not finite");
}

/// Squared Euclidean distance. Eigen's reduction runs in SIMD lanes (a plain loop would not
/// vectorise: the compiler may not reorder float additions).
inline float squared_distance(const float* a, const float* b, std::int64_t dim) {
    using Vec = Eigen::Map<const Eigen::VectorXf>;
    return (Vec(a, dim) - Vec(b, dim)).squaredNorm();
}

/// A row's k best (squared distance, index) pairs, kept sorted; ties go to the smaller index
/// because candidates arrive in increasing index order or are compared by (distance, index).
struct TopK {
    float* dist;
    std::int32_t* idx;
    std::int64_t k;

    void reset() {
        std::fill(dist, dist + k, std::numeric_limits<float>::infinity());
        std::fill(idx, idx + k, -1);
    }
    float worst() const { return dist[k - 1]; }
    /// Inserts (d, j) unless it is no better than the current k-th or already present.
    bool push(float d, std::int32_t j) {
        if (d > dist[k - 1] || (d == dist[k - 1] && (idx[k - 1] < 0 ? false : j >= idx[k - 1]))) return false;
        for (std::int64_t t = 0; t < k; ++t)
            if (idx[t] == j) return false;
        std::int64_t pos = k - 1;
        while (pos > 0 && (dist[pos - 1] > d || (dist[pos - 1] == d && idx[pos - 1] > j))) {
            dist[pos] = dist[pos - 1];
            idx[pos] = idx[pos - 1];
            --pos;
        }
        dist[pos] = d;
        idx[pos] = j;
        return true;
    }
};

/// Exact k nearest base points of each query by blocked GEMM. `exclude[q]` (if given) is a
/// base index that query q must not return (the query itself). Writes -(q.x - |x|^2 / 2), an
/// order-preserving stand-in for the squared distance that finish_rows() replaces.
template <class Lazy = void>
void knn_blocked(const float* base, std::int64_t nb, const float* queries, std::int64_t nq, std::int64_t dim,
                 std::int64_t k, const std::int32_t* exclude, std::int32_t* out_idx, float* out_dist) {
    // 128 x 1024 floats of dot products (512 KiB) stay in a core's L2 while they are scanned.
    constexpr std::int64_t query_block = 128;
    constexpr std::int64_t base_block = 1024;
    const ConstRowMapF B(base, nb, dim);
    // |q - x|^2 = |q|^2 - 2 (q.x - |x|^2 / 2): per query, rank by the bracket alone.
    const Eigen::VectorXf half_norms = 0.5f * B.rowwise().squaredNorm();
    const std::int64_t blocks = (nq + query_block - 1) / query_block;

#pragma omp parallel
    {
        RowMatrixF dots(query_block, base_block);
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t qb = 0; qb < blocks; ++qb) {
            const std::int64_t q0 = qb * query_block;
            const std::int64_t qn = std::min(query_block, nq - q0);
            const ConstRowMapF Q(queries + q0 * dim, qn, dim);
            for (std::int64_t r = 0; r < qn; ++r) TopK{out_dist + (q0 + r) * k, out_idx + (q0 + r) * k, k}.reset();
            for (std::int64_t b0 = 0; b0 < nb; b0 += base_block) {
                const std::int64_t bn = std::min(base_block, nb - b0);
                // Inside the parallel region Eigen runs this product on the calling thread.
                dots.topLeftCorner(qn, bn).noalias() = Q * B.middleRows(b0, bn).transpose();
                const float* hn = half_norms.data() + b0;
                for (std::int64_t r = 0; r < qn; ++r) {
                    TopK top{out_dist + (q0 + r) * k, out_idx + (q0 + r) * k, k};
                    const float* row = dots.data() + r * base_block;
                    const std::int32_t skip = exclude ? exclude[q0 + r] : -1;
                    float bar = -top.worst();  // candidates must score at least this
                    for (std::int64_t c = 0; c < bn; ++c) {
                        const float score = row[c] - hn[c];
                        if (score >= bar && static_cast<std::int32_t>(b0 + c) != skip) {
                            top.push(-score, static_cast<std::int32_t>(b0 + c));
                            bar = -top.worst();
                        }
                    }
                }
            }
        }
    }
}

/// Recomputes the distances of each row's neighbours directly (the GEMM form loses digits
/// through cancellation), re-sorts by (distance, index) and takes square roots.
inline void finish_rows(const float* base, const float* queries, std::int64_t nq, std::int64_t dim, std::int64_t k,
                        std::int32_t* idx, float* dist) {
#pragma omp parallel for schedule(static)
    for (std::int64_t q = 0; q < nq; ++q) {
        std::vector<std::pair<float, std::int32_t>> row;
        row.reserve(static_cast<std::size_t>(k));
        for (std::int64_t j = 0; j < k; ++j) {
            const std::int32_t b = idx[q * k + j];
            if (b < 0) continue;
            row.emplace_back(squared_distance(queries + q * dim, base + static_cast<std::int64_t>(b) * dim, dim), b);
        }
        std::sort(row.begin(), row.end());
        for (std::int64_t j = 0; j < k; ++j) {
            const bool have = j < static_cast<std::int64_t>(row.size());
            idx[q * k + j] = have ? row[static_cast<std::size_t>(j)].second : -1;
            dist[q * k + j] = have ? std::sqrt(row[static_cast<std::size_t>(j)].first) : std::numeric_limits<float>::infinity();
        }
    }
}

}  // namespace detail

/// Exact k nearest points of `base` (nb x dim, row-major) for each of `nq` queries: row q of
/// the result lists base indices (1 <= k <= nb).
template <class Lazy = void>
KnnGraph knn_exact_query(const float* base, std::int64_t nb, const float* queries, std::int64_t nq,
                         std::int64_t dim, std::int64_t k) {
    detail::check_points("knn_exact_query (base)", base, nb, dim);
    detail::check_points("knn_exact_query (queries)", queries, nq, dim);
    check(k >= 1 && k <= nb, "knn_exact_query: k = ", k, " must be in [1, ", nb, "] (the number of base points)");
    KnnGraph g;
    g.n = nq;
    g.k = k;
    g.indices.resize(static_cast<std::size_t>(nq * k));
    g.distances.resize(static_cast<std::size_t>(nq * k));
    detail::knn_blocked(base, nb, queries, nq, dim, k, nullptr, g.indices.data(), g.distances.data());
    detail::finish_rows(base, queries, nq, dim, k, g.indices.data(), g.distances.data());
    return g;
}

/// Exact k-nearest-neighbour graph of n points (n x dim, row-major). Each point is its own
/// first neighbour (distance 0), as UMAP's n_neighbors counts it; so 1 <= k <= n.
template <class Lazy = void>
KnnGraph knn_exact(const float* data, std::int64_t n, std::int64_t dim, std::int64_t k) {
    detail::check_points("knn_exact", data, n, dim);
    check(k >= 1 && k <= n, "knn_exact: k = ", k, " must be in [1, ", n, "] (the number of points, self included)");
    KnnGraph g;
    g.n = n;
    g.k = k;
    g.indices.resize(static_cast<std::size_t>(n * k));
    g.distances.resize(static_cast<std::size_t>(n * k));
    if (k > 1) {
        std::vector<std::int32_t> self(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n; ++i) self[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
        std::vector<std::int32_t> idx(static_cast<std::size_t>(n * (k - 1)));
        std::vector<float> dist(idx.size());
        detail::knn_blocked(data, n, data, n, dim, k - 1, self.data(), idx.data(), dist.data());
        detail::finish_rows(data, data, n, dim, k - 1, idx.data(), dist.data());
        for (std::int64_t i = 0; i < n; ++i) {
            std::copy_n(idx.data() + i * (k - 1), k - 1, g.indices.data() + i * k + 1);
            std::copy_n(dist.data() + i * (k - 1), k - 1, g.distances.data() + i * k + 1);
        }
    }
    for (std::int64_t i = 0; i < n; ++i) {
        g.indices[static_cast<std::size_t>(i * k)] = static_cast<std::int32_t>(i);
        g.distances[static_cast<std::size_t>(i * k)] = 0.0f;
    }
    return g;
}

namespace detail {

/// The data projected onto its `p` leading principal axes (n x p, row-major). The axes come
/// from an evenly strided sample of at most `sample` rows: they only steer the candidate
/// search, and a few thousand rows pin them down as well as all of them would.
template <class Lazy = void>
RowMatrixF pca_project(const float* data, std::int64_t n, std::int64_t dim, std::int64_t p,
                       std::int64_t sample = 8192) {
    const ConstRowMapF X(data, n, dim);
    const std::int64_t m = std::min(n, sample);
    RowMatrixF S(m, dim);
    for (std::int64_t r = 0; r < m; ++r) S.row(r) = X.row(r * n / m);
    const Eigen::RowVectorXf muf = (S.cast<double>().colwise().sum() / static_cast<double>(m)).cast<float>();
    S.rowwise() -= muf;
    Eigen::MatrixXd cov = (S.transpose() * S).cast<double>() / static_cast<double>(m);
    // Spectra's Lanczos solver for the p leading axes (Eigen's dense solver trips GCC 12's
    // -Wmaybe-uninitialized inside Eigen).
    Spectra::DenseSymMatProd<double> op(cov);
    Spectra::SymEigsSolver<Spectra::DenseSymMatProd<double>> eig(op, p, std::min<std::int64_t>(dim, 2 * p + 1));
    eig.init();
    eig.compute(Spectra::SortRule::LargestAlge, 1000, 1e-6);
    check(eig.info() == Spectra::CompInfo::Successful, "knn_approximate: the principal axes of the ", dim, "x", dim,
          " covariance did not converge");
    const Eigen::MatrixXf W = eig.eigenvectors().cast<float>();  // largest eigenvalue first
    RowMatrixF Z = X * W;
    Z.rowwise() -= muf * W;
    return Z;
}

/// Lloyd's k-means of the n x p rows of Z into `clusters` groups, started from evenly strided
/// rows; returns each row's cluster and fills `centroids`. Deterministic: assignments are per
/// row, and centroid sums run serially in row order.
template <class Lazy = void>
std::vector<std::int32_t> kmeans(const RowMatrixF& Z, std::int64_t clusters, int iterations,
                                 RowMatrixF& centroids) {
    const std::int64_t n = Z.rows();
    centroids.resize(clusters, Z.cols());
    for (std::int64_t c = 0; c < clusters; ++c) centroids.row(c) = Z.row(c * n / clusters);
    std::vector<std::int32_t> assign(static_cast<std::size_t>(n), 0);
    for (int it = 0; it < iterations; ++it) {
        std::vector<std::int32_t> nearest(static_cast<std::size_t>(n));
        std::vector<float> unused(static_cast<std::size_t>(n));
        knn_blocked(centroids.data(), clusters, Z.data(), n, Z.cols(), 1, nullptr, nearest.data(), unused.data());
        assign.swap(nearest);
        Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(clusters, Z.cols());
        std::vector<std::int64_t> counts(static_cast<std::size_t>(clusters), 0);
        for (std::int64_t i = 0; i < n; ++i) {
            sums.row(assign[static_cast<std::size_t>(i)]) += Z.row(i).cast<double>();
            ++counts[static_cast<std::size_t>(assign[static_cast<std::size_t>(i)])];
        }
        // An emptied cluster keeps its old centroid rather than dividing by zero.
        for (std::int64_t c = 0; c < clusters; ++c)
            if (counts[static_cast<std::size_t>(c)] > 0)
                centroids.row(c) = (sums.row(c) / static_cast<double>(counts[static_cast<std::size_t>(c)])).cast<float>();
    }
    return assign;
}

}  // namespace detail

/// Approximate k-nearest-neighbour graph (self first, as knn_exact). Small data (n below
/// options.exact_below) or low dimension (dim <= pca_dims) is searched exactly. Otherwise:
/// project onto the leading `pca_dims` principal axes; cut the projection into about sqrt(n)
/// k-means cells; search each cell's points exactly (blocked GEMM) among the points of its
/// `probes` nearest cells for `candidates` per point; re-rank them by true distance; then
/// `refine_iterations` rounds re-rank each point's neighbours' neighbours (NN-descent's
/// observation: a neighbour of a neighbour is likely a neighbour).
template <class Lazy = void>
KnnGraph knn_approximate(const float* data, std::int64_t n, std::int64_t dim, std::int64_t k,
                         const KnnOptions& options = {}) {
    detail::check_points("knn_approximate", data, n, dim);
    check(k >= 1 && k <= n, "knn_approximate: k = ", k, " must be in [1, ", n, "] (the number of points, self included)");
    check(options.pca_dims >= 1, "knn_approximate: pca_dims = ", options.pca_dims, " must be positive");
    check(options.probes >= 1, "knn_approximate: probes = ", options.probes, " must be positive");
    check(options.refine_iterations >= 0, "knn_approximate: refine_iterations = ", options.refine_iterations,
          " is negative");
    if (n < options.exact_below || dim <= options.pca_dims) return knn_exact(data, n, dim, k);

    const std::int64_t c = std::min<std::int64_t>(n, std::max<std::int64_t>(k, options.candidates));
    const std::int64_t p = options.pca_dims;
    const detail::RowMatrixF Z = detail::pca_project(data, n, dim, p);
    const std::int64_t cells = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::sqrt(static_cast<double>(n))));
    detail::RowMatrixF centroids;
    const std::vector<std::int32_t> cell = detail::kmeans(Z, cells, 8, centroids);
    std::vector<std::vector<std::int32_t>> members(static_cast<std::size_t>(cells));
    for (std::int64_t i = 0; i < n; ++i) members[static_cast<std::size_t>(cell[static_cast<std::size_t>(i)])].push_back(static_cast<std::int32_t>(i));
    const std::int64_t probes = std::min<std::int64_t>(cells, options.probes);
    std::vector<std::int32_t> near_cells(static_cast<std::size_t>(cells * probes));
    std::vector<float> unused(near_cells.size());
    detail::knn_blocked(centroids.data(), cells, centroids.data(), cells, p, probes, nullptr, near_cells.data(), unused.data());

    KnnGraph g;
    g.n = n;
    g.k = k;
    g.indices.assign(static_cast<std::size_t>(n * k), -1);
    g.distances.assign(static_cast<std::size_t>(n * k), std::numeric_limits<float>::infinity());
#pragma omp parallel
    {
        detail::RowMatrixF queries, base;
        std::vector<std::int32_t> ids, idx;
        std::vector<float> dist;
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t cl = 0; cl < cells; ++cl) {
            const auto& own = members[static_cast<std::size_t>(cl)];
            if (own.empty()) continue;
            ids.clear();
            for (std::int64_t t = 0; t < probes; ++t) {
                const auto& other = members[static_cast<std::size_t>(near_cells[static_cast<std::size_t>(cl * probes + t)])];
                ids.insert(ids.end(), other.begin(), other.end());
            }
            const auto qn = static_cast<std::int64_t>(own.size());
            const auto bn = static_cast<std::int64_t>(ids.size());
            const std::int64_t kc = std::min(c, bn);
            queries.resize(qn, p);
            base.resize(bn, p);
            for (std::int64_t r = 0; r < qn; ++r) queries.row(r) = Z.row(own[static_cast<std::size_t>(r)]);
            for (std::int64_t r = 0; r < bn; ++r) base.row(r) = Z.row(ids[static_cast<std::size_t>(r)]);
            idx.resize(static_cast<std::size_t>(qn * kc));
            dist.resize(idx.size());
            detail::knn_blocked(base.data(), bn, queries.data(), qn, p, kc, nullptr, idx.data(), dist.data());
            // Re-rank by true distance now, while the probed cells' rows are still in cache.
            for (std::int64_t r = 0; r < qn; ++r) {
                const std::int64_t i = own[static_cast<std::size_t>(r)];
                detail::TopK top{g.distances.data() + i * k, g.indices.data() + i * k, k};
                for (std::int64_t j = 0; j < kc; ++j) {
                    const std::int32_t local = idx[static_cast<std::size_t>(r * kc + j)];
                    if (local < 0) continue;
                    const std::int32_t b = ids[static_cast<std::size_t>(local)];
                    // Self goes in with distance -1 so that it stays first.
                    top.push(b == i ? -1.0f : detail::squared_distance(data + i * dim, data + std::int64_t(b) * dim, dim), b);
                }
                top.push(-1.0f, static_cast<std::int32_t>(i));
            }
        }
    }

    // Neighbours of neighbours, read from the previous round's graph so that the result does
    // not depend on the order threads finish in.
    std::vector<std::int32_t> prev;
    for (int it = 0; it < options.refine_iterations; ++it) {
        prev = g.indices;
#pragma omp parallel
        {
            std::vector<std::int32_t> seen;
#pragma omp for schedule(dynamic, 256)
            for (std::int64_t i = 0; i < n; ++i) {
                detail::TopK top{g.distances.data() + i * k, g.indices.data() + i * k, k};
                seen.assign(prev.begin() + i * k, prev.begin() + (i + 1) * k);
                for (std::int64_t a = 1; a < k; ++a) {
                    const std::int64_t nb = prev[static_cast<std::size_t>(i * k + a)];
                    for (std::int64_t b = 1; b < k; ++b) {
                        const std::int32_t j = prev[static_cast<std::size_t>(nb * k + b)];
                        if (std::find(seen.begin(), seen.end(), j) != seen.end()) continue;
                        seen.push_back(j);
                        top.push(detail::squared_distance(data + i * dim, data + std::int64_t(j) * dim, dim), j);
                    }
                }
            }
        }
    }
    for (std::int64_t i = 0; i < n; ++i) {
        g.distances[static_cast<std::size_t>(i * k)] = 0.0f;  // self, pushed with -1 to stay first
        for (std::int64_t j = 1; j < k; ++j) {
            float& d = g.distances[static_cast<std::size_t>(i * k + j)];
            d = std::sqrt(d);
        }
    }
    return g;
}

/// Fraction of the true k nearest neighbours (self excluded) that `graph` finds, measured on
/// `sample` points chosen by `seed` against an exact search over all n points.
template <class Lazy = void>
double knn_recall(const float* data, std::int64_t n, std::int64_t dim, const KnnGraph& graph,
                  std::int64_t sample, std::uint64_t seed = 0) {
    detail::check_points("knn_recall", data, n, dim);
    check(graph.n == n && graph.k >= 2, "knn_recall: graph has ", graph.n, " rows and k = ", graph.k, " for ", n,
          " points; need k >= 2");
    check(sample >= 1, "knn_recall: sample size ", sample, " must be positive");
    sample = std::min(sample, n);
    // A deterministic sample without repeats: the first `sample` of a seeded shuffle.
    std::vector<std::int32_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
    const RandomStream rs(seed, Purpose::data, 0x6b6e6e);
    for (std::int64_t i = 0; i < sample; ++i)
        std::swap(order[static_cast<std::size_t>(i)],
                  order[static_cast<std::size_t>(i + static_cast<std::int64_t>(rs.below(static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(n - i))))]);
    std::vector<float> queries(static_cast<std::size_t>(sample * dim));
    for (std::int64_t s = 0; s < sample; ++s)
        std::copy_n(data + std::int64_t(order[static_cast<std::size_t>(s)]) * dim, dim, queries.data() + s * dim);
    const std::int64_t k = graph.k - 1;
    std::vector<std::int32_t> idx(static_cast<std::size_t>(sample * k));
    std::vector<float> dist(idx.size());
    detail::knn_blocked(data, n, queries.data(), sample, dim, k, order.data(), idx.data(), dist.data());
    std::int64_t found = 0;
    for (std::int64_t s = 0; s < sample; ++s) {
        const std::int64_t i = order[static_cast<std::size_t>(s)];
        for (std::int64_t a = 0; a < k; ++a) {
            const std::int32_t truth = idx[static_cast<std::size_t>(s * k + a)];
            for (std::int64_t b = 1; b < graph.k; ++b)
                if (graph.index(i, b) == truth) {
                    ++found;
                    break;
                }
        }
    }
    return static_cast<double>(found) / static_cast<double>(sample * k);
}

}  // namespace cnnlite
