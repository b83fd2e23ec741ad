// UMAP's layout optimisation: stochastic gradient descent on the fuzzy cross-entropy with edge
// sampling (each edge every max_w / w epochs) and negative sampling, made deterministic under
// OpenMP by a fixed ownership of vertices.
//
// Determinism scheme. The reference updates one shared embedding from many threads without
// locks (Hogwild), so its result depends on timing. Here each epoch (1) snapshots the
// embedding; (2) splits the heads into one fixed, contiguous range per thread (static
// schedule); a thread moves its heads in place, edge after edge, and reads every other point
// from the snapshot; the pull on an edge's tail (which another thread may own) goes into that
// thread's private delta buffer; (3) adds the buffers to the embedding in thread order. No
// memory is written by two threads, so for a given seed and thread count the result is
// bitwise repeatable; random draws are keyed by (seed, epoch, edge, draw). The cost against
// Hogwild is reading positions up to one epoch old, which at UMAP's step sizes does not
// change the layout's quality (see benchmarks/compare_umap/README.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "cnnlite/analysis/umap_graph.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cnnlite {

/// Settings of the SGD layout.
struct UmapLayoutOptions {
    int n_epochs = 200;               ///< passes over the edge schedule
    double learning_rate = 1.0;       ///< initial step, decayed linearly to 0
    double negative_sample_rate = 5;  ///< negative samples per positive sample
    double repulsion_strength = 1.0;  ///< gamma, weight of the repulsive term
    bool move_tails = true;           ///< false when laying out new points against a fixed embedding
    std::uint64_t seed = 0;           ///< key of the negative-sample draws
};

namespace detail {

/// Clips a gradient component to [-4, 4], as the reference does.
inline float clip4(float v) { return std::min(4.0f, std::max(-4.0f, v)); }

}  // namespace detail

/// Optimises `head_embedding` (rows of `dim`, one per graph vertex) in place. `tail_embedding`
/// holds the positions that edges point to and negatives are drawn from (`n_tail` rows); for a
/// fit it is the same array as head_embedding. `on_epoch(epoch)` (if set) runs after each epoch.
inline void optimize_layout(float* head_embedding, const float* tail_embedding, std::int64_t n_tail, int dim,
                            const UmapGraph& graph, const UmapCurve& curve, const UmapLayoutOptions& options,
                            const std::function<void(int)>& on_epoch = {}) {
    check(options.n_epochs >= 0, "optimize_layout: n_epochs = ", options.n_epochs, " is negative");
    check(options.learning_rate > 0, "optimize_layout: learning_rate = ", options.learning_rate, " must be positive");
    check(options.negative_sample_rate >= 0, "optimize_layout: negative_sample_rate is negative");
    const std::int64_t n = graph.n, m = graph.edges();
    const bool self_tails = tail_embedding == head_embedding;
    if (m == 0 || options.n_epochs == 0) return;

    // Edge schedule: an edge of weight w is sampled every w_max / w epochs.
    const float w_max = *std::max_element(graph.weight.begin(), graph.weight.end());
    std::vector<double> every(static_cast<std::size_t>(m)), next(static_cast<std::size_t>(m)),
        every_negative(static_cast<std::size_t>(m)), next_negative(static_cast<std::size_t>(m));
    for (std::int64_t e = 0; e < m; ++e) {
        const auto s = static_cast<std::size_t>(e);
        every[s] = static_cast<double>(w_max) / graph.weight[s];
        next[s] = every[s];
        every_negative[s] = options.negative_sample_rate > 0 ? every[s] / options.negative_sample_rate
                                                             : std::numeric_limits<double>::infinity();
        next_negative[s] = every_negative[s];
    }

    const auto a = static_cast<float>(curve.a), b = static_cast<float>(curve.b);
    const auto gamma = static_cast<float>(options.repulsion_strength);
    const int threads = num_threads();
    std::vector<float> snapshot(static_cast<std::size_t>(n_tail * dim));
    std::vector<std::vector<float>> deltas(static_cast<std::size_t>(self_tails && options.move_tails ? threads : 0));
    for (auto& d : deltas) d.assign(static_cast<std::size_t>(n * dim), 0.0f);

    for (int epoch = 1; epoch <= options.n_epochs; ++epoch) {
        const auto alpha = static_cast<float>(options.learning_rate * (1.0 - (epoch - 1.0) / options.n_epochs));
        std::copy_n(tail_embedding, n_tail * dim, snapshot.data());
        const RandomStream draws(options.seed, Purpose::user, 0x756d6170, static_cast<std::uint64_t>(epoch));
        const auto now = static_cast<double>(epoch);

#pragma omp parallel num_threads(threads)
        {
#ifdef _OPENMP
            const int t = omp_get_thread_num();
#else
            const int t = 0;
#endif
            float* delta = deltas.empty() ? nullptr : deltas[static_cast<std::size_t>(t)].data();
            float diff[8];
            std::vector<float> diff_buffer(dim > 8 ? static_cast<std::size_t>(dim) : 0);
            float* d_ = dim > 8 ? diff_buffer.data() : diff;
#pragma omp for schedule(static)
            for (std::int64_t i = 0; i < n; ++i) {
                float* yi = head_embedding + i * dim;
                for (std::int64_t e = graph.offsets[static_cast<std::size_t>(i)]; e < graph.offsets[static_cast<std::size_t>(i) + 1]; ++e) {
                    const auto s = static_cast<std::size_t>(e);
                    if (next[s] > now) continue;
                    const std::int32_t j = graph.tail[s];
                    const float* yj = snapshot.data() + std::int64_t(j) * dim;
                    float d2 = 0;
                    for (int d = 0; d < dim; ++d) {
                        d_[d] = yi[d] - yj[d];
                        d2 += d_[d] * d_[d];
                    }
                    // Attraction: d/dy of -log(1 / (1 + a d^2b)).
                    float coeff = 0;
                    if (d2 > 0) {
                        const float pb = std::pow(d2, b);
                        coeff = -2.0f * a * b * (pb / d2) / (a * pb + 1.0f);
                    }
                    for (int d = 0; d < dim; ++d) {
                        const float g = detail::clip4(coeff * d_[d]) * alpha;
                        yi[d] += g;
                        if (delta) delta[std::int64_t(j) * dim + d] -= g;
                    }
                    next[s] += every[s];

                    // Repulsion from points drawn uniformly: d/dy of -log(1 - 1 / (1 + a d^2b)).
                    const auto negatives = static_cast<std::int64_t>((now - next_negative[s]) / every_negative[s]);
                    for (std::int64_t p = 0; p < negatives; ++p) {
                        const auto k = static_cast<std::int64_t>(draws.below((static_cast<std::uint64_t>(e) << 16) | static_cast<std::uint64_t>(p & 0xffff),
                                                                            static_cast<std::uint64_t>(n_tail)));
                        if (self_tails && k == i) continue;
                        const float* yk = snapshot.data() + k * dim;
                        float n2 = 0;
                        for (int d = 0; d < dim; ++d) {
                            d_[d] = yi[d] - yk[d];
                            n2 += d_[d] * d_[d];
                        }
                        if (n2 > 0) {
                            const float rep = 2.0f * gamma * b / ((0.001f + n2) * (a * std::pow(n2, b) + 1.0f));
                            for (int d = 0; d < dim; ++d) yi[d] += detail::clip4(rep * d_[d]) * alpha;
                        } else {
                            for (int d = 0; d < dim; ++d) yi[d] += 4.0f * alpha;  // coincident: push apart
                        }
                    }
                    if (negatives > 0) next_negative[s] += static_cast<double>(negatives) * every_negative[s];
                }
            }
            // Apply the deferred tail moves in thread order, then clear them.
            if (!deltas.empty()) {
#pragma omp for schedule(static)
                for (std::int64_t v = 0; v < n * dim; ++v) {
                    float sum = 0;
                    for (auto& buffer : deltas) {
                        sum += buffer[static_cast<std::size_t>(v)];
                        buffer[static_cast<std::size_t>(v)] = 0.0f;
                    }
                    head_embedding[v] += sum;
                }
            }
        }
        if (on_epoch) on_epoch(epoch);
    }
}

}  // namespace cnnlite
