// Training: a whole step of the paper's network against PyTorch, learning on real data,
// bitwise reproducibility, callbacks, non-finite values and misuse.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "cnnlite/core/denormals.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/data/split.hpp"
#include "cnnlite/io/csv.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/fit.hpp"
#include "source_dir.hpp"

namespace test_train {

using namespace cnnlite;

namespace {

const FashionMnist& fixture() {
    static const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    return data;
}

std::vector<float> all_weights(const Model<float>& model) {
    std::vector<float> out;
    for (const auto& p : model.parameters()) out.insert(out.end(), p.variable.value().begin(), p.variable.value().end());
    return out;
}

FitOptions quiet(std::int64_t epochs, std::uint64_t seed = 0) {
    FitOptions o;
    o.epochs = epochs;
    o.seed = seed;
    o.verbosity = Verbosity::silent;
    return o;
}

}  // namespace

TEST_CASE("two Adam steps of the paper's network match PyTorch") {
    std::ifstream in(test_support::source_dir().string() + "/tests/fixtures/train/paper_step.json");
    REQUIRE(in.good());
    const auto fx = nlohmann::json::parse(in);

    auto model = fashion_mnist_cnn<float>(0);
    auto params = model.parameters();
    const std::vector<std::string> order{"conv2d.weight", "conv2d.bias", "dense.weight",
                                         "dense.bias",    "dense_1.weight", "dense_1.bias"};
    REQUIRE(params.size() == order.size());
    for (std::size_t k = 0; k < params.size(); ++k) {
        REQUIRE(params[k].name == order[k]);
        Tensor<float>& w = params[k].variable.value();
        for (std::int64_t i = 0; i < w.numel(); ++i)
            w[i] = static_cast<float>(0.05 * std::sin(0.37 * static_cast<double>(i) + static_cast<double>(k)));
    }
    AdamOptions options;
    options.epsilon_placement = AdamEpsilon::pytorch;
    Adam<float> adam(model.trainable_variables(), options);

    Batch batch;
    std::vector<std::int64_t> first16(16);
    for (std::int64_t i = 0; i < 16; ++i) first16[static_cast<std::size_t>(i)] = i;
    gather_batch(fixture().train, first16, batch);
    CHECK(std::vector<int>(batch.labels) == fx["labels"].get<std::vector<int>>());

    const auto logits = model.forward_logits(Variable<float>(batch.images)).value();
    const auto want_logits = fx["logits_before"].get<std::vector<double>>();
    for (std::size_t i = 0; i < want_logits.size(); ++i)
        CHECK(logits[static_cast<std::int64_t>(i)] == doctest::Approx(want_logits[i]).epsilon(1e-4).scale(1e-3));

    TrainStep<float> step(model, adam);
    const ForwardContext no_dropout{};
    for (int s = 0; s < 2; ++s) {
        const auto r = step(batch, no_dropout, 1, s + 1);
        CHECK(r.loss() == doctest::Approx(fx["losses"][static_cast<std::size_t>(s)].get<double>()).epsilon(1e-5));
    }
    for (std::size_t k = 0; k < params.size(); ++k) {
        const auto& want = fx["updated"][order[k]];
        const Tensor<float>& w = params[k].variable.value();
        const auto idx = want["indices"].get<std::vector<std::int64_t>>();
        const auto values = want["values"].get<std::vector<double>>();
        for (std::size_t j = 0; j < idx.size(); ++j) {
            CAPTURE(order[k]);
            CAPTURE(idx[j]);
            REQUIRE(w[idx[j]] == doctest::Approx(values[j]).epsilon(1e-4).scale(1e-4));
        }
        double sum = 0, squares = 0;
        for (float v : w) sum += v, squares += static_cast<double>(v) * v;
        CHECK(sum == doctest::Approx(want["sum"].get<double>()).epsilon(1e-4).scale(1e-3));
        CHECK(squares == doctest::Approx(want["sum_squares"].get<double>()).epsilon(1e-5));
    }
}

TEST_CASE("the paper's model learns Fashion-MNIST: loss falls, accuracy far above chance") {
    const auto split = split_train_validation(fixture().train, 500, 1500);
    auto model = fashion_mnist_cnn<float>(0);
    Adam<float> adam(model.trainable_variables());
    const History h = fit(model, adam, split.train, &split.validation, quiet(3));
    REQUIRE(h.epochs.size() == 3);
    CHECK(h.epochs[2].loss < h.epochs[0].loss);
    CHECK(h.epochs[2].val_loss < h.epochs[0].val_loss);
    CHECK(h.epochs[2].val_accuracy > 0.6);  // chance is 0.1
    const Evaluation test = evaluate(model, fixture().test);
    CHECK(test.accuracy > 0.6);
    CHECK(test.confusion.total() == 1000);
    double mean_class = 0;
    for (double a : test.per_class_accuracy) mean_class += a / 10;
    CHECK(mean_class > 0.5);
}

TEST_CASE("same seed and thread count: bitwise-identical weights; another seed differs") {
    const auto data = fixture().train.slice(0, 640);
    auto run = [&](std::uint64_t seed) {
        auto model = fashion_mnist_cnn<float>(seed);
        Adam<float> adam(model.trainable_variables());
        fit(model, adam, data, nullptr, quiet(2, seed));
        return all_weights(model);
    };
    const auto a = run(5);
    const auto b = run(5);
    CHECK(a == b);
    CHECK(run(6) != a);
}

TEST_CASE("fit flushes denormals while it trains, as TensorFlow does, and puts the mode back") {
    // Records on the training thread whether denormals are flushed when each epoch starts.
    struct Watch : Callback<float> {
        std::vector<bool> seen;
        void on_epoch_begin(std::int64_t) override { seen.push_back(flushing_denormals()); }
    };
    const auto data = fixture().train.slice(0, 128);
    for (const bool flush : {true, false}) {
        CAPTURE(flush);
        auto model = fashion_mnist_cnn<float>(0);
        Adam<float> adam(model.trainable_variables());
        FitOptions options = quiet(2);
        options.flush_denormals = flush;
        Watch watch;
        fit(model, adam, data, nullptr, options, {&watch});
        CHECK(watch.seen == std::vector<bool>(2, flush && can_flush_denormals()));
        CHECK_FALSE(flushing_denormals());
    }
}

TEST_CASE("evaluate: confusion matrix rows are true labels and add up") {
    auto model = fashion_mnist_cnn<float>(0);
    const auto data = fixture().test.slice(0, 200);
    const Evaluation e = evaluate(model, data, 64);
    std::int64_t total = 0, right = 0;
    for (int t = 0; t < 10; ++t)
        for (int p = 0; p < 10; ++p) {
            total += e.confusion.count(t, p);
            if (t == p) right += e.confusion.count(t, p);
        }
    CHECK(total == 200);
    CHECK(e.accuracy == doctest::Approx(static_cast<double>(right) / 200));
    for (std::int64_t i = 0; i < 200; ++i) {
        double s = 0;
        for (int j = 0; j < 10; ++j) s += e.probabilities(i, j);
        REQUIRE(s == doctest::Approx(1.0).epsilon(1e-5));
    }
    const auto counts = data.class_counts();
    for (int t = 0; t < 10; ++t) {
        std::int64_t row = 0;
        for (int p = 0; p < 10; ++p) row += e.confusion.count(t, p);
        CHECK(row == counts[static_cast<std::size_t>(t)]);
    }
}

TEST_CASE("KeepBest keeps the lowest val_loss and EarlyStopping waits `patience` epochs") {
    auto model = fashion_mnist_cnn<float>(0);
    KeepBest<float> best;
    EarlyStopping<float> stop(2);
    History h;
    const double losses[] = {1.0, 0.8, 0.9, 0.85, 0.95};
    std::vector<float> weights_at_best;
    TrainControl control;
    for (int e = 0; e < 5 && !control.stop; ++e) {
        model.parameters()[0].variable.value()[0] = static_cast<float>(e);  // mark the epoch
        EpochRecord r;
        r.epoch = e + 1;
        r.val_loss = losses[e];
        h.epochs.push_back(r);
        best.on_epoch_end(model, h, control);
        stop.on_epoch_end(model, h, control);
    }
    CHECK(best.best_epoch() == 2);
    CHECK(best.best_value() == 0.8);
    CHECK(stop.stopped_epoch() == 4);  // epochs 3 and 4 did not improve on epoch 2
    best.restore(model);
    CHECK(model.parameters()[0].variable.value()[0] == 1.0f);
    KeepBest<float> by_accuracy("val_accuracy");
    EpochRecord r;
    r.epoch = 1;
    r.val_accuracy = 0.5;
    h.epochs = {r};
    by_accuracy.on_epoch_end(model, h, control);
    r.epoch = 2, r.val_accuracy = 0.4;
    h.epochs.push_back(r);
    by_accuracy.on_epoch_end(model, h, control);
    CHECK(by_accuracy.best_epoch() == 1);
}

TEST_CASE("history CSV: the columns and values written are read back") {
    const auto dir = std::filesystem::temp_directory_path() / "cnnlite_test_history";
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "history.csv").string();
    auto model = fashion_mnist_cnn<float>(0);
    Adam<float> adam(model.trainable_variables());
    CsvLogger<float> logger(path);
    const auto split = split_train_validation(fixture().train.slice(0, 300), 100);
    const History h = fit(model, adam, split.train, &split.validation, quiet(2), {&logger});
    const auto rows = read_csv(path);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0] ==
          std::vector<std::string>{"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"});
    CHECK(rows[2][0] == "2");
    CHECK(std::stod(rows[2][5]) == adam.learning_rate());
    CHECK(std::stod(rows[2][1]) == h.epochs[1].loss);
    CHECK(std::stod(rows[2][3]) == h.epochs[1].val_loss);
    std::filesystem::remove_all(dir);
}

TEST_CASE("a NaN in the data stops training with the epoch and step; skip_batch carries on") {
    const Dataset clean = fixture().train.slice(0, 128);
    Tensor<float> images = clean.images().clone();
    images[64 * 784 + 5] = std::numeric_limits<float>::quiet_NaN();  // sample 64
    const Dataset poisoned = Dataset::from_images(images, clean.labels(), clean.class_names());
    auto model = fashion_mnist_cnn<float>(0);
    Adam<float> adam(model.trainable_variables());
    FitOptions o = quiet(1);
    o.shuffle = false;
    CHECK_THROWS_WITH_AS(fit(model, adam, poisoned, nullptr, o), doctest::Contains("at epoch 1, step 2"), Error);
    o.on_non_finite = NonFinitePolicy::skip_batch;
    auto model2 = fashion_mnist_cnn<float>(0);
    Adam<float> adam2(model2.trainable_variables());
    const History h = fit(model2, adam2, poisoned, nullptr, o);
    CHECK(std::isfinite(h.epochs[0].loss));
    for (float w : all_weights(model2)) REQUIRE(std::isfinite(w));
}

TEST_CASE("fit rejects misuse with clear errors") {
    auto model = fashion_mnist_cnn<float>(0);
    Adam<float> adam(model.trainable_variables());
    const Dataset small = fixture().train.slice(0, 10);
    FitOptions o = quiet(1);
    o.batch_size = 64;
    CHECK_THROWS_WITH_AS(fit(model, adam, small, nullptr, o), doctest::Contains("batch size 64 exceeds the 10"), Error);
    CHECK_THROWS_WITH_AS(fit(model, adam, Dataset(), nullptr, quiet(1)), doctest::Contains("training set is empty"), Error);
    Sequential<float> three(Shape{1, 28, 28});
    three.add(Flatten<float>());
    three.add(Dense<float>(3));
    Adam<float> adam3(three.trainable_variables());
    o.batch_size = 8;
    CHECK_THROWS_WITH_AS(fit(three, adam3, small, nullptr, o), doctest::Contains("does not match the 10 classes"),
                         Error);
}

}  // namespace test_train
