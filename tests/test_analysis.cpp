// Tests of the EDA statistics, kNN search and embedding-quality metrics against hand-solved
// cases, brute force, and references computed by tests/fixtures/analysis/make_fixtures.py.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <vector>

#include "cnnlite/analysis/anova.hpp"
#include "cnnlite/analysis/descriptive.hpp"
#include "cnnlite/analysis/knn.hpp"
#include "cnnlite/analysis/trustworthiness.hpp"
#include "cnnlite/core/random.hpp"
#include "source_dir.hpp"

namespace test_analysis {

using namespace cnnlite;

namespace {

nlohmann::json reference() {
    std::ifstream in(test_support::source_dir().string() + "/tests/fixtures/analysis/reference.json");
    REQUIRE_MESSAGE(in.good(), "missing tests/fixtures/analysis/reference.json");
    return nlohmann::json::parse(in);
}

std::vector<float> flatten(const nlohmann::json& rows) {
    std::vector<float> out;
    for (const auto& row : rows)
        for (double v : row) out.push_back(static_cast<float>(v));
    return out;
}

std::vector<float> random_points(std::int64_t n, std::int64_t dim, std::uint64_t seed) {
    std::vector<float> x(static_cast<std::size_t>(n * dim));
    const RandomStream rs(seed, Purpose::user);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rs.normal(i));
    return x;
}

}  // namespace

TEST_CASE("quantile, mean and population variance match NumPy") {
    const nlohmann::json ref = reference();  // kept alive: a range-for over reference()[...] would dangle
    for (const auto& c : ref["descriptive"]) {
        CAPTURE(c["name"].get<std::string>());
        const auto values = c["values"].get<std::vector<double>>();
        const auto qs = c["q"].get<std::vector<double>>();
        const auto expected = c["quantiles"].get<std::vector<double>>();
        for (std::size_t i = 0; i < qs.size(); ++i)
            CHECK(quantile(values, qs[i]) == doctest::Approx(expected[i]).epsilon(1e-14));
        CHECK(mean(values) == doctest::Approx(c["mean"].get<double>()).epsilon(1e-14));
        CHECK(population_variance(values) == doctest::Approx(c["variance"].get<double>()).epsilon(1e-12));
        const Summary s = summarize(values);
        CHECK(s.count == static_cast<std::int64_t>(values.size()));
        CHECK(s.q1 == doctest::Approx(expected[2]).epsilon(1e-14));
        CHECK(s.median == doctest::Approx(expected[3]).epsilon(1e-14));
        CHECK(s.q3 == doctest::Approx(expected[4]).epsilon(1e-14));
        CHECK(s.max == c["max"].get<double>());
        CHECK(s.variance == doctest::Approx(c["variance"].get<double>()).epsilon(1e-12));
    }
}

TEST_CASE("quantiles by hand: linear interpolation between order statistics") {
    const std::vector<double> v{10, 0, 30, 20};  // sorted 0 10 20 30, position (n-1) q
    CHECK(quantile(v, 0.25) == 7.5);
    CHECK(quantile(v, 0.5) == 15.0);
    CHECK(quantile(v, 1.0) == 30.0);
    CHECK(population_variance(v) == 125.0);  // squared deviations 225 + 25 + 25 + 225 over 4
}

TEST_CASE("non-background ratio counts raw values above zero") {
    std::vector<std::uint8_t> image(784, 0);
    for (int i = 0; i < 196; ++i) image[static_cast<std::size_t>(i * 4)] = static_cast<std::uint8_t>(1 + i % 255);
    CHECK(nonbackground_ratio(image.data(), 784) == 0.25);
    std::vector<std::uint8_t> two(2 * 784, 0);
    two[784] = 255;
    const auto ratios = nonbackground_ratios(two.data(), 2, 784);
    CHECK(ratios == std::vector<double>{0.0, 1.0 / 784.0});
}

TEST_CASE("one-way ANOVA F and p match scipy.stats.f_oneway") {
    const nlohmann::json ref = reference();  // kept alive: a range-for over reference()[...] would dangle
    for (const auto& c : ref["anova"]) {
        CAPTURE(c["name"].get<std::string>());
        std::vector<std::vector<double>> groups;
        for (const auto& g : c["groups"]) groups.push_back(g.get<std::vector<double>>());
        const AnovaResult r = one_way_anova(groups);
        CHECK(r.f_value == doctest::Approx(c["f_value"].get<double>()).epsilon(1e-10));
        CHECK(r.p_value == doctest::Approx(c["p_value"].get<double>()).epsilon(1e-9));
    }
    // By hand: means 2 and 5, SS_between 13.5 on 1 df, SS_within 4 on 4 df, F = 13.5.
    const AnovaResult hand = one_way_anova({1, 2, 3}, {4, 5, 6});
    CHECK(hand.f_value == doctest::Approx(13.5).epsilon(1e-14));
    CHECK(hand.df_between == 1);
    CHECK(hand.df_within == 4);
    // Constant groups: different means give F = inf, p = 0; equal means give NaN.
    CHECK(std::isinf(one_way_anova({1, 1}, {2, 2}).f_value));
    CHECK(one_way_anova({1, 1}, {2, 2}).p_value == 0.0);
    CHECK(std::isnan(one_way_anova({1, 1}, {1, 1}).f_value));
}

TEST_CASE("statistics reject empty input, NaN and bad arguments") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(mean(std::vector<double>{}), doctest::Contains("at least one value"), Error);
    CHECK_THROWS_WITH_AS(quantile(std::vector<double>{1, nan}, 0.5), doctest::Contains("value 1 is NaN"), Error);
    CHECK_THROWS_WITH_AS(quantile(std::vector<double>{1, 2}, 1.5), doctest::Contains("outside [0, 1]"), Error);
    CHECK_THROWS_WITH_AS(summarize(std::vector<double>{}), doctest::Contains("summarize"), Error);
    CHECK_THROWS_WITH_AS(one_way_anova({1, 2}, {}), doctest::Contains("group 1 is empty"), Error);
    CHECK_THROWS_WITH_AS(one_way_anova({1}, {2}), doctest::Contains("no degrees of freedom"), Error);
    CHECK_THROWS_WITH_AS(one_way_anova({1, nan}, {2, 3}), doctest::Contains("NaN"), Error);
    CHECK_THROWS_WITH_AS(one_way_anova(std::vector<std::vector<double>>{{1, 2}}), doctest::Contains("two groups"), Error);
    CHECK_THROWS_WITH_AS(nonbackground_ratio(nullptr, 0), doctest::Contains("no pixels"), Error);
}

TEST_CASE("exact kNN equals brute force; self first") {
    const std::int64_t n = 700, dim = 13, k = 9;
    const auto x = random_points(n, dim, 1);
    const KnnGraph g = knn_exact(x.data(), n, dim, k);
    for (std::int64_t i = 0; i < n; ++i) {
        std::vector<std::pair<double, std::int32_t>> all;
        for (std::int64_t j = 0; j < n; ++j) {
            double d = 0;
            for (std::int64_t t = 0; t < dim; ++t) d += std::pow(double(x[size_t(i * dim + t)]) - x[size_t(j * dim + t)], 2);
            all.emplace_back(j == i ? -1.0 : d, static_cast<std::int32_t>(j));
        }
        std::sort(all.begin(), all.end());
        for (std::int64_t j = 0; j < k; ++j) {
            REQUIRE(g.index(i, j) == all[size_t(j)].second);
            CHECK(g.distance(i, j) == doctest::Approx(std::sqrt(std::max(0.0, all[size_t(j)].first))).epsilon(1e-5));
        }
    }
    // A query search on the same data finds the same rows.
    const KnnGraph q = knn_exact_query(x.data(), n, x.data() + 5 * dim, 3, dim, k);
    for (std::int64_t j = 0; j < k; ++j) CHECK(q.index(0, j) == g.index(5, j));
}

TEST_CASE("approximate kNN: high recall against exact, exact path for small data") {
    // Data of low intrinsic dimension (like images): 4 latent factors mapped into 96
    // dimensions plus a little noise, forced onto the approximate path.
    const std::int64_t n = 4000, dim = 96, k = 10, latent = 4;
    const auto z = random_points(n, latent, 2);
    const auto mixing = random_points(latent, dim, 3);
    const auto noise = random_points(n, dim, 5);
    std::vector<float> x(size_t(n * dim));
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t t = 0; t < dim; ++t) {
            float v = 0.05f * noise[size_t(i * dim + t)];
            for (std::int64_t l = 0; l < latent; ++l) v += z[size_t(i * latent + l)] * mixing[size_t(l * dim + t)];
            x[size_t(i * dim + t)] = v;
        }
    const KnnGraph approx = knn_approximate(x.data(), n, dim, k, KnnOptions().set_exact_below(0).set_pca_dims(24));
    for (std::int64_t i = 0; i < n; ++i) REQUIRE(approx.index(i, 0) == i);
    const double recall = knn_recall(x.data(), n, dim, approx, 400, 3);
    MESSAGE("approximate recall@", k - 1, ": ", recall);
    CHECK(recall > 0.9);
    CHECK(recall <= 1.0);
    // Probing every k-means cell leaves only the projection's error, which 24 >= 4 axes avoid.
    const KnnGraph all_cells =
        knn_approximate(x.data(), n, dim, k, KnnOptions().set_exact_below(0).set_pca_dims(24).set_probes(1000));
    CHECK(knn_recall(x.data(), n, dim, all_cells, 400, 3) == 1.0);
    const KnnGraph small = knn_approximate(x.data(), 500, dim, k);  // below exact_below: exact
    CHECK(knn_recall(x.data(), 500, dim, small, 500) == 1.0);
}

TEST_CASE("kNN rejects hostile input with clear errors") {
    const auto x = random_points(10, 3, 4);
    CHECK_THROWS_WITH_AS(knn_exact(x.data(), 10, 3, 11), doctest::Contains("k = 11"), Error);
    CHECK_THROWS_WITH_AS(knn_exact(x.data(), 0, 3, 1), doctest::Contains("no points"), Error);
    CHECK_THROWS_WITH_AS(knn_exact(nullptr, 10, 3, 2), doctest::Contains("null data"), Error);
    auto bad = x;
    bad[7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(knn_exact(bad.data(), 10, 3, 2), doctest::Contains("row 2, column 1"), Error);
    CHECK_THROWS_WITH_AS(knn_approximate(bad.data(), 10, 3, 2), doctest::Contains("not finite"), Error);
}

TEST_CASE("trustworthiness matches scikit-learn; perfect for an isometry") {
    const auto ref = reference()["trustworthiness"];
    const auto x = flatten(ref["x"]);
    const auto y = flatten(ref["y"]);
    const auto n = static_cast<std::int64_t>(ref["x"].size());
    const auto ks = ref["k"].get<std::vector<int>>();
    const auto values = ref["values"].get<std::vector<double>>();
    for (std::size_t i = 0; i < ks.size(); ++i)
        CHECK(trustworthiness(x.data(), n, 10, y.data(), 2, ks[i]) == doctest::Approx(values[i]).epsilon(1e-12));
    // A rotated, scaled copy keeps every neighbourhood.
    std::vector<float> z(size_t(n) * 2);
    for (std::int64_t i = 0; i < n; ++i) {
        z[size_t(2 * i)] = 3 * y[size_t(2 * i)] - 2 * y[size_t(2 * i + 1)];
        z[size_t(2 * i + 1)] = 2 * y[size_t(2 * i)] + 3 * y[size_t(2 * i + 1)];
    }
    CHECK(trustworthiness(y.data(), n, 2, z.data(), 2, 5) == doctest::Approx(1.0));
    // A sample that covers every point is the full statistic.
    CHECK(trustworthiness_sample(x.data(), n, 10, y.data(), 2, 5, 1000) == doctest::Approx(values[1]).epsilon(1e-12));
    CHECK_THROWS_WITH_AS(trustworthiness(x.data(), n, 10, y.data(), 2, n), doctest::Contains("must be in [1, n / 2)"), Error);
}

TEST_CASE("k-NN classifier accuracy matches scikit-learn") {
    const auto ref = reference()["knn_accuracy"];
    const auto train = flatten(ref["train"]);
    const auto test = flatten(ref["test"]);
    const auto train_labels = ref["train_labels"].get<std::vector<std::int32_t>>();
    const auto test_labels = ref["test_labels"].get<std::vector<std::int32_t>>();
    const double acc = knn_classifier_accuracy(train.data(), train_labels.data(), std::int64_t(train_labels.size()),
                                               test.data(), test_labels.data(), std::int64_t(test_labels.size()), 2,
                                               ref["k"].get<int>());
    CHECK(acc == doctest::Approx(ref["accuracy"].get<double>()));
    // By hand: one training point per label, 1-NN recovers the nearest label.
    const std::vector<float> tr{0, 0, 10, 10}, te{1, 1, 9, 9, 2, 1};
    const std::vector<std::int32_t> trl{0, 1}, tel{0, 1, 1};
    CHECK(knn_classifier_accuracy(tr.data(), trl.data(), 2, te.data(), tel.data(), 3, 2, 1) == doctest::Approx(2.0 / 3));
}

}  // namespace test_analysis
