// ROAD, "remove and debias" (Rong et al., 2022): the most (MoRF) or least (LeRF) relevant
// fraction of the pixels is removed and filled in by noisy linear imputation, each removed
// pixel being the weighted mean of its 8 neighbours (direct neighbours 1/6, diagonal 1/12, as
// in the authors' code) solved jointly as one sparse linear system, plus a little Gaussian
// noise. Imputing from neighbours, rather than painting a constant, keeps the shape of the
// removed region from telling the model the class. A faithful map makes the probability of the
// predicted class fall fast under MoRF (low mean) and stay high under LeRF (high mean).
#pragma once

#include <Eigen/Sparse>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <numeric>
#include <string>
#include <vector>

#include "cnnlite/explain/deletion_insertion.hpp"

namespace cnnlite::explain {

/// Options of ROAD.
struct RoadOptions {
    std::vector<double> fractions{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};  ///< removed fractions, in [0, 1)
    double noise = 0.01;            ///< standard deviation of the noise added to imputed values
    std::int64_t chunk_size = 256;  ///< images per forward pass
    std::uint64_t seed = 0;         ///< keys the noise and the order of tied map values
};

/// ROAD's probabilities of the predicted class after removal, and their means.
struct RoadResult {
    /// The fractions of pixels removed.
    std::vector<double> fractions;
    Tensor<float> morf;              ///< [N, fractions] most relevant removed first
    Tensor<float> lerf;              ///< [N, fractions] least relevant removed first
    std::vector<double> morf_curve;  ///< mean over images, per fraction
    /// Mean over images, per fraction (least relevant removed first).
    std::vector<double> lerf_curve;
    double mean_morf = 0;            ///< mean over images and fractions; lower is better
    double mean_lerf = 0;            ///< higher is better
    std::vector<int> predicted;      ///< class tracked for each image
};

/// Fills the pixels of `image` ([channels, h, w], row-major planes) marked in `removed` (h * w
/// flags) by noisy linear imputation from their 8 neighbours; `noise` keys the Gaussian noise.
/// At least one pixel must be kept.
template <class T>
void impute_noisy_linear(T* image, std::int64_t channels, std::int64_t h, std::int64_t w, const std::vector<char>& removed,
                         double noise_std, const RandomStream& noise) {
    const std::int64_t pixels = h * w;
    std::vector<std::int64_t> unknown_index(static_cast<std::size_t>(pixels), -1);
    std::int64_t unknowns = 0;
    for (std::int64_t p = 0; p < pixels; ++p)
        if (removed[static_cast<std::size_t>(p)]) unknown_index[static_cast<std::size_t>(p)] = unknowns++;
    if (unknowns == 0) return;
    check(unknowns < pixels, "impute_noisy_linear: every pixel is removed; nothing to impute from");

    // Row u: sum_n w_n (x_u - x_n) = 0 over the neighbours n inside the image; known
    // neighbours move to the right-hand side. The matrix is symmetric and, as every group of
    // removed pixels touches a kept one, positive definite.
    static constexpr int dy[8] = {-1, 1, 0, 0, -1, -1, 1, 1}, dx[8] = {0, 0, -1, 1, -1, 1, -1, 1};
    static constexpr double weight[8] = {1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 12, 1.0 / 12, 1.0 / 12, 1.0 / 12};
    std::vector<Eigen::Triplet<double>> entries;
    entries.reserve(static_cast<std::size_t>(unknowns * 9));
    Eigen::MatrixXd rhs = Eigen::MatrixXd::Zero(unknowns, channels);
    for (std::int64_t p = 0; p < pixels; ++p) {
        const std::int64_t u = unknown_index[static_cast<std::size_t>(p)];
        if (u < 0) continue;
        const std::int64_t y = p / w, x = p % w;
        double diagonal = 0;
        for (int k = 0; k < 8; ++k) {
            const std::int64_t ny = y + dy[k], nx = x + dx[k];
            if (ny < 0 || ny >= h || nx < 0 || nx >= w) continue;
            diagonal += weight[k];
            const std::int64_t q = ny * w + nx, v = unknown_index[static_cast<std::size_t>(q)];
            if (v >= 0) {
                entries.emplace_back(u, v, -weight[k]);
            } else {
                for (std::int64_t c = 0; c < channels; ++c) rhs(u, c) += weight[k] * static_cast<double>(image[c * pixels + q]);
            }
        }
        entries.emplace_back(u, u, diagonal);
    }
    Eigen::SparseMatrix<double> system(unknowns, unknowns);
    system.setFromTriplets(entries.begin(), entries.end());
    Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> solver(system);
    check(solver.info() == Eigen::Success, "impute_noisy_linear: the imputation system could not be factorised");
    const Eigen::MatrixXd values = solver.solve(rhs);
    for (std::int64_t p = 0; p < pixels; ++p) {
        const std::int64_t u = unknown_index[static_cast<std::size_t>(p)];
        if (u < 0) continue;
        for (std::int64_t c = 0; c < channels; ++c)
            image[c * pixels + p] =
                static_cast<T>(values(u, c) + noise_std * noise.normal(static_cast<std::uint64_t>(c * pixels + p)));
    }
}

/// ROAD MoRF and LeRF for `images` ([N, C, H, W]) under `maps` ([N, H, W]).
template <class T>
RoadResult road(const Model<T>& model, const Tensor<T>& images, const Tensor<float>& maps, const RoadOptions& options = {}) {
    const char* op = "road";
    detail::check_explain_call(model, images, options.chunk_size, Target::predicted(), op);
    const std::int64_t n = images.dim(0), channels = images.dim(1), h = images.dim(2), w = images.dim(3);
    check(maps.defined() && maps.shape() == (Shape{n, h, w}), op, ": maps of shape ",
          maps.defined() ? maps.shape() : Shape{}, " do not fit images ", images.shape());
    check(!options.fractions.empty(), op, ": no fractions given");
    for (double f : options.fractions) check(f >= 0 && f < 1, op, ": fraction ", f, " outside [0, 1)");
    check(options.noise >= 0, op, ": noise must not be negative, got ", options.noise);
    const std::int64_t pixels = h * w, per = channels * pixels;
    const std::int64_t levels = static_cast<std::int64_t>(options.fractions.size());

    RoadResult out;
    out.fractions = options.fractions;
    out.morf = Tensor<float>::uninitialized(Shape{n, levels});
    out.lerf = Tensor<float>::uninitialized(Shape{n, levels});
    out.predicted = detail::argmax_rows(detail::class_scores(model, images, Score::probability, options.chunk_size));

    const std::int64_t images_per_block = std::max<std::int64_t>(1, options.chunk_size / (2 * levels));
    for (std::int64_t first = 0; first < n; first += images_per_block) {
        const std::int64_t count = std::min(images_per_block, n - first);
        Tensor<T> variants = Tensor<T>::uninitialized(Shape{count * 2 * levels, channels, h, w});
        // The imputed copies of image `i` of the block: MoRF at every fraction, then LeRF.
        const auto impute_image = [&](std::int64_t i) {
            const std::int64_t image = first + i;
            const std::vector<std::int32_t> order =
                importance_order(maps.data() + image * pixels, pixels, options.seed, static_cast<std::uint64_t>(image));
            std::vector<char> removed(static_cast<std::size_t>(pixels));
            for (std::int64_t kind = 0; kind < 2; ++kind) {
                for (std::int64_t l = 0; l < levels; ++l) {
                    // At least one pixel stays, to impute from.
                    const std::int64_t k = std::min<std::int64_t>(
                        pixels - 1, std::llround(options.fractions[static_cast<std::size_t>(l)] * static_cast<double>(pixels)));
                    std::fill(removed.begin(), removed.end(), 0);
                    for (std::int64_t j = 0; j < k; ++j)
                        removed[static_cast<std::size_t>(order[static_cast<std::size_t>(kind == 0 ? j : pixels - 1 - j)])] = 1;
                    T* v = variants.data() + ((i * 2 + kind) * levels + l) * per;
                    std::copy(images.data() + image * per, images.data() + (image + 1) * per, v);
                    const RandomStream noise(options.seed, Purpose::user, static_cast<std::uint64_t>(image),
                                             static_cast<std::uint64_t>(1000 + kind * levels + l));
                    impute_noisy_linear(v, channels, h, w, removed, options.noise, noise);
                }
            }
        };
        std::string error;  // exceptions must not leave an OpenMP region
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic) if (count > 1)
#endif
        for (std::int64_t i = 0; i < count; ++i) {
            try {
                impute_image(i);
            } catch (const std::exception& e) {
#ifdef _OPENMP
#pragma omp critical(cnnlite_road_error)
#endif
                if (error.empty()) error = e.what();
            }
        }
        check(error.empty(), op, ": ", error);
        const Tensor<T> probs = detail::class_scores(model, variants, Score::probability, options.chunk_size);
        for (std::int64_t i = 0; i < count; ++i) {
            const int c = out.predicted[static_cast<std::size_t>(first + i)];
            for (std::int64_t l = 0; l < levels; ++l) {
                out.morf(first + i, l) = static_cast<float>(probs((i * 2) * levels + l, c));
                out.lerf(first + i, l) = static_cast<float>(probs((i * 2 + 1) * levels + l, c));
            }
        }
    }
    out.morf_curve.assign(static_cast<std::size_t>(levels), 0.0);
    out.lerf_curve.assign(static_cast<std::size_t>(levels), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t l = 0; l < levels; ++l) {
            out.morf_curve[static_cast<std::size_t>(l)] += out.morf(i, l) / static_cast<double>(n);
            out.lerf_curve[static_cast<std::size_t>(l)] += out.lerf(i, l) / static_cast<double>(n);
        }
    out.mean_morf = std::accumulate(out.morf_curve.begin(), out.morf_curve.end(), 0.0) / static_cast<double>(levels);
    out.mean_lerf = std::accumulate(out.lerf_curve.begin(), out.lerf_curve.end(), 0.0) / static_cast<double>(levels);
    return out;
}

}  // namespace cnnlite::explain
