// UMAP's starting layout: the spectral embedding of the fuzzy graph (eigenvectors of the
// normalised Laplacian, via Spectra), laid out per connected component, with a random fallback.
//
// Functions that reach Eigen's products or Spectra are templates (`template <class Lazy = void>`)
// for one reason: a template is compiled only by the programs that call it, while an inline
// function is compiled by every program that includes its header (README.md, "Compile
// time"). Call them as ordinary functions.
#pragma once

#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <Spectra/MatOp/SparseSymMatProd.h>
#include <Spectra/SymEigsSolver.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cnnlite/analysis/umap_graph.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/random.hpp"

namespace cnnlite {

namespace detail {

/// Connected components of the graph (union-find); returns each vertex's component number,
/// numbered in order of first vertex.
inline std::vector<std::int32_t> connected_components(const UmapGraph& g, std::int32_t& count) {
    std::vector<std::int32_t> parent(static_cast<std::size_t>(g.n));
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&](std::int32_t v) {
        while (parent[static_cast<std::size_t>(v)] != v) {
            parent[static_cast<std::size_t>(v)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(v)])];
            v = parent[static_cast<std::size_t>(v)];
        }
        return v;
    };
    for (std::size_t e = 0; e < g.tail.size(); ++e) {
        const std::int32_t a = find(g.head[e]), b = find(g.tail[e]);
        if (a != b) parent[static_cast<std::size_t>(std::max(a, b))] = std::min(a, b);
    }
    std::vector<std::int32_t> label(static_cast<std::size_t>(g.n), -1), id_of_root(static_cast<std::size_t>(g.n), -1);
    count = 0;
    for (std::int64_t v = 0; v < g.n; ++v) {
        const std::int32_t r = find(static_cast<std::int32_t>(v));
        if (id_of_root[static_cast<std::size_t>(r)] < 0) id_of_root[static_cast<std::size_t>(r)] = count++;
        label[static_cast<std::size_t>(v)] = id_of_root[static_cast<std::size_t>(r)];
    }
    return label;
}

/// Spectral coordinates (m x dim, row-major) of one connected component given by its vertex
/// list: the eigenvectors 2..dim+1 of D^-1/2 W D^-1/2 by largest eigenvalue (those of the
/// normalised Laplacian I - D^-1/2 W D^-1/2 by smallest), skipping the trivial one. Returns
/// false when Spectra does not converge.
template <class Lazy = void>
bool spectral_component(const UmapGraph& g, const std::vector<std::int32_t>& vertices,
                        const std::vector<std::int32_t>& local_id, int dim, std::vector<double>& out,
                        std::int64_t lanczos_vectors = 0) {
    const auto m = static_cast<std::int64_t>(vertices.size());
    std::vector<double> inv_sqrt_degree(static_cast<std::size_t>(m), 0.0);
    for (std::int64_t a = 0; a < m; ++a) {
        const std::int32_t v = vertices[static_cast<std::size_t>(a)];
        double degree = 0;
        for (std::int64_t e = g.offsets[static_cast<std::size_t>(v)]; e < g.offsets[static_cast<std::size_t>(v) + 1]; ++e)
            degree += g.weight[static_cast<std::size_t>(e)];
        inv_sqrt_degree[static_cast<std::size_t>(a)] = degree > 0 ? 1.0 / std::sqrt(degree) : 0.0;
    }
    std::vector<Eigen::Triplet<double>> triplets;
    for (std::int64_t a = 0; a < m; ++a) {
        const std::int32_t v = vertices[static_cast<std::size_t>(a)];
        for (std::int64_t e = g.offsets[static_cast<std::size_t>(v)]; e < g.offsets[static_cast<std::size_t>(v) + 1]; ++e) {
            const std::int32_t b = local_id[static_cast<std::size_t>(g.tail[static_cast<std::size_t>(e)])];
            triplets.emplace_back(static_cast<int>(a), b,
                                  g.weight[static_cast<std::size_t>(e)] * inv_sqrt_degree[static_cast<std::size_t>(a)] *
                                      inv_sqrt_degree[static_cast<std::size_t>(b)]);
        }
    }
    Eigen::SparseMatrix<double> M(m, m);
    M.setFromTriplets(triplets.begin(), triplets.end());
    Spectra::SparseSymMatProd<double> op(M);
    const int nev = dim + 1;
    // 32 Lanczos vectors by default: on Fashion-MNIST (60,000 points) they give the same
    // eigenvectors as the reference's sqrt(n) = 245 at a quarter of the time; the caller retries
    // with sqrt(m) if this does not converge.
    const std::int64_t wanted = lanczos_vectors > 0 ? lanczos_vectors : 32;
    const auto ncv = static_cast<int>(std::min<std::int64_t>(m, std::max<std::int64_t>(2 * nev + 1, wanted)));
    Spectra::SymEigsSolver<Spectra::SparseSymMatProd<double>> solver(op, nev, ncv);
    // A fixed, generic start vector (all ones plus a seeded wobble) keeps the solve repeatable.
    Eigen::VectorXd start(m);
    const RandomStream rs(0, Purpose::init, 0x7370656374);
    for (std::int64_t a = 0; a < m; ++a) start[a] = 1.0 + 0.5 * rs.normal(static_cast<std::uint64_t>(a));
    solver.init(start.data());
    solver.compute(Spectra::SortRule::LargestAlge, 1000, 1e-4);
    if (solver.info() != Spectra::CompInfo::Successful) return false;
    const Eigen::MatrixXd vectors = solver.eigenvectors();  // columns by descending eigenvalue
    out.assign(static_cast<std::size_t>(m * dim), 0.0);
    for (std::int64_t a = 0; a < m; ++a)
        for (int d = 0; d < dim; ++d) out[static_cast<std::size_t>(a * dim + d)] = vectors(a, d + 1);
    return std::all_of(out.begin(), out.end(), [](double v) { return std::isfinite(v); });
}

/// Rescales coordinates (rows of `dim`) so that the largest absolute value is `limit`.
inline void scale_to(std::vector<double>& coords, double limit) {
    double big = 0;
    for (double v : coords) big = std::max(big, std::abs(v));
    if (big > 0)
        for (double& v : coords) v *= limit / big;
}

/// Positions of `count` component centres (count x dim): classical MDS of the components' mean
/// data points (power iteration with deflation on the double-centred Gram matrix), so that
/// components that are close in the data start close.
template <class Lazy = void>
std::vector<double> component_centres(const float* data, std::int64_t n, std::int64_t data_dim,
                                      const std::vector<std::int32_t>& component, std::int32_t count, int dim) {
    Eigen::MatrixXd means = Eigen::MatrixXd::Zero(count, data_dim);
    Eigen::VectorXd sizes = Eigen::VectorXd::Zero(count);
    for (std::int64_t i = 0; i < n; ++i) {
        const std::int32_t c = component[static_cast<std::size_t>(i)];
        for (std::int64_t t = 0; t < data_dim; ++t) means(c, t) += data[i * data_dim + t];
        sizes[c] += 1;
    }
    for (std::int32_t c = 0; c < count; ++c) means.row(c) /= sizes[c];
    const Eigen::RowVectorXd centre = means.colwise().mean();
    means.rowwise() -= centre;
    Eigen::MatrixXd gram = means * means.transpose();
    std::vector<double> out(static_cast<std::size_t>(count * dim), 0.0);
    const RandomStream rs(0, Purpose::init, 0x6d6473);
    for (int d = 0; d < dim; ++d) {
        Eigen::VectorXd v(count);
        for (std::int32_t c = 0; c < count; ++c) v[c] = rs.normal(static_cast<std::uint64_t>(d * count + c));
        double lambda = 0;
        for (int it = 0; it < 300; ++it) {
            Eigen::VectorXd w = gram * v;
            lambda = w.norm();
            if (lambda < 1e-12) break;
            v = w / lambda;
        }
        if (lambda < 1e-12) {
            // Fewer distinct means than axes: spread the rest along this axis by index.
            for (std::int32_t c = 0; c < count; ++c) out[static_cast<std::size_t>(c * dim + d)] = c;
            continue;
        }
        for (std::int32_t c = 0; c < count; ++c) out[static_cast<std::size_t>(c * dim + d)] = std::sqrt(lambda) * v[c];
        gram -= lambda * v * v.transpose();
    }
    return out;
}

}  // namespace detail

/// Uniform random coordinates in [-10, 10] (n x dim, row-major) from `seed`.
inline std::vector<float> random_layout(std::int64_t n, int dim, std::uint64_t seed) {
    std::vector<float> y(static_cast<std::size_t>(n * dim));
    const RandomStream rs(seed, Purpose::init, 0x72616e64);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(20.0 * rs.uniform(i) - 10.0);
    return y;
}

/// Spectral initialisation (n x dim, row-major, coordinates in [-10, 10]). A connected graph
/// gets the spectral embedding of its normalised Laplacian. A disconnected one (which Lanczos
/// cannot embed as a whole: the eigenvalue 1 repeats once per component) is laid out per
/// component: centres by MDS of the components' data means, each component's own spectral
/// layout shrunk to half the distance to the nearest other centre. Components too small for
/// the solver (< 2 dim + 4 vertices), and any whose solve does not converge, get random
/// coordinates in their box. `method` says what happened.
template <class Lazy = void>
std::vector<float> spectral_layout(const UmapGraph& g, int dim, const float* data, std::int64_t data_dim,
                                   std::uint64_t seed, std::string& method) {
    check(dim >= 1, "spectral_layout: dimension ", dim, " must be positive");
    std::int32_t count = 0;
    const std::vector<std::int32_t> component = detail::connected_components(g, count);
    std::vector<std::vector<std::int32_t>> members(static_cast<std::size_t>(count));
    std::vector<std::int32_t> local_id(static_cast<std::size_t>(g.n));
    for (std::int64_t v = 0; v < g.n; ++v) {
        auto& list = members[static_cast<std::size_t>(component[static_cast<std::size_t>(v)])];
        local_id[static_cast<std::size_t>(v)] = static_cast<std::int32_t>(list.size());
        list.push_back(static_cast<std::int32_t>(v));
    }
    std::vector<double> centres(static_cast<std::size_t>(count * dim), 0.0);
    std::vector<double> radius(static_cast<std::size_t>(count), 10.0);
    if (count > 1) {
        centres = detail::component_centres(data, g.n, data_dim, component, count, dim);
        detail::scale_to(centres, 10.0);
        for (std::int32_t c = 0; c < count; ++c) {
            double nearest = std::numeric_limits<double>::infinity();
            for (std::int32_t o = 0; o < count; ++o) {
                if (o == c) continue;
                double d2 = 0;
                for (int d = 0; d < dim; ++d)
                    d2 += std::pow(centres[static_cast<std::size_t>(c * dim + d)] - centres[static_cast<std::size_t>(o * dim + d)], 2);
                nearest = std::min(nearest, std::sqrt(d2));
            }
            radius[static_cast<std::size_t>(c)] = std::max(nearest / 2, 1e-3);
        }
    }
    std::vector<float> y(static_cast<std::size_t>(g.n * dim));
    const RandomStream rs(seed, Purpose::init, 0x636f6d70);
    std::int32_t random_components = 0;
    std::vector<double> coords;
    for (std::int32_t c = 0; c < count; ++c) {
        const auto& vertices = members[static_cast<std::size_t>(c)];
        const auto m = static_cast<std::int64_t>(vertices.size());
        bool solved = m >= 2 * dim + 4 && detail::spectral_component(g, vertices, local_id, dim, coords);
        const auto wide = static_cast<std::int64_t>(std::sqrt(static_cast<double>(m)));
        if (!solved && m >= 2 * dim + 4 && wide > 32)  // a larger Krylov basis before giving up
            solved = detail::spectral_component(g, vertices, local_id, dim, coords, wide);
        if (!solved) {
            ++random_components;
            coords.resize(static_cast<std::size_t>(m * dim));
            for (std::int64_t a = 0; a < m * dim; ++a)
                coords[static_cast<std::size_t>(a)] = 2.0 * rs.uniform(static_cast<std::uint64_t>(vertices[0] * dim + a)) - 1.0;
        }
        detail::scale_to(coords, radius[static_cast<std::size_t>(c)]);
        for (std::int64_t a = 0; a < m; ++a)
            for (int d = 0; d < dim; ++d)
                y[static_cast<std::size_t>(vertices[static_cast<std::size_t>(a)] * dim + d)] = static_cast<float>(
                    centres[static_cast<std::size_t>(c * dim + d)] + coords[static_cast<std::size_t>(a * dim + d)]);
    }
    method = count == 1 ? (random_components ? "random (spectral solver did not converge)" : "spectral")
                        : "spectral per component (" + std::to_string(count) + " components, " +
                              std::to_string(random_components) + " laid out at random)";
    return y;
}

}  // namespace cnnlite
