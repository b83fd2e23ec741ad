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
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "cnnlite/analysis/umap_graph.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"

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

/// x^p for normal positive floats, about 1e-6 relative error: the layout evaluates two powers
/// per sample and libm's powf (correctly rounded) was a fifth of its time. log2 from the
/// exponent bits plus the atanh series of the mantissa; exp2 from a Taylor polynomial about
/// 1/2 and the exponent bits.
inline float fast_pow(float x, float p) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const int raw_exponent = static_cast<int>((bits >> 23) & 0xff) - 127;
    bits = (bits & 0x007fffffu) | 0x3f800000u;  // mantissa m in [1, 2)
    float m;
    std::memcpy(&m, &bits, sizeof m);
    // Fold m into [sqrt(1/2), sqrt(2)) so that the series converges fast (selects, no branch,
    // so that loops over several samples vectorise).
    const bool fold = m > 1.41421356f;
    m = fold ? m * 0.5f : m;
    const float exponent = static_cast<float>(raw_exponent + (fold ? 1 : 0));
    const float z = (m - 1.0f) / (m + 1.0f), z2 = z * z;
    const float ln_m = 2.0f * z * (1.0f + z2 * (1.0f / 3 + z2 * (1.0f / 5 + z2 * (1.0f / 7 + z2 * (1.0f / 9)))));
    float y = p * (exponent + ln_m * 1.44269504f);
    y = std::min(126.0f, std::max(-126.0f, y));
    const int truncated = static_cast<int>(y);
    const int whole = truncated - (y < static_cast<float>(truncated) ? 1 : 0);  // floor without libm
    const float g = (y - static_cast<float>(whole) - 0.5f) * 0.693147181f;  // 2^f = sqrt(2) e^g, |g| <= 0.35
    const float e_g = 1.0f + g * (1.0f + g * (0.5f + g * (1.0f / 6 + g * (1.0f / 24 + g * (1.0f / 120 + g * (1.0f / 720))))));
    const std::uint32_t scale_bits = static_cast<std::uint32_t>(whole + 127) << 23;
    float scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    return 1.41421356f * e_g * scale;
}

}  // namespace detail

namespace detail {

/// Everything one epoch of the layout reads or writes.
struct LayoutState {
    float* head;                      // moved points (n x dim)
    const float* snapshot;            // every point's position at the start of the epoch
    std::int64_t n, n_tail;
    int dim;
    const UmapGraph* graph;
    std::vector<double>* next;        // epoch of each edge's next sample
    const std::vector<double>* every;
    std::vector<double>* next_negative;
    const std::vector<double>* every_negative;
    std::vector<std::vector<float>>* deltas;  // per-thread tail moves (empty: tails stay)
    bool self_tails;
    float a, b, gamma, alpha;
    double now;
    RandomStream draws;
};

/// One epoch over the heads of this thread (static schedule). D > 0 fixes the output
/// dimension at compile time (the common 2-D case unrolls); D == 0 reads it from the state.
template <int D>
void layout_epoch(LayoutState& st, int thread) {
    const int dim = D > 0 ? D : st.dim;
    const UmapGraph& graph = *st.graph;
    auto& next = *st.next;
    auto& next_negative = *st.next_negative;
    const auto& every = *st.every;
    const auto& every_negative = *st.every_negative;
    float* delta = st.deltas->empty() ? nullptr : (*st.deltas)[static_cast<std::size_t>(thread)].data();
    std::vector<float> diff_buffer(static_cast<std::size_t>(dim));
    float* diff = diff_buffer.data();
    const float a = st.a, b = st.b, alpha = st.alpha;
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < st.n; ++i) {
        float* yi = st.head + i * dim;
        for (std::int64_t e = graph.offsets[static_cast<std::size_t>(i)]; e < graph.offsets[static_cast<std::size_t>(i) + 1]; ++e) {
            const auto s = static_cast<std::size_t>(e);
            if (next[s] > st.now) continue;
            const std::int32_t j = graph.tail[s];
            const float* yj = st.snapshot + std::int64_t(j) * dim;
            float d2 = 0;
            for (int d = 0; d < dim; ++d) {
                diff[d] = yi[d] - yj[d];
                d2 += diff[d] * diff[d];
            }
            // Attraction: gradient of -log(1 / (1 + a d^2b)).
            float coeff = 0;
            if (d2 > 0) {
                const float pb = fast_pow(d2, b);
                coeff = -2.0f * a * b * (pb / d2) / (a * pb + 1.0f);
            }
            for (int d = 0; d < dim; ++d) {
                const float g = clip4(coeff * diff[d]) * alpha;
                yi[d] += g;
                if (delta) delta[std::int64_t(j) * dim + d] -= g;
            }
            next[s] += every[s];

            // Repulsion from uniformly drawn points: gradient of -log(1 - 1 / (1 + a d^2b)).
            const auto negatives = static_cast<std::int64_t>((st.now - next_negative[s]) / every_negative[s]);
            if constexpr (D == 2) {
                // 2-D: the negatives of one edge push from the same position, in batches of 8
                // whose arithmetic is independent (the CPU overlaps it); their clipped steps are
                // summed in draw order.
                for (std::int64_t p0 = 0; p0 < negatives; p0 += 8) {
                    alignas(32) float dx[8], dy[8], live[8], sx[8], sy[8];
                    for (int q = 0; q < 8; ++q) {
                        const std::int64_t p = p0 + q;
                        std::int64_t k = i;
                        if (p < negatives)
                            k = static_cast<std::int64_t>(st.draws.below(
                                (static_cast<std::uint64_t>(e) << 16) | static_cast<std::uint64_t>(p & 0xffff),
                                static_cast<std::uint64_t>(st.n_tail)));
                        live[q] = p < negatives && !(st.self_tails && k == i) ? 1.0f : 0.0f;
                        dx[q] = yi[0] - st.snapshot[2 * k];
                        dy[q] = yi[1] - st.snapshot[2 * k + 1];
                    }
#pragma omp simd
                    for (int q = 0; q < 8; ++q) {
                        const float n2 = dx[q] * dx[q] + dy[q] * dy[q];
                        const float safe = n2 > 0 ? n2 : 1.0f;
                        const float rep = 2.0f * st.gamma * b / ((0.001f + safe) * (a * fast_pow(safe, b) + 1.0f));
                        // Coincident points (n2 == 0) push apart by the clip limit.
                        sx[q] = live[q] * (n2 > 0 ? clip4(rep * dx[q]) : 4.0f);
                        sy[q] = live[q] * (n2 > 0 ? clip4(rep * dy[q]) : 4.0f);
                    }
                    float gx = 0, gy = 0;
                    for (int q = 0; q < 8; ++q) {
                        gx += sx[q];
                        gy += sy[q];
                    }
                    yi[0] += gx * alpha;
                    yi[1] += gy * alpha;
                }
            } else {
                for (std::int64_t p = 0; p < negatives; ++p) {
                    const auto k = static_cast<std::int64_t>(st.draws.below(
                        (static_cast<std::uint64_t>(e) << 16) | static_cast<std::uint64_t>(p & 0xffff),
                        static_cast<std::uint64_t>(st.n_tail)));
                    if (st.self_tails && k == i) continue;
                    const float* yk = st.snapshot + k * dim;
                    float n2 = 0;
                    for (int d = 0; d < dim; ++d) {
                        diff[d] = yi[d] - yk[d];
                        n2 += diff[d] * diff[d];
                    }
                    if (n2 > 0) {
                        const float rep = 2.0f * st.gamma * b / ((0.001f + n2) * (a * fast_pow(n2, b) + 1.0f));
                        for (int d = 0; d < dim; ++d) yi[d] += clip4(rep * diff[d]) * alpha;
                    } else {
                        for (int d = 0; d < dim; ++d) yi[d] += 4.0f * alpha;  // coincident: push apart
                    }
                }
            }
            if (negatives > 0) next_negative[s] += static_cast<double>(negatives) * every_negative[s];
        }
    }
}

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
    check(dim >= 1, "optimize_layout: dimension ", dim, " must be positive");
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

    const int threads = num_threads();
    std::vector<float> snapshot(static_cast<std::size_t>(n_tail * dim));
    std::vector<std::vector<float>> deltas(static_cast<std::size_t>(self_tails && options.move_tails ? threads : 0));
    for (auto& d : deltas) d.assign(static_cast<std::size_t>(n * dim), 0.0f);
    detail::LayoutState st{head_embedding, snapshot.data(), n, n_tail, dim, &graph, &next, &every, &next_negative,
                           &every_negative, &deltas, self_tails, static_cast<float>(curve.a),
                           static_cast<float>(curve.b), static_cast<float>(options.repulsion_strength), 0.0f, 0.0,
                           RandomStream(0, Purpose::user)};

    for (int epoch = 1; epoch <= options.n_epochs; ++epoch) {
        st.alpha = static_cast<float>(options.learning_rate * (1.0 - (epoch - 1.0) / options.n_epochs));
        st.now = static_cast<double>(epoch);
        st.draws = RandomStream(options.seed, Purpose::user, 0x756d6170, static_cast<std::uint64_t>(epoch));
        std::copy_n(tail_embedding, n_tail * dim, snapshot.data());
#pragma omp parallel num_threads(threads)
        {
#ifdef _OPENMP
            const int t = thread_index();
#else
            const int t = 0;
#endif
            if (dim == 2) detail::layout_epoch<2>(st, t);
            else detail::layout_epoch<0>(st, t);
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
