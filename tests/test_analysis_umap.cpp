// Tests of UMAP: curve fit, smooth kNN and fuzzy union against hand-solved cases and the
// reference implementation's values (tests/fixtures/analysis), embedding quality on separated
// clusters, determinism, transform and hostile input.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <vector>

#include "cnnlite/analysis/trustworthiness.hpp"
#include "cnnlite/analysis/umap.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/threading.hpp"
#include "source_dir.hpp"

namespace test_analysis_umap {

using namespace cnnlite;

namespace {

nlohmann::json reference() {
    std::ifstream in(test_support::source_dir().string() + "/tests/fixtures/analysis/reference.json");
    REQUIRE_MESSAGE(in.good(), "missing tests/fixtures/analysis/reference.json");
    return nlohmann::json::parse(in);
}

/// `clusters` blobs in `dim` dimensions, centres 12 apart on the axes; within a blob the points
/// spread (sd 1) over two dimensions plus a little noise (sd 0.05), a structure 2-D can keep.
std::vector<float> blobs(std::int64_t n, std::int64_t dim, int clusters, std::uint64_t seed, std::vector<std::int32_t>& labels) {
    std::vector<float> x(size_t(n * dim));
    labels.resize(size_t(n));
    const RandomStream rs(seed, Purpose::user);
    for (std::int64_t i = 0; i < n; ++i) {
        labels[size_t(i)] = std::int32_t(i % clusters);
        for (std::int64_t t = 0; t < dim; ++t)
            x[size_t(i * dim + t)] = float(rs.normal(std::uint64_t(i * dim + t))) * (t >= dim - 2 ? 1.0f : 0.05f) +
                                     (t == i % clusters ? 12.0f : 0.0f);
    }
    return x;
}

KnnGraph one_row(std::vector<float> distances) {
    KnnGraph g;
    g.n = 1;
    g.k = std::int64_t(distances.size());
    g.distances = std::move(distances);
    for (std::int64_t j = 0; j < g.k; ++j) g.indices.push_back(std::int32_t(j == 0 ? 0 : 0));
    return g;
}

}  // namespace

TEST_CASE("a/b curve fit matches the reference values") {
    const UmapCurve c = umap_find_ab(1.0, 0.1);
    CHECK(c.a == doctest::Approx(1.577).epsilon(1e-3));
    CHECK(c.b == doctest::Approx(0.895).epsilon(1e-3));
    const auto ref = reference();
    for (const char* key : {"ab", "ab2"}) {
        const auto& r = ref[key];
        const UmapCurve f = umap_find_ab(r["spread"].get<double>(), r["min_dist"].get<double>());
        CHECK(f.a == doctest::Approx(r["a"].get<double>()).epsilon(1e-6));
        CHECK(f.b == doctest::Approx(r["b"].get<double>()).epsilon(1e-6));
    }
    CHECK_THROWS_WITH_AS(umap_find_ab(1.0, 2.0), doctest::Contains("min_dist = 2"), Error);
    CHECK_THROWS_WITH_AS(umap_find_ab(0.0, 0.0), doctest::Contains("spread = 0"), Error);
}

TEST_CASE("smooth kNN: hand-solved bandwidths") {
    // k = 3, distances 0 (self), 1, 2: rho = 1 and 1 + exp(-1 / sigma) = log2(3).
    const SmoothKnn a = smooth_knn(one_row({0, 1, 2}));
    CHECK(a.rho[0] == doctest::Approx(1.0));
    CHECK(a.sigma[0] == doctest::Approx(-1.0 / std::log(std::log2(3.0) - 1.0)).epsilon(1e-4));
    // k = 4, distances 0, 2, 3, 4: rho = 2 and 1 + x + x^2 = 2 with x = exp(-1 / sigma),
    // so x is the golden ratio's inverse and sigma = 1 / ln(phi).
    const SmoothKnn b = smooth_knn(one_row({0, 2, 3, 4}));
    CHECK(b.rho[0] == doctest::Approx(2.0));
    CHECK(b.sigma[0] == doctest::Approx(1.0 / std::log((1 + std::sqrt(5.0)) / 2)).epsilon(1e-4));
    // Duplicates: all neighbours at rho already sum past log2(k); sigma takes the floor,
    // 1e-3 times the mean distance of the row.
    const SmoothKnn c = smooth_knn(one_row({0, 1, 1, 1, 1}));
    CHECK(c.rho[0] == doctest::Approx(1.0));
    CHECK(c.sigma[0] == doctest::Approx(1e-3 * 0.8).epsilon(1e-3));
}

TEST_CASE("smooth kNN matches the reference implementation") {
    const auto ref = reference()["smooth_knn"];
    KnnGraph g;
    g.k = ref["k"].get<int>();
    for (const auto& row : ref["distances"]) {
        for (double d : row) {
            g.distances.push_back(float(d));
            g.indices.push_back(0);
        }
        ++g.n;
    }
    const SmoothKnn s = smooth_knn(g);
    const auto sigma = ref["sigma"].get<std::vector<double>>();
    const auto rho = ref["rho"].get<std::vector<double>>();
    for (std::int64_t i = 0; i < g.n; ++i) {
        CHECK(s.rho[size_t(i)] == doctest::Approx(rho[size_t(i)]).epsilon(1e-6));
        CHECK(s.sigma[size_t(i)] == doctest::Approx(sigma[size_t(i)]).epsilon(1e-4));
    }
}

TEST_CASE("fuzzy union: w = p + q - p q, symmetric, sorted by head") {
    // Three points on a line at 0, 1, 3; k = 2 (self and nearest).
    KnnGraph g;
    g.n = 3;
    g.k = 3;
    g.indices = {0, 1, 2, 1, 0, 2, 2, 1, 0};
    g.distances = {0, 1, 3, 0, 1, 2, 0, 2, 3};
    SmoothKnn s;
    s.rho = {1, 1, 2};
    s.sigma = {1, 2, 1};
    const UmapGraph u = fuzzy_simplicial_set(g, s);
    // Directed memberships: 0->1: 1, 0->2: exp(-2), 1->0: 1, 1->2: exp(-1/2), 2->1: 1, 2->0: exp(-1).
    const double w01 = 1, w02 = std::exp(-2.0) + std::exp(-1.0) - std::exp(-3.0), w12 = 1;
    REQUIRE(u.edges() == 6);
    CHECK(u.offsets == std::vector<std::int64_t>{0, 2, 4, 6});
    CHECK(u.tail == std::vector<std::int32_t>{1, 2, 0, 2, 0, 1});
    CHECK(u.weight[0] == doctest::Approx(w01));
    CHECK(u.weight[1] == doctest::Approx(w02));
    CHECK(u.weight[3] == doctest::Approx(w12));
    CHECK(u.weight[4] == doctest::Approx(w02));
    const UmapGraph pruned = prune_graph(u, 0.5f);
    CHECK(pruned.edges() == 4);
}

TEST_CASE("fast power used by the layout is accurate") {
    double worst = 0;
    for (double x = 1e-9; x < 1e6; x *= 1.37)
        for (float p : {0.895f, -0.105f, 1.5f}) {
            const double exact = std::pow(x, double(p));
            worst = std::max(worst, std::abs(detail::fast_pow(float(x), p) - exact) / exact);
        }
    CHECK(worst < 1e-5);
}

TEST_CASE("well-separated clusters embed with trustworthiness > 0.95; deterministic") {
    std::vector<std::int32_t> labels;
    const std::int64_t n = 600, dim = 20;
    const auto x = blobs(n, dim, 6, 7, labels);
    const UmapOptions options = UmapOptions().set_seed(3).set_n_epochs(100);
    const UmapResult r = umap(x.data(), n, dim, options);
    REQUIRE(r.embedding.shape() == Shape{n, 2});
    CHECK(r.n_epochs == 100);
    CHECK(r.init.find("spectral") == 0);
    for (float v : r.embedding) REQUIRE(std::isfinite(v));
    const double t = trustworthiness(x.data(), n, dim, r.embedding.data(), 2, 15);
    MESSAGE("trustworthiness ", t, ", init ", r.init);
    CHECK(t > 0.95);
    // Each cluster stays together: 10-NN accuracy in the embedding (first 450 -> last 150).
    CHECK(knn_classifier_accuracy(r.embedding.data(), labels.data(), 450, r.embedding.data() + 900,
                                  labels.data() + 450, 150, 2, 10) > 0.98);

    const UmapResult again = umap(x.data(), n, dim, options);
    CHECK(again.embedding.to_vector() == r.embedding.to_vector());
    const UmapResult other = umap(x.data(), n, dim, UmapOptions(options).set_seed(4));
    CHECK(other.embedding.to_vector() != r.embedding.to_vector());
    if (num_threads() > 1) {  // one thread takes another (equally valid) path
        const int before = num_threads();
        set_num_threads(1);
        const UmapResult serial = umap(x.data(), n, dim, options);
        set_num_threads(before);
        CHECK(trustworthiness(x.data(), n, dim, serial.embedding.data(), 2, 15) > 0.95);
    }

    // New points from the same clusters land among their own cluster.
    std::vector<std::int32_t> new_labels;
    const auto fresh = blobs(60, dim, 6, 99, new_labels);
    const Tensor<float> placed = umap_transform(x.data(), n, dim, r, fresh.data(), 60, options);
    REQUIRE(placed.shape() == Shape{60, 2});
    CHECK(knn_classifier_accuracy(r.embedding.data(), labels.data(), n, placed.data(), new_labels.data(), 60, 2, 10) > 0.95);
}

TEST_CASE("disconnected graphs and random init are handled; a connected graph gets one spectral solve") {
    std::vector<std::int32_t> one_label;
    const auto single = blobs(300, 5, 1, 21, one_label);
    CHECK(umap(single.data(), 300, 5, UmapOptions().set_n_epochs(20)).init == "spectral");

    // Two far-apart groups of 40 points with k = 5: the kNN graph has two components.
    std::vector<std::int32_t> labels;
    auto x = blobs(80, 3, 2, 11, labels);
    for (std::int64_t i = 0; i < 80; ++i) x[size_t(i * 3)] += labels[size_t(i)] * 1000.0f;
    const UmapResult r = umap(x.data(), 80, 3, UmapOptions().set_n_neighbors(5).set_n_epochs(50));
    CHECK(r.init.find("per component (2 components") != std::string::npos);
    for (float v : r.embedding) REQUIRE(std::isfinite(v));
    const UmapResult random = umap(x.data(), 80, 3, UmapOptions().set_n_neighbors(5).set_n_epochs(50).set_init(UmapInit::random));
    CHECK(random.init == "random");
    CHECK(knn_classifier_accuracy(r.embedding.data(), labels.data(), 60, r.embedding.data() + 120, labels.data() + 60,
                                  20, 2, 5) == 1.0);
}

TEST_CASE("UMAP rejects hostile input with clear errors") {
    std::vector<std::int32_t> labels;
    auto x = blobs(30, 4, 3, 1, labels);
    CHECK_THROWS_WITH_AS(umap(x.data(), 0, 4), doctest::Contains("no points"), Error);
    CHECK_THROWS_WITH_AS(umap(nullptr, 30, 4), doctest::Contains("null data"), Error);
    CHECK_THROWS_WITH_AS(umap(x.data(), 30, 4, UmapOptions().set_n_neighbors(30)),
                         doctest::Contains("n_neighbors = 30 must be less than the number of points (30)"), Error);
    CHECK_THROWS_WITH_AS(umap(x.data(), 30, 4, UmapOptions().set_n_neighbors(1)), doctest::Contains("at least 2"), Error);
    CHECK_THROWS_WITH_AS(umap(x.data(), 30, 4, UmapOptions().set_min_dist(3)), doctest::Contains("min_dist"), Error);
    CHECK_THROWS_WITH_AS(umap(x.data(), 30, 4, UmapOptions().set_n_components(0)), doctest::Contains("n_components"), Error);
    CHECK_THROWS_WITH_AS(umap(x.data(), 30, 4, UmapOptions().set_learning_rate(-1)), doctest::Contains("learning_rate"), Error);
    x[13] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(umap(x.data(), 30, 4), doctest::Contains("row 3, column 1 is not finite"), Error);
    x[13] = 0;
    const UmapResult r = umap(x.data(), 30, 4, UmapOptions().set_n_neighbors(5).set_n_epochs(10));
    CHECK_THROWS_WITH_AS(umap_transform(x.data(), 20, 4, r, x.data(), 3, UmapOptions().set_n_neighbors(5)),
                         doctest::Contains("does not match 20 training points"), Error);
}

}  // namespace test_analysis_umap
