// Reliability: what a checkpoint holds, numerical faults injected into training (NaN/Inf in
// the loss, in a gradient, in a parameter) and the error that names epoch, step and layer,
// misuse that the other suites do not cover, and the regression cases of inputs that fuzzing
// (tests/fuzz/) found. docs/faults.md lists every fault with the test that shows it.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/checkpoint.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/train/fit.hpp"
#include "source_dir.hpp"

namespace test_reliability {

using namespace cnnlite;
namespace fs = std::filesystem;

namespace {

const FashionMnist& fixture() {
    static const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    return data;
}

struct TempDir {
    fs::path path;
    TempDir() : path(fs::temp_directory_path() / ("cnnlite_reliability_" + std::to_string(::getpid()))) {
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

/// A small network of every trainable layer type (and dropout), quick to train on 28x28 images.
Sequential<float> small_model(std::uint64_t seed = 3) {
    Sequential<float> model(Shape{1, 28, 28}, seed);
    model.add(Conv2D<float>(4, 3).activation("relu"));
    model.add(MaxPool2D<float>(2, 2));
    model.add(Dropout<float>(0.25));
    model.add(Flatten<float>());
    model.add(Dense<float>(16).activation("relu"));
    model.add(Dense<float>(10).activation("softmax"));
    return model;
}

FitOptions quiet(std::int64_t epochs, std::int64_t batch = 32) {
    FitOptions o;
    o.epochs = epochs;
    o.batch_size = batch;
    o.seed = 5;
    o.shuffle = false;
    o.verbosity = Verbosity::silent;
    return o;
}

Variable<float> parameter(const Model<float>& model, const std::string& name) {
    for (const auto& p : model.parameters())
        if (p.name == name) return p.variable;
    FAIL("no parameter ", name);
    return {};
}

bool all_finite(const Model<float>& model) {
    for (const auto& p : model.parameters())
        for (float v : p.variable.value())
            if (!std::isfinite(v)) return false;
    return true;
}

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() && a.to_vector() == b.to_vector();
}

}  // namespace

TEST_CASE("the checkpoint holds weights, optimiser state, epoch and steps, best weights and value, early stopping, history") {
    TempDir dir;
    const std::string path = dir.file("run.checkpoint");
    const Dataset train = fixture().train.slice(0, 192);
    const Dataset validation = fixture().train.slice(192, 64);
    auto model = small_model();
    Adam<float> adam(model.trainable_variables());
    KeepBest<float> best("val_loss");
    EarlyStopping<float> stopping(/*patience=*/5, "val_loss");
    Checkpointer<float> checkpointer(path, adam, &best, &stopping, {{"run.note", "kept"}});
    // Written after every epoch: right after the Checkpointer, the file holds this epoch.
    std::vector<std::int64_t> seen_epochs;
    LambdaCallback<float> look([&](const Model<float>&, const History& h, TrainControl&) {
        const auto file = SafetensorsFile::load(path);
        CHECK(file.require_metadata("epoch") == std::to_string(h.epochs.back().epoch));
        seen_epochs.push_back(std::stoll(file.require_metadata("epoch")));
    });
    const History history = fit(model, adam, train, &validation, quiet(3), {&best, &stopping, &checkpointer, &look});
    CHECK(seen_epochs == std::vector<std::int64_t>{1, 2, 3});

    const auto file = SafetensorsFile::load(path);
    const auto params = model.parameters();
    std::size_t expected_tensors = 0;
    for (const auto& p : params) {  // weights
        INFO(p.name);
        CHECK(same_bits(file.tensor<float>("model." + p.name), p.variable.value()));
        ++expected_tensors;
    }
    for (const auto& state : adam.state()) {  // Adam's moments and step counts
        // Named references, not a structured binding: INFO captures them in a lambda, which
        // C++17 does not allow for bindings (GCC accepts it, clang does not).
        const auto& key = state.first;
        const auto& tensor = state.second;
        INFO(key);
        CHECK(same_bits(file.tensor<float>("optimizer." + key), tensor));
        ++expected_tensors;
    }
    REQUIRE(best.best_epoch() >= 1);
    for (std::size_t i = 0; i < params.size(); ++i) {  // the kept weights
        CHECK(same_bits(file.tensor<float>("best." + params[i].name), best.weights()[i]));
        ++expected_tensors;
    }
    CHECK(file.entries().size() == expected_tensors);
    CHECK(adam.steps() == 3 * (192 / 32));  // the step: 6 batches per epoch, 3 epochs
    CHECK(file.require_metadata("epoch") == "3");
    CHECK(file.require_metadata("finished") == "false");
    CHECK(file.require_metadata("best_epoch") == std::to_string(best.best_epoch()));
    CHECK(parse_round_trip_text(file.require_metadata("best_value")) == best.best_value());
    CHECK(parse_round_trip_text(file.require_metadata("learning_rate")) == adam.learning_rate());
    const auto es = nlohmann::json::parse(file.require_metadata("early_stopping"));
    CHECK(es.at("seen").get<bool>() == stopping.seen());
    CHECK(es.at("best").get<double>() == stopping.best());
    CHECK(es.at("wait").get<std::int64_t>() == stopping.wait());
    CHECK(nlohmann::json::parse(file.require_metadata("history")) == history.to_json());
    CHECK(file.require_metadata("run.note") == "kept");

    // And load_checkpoint puts all of it back into fresh objects.
    auto fresh = small_model(99);
    Adam<float> fresh_adam(fresh.trainable_variables());
    KeepBest<float> fresh_best("val_loss");
    EarlyStopping<float> fresh_stopping(5, "val_loss");
    const auto progress = load_checkpoint(path, fresh, fresh_adam, &fresh_best, &fresh_stopping);
    CHECK(progress.epoch == 3);
    CHECK(progress.history.to_json() == history.to_json());
    CHECK(progress.metadata.at("run.note") == "kept");
    for (std::size_t i = 0; i < params.size(); ++i) {
        CHECK(same_bits(fresh.parameters()[i].variable.value(), params[i].variable.value()));
        CHECK(same_bits(fresh_best.weights()[i], best.weights()[i]));
    }
    CHECK(fresh_adam.steps() == adam.steps());
    CHECK(fresh_best.best_epoch() == best.best_epoch());
    CHECK(fresh_best.best_value() == best.best_value());
    CHECK(fresh_stopping.wait() == stopping.wait());
    CHECK(fresh_stopping.best() == stopping.best());
}

TEST_CASE("a non-finite loss names the epoch, the step and where it starts: parameter, input or layer") {
    const Dataset data = fixture().train.slice(0, 128);

    SUBCASE("a parameter holding +Inf") {
        auto model = small_model();
        Adam<float> adam(model.trainable_variables());
        parameter(model, "dense.bias").value()[3] = std::numeric_limits<float>::infinity();
        CHECK_THROWS_WITH_AS(fit(model, adam, data, nullptr, quiet(1)),
                             doctest::Contains("at epoch 1, step 1 in layer 'dense': its parameter "
                                               "'dense.bias' holds non-finite values (+Inf at element 3 of [16]"),
                             Error);
    }
    SUBCASE("finite weights whose product overflows in one layer") {
        auto model = small_model();
        Adam<float> adam(model.trainable_variables());
        parameter(model, "dense.weight").value().fill(3e38f);
        CHECK_THROWS_WITH_AS(fit(model, adam, data, nullptr, quiet(1)),
                             doctest::Contains("at epoch 1, step 1 in layer 'dense' (Dense), the first whose output is not finite"),
                             Error);
    }
    SUBCASE("a NaN pixel: the sample of the data set is named") {
        Tensor<float> images = data.images().clone();
        images[70 * 784 + 300] = std::numeric_limits<float>::quiet_NaN();
        const Dataset poisoned = Dataset::from_images(images, data.labels(), data.class_names());
        auto model = small_model();
        Adam<float> adam(model.trainable_variables());
        CHECK_THROWS_WITH_AS(fit(model, adam, poisoned, nullptr, quiet(1)),
                             doctest::Contains("at epoch 1, step 3 in the input, before the first layer: sample 70 of the "
                                               "data set holds a non-finite value (NaN at element 5004 of [32, 1, 28, 28])"),
                             Error);
    }
    SUBCASE("divergence in a later epoch: a learning rate of 1e30") {
        auto model = small_model();
        Adam<float> adam(model.trainable_variables());
        FitOptions o = quiet(3);
        o.learning_rate_schedule = [](std::int64_t epoch) { return epoch < 2 ? 1e-3 : 1e30; };
        try {
            fit(model, adam, data, nullptr, o);
            FAIL("training with a learning rate of 1e30 did not stop");
        } catch (const Error& e) {
            const std::string message = e.what();
            INFO(message);
            CHECK(message.find("at epoch 2, step ") != std::string::npos);
            CHECK(message.find("in layer '") != std::string::npos);
        }
    }
}

TEST_CASE("a NaN or Inf gradient stops training naming epoch, step and layer, and skip_batch drops that batch") {
    const Dataset data = fixture().train.slice(0, 128);  // 4 batches of 32
    auto model = small_model();
    Adam<float> adam(model.trainable_variables());
    const auto before = model.parameters()[0].variable.value().clone();
    int calls = 0;
    // The gradient flowing into dense_1.bias is poisoned on the third backward pass only.
    parameter(model, "dense_1.bias").register_hook([&](Tensor<float>& grad) {
        if (++calls == 3) grad[7] = -std::numeric_limits<float>::infinity();
    });
    CHECK_THROWS_WITH_AS(fit(model, adam, data, nullptr, quiet(1)),
                         doctest::Contains("non-finite gradient at epoch 1, step 3 in layer 'dense_1': the gradient of "
                                           "'dense_1.bias' holds -Inf at element 7 of [10]"),
                         Error);
    CHECK(adam.steps() == 2);  // the poisoned step was not applied
    CHECK(all_finite(model));
    CHECK_FALSE(same_bits(model.parameters()[0].variable.value(), before));

    auto skipping = small_model();
    Adam<float> skipping_adam(skipping.trainable_variables());
    calls = 0;
    parameter(skipping, "conv2d.weight").register_hook([&](Tensor<float>& grad) {
        if (++calls == 2) grad[0] = std::numeric_limits<float>::quiet_NaN();
    });
    FitOptions o = quiet(1);
    o.on_non_finite = NonFinitePolicy::skip_batch;
    const History h = fit(skipping, skipping_adam, data, nullptr, o);
    CHECK(calls == 4);
    CHECK(skipping_adam.steps() == 3);  // 4 batches, one dropped
    CHECK(std::isfinite(h.epochs[0].loss));
    CHECK(all_finite(skipping));
}

TEST_CASE("huge but finite gradients are not mistaken for non-finite ones") {
    // The finiteness check sums each gradient first; a sum that overflows is not a NaN.
    const Dataset data = fixture().train.slice(0, 64);
    auto model = small_model();
    Adam<float> adam(model.trainable_variables());
    parameter(model, "dense_1.weight").register_hook([](Tensor<float>& grad) { grad.fill(3e38f); });
    FitOptions o = quiet(1);
    CHECK_NOTHROW(fit(model, adam, data, nullptr, o));
    CHECK(adam.steps() == 2);  // both steps applied
}

TEST_CASE("misuse of fit, evaluate and checkpoints: clear errors") {
    const Dataset data = fixture().train.slice(0, 64);
    auto model = small_model();
    Adam<float> adam(model.trainable_variables());

    // Images of the wrong size for the model.
    Tensor<float> small_images(Shape{64, 1, 14, 14});
    const Dataset wrong = Dataset::from_images(small_images, data.labels(), data.class_names());
    CHECK_THROWS_WITH_AS(fit(model, adam, wrong, nullptr, quiet(1)),
                         doctest::Contains("fit (training set)"), Error);
    CHECK_THROWS_WITH_AS(fit(model, adam, data, &wrong, quiet(1)), doctest::Contains("fit (validation set)"), Error);
    CHECK_THROWS_WITH_AS(evaluate(model, wrong), doctest::Contains("[64, 1, 14, 14]"), Error);
    // Empty data sets.
    const Dataset empty;
    CHECK_THROWS_WITH_AS(fit(model, adam, data, &empty, quiet(1)), doctest::Contains("validation set is empty"), Error);
    CHECK_THROWS_WITH_AS(evaluate(model, empty), doctest::Contains("evaluate: the data set is empty"), Error);
    CHECK_THROWS_WITH_AS(evaluate(model, data, 0), doctest::Contains("batch size must be positive"), Error);
    // A batch size larger than the data, zero, or epochs below the initial epoch.
    CHECK_THROWS_WITH_AS(fit(model, adam, data, nullptr, quiet(1, 65)), doctest::Contains("batch size 65 exceeds the 64"),
                         Error);
    CHECK_THROWS_WITH_AS(fit(model, adam, data, nullptr, quiet(1, 0)), doctest::Contains("batch size must be at least 1"),
                         Error);
    FitOptions backwards = quiet(1);
    backwards.initial_epoch = 2;
    CHECK_THROWS_WITH_AS(fit(model, adam, data, nullptr, backwards), doctest::Contains("below initial_epoch"), Error);

    TempDir dir;
    KeepBest<float>* const no_best = nullptr;
    EarlyStopping<float>* const no_stopping = nullptr;
    // A checkpoint of another architecture, a model file given as a checkpoint, and a
    // checkpoint whose optimiser state belongs to another optimiser: refused, nothing changed.
    auto paper = fashion_mnist_cnn<float>(0);
    Adam<float> paper_adam(paper.trainable_variables());
    save_checkpoint(dir.file("paper.ckpt"), paper, paper_adam, TrainingState{}, no_best, no_stopping);
    const auto weights_before = model.parameters()[0].variable.value().clone();
    CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("paper.ckpt"), model, adam, no_best, no_stopping),
                         doctest::Contains("written for another architecture"), Error);
    save_model(model, dir.file("model.safetensors"));
    CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("model.safetensors"), model, adam, no_best, no_stopping),
                         doctest::Contains("not a training checkpoint"), Error);
    CHECK(same_bits(model.parameters()[0].variable.value(), weights_before));
    // Loading weights into another architecture (a model file, not a checkpoint).
    CHECK_THROWS_WITH_AS(load_weights(paper, dir.file("model.safetensors")),
                         doctest::Contains("tensor 'conv2d.weight' has shape [4, 1, 3, 3], expected [64, 1, 2, 2]"), Error);
    // User metadata may not overwrite the checkpoint's own keys.
    TrainingState progress;
    progress.metadata["epoch"] = "7";
    CHECK_THROWS_WITH_AS(save_checkpoint(dir.file("x.ckpt"), model, adam, progress, no_best, no_stopping),
                         doctest::Contains("metadata key 'epoch' is reserved"), Error);
}

namespace {

/// A copy of the safetensors file `from` at `to` with metadata `key` set to `value` (or removed
/// when `value` is "<remove>"); tensors unchanged.
void rewrite_metadata(const std::string& from, const std::string& to, const std::string& key, const std::string& value) {
    const auto file = SafetensorsFile::load(from, {true});
    SafetensorsWriter writer;
    for (const auto& [name, entry] : file.entries()) writer.add(name, file.tensor<float>(name));
    for (const auto& [k, v] : file.metadata())
        if (k != key) writer.set_metadata(k, v);
    if (value != "<remove>") writer.set_metadata(key, value);
    writer.save(to);
}

std::uint64_t pool_requests() {
    const BufferPoolStats stats = buffer_pool_stats();
    return stats.hits + stats.misses;
}

}  // namespace

TEST_CASE("a checkpoint whose training state is corrupt is refused with the key named, and nothing changes") {
    // Each of these used to escape as std::invalid_argument or nlohmann::json::exception, or to be
    // accepted (a best epoch after the last epoch, a negative wait); see docs/faults.md.
    TempDir dir;
    const Dataset train = fixture().train.slice(0, 64);
    auto model = small_model();
    Adam<float> adam(model.trainable_variables());
    KeepBest<float> best("loss");
    EarlyStopping<float> stopping(3, "loss");
    Checkpointer<float> checkpointer(dir.file("good.ckpt"), adam, &best, &stopping);
    fit(model, adam, train, nullptr, quiet(2), {&best, &stopping, &checkpointer});

    struct Case {
        const char* key;
        const char* value;
        const char* expected;
    };
    const Case cases[] = {
        {"epoch", "2x", "metadata 'epoch' = '2x' is not an integer"},
        {"epoch", "", "metadata 'epoch' = '' is not an integer"},
        {"epoch", "99999999999999999999", "is not an integer"},
        {"epoch", "-1", "the history has 2 epochs but the checkpoint says -1"},
        {"epoch", "<remove>", "__metadata__ has no key 'epoch'"},
        {"finished", "maybe", "metadata 'finished' = 'maybe' is not true or false"},
        {"history", "{", "unreadable history"},
        {"history", "[{\"epoch\": \"one\"}]", "unreadable history"},
        {"history", "{\"epoch\": 1}", "unreadable history"},
        {"history", "[]", "the history has 0 epochs but the checkpoint says 2"},
        {"learning_rate", "fast", "metadata 'learning_rate' = 'fast' is not a number"},
        {"learning_rate", "nan", "'learning_rate' = nan is not a finite, non-negative number"},
        {"learning_rate", "-1", "is not a finite, non-negative number"},
        {"best_epoch", "3", "metadata 'best_epoch' = 3 is not in 0..2"},
        {"best_epoch", "-2", "metadata 'best_epoch' = -2 is not in 0..2"},
        {"best_epoch", "1e3", "metadata 'best_epoch' = '1e3' is not an integer"},
        {"best_value", "nan", "metadata 'best_value' = nan is not finite"},
        {"best_value", "0x", "metadata 'best_value' = '0x' is not a number"},
        {"early_stopping", "{", "unreadable 'early_stopping' metadata"},
        {"early_stopping", "[1,2]", "unreadable 'early_stopping' metadata"},
        {"early_stopping", "{\"seen\": 1, \"best\": 0.5, \"wait\": 0}", "unreadable 'early_stopping' metadata"},
        {"early_stopping", "{\"seen\": true, \"best\": 0.5, \"wait\": -1}", "'early_stopping' metadata out of range"},
        {"early_stopping", "{\"seen\": true, \"best\": 0.5, \"wait\": 7}", "'early_stopping' metadata out of range"},
    };
    auto target = small_model(42);
    Adam<float> target_adam(target.trainable_variables());
    KeepBest<float> target_best("loss");
    EarlyStopping<float> target_stopping(3, "loss");
    const auto before = target.parameters()[0].variable.value().clone();
    for (const Case& c : cases) {
        INFO(c.key, " = ", c.value);
        const std::string path = dir.file("bad.ckpt");
        rewrite_metadata(dir.file("good.ckpt"), path, c.key, c.value);
        CHECK_THROWS_WITH_AS(load_checkpoint(path, target, target_adam, &target_best, &target_stopping),
                             doctest::Contains(c.expected), Error);
        CHECK(same_bits(target.parameters()[0].variable.value(), before));
        CHECK(target_adam.steps() == 0);
        CHECK(target_best.best_epoch() == 0);
        CHECK(target_stopping.wait() == 0);
    }
    // The untouched copy loads.
    rewrite_metadata(dir.file("good.ckpt"), dir.file("copy.ckpt"), "run.extra", "1");
    CHECK(load_checkpoint(dir.file("copy.ckpt"), target, target_adam, &target_best, &target_stopping).epoch == 2);
}

TEST_CASE("a model file whose architecture claims huge layers is refused before anything is allocated") {
    // A 2 KB file could make load_model build (allocate and fill) a layer of any size: the
    // architecture is checked against the values the file holds, layer by layer, first.
    TempDir dir;
    const auto model = small_model();
    save_model(model, dir.file("small.safetensors"));
    const auto file = SafetensorsFile::load(dir.file("small.safetensors"));
    nlohmann::json arch = nlohmann::json::parse(file.require_metadata("architecture"));
    const auto with = [&](const std::function<void(nlohmann::json&)>& change) {
        nlohmann::json a = arch;
        change(a);
        rewrite_metadata(dir.file("small.safetensors"), dir.file("bad.safetensors"), "architecture", a.dump());
        return dir.file("bad.safetensors");
    };
    const auto layer = [&](nlohmann::json& a, const std::string& name) -> nlohmann::json& {
        for (auto& l : a["layers"])
            if (l["name"] == name) return l["config"];
        FAIL("no layer ", name);
        return a;
    };
    struct Case {
        std::function<void(nlohmann::json&)> change;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {[&](nlohmann::json& a) { layer(a, "dense")["units"] = "1000000000"; },
         "layer 'dense' (Dense) would have 677000000000 parameters, more than the"},
        {[&](nlohmann::json& a) { layer(a, "dense")["units"] = "4611686018427387904"; }, "layer 'dense' (Dense) would have"},
        {[&](nlohmann::json& a) { layer(a, "conv2d")["filters"] = "100000000"; }, "layer 'conv2d' (Conv2D) would have"},
        {[&](nlohmann::json& a) { layer(a, "conv2d")["kernel_size"] = "3,4000000000"; }, "layer 'conv2d' (Conv2D) would have"},
        // Groups that do not divide the one input channel, or are not positive: the layer's own errors.
        {[&](nlohmann::json& a) { layer(a, "conv2d")["groups"] = "2"; },
         "Conv2D 'conv2d': 2 groups must divide both the input's 1 channels"},
        {[&](nlohmann::json& a) { layer(a, "conv2d")["groups"] = "-3"; }, "Conv2D: groups -3 must be positive"},
        {[&](nlohmann::json& a) { layer(a, "conv2d")["dilation_rate"] = "0,1"; },
         "Conv2D: dilation_rate 0x1 must be positive"},
        {[&](nlohmann::json& a) { a["input_shape"] = {1, 4294967296LL, 4294967296LL}; },
         "input_shape [1,4294967296,4294967296] is not a positive shape of at most 2^31 values"},
        {[&](nlohmann::json& a) { a["input_shape"] = {1, 0, 28}; }, "is not a positive shape"},
        {[&](nlohmann::json& a) { a["input_shape"] = {1, -28, -28}; }, "is not a positive shape"},
        {[&](nlohmann::json& a) { a["input_shape"] = nlohmann::json::array(); }, "input_shape has rank 0"},
    };
    for (const Case& c : cases) {
        const std::string path = with(c.change);
        INFO(SafetensorsFile::load(path).require_metadata("architecture"));
        const std::uint64_t requests = pool_requests();
        CHECK_THROWS_WITH_AS(load_model<float>(path), doctest::Contains(c.expected), Error);
        CHECK(pool_requests() - requests < 16);  // the layers before the culprit, not the culprit
    }
    // The unchanged architecture loads, bit for bit.
    const auto again = load_model<float>(with([](nlohmann::json&) {}));
    for (std::size_t i = 0; i < again.parameters().size(); ++i)
        CHECK(same_bits(again.parameters()[i].variable.value(), model.parameters()[i].variable.value()));
}

}  // namespace test_reliability
