// UMAP's fuzzy topological representation (McInnes, Healy, Melville 2018, section 3): per-point
// bandwidths from the kNN distances (smooth kNN), directed membership strengths, their fuzzy
// union into one symmetric weighted graph, and the low-dimensional curve parameters a and b.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cnnlite/analysis/knn.hpp"
#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// a and b of UMAP's low-dimensional similarity 1 / (1 + a d^(2b)).
struct UmapCurve {
    double a = 0;  ///< scale of the curve
    double b = 0;  ///< steepness of the curve
};

/// Fits a, b so that 1 / (1 + a x^(2b)) best matches (least squares on 300 points of
/// [0, 3 spread]) the target 1 for x < min_dist and exp(-(x - min_dist) / spread) beyond, as
/// the reference does with curve_fit; solved here by Levenberg-Marquardt from a = b = 1.
inline UmapCurve umap_find_ab(double spread, double min_dist) {
    check(spread > 0 && std::isfinite(spread), "umap_find_ab: spread = ", spread, " must be positive");
    check(min_dist >= 0 && min_dist <= spread, "umap_find_ab: min_dist = ", min_dist, " must be in [0, spread = ",
          spread, "]");
    constexpr int points = 300;
    std::vector<double> x(points), y(points);
    for (int i = 0; i < points; ++i) {
        x[static_cast<std::size_t>(i)] = 3.0 * spread * i / (points - 1);
        const double xi = x[static_cast<std::size_t>(i)];
        y[static_cast<std::size_t>(i)] = xi < min_dist ? 1.0 : std::exp(-(xi - min_dist) / spread);
    }
    auto sse = [&](double a, double b) {
        double s = 0;
        for (int i = 0; i < points; ++i) {
            const double r = 1.0 / (1.0 + a * std::pow(x[static_cast<std::size_t>(i)], 2 * b)) - y[static_cast<std::size_t>(i)];
            s += r * r;
        }
        return s;
    };
    double a = 1, b = 1, lambda = 1e-3, current = sse(a, b);
    for (int it = 0; it < 1000; ++it) {
        // Normal equations of the 2-parameter problem: J^T J and J^T r.
        double jaa = 0, jab = 0, jbb = 0, ga = 0, gb = 0;
        for (int i = 0; i < points; ++i) {
            const double xi = x[static_cast<std::size_t>(i)];
            if (xi == 0) continue;  // f(0) = 1 for every a, b: no gradient
            const double u = std::pow(xi, 2 * b);
            const double f = 1.0 / (1.0 + a * u);
            const double r = f - y[static_cast<std::size_t>(i)];
            const double da = -u * f * f;
            const double db = -a * u * 2.0 * std::log(xi) * f * f;
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        bool improved = false;
        for (int tries = 0; tries < 60 && !improved; ++tries) {
            const double m00 = jaa * (1 + lambda), m11 = jbb * (1 + lambda), det = m00 * m11 - jab * jab;
            const double step_a = -(m11 * ga - jab * gb) / det;
            const double step_b = -(m00 * gb - jab * ga) / det;
            const double candidate = sse(a + step_a, b + step_b);
            if (std::isfinite(candidate) && candidate <= current) {
                const double change = std::abs(step_a) + std::abs(step_b);
                a += step_a;
                b += step_b;
                improved = true;
                lambda = std::max(lambda / 10, 1e-12);
                if (current - candidate <= 1e-16 * current && change < 1e-12) return {a, b};
                current = candidate;
            } else {
                lambda *= 10;
            }
        }
        if (!improved) break;  // no step lowers the error: at the minimum to rounding
    }
    return {a, b};
}

/// Per-point bandwidths of the smooth kNN: rho = distance to the nearest neighbour (local
/// connectivity), sigma such that sum_j exp(-(d_j - rho) / sigma) = log2(k) over the k - 1
/// neighbours after the point itself.
struct SmoothKnn {
    std::vector<float> sigma;  ///< per-point bandwidth
    std::vector<float> rho;    ///< per-point distance to the local_connectivity-th neighbour
};

/// Smooth-kNN bandwidths for a kNN graph whose first column is each point itself (as knn_exact
/// returns it). Binary search (64 halvings, tolerance 1e-5) for sigma; sigma is floored at
/// 1e-3 times the mean neighbour distance so that duplicates do not give zero bandwidth.
inline SmoothKnn smooth_knn(const KnnGraph& graph, double local_connectivity = 1.0, double bandwidth = 1.0) {
    check(graph.n > 0 && graph.k >= 2, "smooth_knn: graph of ", graph.n, " points with k = ", graph.k,
          " (need k >= 2: the point itself and a neighbour)");
    check(local_connectivity >= 0, "smooth_knn: local_connectivity = ", local_connectivity, " is negative");
    const std::int64_t n = graph.n, k = graph.k;
    const double target = std::log2(static_cast<double>(k)) * bandwidth;
    double global_mean = 0;
    for (float d : graph.distances) global_mean += d;
    global_mean /= static_cast<double>(graph.distances.size());

    SmoothKnn out;
    out.sigma.resize(static_cast<std::size_t>(n));
    out.rho.resize(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) {
        const float* d = graph.distances.data() + i * k;
        // rho: the local_connectivity-th positive distance, interpolated for fractional values.
        std::vector<double> positive;
        for (std::int64_t j = 0; j < k; ++j)
            if (d[j] > 0) positive.push_back(d[j]);
        double rho = 0;
        const auto whole = static_cast<std::int64_t>(std::floor(local_connectivity));
        const double frac = local_connectivity - static_cast<double>(whole);
        const auto have = static_cast<std::int64_t>(positive.size());
        if (have >= local_connectivity) {
            if (whole > 0) {
                rho = positive[static_cast<std::size_t>(whole - 1)];
                if (frac > 1e-5 && whole < have)
                    rho += frac * (positive[static_cast<std::size_t>(whole)] - positive[static_cast<std::size_t>(whole - 1)]);
            } else if (have > 0) {
                rho = frac * positive[0];
            }
        } else if (have > 0) {
            rho = positive.back();
        }

        double lo = 0, hi = std::numeric_limits<double>::infinity(), mid = 1;
        for (int it = 0; it < 64; ++it) {
            double sum = 0;
            for (std::int64_t j = 1; j < k; ++j) {
                const double excess = d[j] - rho;
                sum += excess > 0 ? std::exp(-excess / mid) : 1.0;
            }
            if (std::abs(sum - target) < 1e-5) break;
            if (sum > target) {
                hi = mid;
                mid = (lo + hi) / 2;
            } else {
                lo = mid;
                mid = std::isinf(hi) ? mid * 2 : (lo + hi) / 2;
            }
        }
        double row_mean = 0;
        for (std::int64_t j = 0; j < k; ++j) row_mean += d[j];
        row_mean /= static_cast<double>(k);
        mid = std::max(mid, 1e-3 * (rho > 0 ? row_mean : global_mean));
        out.sigma[static_cast<std::size_t>(i)] = static_cast<float>(mid);
        out.rho[static_cast<std::size_t>(i)] = static_cast<float>(rho);
    }
    return out;
}

/// A symmetric weighted graph stored as directed edges sorted by head: every undirected edge
/// {i, j} appears as (i, j) and (j, i) with the same weight; edges of head i are
/// [offsets[i], offsets[i + 1]).
struct UmapGraph {
    std::int64_t n = 0;                 ///< vertices
    std::vector<std::int64_t> offsets;  ///< n + 1 row starts into head/tail/weight
    std::vector<std::int32_t> head;     ///< edge source
    std::vector<std::int32_t> tail;     ///< edge target
    std::vector<float> weight;          ///< membership strength in (0, 1]

    /// Number of directed edges (twice the undirected ones).
    std::int64_t edges() const { return static_cast<std::int64_t>(tail.size()); }
};

/// The fuzzy simplicial set of a kNN graph: membership exp(-(d - rho_i) / sigma_i) (1 within
/// rho_i) of each directed kNN edge, combined by the probabilistic t-conorm
/// w = p + q - p q (fuzzy union; set_op_mix_ratio 1). Edges of weight 0 are dropped.
inline UmapGraph fuzzy_simplicial_set(const KnnGraph& graph, const SmoothKnn& smooth) {
    const std::int64_t n = graph.n, k = graph.k;
    check(static_cast<std::int64_t>(smooth.sigma.size()) == n && static_cast<std::int64_t>(smooth.rho.size()) == n,
          "fuzzy_simplicial_set: ", smooth.sigma.size(), " bandwidths for ", n, " points");
    struct Entry {
        std::int32_t u, v;  // u < v
        float forward, backward;
    };
    std::vector<Entry> entries;
    entries.reserve(static_cast<std::size_t>(n * (k - 1)));
    for (std::int64_t i = 0; i < n; ++i) {
        const double rho = smooth.rho[static_cast<std::size_t>(i)], sigma = smooth.sigma[static_cast<std::size_t>(i)];
        for (std::int64_t j = 0; j < k; ++j) {
            const std::int32_t t = graph.index(i, j);
            if (t < 0 || t == i) continue;
            check(t < n, "fuzzy_simplicial_set: neighbour ", t, " of point ", i, " is out of range for ", n, " points");
            const double excess = graph.distance(i, j) - rho;
            const auto w = static_cast<float>(excess <= 0 || sigma == 0 ? 1.0 : std::exp(-excess / sigma));
            const auto self = static_cast<std::int32_t>(i);
            entries.push_back(self < t ? Entry{self, t, w, 0.0f} : Entry{t, self, 0.0f, w});
        }
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& x, const Entry& y) { return x.u != y.u ? x.u < y.u : x.v < y.v; });
    // Merge the (at most two) directed memberships of each pair.
    std::vector<Entry> pairs;
    pairs.reserve(entries.size());
    for (const Entry& e : entries) {
        if (!pairs.empty() && pairs.back().u == e.u && pairs.back().v == e.v) {
            pairs.back().forward = std::max(pairs.back().forward, e.forward);
            pairs.back().backward = std::max(pairs.back().backward, e.backward);
        } else {
            pairs.push_back(e);
        }
    }
    UmapGraph g;
    g.n = n;
    g.offsets.assign(static_cast<std::size_t>(n + 1), 0);
    std::vector<float> union_weight(pairs.size());
    for (std::size_t p = 0; p < pairs.size(); ++p) {
        const float a = pairs[p].forward, b = pairs[p].backward;
        union_weight[p] = a + b - a * b;
        if (union_weight[p] > 0) {
            ++g.offsets[static_cast<std::size_t>(pairs[p].u) + 1];
            ++g.offsets[static_cast<std::size_t>(pairs[p].v) + 1];
        }
    }
    for (std::int64_t i = 0; i < n; ++i) g.offsets[static_cast<std::size_t>(i + 1)] += g.offsets[static_cast<std::size_t>(i)];
    const auto m = static_cast<std::size_t>(g.offsets.back());
    g.head.resize(m);
    g.tail.resize(m);
    g.weight.resize(m);
    std::vector<std::int64_t> fill(g.offsets.begin(), g.offsets.end() - 1);
    // Pairs are sorted by (u, v), so each head's tails come out in ascending order.
    auto put = [&](std::int32_t h, std::int32_t t, float w) {
        const auto at = static_cast<std::size_t>(fill[static_cast<std::size_t>(h)]++);
        g.head[at] = h;
        g.tail[at] = t;
        g.weight[at] = w;
    };
    for (std::size_t p = 0; p < pairs.size(); ++p)
        if (union_weight[p] > 0) put(pairs[p].v, pairs[p].u, union_weight[p]);
    for (std::size_t p = 0; p < pairs.size(); ++p)
        if (union_weight[p] > 0) put(pairs[p].u, pairs[p].v, union_weight[p]);
    return g;
}

/// A copy of `g` without the edges lighter than `threshold` (the reference drops edges that
/// would be sampled less than once in the whole optimisation).
inline UmapGraph prune_graph(const UmapGraph& g, float threshold) {
    UmapGraph out;
    out.n = g.n;
    out.offsets.assign(static_cast<std::size_t>(g.n + 1), 0);
    for (std::int64_t i = 0; i < g.n; ++i) {
        for (std::int64_t e = g.offsets[static_cast<std::size_t>(i)]; e < g.offsets[static_cast<std::size_t>(i + 1)]; ++e)
            if (g.weight[static_cast<std::size_t>(e)] >= threshold) {
                out.head.push_back(g.head[static_cast<std::size_t>(e)]);
                out.tail.push_back(g.tail[static_cast<std::size_t>(e)]);
                out.weight.push_back(g.weight[static_cast<std::size_t>(e)]);
            }
        out.offsets[static_cast<std::size_t>(i + 1)] = static_cast<std::int64_t>(out.tail.size());
    }
    return out;
}

}  // namespace cnnlite
