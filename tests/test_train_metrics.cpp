// Evaluation metrics: per-class precision, recall and F1 with their macro averages, top-k
// accuracy with ties and NaN, and calibration (ECE) by hand and against a NumPy computation
// (tests/fixtures/optim/make_recipe_fixture.py); evaluate()'s flip test-time augmentation by hand.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/core/random.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/train/metrics.hpp"
#include "source_dir.hpp"

namespace test_train_metrics {

using cnnlite::ConfusionMatrix;
using cnnlite::Error;
using cnnlite::Shape;
using cnnlite::Tensor;

namespace {

void check_all(const std::vector<double>& got, const std::vector<double>& expected) {
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("class ", i);
        CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-12));
    }
}

}  // namespace

TEST_CASE("precision, recall and F1 per class and macro-averaged, by hand") {
    // truth\predicted  0  1  2  3
    //        0         3  1  0  0
    //        1         1  2  0  0
    //        2         1  0  0  0
    //        3         0  0  0  0
    // precision = tp / column: 3/5, 2/3, 0/0 -> 0, 0/0 -> 0
    // recall    = tp / row:    3/4, 2/3, 0/1 = 0, 0/0 -> 0
    // F1 = 2tp / (2tp + fp + fn) = 2tp / (row + column): 6/9, 4/6, 0/1, 0/0 -> 0
    ConfusionMatrix m(4);
    for (int i = 0; i < 3; ++i) m.add(0, 0);
    m.add(0, 1);
    m.add(1, 0);
    m.add(1, 1);
    m.add(1, 1);
    m.add(2, 0);
    check_all(m.precision(), {0.6, 2.0 / 3, 0, 0});
    check_all(m.recall(), {0.75, 2.0 / 3, 0, 0});
    check_all(m.f1(), {2.0 / 3, 2.0 / 3, 0, 0});
    // F1 is the harmonic mean of precision and recall where both are defined.
    CHECK(m.f1()[0] == doctest::Approx(2 * 0.6 * 0.75 / (0.6 + 0.75)));
    // Macro averages over all four classes, the empty ones counting as 0.
    CHECK(m.macro_precision() == doctest::Approx((0.6 + 2.0 / 3) / 4));
    CHECK(m.macro_recall() == doctest::Approx((0.75 + 2.0 / 3) / 4));
    CHECK(m.macro_f1() == doctest::Approx((2.0 / 3 + 2.0 / 3) / 4));
    CHECK(m.macro_f1() != doctest::Approx(2 * m.macro_precision() * m.macro_recall() /
                                          (m.macro_precision() + m.macro_recall())));
    // The existing API is unchanged: recall is the per-class accuracy.
    CHECK(m.recall() == m.per_class_accuracy());
    CHECK(m.accuracy() == doctest::Approx(5.0 / 8));

    const ConfusionMatrix empty(3);
    check_all(empty.precision(), {0, 0, 0});
    check_all(empty.f1(), {0, 0, 0});
    CHECK(empty.macro_f1() == 0);
    CHECK(ConfusionMatrix(0).macro_precision() == 0);
}

TEST_CASE("top_k_accuracy: ranks, ties by class index, NaN last") {
    // row 0: label 2 has one higher score             -> rank 1
    // row 1: label 2 ties with classes 0 and 1        -> rank 2 (lower indices first)
    // row 2: label 0 is NaN, below the three numbers  -> rank 3
    // row 3: label 2 is below 0.4 and 0.2, not below the NaN -> rank 2
    const float nan = std::nanf("");
    const auto scores = Tensor<float>::from(Shape{4, 4}, {0.1f, 0.5f, 0.3f, 0.1f,  //
                                                          0.3f, 0.3f, 0.3f, 0.1f,  //
                                                          nan, 0.2f, 0.1f, 0.7f,   //
                                                          0.4f, nan, 0.1f, 0.2f});
    const std::vector<int> labels = {2, 2, 0, 2};
    CHECK(cnnlite::top_k_accuracy(scores, labels, 1) == 0.0);
    CHECK(cnnlite::top_k_accuracy(scores, labels, 2) == 0.25);
    CHECK(cnnlite::top_k_accuracy(scores, labels, 3) == 0.75);
    CHECK(cnnlite::top_k_accuracy(scores, labels, 4) == 1.0);
    CHECK(cnnlite::top_k_accuracy(scores, labels, 10) == 1.0);
    // The first of tied classes is the prediction: label 0 of row 1 is top-1.
    CHECK(cnnlite::top_k_accuracy(scores, std::vector<int>{1, 0, 3, 0}, 1) == 1.0);
    CHECK(cnnlite::top_k_accuracy(Tensor<float>(Shape{0, 3}), std::vector<int>{}, 2) == 0.0);

    // Top-1 is the accuracy of argmax_rows on logits, ties included.
    std::mt19937 gen(3);
    std::uniform_int_distribution<int> level(0, 3), label(0, 4);  // few levels: many ties
    auto logits = Tensor<double>::uninitialized(Shape{200, 5});
    std::vector<int> truth(200);
    for (std::int64_t i = 0; i < logits.numel(); ++i) logits[i] = level(gen) - 1.5;
    for (int& t : truth) t = label(gen);
    std::vector<int> predicted;
    cnnlite::argmax_rows(logits, predicted);
    std::int64_t right = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) right += predicted[i] == truth[i];
    CHECK(cnnlite::top_k_accuracy(logits, truth, 1) == doctest::Approx(static_cast<double>(right) / 200));

    CHECK_THROWS_WITH_AS(cnnlite::top_k_accuracy(scores, labels, 0), "top_k_accuracy: k must be >= 1, got 0", Error);
    CHECK_THROWS_WITH_AS(cnnlite::top_k_accuracy(scores, std::vector<int>{0, 1, 4, 0}, 2),
                         "top_k_accuracy: label 4 of sample 2 is outside 0..3", Error);
    CHECK_THROWS_WITH_AS(cnnlite::top_k_accuracy(scores, std::vector<int>{0, 1}, 2),
                         "top_k_accuracy: 2 labels for 4 rows of scores", Error);
    CHECK_THROWS_WITH_AS(cnnlite::top_k_accuracy(Tensor<float>(Shape{4}), labels, 2),
                         doctest::Contains("scores must be [N, classes]"), Error);
}

TEST_CASE("calibration and expected calibration error, by hand") {
    // Binary fractions, so that every confidence is exact; 4 bins with edges 0.25, 0.5, 0.75, 1.
    //   sample  probabilities   label  prediction  confidence  bin
    //   0       0.875 0.125     0      0 right     0.875       3
    //   1       0.75  0.25      1      0 wrong     0.75        2 (an edge belongs to the bin below)
    //   2       0.375 0.625     1      1 right     0.625       2
    //   3       0.5   0.5       1      0 wrong     0.5         1 (the first class on a tie)
    //   4       1     0         0      0 right     1           3
    // bin 3: accuracy 1, confidence 0.9375 -> 2/5 * 0.0625 = 0.025
    // bin 2: accuracy 0.5, confidence 0.6875 -> 2/5 * 0.1875 = 0.075
    // bin 1: accuracy 0, confidence 0.5 -> 1/5 * 0.5 = 0.1;  ECE = 0.2
    const auto p = Tensor<float>::from(Shape{5, 2}, {0.875f, 0.125f, 0.75f, 0.25f, 0.375f, 0.625f, 0.5f, 0.5f, 1, 0});
    const std::vector<int> labels = {0, 1, 1, 1, 0};
    const auto c = cnnlite::calibration(p, labels, 4);
    CHECK(c.counts == std::vector<std::int64_t>{0, 1, 2, 2});
    check_all(c.accuracy, {0, 0, 0.5, 1});
    check_all(c.confidence, {0, 0.5, 0.6875, 0.9375});
    CHECK(c.expected_calibration_error == doctest::Approx(0.2).epsilon(1e-15));
    CHECK(cnnlite::expected_calibration_error(p, labels, 4) == c.expected_calibration_error);
    // 15 bins (the default) give every sample a bin of its own: 1 in (14/15, 1], 0.875 in
    // (13/15, 14/15], 0.75 in (11/15, 12/15], 0.625 in (9/15, 10/15], 0.5 in (7/15, 8/15]:
    // (0 + 0.125 + 0.75 + 0.375 + 0.5) / 5 = 0.35
    CHECK(cnnlite::expected_calibration_error(p, labels) == doctest::Approx(0.35).epsilon(1e-15));
    CHECK(cnnlite::calibration(p, labels).counts ==
          std::vector<std::int64_t>{0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 1});
    // Edges exactly: m / bins belongs to bin m - 1, the next double above it to bin m, also
    // where c * bins rounds down onto the integer (the double after 1/3, times 3, is 1).
    for (const int b : {3, 7, 10, 15}) {
        for (int m = 1; m < b; ++m) {
            const double edge = static_cast<double>(m) / b;
            for (const double c : {edge, std::nextafter(edge, 2.0), std::nextafter(edge, -1.0)}) {
                const auto counts = cnnlite::calibration(Tensor<double>::from(Shape{1, 1}, {c}), std::vector<int>{0}, b).counts;
                const std::size_t expected = static_cast<std::size_t>(c > edge ? m : m - 1);
                INFO("bins ", b, ", confidence ", c, " (edge ", m, ")");
                CHECK(counts[expected] == 1);
            }
        }
    }
    // A perfectly calibrated case: confidence 1 and always right.
    const auto sure = Tensor<double>::from(Shape{2, 2}, {0.0, 1.0, 1.0, 0.0});
    CHECK(cnnlite::expected_calibration_error(sure, std::vector<int>{1, 0}) == 0.0);

    CHECK_THROWS_WITH_AS(cnnlite::calibration(p, labels, 0), "calibration: bins must be >= 1, got 0", Error);
    const auto logits = Tensor<float>::from(Shape{1, 2}, {2.5f, -1.0f});
    CHECK_THROWS_WITH_AS(cnnlite::expected_calibration_error(logits, std::vector<int>{0}),
                         "calibration: probability 2.5 at sample 0, class 0 is not in [0, 1] (pass softmax outputs, not logits)",
                         Error);
    const auto with_nan = Tensor<float>::from(Shape{1, 2}, {0.5f, std::nanf("")});
    CHECK_THROWS_WITH_AS(cnnlite::expected_calibration_error(with_nan, std::vector<int>{0}),
                         doctest::Contains("probability nan at sample 0, class 1"), Error);
}

TEST_CASE("calibration and top-2 accuracy agree with NumPy on random probabilities") {
    const std::string path = test_support::source_dir().string() + "/tests/fixtures/optim/recipe_reference.json";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open ", path);
    const nlohmann::json reference = nlohmann::json::parse(in);
    const auto& c = reference["calibration"];
    const auto classes = c["classes"].get<std::int64_t>();
    const auto values = c["probabilities"].get<std::vector<double>>();
    const auto labels = c["labels"].get<std::vector<int>>();
    const auto n = static_cast<std::int64_t>(labels.size());
    REQUIRE(static_cast<std::int64_t>(values.size()) == n * classes);
    auto as_double = Tensor<double>::from(Shape{n, classes}, values);
    auto as_float = as_double.cast<float>();  // the values are float32 numbers: exact
    const int bins = c["bins"].get<int>();
    REQUIRE(bins == 15);
    const auto from_double = cnnlite::calibration(as_double, labels);
    CHECK(from_double.counts == c["bin_counts"].get<std::vector<std::int64_t>>());
    const auto acc = c["bin_accuracy"].get<std::vector<double>>(), conf = c["bin_confidence"].get<std::vector<double>>();
    for (int m = 0; m < bins; ++m) {
        INFO("bin ", m);
        CHECK(from_double.accuracy[static_cast<std::size_t>(m)] == doctest::Approx(acc[static_cast<std::size_t>(m)]).epsilon(1e-12));
        CHECK(from_double.confidence[static_cast<std::size_t>(m)] ==
              doctest::Approx(conf[static_cast<std::size_t>(m)]).epsilon(1e-12));
    }
    const double ece = c["ece"].get<double>();
    CHECK(ece > 0.05);  // a clearly miscalibrated set: the comparison means something
    CHECK(from_double.expected_calibration_error == doctest::Approx(ece).epsilon(1e-12));
    CHECK(cnnlite::expected_calibration_error(as_float, labels) == doctest::Approx(ece).epsilon(1e-12));
    CHECK(cnnlite::top_k_accuracy(as_float, labels, 2) == doctest::Approx(c["top2_accuracy"].get<double>()));
    CHECK(cnnlite::top_k_accuracy(as_double, labels, 1) == doctest::Approx(c["accuracy"].get<double>()));
}

TEST_CASE("evaluate with flip TTA scores the mean logits of each image and its mirror image, by hand") {
    // A 3x5 image through Flatten -> Dense(3, softmax): not mirror-symmetric, so the flip matters.
    cnnlite::Sequential<double> model(Shape{1, 3, 5}, 4);
    model.add(cnnlite::Flatten<double>());
    model.add(cnnlite::Dense<double>(3).activation("softmax"));
    const std::int64_t n = 7;
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
    Tensor<float> images(Shape{n, 1, 3, 5});
    for (float& v : images) v = pixel(gen);
    const std::vector<int> labels = {0, 1, 2, 0, 1, 2, 1};
    const cnnlite::Dataset data = cnnlite::Dataset::from_images(images, labels, {"a", "b", "c"});

    cnnlite::EvaluateOptions options;
    options.batch_size = 3;  // batches of 3, 3 and 1
    options.flip_tta = true;
    const cnnlite::Evaluation tta = cnnlite::evaluate(model, data, options);
    const cnnlite::Evaluation plain = cnnlite::evaluate(model, data, std::int64_t{3});

    double loss = 0;
    bool differs = false;
    for (std::int64_t i = 0; i < n; ++i) {
        // Logits of the image and of its mirror image (columns reversed), one image at a time.
        Tensor<double> x(Shape{1, 1, 3, 5}), mirrored(Shape{1, 1, 3, 5});
        for (std::int64_t r = 0; r < 3; ++r)
            for (std::int64_t c = 0; c < 5; ++c) {
                x[r * 5 + c] = images[i * 15 + r * 5 + c];
                mirrored[r * 5 + c] = images[i * 15 + r * 5 + (4 - c)];
            }
        const Tensor<double> a = model.forward_logits(cnnlite::Variable<double>(x)).value();
        const Tensor<double> b = model.forward_logits(cnnlite::Variable<double>(mirrored)).value();
        double mean[3], top = -1e300, sum = 0;
        for (int k = 0; k < 3; ++k) top = std::max(top, mean[k] = (a[k] + b[k]) / 2);
        for (int k = 0; k < 3; ++k) sum += std::exp(mean[k] - top);
        int best = 0;
        for (int k = 0; k < 3; ++k) {
            const double p = std::exp(mean[k] - top) / sum;
            CHECK(tta.probabilities[i * 3 + k] == doctest::Approx(p).epsilon(1e-6));
            if (std::fabs(p - plain.probabilities[i * 3 + k]) > 1e-4) differs = true;
            if (mean[k] > mean[best]) best = k;
        }
        CHECK(tta.predicted[static_cast<std::size_t>(i)] == best);
        loss -= std::log(std::exp(mean[labels[static_cast<std::size_t>(i)]] - top) / sum);
    }
    CHECK(tta.loss == doctest::Approx(loss / static_cast<double>(n)).epsilon(1e-9));
    CHECK(differs);  // the mirror image changed the scores
}

}  // namespace test_train_metrics
