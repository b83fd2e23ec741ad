// UMAP (McInnes, Healy, Melville 2018): embeds n points into a few dimensions keeping their
// local neighbourhoods. Pipeline: kNN graph -> smooth-kNN memberships -> fuzzy union ->
// spectral initialisation -> SGD layout. Deterministic for a given seed and thread count.
//
// Functions that reach Eigen's products or Spectra are templates (`template <class Lazy = void>`)
// for one reason: a template is compiled only by the programs that call it, while an inline
// function is compiled by every program that includes its header (README.md, "Compile
// time"). Call them as ordinary functions.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cnnlite/analysis/knn.hpp"
#include "cnnlite/analysis/umap_graph.hpp"
#include "cnnlite/analysis/umap_init.hpp"
#include "cnnlite/analysis/umap_layout.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/tensor.hpp"

namespace cnnlite {

/// How UMAP finds nearest neighbours.
enum class UmapKnn {
    automatic,    ///< exact below KnnOptions::exact_below points, approximate above
    exact,        ///< blocked-GEMM exact search (O(n^2 dim))
    approximate,  ///< knn_approximate (PCA-steered cell search, re-ranked by true distance)
};

/// How UMAP starts the layout.
enum class UmapInit {
    spectral,  ///< normalised-Laplacian eigenvectors, per connected component
    random,    ///< uniform in [-10, 10]
};

/// Progress of a running UMAP: the phase ("knn", "graph", "init", "layout") and its fraction done.
using UmapProgress = std::function<void(const std::string& phase, double fraction)>;

/// UMAP settings; the defaults are the reference implementation's.
struct UmapOptions {
    int n_neighbors = 15;              ///< neighbourhood size, the point itself included
    int n_components = 2;              ///< output dimensions
    double min_dist = 0.1;             ///< smallest distance between embedded points
    double spread = 1.0;               ///< scale of the embedded clusters
    int n_epochs = 0;                  ///< 0: 500 for n <= 10,000, else 200
    double learning_rate = 1.0;        ///< initial SGD step (decays linearly)
    double negative_sample_rate = 5;   ///< negative samples per positive edge sample
    double repulsion_strength = 1.0;   ///< weight of the repulsive term
    double local_connectivity = 1.0;   ///< neighbours assumed fully connected
    UmapKnn knn = UmapKnn::automatic;  ///< neighbour search
    KnnOptions knn_options;            ///< settings of the approximate search
    UmapInit init = UmapInit::spectral;  ///< starting layout
    std::uint64_t seed = 0;            ///< seed of every random draw
    UmapProgress progress;             ///< optional progress report (called from the calling thread)

    /// Chainable setters.
    UmapOptions& set_n_neighbors(int v) { n_neighbors = v; return *this; }
    /// Sets n_components.
    UmapOptions& set_n_components(int v) { n_components = v; return *this; }
    /// Sets min_dist.
    UmapOptions& set_min_dist(double v) { min_dist = v; return *this; }
    /// Sets spread.
    UmapOptions& set_spread(double v) { spread = v; return *this; }
    /// Sets n_epochs.
    UmapOptions& set_n_epochs(int v) { n_epochs = v; return *this; }
    /// Sets learning_rate.
    UmapOptions& set_learning_rate(double v) { learning_rate = v; return *this; }
    /// Sets negative_sample_rate.
    UmapOptions& set_negative_sample_rate(double v) { negative_sample_rate = v; return *this; }
    /// Sets knn.
    UmapOptions& set_knn(UmapKnn v) { knn = v; return *this; }
    /// Sets knn_options.
    UmapOptions& set_knn_options(const KnnOptions& v) { knn_options = v; return *this; }
    /// Sets init.
    UmapOptions& set_init(UmapInit v) { init = v; return *this; }
    /// Sets seed.
    UmapOptions& set_seed(std::uint64_t v) { seed = v; return *this; }
    /// Sets progress.
    UmapOptions& set_progress(UmapProgress v) { progress = std::move(v); return *this; }
};

/// Wall-clock seconds of each UMAP phase.
struct UmapTimings {
    double knn = 0;     ///< nearest-neighbour search
    double graph = 0;   ///< smooth kNN and fuzzy union
    double init = 0;    ///< spectral (or random) initialisation
    double layout = 0;  ///< SGD epochs
    double total = 0;   ///< all of the above
};

/// What umap() returns: the embedding and what is needed to explain or extend it.
struct UmapResult {
    Tensor<float> embedding;  ///< [n, n_components]
    UmapCurve curve;          ///< a and b used
    int n_epochs = 0;         ///< epochs run
    std::int64_t edges = 0;   ///< undirected edges of the fuzzy graph after pruning
    std::string init;         ///< the initialisation actually used
    UmapTimings seconds;      ///< per-phase wall time
};

namespace detail {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline void check_umap_options(const char* op, const UmapOptions& o, std::int64_t n) {
    check(o.n_neighbors >= 2, op, ": n_neighbors = ", o.n_neighbors, " must be at least 2 (the point and a neighbour)");
    check(o.n_neighbors < n, op, ": n_neighbors = ", o.n_neighbors, " must be less than the number of points (", n, ")");
    check(o.n_components >= 1, op, ": n_components = ", o.n_components, " must be positive");
    check(o.n_epochs >= 0, op, ": n_epochs = ", o.n_epochs, " is negative");
    check(o.learning_rate > 0 && std::isfinite(o.learning_rate), op, ": learning_rate = ", o.learning_rate,
          " must be positive");
    check(o.negative_sample_rate >= 0, op, ": negative_sample_rate = ", o.negative_sample_rate, " is negative");
    check(o.local_connectivity >= 0, op, ": local_connectivity = ", o.local_connectivity, " is negative");
}

template <class Lazy = void>
KnnGraph umap_knn(const float* data, std::int64_t n, std::int64_t dim, const UmapOptions& o) {
    switch (o.knn) {
        case UmapKnn::exact: return knn_exact(data, n, dim, o.n_neighbors);
        case UmapKnn::approximate: {
            KnnOptions forced = o.knn_options;
            forced.exact_below = 0;
            return knn_approximate(data, n, dim, o.n_neighbors, forced);
        }
        default: return knn_approximate(data, n, dim, o.n_neighbors, o.knn_options);
    }
}

}  // namespace detail

/// Embeds `n` points of `dim` features (row-major floats, all finite) with UMAP. Throws
/// cnnlite::Error on empty or non-finite data or bad options (n_neighbors must be < n).
template <class Lazy = void>
UmapResult umap(const float* data, std::int64_t n, std::int64_t dim, const UmapOptions& options = {}) {
    const auto start = std::chrono::steady_clock::now();
    detail::check_points("umap", data, n, dim);
    detail::check_umap_options("umap", options, n);
    const UmapProgress& progress = options.progress;
    auto report = [&](const char* phase, double fraction) {
        if (progress) progress(phase, fraction);
    };
    UmapResult result;
    result.curve = umap_find_ab(options.spread, options.min_dist);
    result.n_epochs = options.n_epochs > 0 ? options.n_epochs : (n <= 10000 ? 500 : 200);

    report("knn", 0.0);
    auto phase = std::chrono::steady_clock::now();
    const KnnGraph knn = detail::umap_knn(data, n, dim, options);
    result.seconds.knn = detail::seconds_since(phase);
    report("knn", 1.0);

    report("graph", 0.0);
    phase = std::chrono::steady_clock::now();
    const SmoothKnn smooth = smooth_knn(knn, options.local_connectivity);
    UmapGraph graph = fuzzy_simplicial_set(knn, smooth);
    if (graph.edges() > 0) {
        // Edges that would be sampled less than once in all epochs only slow the layout down.
        const float w_max = *std::max_element(graph.weight.begin(), graph.weight.end());
        graph = prune_graph(graph, w_max / static_cast<float>(result.n_epochs));
    }
    result.edges = graph.edges() / 2;
    result.seconds.graph = detail::seconds_since(phase);
    report("graph", 1.0);

    report("init", 0.0);
    phase = std::chrono::steady_clock::now();
    const int out_dim = options.n_components;
    std::vector<float> y;
    if (options.init == UmapInit::spectral) {
        y = spectral_layout(graph, out_dim, data, dim, options.seed, result.init);
    } else {
        y = random_layout(n, out_dim, options.seed);
        result.init = "random";
    }
    // Like the reference: a little noise against exact ties, then each axis into [0, 10].
    const RandomStream noise(options.seed, Purpose::init, 0x6e6f697365);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] += static_cast<float>(1e-4 * noise.normal(i));
    for (int d = 0; d < out_dim; ++d) {
        float lo = y[static_cast<std::size_t>(d)], hi = lo;
        for (std::int64_t i = 0; i < n; ++i) {
            lo = std::min(lo, y[static_cast<std::size_t>(i * out_dim + d)]);
            hi = std::max(hi, y[static_cast<std::size_t>(i * out_dim + d)]);
        }
        const float scale = hi > lo ? 10.0f / (hi - lo) : 1.0f;
        for (std::int64_t i = 0; i < n; ++i) {
            float& v = y[static_cast<std::size_t>(i * out_dim + d)];
            v = (v - lo) * scale;
        }
    }
    result.seconds.init = detail::seconds_since(phase);
    report("init", 1.0);

    report("layout", 0.0);
    phase = std::chrono::steady_clock::now();
    UmapLayoutOptions layout;
    layout.n_epochs = result.n_epochs;
    layout.learning_rate = options.learning_rate;
    layout.negative_sample_rate = options.negative_sample_rate;
    layout.repulsion_strength = options.repulsion_strength;
    layout.seed = options.seed;
    const int every = std::max(1, result.n_epochs / 50);
    optimize_layout(y.data(), y.data(), n, out_dim, graph, result.curve, layout, [&](int epoch) {
        if (epoch % every == 0) report("layout", static_cast<double>(epoch) / result.n_epochs);
    });
    result.seconds.layout = detail::seconds_since(phase);

    result.embedding = Tensor<float>::from(Shape{n, out_dim}, y);
    result.seconds.total = detail::seconds_since(start);
    return result;
}

/// Places `m` new points (rows of `dim` floats) into an existing embedding of the `n`
/// training points `train` (the same data and options that made `fitted`): each new point
/// starts at the membership-weighted mean of its training neighbours' positions and is then
/// optimised against the fixed training embedding (a third of the fit's epochs). Returns [m, n_components].
template <class Lazy = void>
Tensor<float> umap_transform(const float* train, std::int64_t n, std::int64_t dim, const UmapResult& fitted,
                             const float* points, std::int64_t m, const UmapOptions& options = {}) {
    detail::check_points("umap_transform (training data)", train, n, dim);
    detail::check_points("umap_transform (new points)", points, m, dim);
    detail::check_umap_options("umap_transform", options, n);
    const int out_dim = options.n_components;
    check(fitted.embedding.defined() && fitted.embedding.rank() == 2 && fitted.embedding.dim(0) == n &&
              fitted.embedding.dim(1) == out_dim,
          "umap_transform: fitted embedding of shape ", fitted.embedding.shape().str(), " does not match ", n,
          " training points in ", out_dim, " dimensions");
    // Neighbours among the training points; the new point is not its own neighbour, so the
    // first column repeats the nearest training point and local connectivity drops by one.
    const std::int64_t k = options.n_neighbors;
    KnnGraph found = knn_exact_query(train, n, points, m, dim, k - 1);
    KnnGraph knn;
    knn.n = m;
    knn.k = k;
    knn.indices.resize(static_cast<std::size_t>(m * k));
    knn.distances.resize(knn.indices.size());
    for (std::int64_t i = 0; i < m; ++i) {
        knn.indices[static_cast<std::size_t>(i * k)] = -1;  // stands for the new point itself
        knn.distances[static_cast<std::size_t>(i * k)] = 0.0f;
        for (std::int64_t j = 1; j < k; ++j) {
            knn.indices[static_cast<std::size_t>(i * k + j)] = found.index(i, j - 1);
            knn.distances[static_cast<std::size_t>(i * k + j)] = found.distance(i, j - 1);
        }
    }
    const SmoothKnn smooth = smooth_knn(knn, std::max(0.0, options.local_connectivity - 1.0));
    UmapGraph graph;
    graph.n = m;
    graph.offsets.assign(static_cast<std::size_t>(m + 1), 0);
    for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 1; j < k; ++j) {
            const double excess = knn.distance(i, j) - smooth.rho[static_cast<std::size_t>(i)];
            const double sigma = smooth.sigma[static_cast<std::size_t>(i)];
            graph.head.push_back(static_cast<std::int32_t>(i));
            graph.tail.push_back(knn.index(i, j));
            graph.weight.push_back(static_cast<float>(excess <= 0 || sigma == 0 ? 1.0 : std::exp(-excess / sigma)));
        }
        graph.offsets[static_cast<std::size_t>(i + 1)] = static_cast<std::int64_t>(graph.tail.size());
    }
    const float* base = fitted.embedding.data();
    std::vector<float> y(static_cast<std::size_t>(m * out_dim), 0.0f);
    for (std::int64_t i = 0; i < m; ++i) {
        double total = 0;
        for (std::int64_t e = graph.offsets[static_cast<std::size_t>(i)]; e < graph.offsets[static_cast<std::size_t>(i + 1)]; ++e)
            total += graph.weight[static_cast<std::size_t>(e)];
        for (std::int64_t e = graph.offsets[static_cast<std::size_t>(i)]; e < graph.offsets[static_cast<std::size_t>(i + 1)]; ++e)
            for (int d = 0; d < out_dim; ++d)
                y[static_cast<std::size_t>(i * out_dim + d)] += static_cast<float>(
                    graph.weight[static_cast<std::size_t>(e)] / total * base[std::int64_t(graph.tail[static_cast<std::size_t>(e)]) * out_dim + d]);
    }
    UmapLayoutOptions layout;
    layout.n_epochs = std::max(1, (fitted.n_epochs > 0 ? fitted.n_epochs : 200) / 3);
    layout.learning_rate = options.learning_rate / 4;  // the reference's transform also starts gentler
    layout.negative_sample_rate = options.negative_sample_rate;
    layout.repulsion_strength = options.repulsion_strength;
    layout.move_tails = false;
    layout.seed = options.seed ^ 0x7472616e73666f72ULL;
    optimize_layout(y.data(), base, n, out_dim, graph, fitted.curve, layout);
    return Tensor<float>::from(Shape{m, out_dim}, y);
}

}  // namespace cnnlite
