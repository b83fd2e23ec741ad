// Model files and training checkpoints: bit-exact round trips, rebuilding from the stored
// architecture, PyTorch loading the file with strict=True, every bad file rejected before the
// model is touched, and a checkpointed run resuming to the same weights as an uninterrupted one.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/data/split.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/nn/summary.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/checkpoint.hpp"
#include "cnnlite/train/fit.hpp"
#include "source_dir.hpp"

namespace test_io_model {

using namespace cnnlite;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() : path(fs::temp_directory_path() / ("cnnlite_model_" + std::to_string(::getpid()))) {
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<float> weights_of(const Model<float>& model) {
    std::vector<float> out;
    for (const auto& p : model.parameters()) out.insert(out.end(), p.variable.value().begin(), p.variable.value().end());
    return out;
}

const FashionMnist& fixture() {
    static const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    return data;
}

/// A Python interpreter that can import torch, numpy and safetensors ("" if none):
/// $CNNLITE_PYTHON (e.g. ~/.cache/cnnlite/peers-ci/bin/python, see benchmarks/peers), then
/// Debian's /usr/bin/python3 (Debian has no `safetensors` package, so usually none).
std::string python_with_torch() {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("CNNLITE_PYTHON")) candidates.push_back(env);
    candidates.push_back("/usr/bin/python3");
    for (const auto& python : candidates)
        if (std::system(("'" + python + "' -c 'import torch, numpy, safetensors' >/dev/null 2>&1").c_str()) == 0)
            return python;
    return std::string();
}

/// The network of tests/fixtures/io/make_torch_batchnorm.py: Conv2d(1, 3, 3) -> BatchNorm2d ->
/// ReLU -> Flatten -> Linear(48, 5) -> BatchNorm1d, with cnnlite's names for its modules.
Sequential<float> torch_batchnorm_network(std::uint64_t seed = 1) {
    Sequential<float> model(Shape{1, 6, 6}, seed);
    model.add(Conv2D<float>(3, 3));
    model.add(BatchNormalization<float>(BatchNormConvention::torch));
    model.add(ReLU<float>());
    model.add(Flatten<float>());
    model.add(Dense<float>(5));
    model.add(BatchNormalization<float>(BatchNormConvention::torch));
    return model;
}

std::string torch_fixture(const std::string& name) {
    return test_support::source_dir().string() + "/tests/fixtures/io/" + name;
}

std::vector<std::int64_t> counts_of(const Model<float>& model) {
    std::vector<std::int64_t> out;
    for (const auto& c : model.counters()) out.push_back(c.value[0]);
    return out;
}

/// A copy of the safetensors file `from` at `to` with tensor `name` replaced by `tensor` (or left
/// out when undefined) and the metadata `meta` (the file's own when empty).
template <class R>
void rewrite(const std::string& from, const std::string& to, const std::string& name, const Tensor<R>& tensor,
             std::map<std::string, std::string> meta = {}) {
    const SafetensorsFile file = SafetensorsFile::load(from);
    SafetensorsWriter writer;
    for (const auto& [key, entry] : file.entries()) {
        if (key == name) continue;
        if (entry.dtype == SafetensorsDtype::I64) writer.add(key, file.tensor<std::int64_t>(key));
        else writer.add(key, file.tensor<float>(key));
    }
    if (tensor.defined()) writer.add(name, tensor);
    if (meta.empty()) meta = file.metadata();
    for (const auto& [key, value] : meta) writer.set_metadata(key, value);
    writer.save(to);
}

}  // namespace

TEST_CASE("save_model / load_model round trip is bit-exact and rebuilds the architecture") {
    TempDir dir;
    const auto model = fashion_mnist_cnn<float>(11);
    save_model(model, dir.file("m.safetensors"), {{"note", "round trip"}});
    const auto loaded = load_model<float>(dir.file("m.safetensors"));
    CHECK(summary(loaded) == summary(model));
    CHECK(weights_of(loaded) == weights_of(model));
    const auto file = SafetensorsFile::load(dir.file("m.safetensors"));
    CHECK(file.metadata().at("format") == "cnnlite");
    CHECK(file.metadata().at("format_version") == "1");
    CHECK(file.metadata().at("cnnlite_version") == version());
    CHECK(file.metadata().at("note") == "round trip");
    CHECK(file.entry("conv2d.weight").shape == Shape{64, 1, 2, 2});
    CHECK(file.entry("dense.weight").shape == Shape{256, 3136});
    CHECK(file.entry("dense_1.bias").shape == Shape{10});
    CHECK(file.entry("dense.weight").dtype == SafetensorsDtype::F32);

    auto other = fashion_mnist_cnn<float>(12);
    load_weights(other, dir.file("m.safetensors"));
    CHECK(weights_of(other) == weights_of(model));
    // Predictions of the reloaded model equal the original's.
    const Tensor<float> x = fixture().test.images().rows(0, 20);
    CHECK(loaded.predict(x).to_vector() == model.predict(x).to_vector());
}

TEST_CASE("bad model files are rejected with the file and tensor named, leaving the model untouched") {
    TempDir dir;
    const auto model = fashion_mnist_cnn<float>(1);
    const std::string good = dir.file("good.safetensors");
    save_model(model, good);
    auto target = fashion_mnist_cnn<float>(2);
    const auto before = weights_of(target);

    // A different architecture: Dense(128) instead of Dense(256).
    Sequential<float> smaller(Shape{1, 28, 28});
    smaller.add(Conv2D<float>(64, 2).padding("same").activation("relu"));
    smaller.add(MaxPool2D<float>(2, 2));
    smaller.add(MaxPool2D<float>(2, 2));
    smaller.add(Flatten<float>());
    smaller.add(Dense<float>(128).activation("relu"));
    smaller.add(Dense<float>(10).activation("softmax"));
    save_model(smaller, dir.file("smaller.safetensors"));
    CHECK_THROWS_WITH_AS(load_weights(target, dir.file("smaller.safetensors")),
                         doctest::Contains("tensor 'dense.weight' has shape [128, 3136], expected [256, 3136]"), Error);

    // Missing tensor, NaN, newer format, foreign format.
    auto tensors_of = [&](const Model<float>& m) {
        std::map<std::string, Tensor<float>> t;
        for (const auto& p : m.parameters()) t[p.name] = p.variable.value().clone();
        return t;
    };
    auto meta = model_metadata(model);
    auto missing = tensors_of(model);
    missing.erase("dense_1.bias");
    save_safetensors(dir.file("missing.safetensors"), missing, meta);
    CHECK_THROWS_WITH_AS(load_weights(target, dir.file("missing.safetensors")),
                         doctest::Contains("missing tensor 'dense_1.bias' (expected shape [10])"), Error);
    auto nan = tensors_of(model);
    nan["dense.bias"][3] = std::numeric_limits<float>::quiet_NaN();
    save_safetensors(dir.file("nan.safetensors"), nan, meta);
    CHECK_THROWS_WITH_AS(load_weights(target, dir.file("nan.safetensors")), doctest::Contains("dense.bias"), Error);
    auto newer = meta;
    newer["format_version"] = "4";
    save_safetensors(dir.file("newer.safetensors"), tensors_of(model), newer);
    CHECK_THROWS_WITH_AS(load_model<float>(dir.file("newer.safetensors")), doctest::Contains("model format version 4 is newer"),
                         Error);
    auto foreign = meta;
    foreign["format"] = "keras";
    save_safetensors(dir.file("foreign.safetensors"), tensors_of(model), foreign);
    CHECK_THROWS_WITH_AS(load_model<float>(dir.file("foreign.safetensors")), doctest::Contains("not 'cnnlite'"), Error);
    auto garbled = meta;
    garbled["architecture"] = "{\"layers\": 3}";
    save_safetensors(dir.file("garbled.safetensors"), tensors_of(model), garbled);
    CHECK_THROWS_WITH_AS(load_model<float>(dir.file("garbled.safetensors")),
                         doctest::Contains("not a valid cnnlite architecture"), Error);
    // Truncated file.
    {
        std::ifstream in(good, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::ofstream(dir.file("truncated.safetensors"), std::ios::binary).write(bytes.data(), 1000);
    }
    CHECK_THROWS_WITH_AS(load_weights(target, dir.file("truncated.safetensors")), doctest::Contains("truncated.safetensors"),
                         Error);
    CHECK(weights_of(target) == before);
}

TEST_CASE("weights saved by PyTorch load into a model built in code, by name, by position or renamed") {
    TempDir dir;
    const auto source = fashion_mnist_cnn<float>(11);
    std::map<std::string, Tensor<float>> by_name;
    for (const auto& p : source.parameters()) by_name[p.name] = p.variable.value().clone();
    // What torch.nn.Sequential(Conv2d, ReLU, MaxPool2d, Dropout, MaxPool2d, Dropout, Flatten,
    // Linear, ReLU, Dropout, Linear) writes: its modules numbered in execution order; 10 comes
    // after 7 only when compared as numbers.
    const std::map<std::string, Tensor<float>> positional = {
        {"0.weight", by_name.at("conv2d.weight")}, {"0.bias", by_name.at("conv2d.bias")},
        {"7.weight", by_name.at("dense.weight")},  {"7.bias", by_name.at("dense.bias")},
        {"10.weight", by_name.at("dense_1.weight")}, {"10.bias", by_name.at("dense_1.bias")}};
    // A module with attributes of its own naming.
    const std::map<std::string, Tensor<float>> custom = {
        {"features.conv.weight", by_name.at("conv2d.weight")}, {"features.conv.bias", by_name.at("conv2d.bias")},
        {"fc1.weight", by_name.at("dense.weight")},            {"fc1.bias", by_name.at("dense.bias")},
        {"fc2.weight", by_name.at("dense_1.weight")},          {"fc2.bias", by_name.at("dense_1.bias")}};
    const WeightMatching renamed{{{"features.conv", "conv2d"}, {"fc1", "dense"}, {"fc2", "dense_1"}}, true};

    SUBCASE("safetensors.torch.save_file (no metadata) and save_model (format 'pt') load by name") {
        for (const auto& meta : {std::map<std::string, std::string>{}, std::map<std::string, std::string>{{"format", "pt"}}}) {
            save_safetensors(dir.file("pt.safetensors"), by_name, meta);
            auto target = fashion_mnist_cnn<float>(12);
            load_weights(target, dir.file("pt.safetensors"));
            CHECK(weights_of(target) == weights_of(source));
            // In double too: the values are widened exactly.
            auto wide = fashion_mnist_cnn<double>(12);
            load_weights(wide, dir.file("pt.safetensors"));
            CHECK(wide.parameters()[2].variable.value()[5] == static_cast<double>(by_name.at("dense.weight")[5]));
        }
    }
    SUBCASE("nn.Sequential's numbered modules load in numeric order") {
        save_safetensors(dir.file("seq.safetensors"), positional, {{"format", "pt"}});
        auto target = fashion_mnist_cnn<float>(12);
        load_weights(target, dir.file("seq.safetensors"));
        CHECK(weights_of(target) == weights_of(source));
        // Refused when positions are not allowed: then the names must match.
        auto untouched = fashion_mnist_cnn<float>(12);
        const auto before = weights_of(untouched);
        CHECK_THROWS_WITH_AS(load_weights(untouched, dir.file("seq.safetensors"), WeightMatching{{}, false}),
                             doctest::Contains("missing tensor 'conv2d.weight' (expected shape [64, 1, 2, 2])"), Error);
        CHECK(weights_of(untouched) == before);
    }
    SUBCASE("other names load when renamed, and the error without renaming lists both sides") {
        save_safetensors(dir.file("custom.safetensors"), custom, {});
        auto target = fashion_mnist_cnn<float>(12);
        const auto before = weights_of(target);
        try {
            load_weights(target, dir.file("custom.safetensors"));
            FAIL("loaded weights whose names match nothing");
        } catch (const Error& e) {
            const std::string message = e.what();
            CHECK(message.find("custom.safetensors") != std::string::npos);
            CHECK(message.find("6 of 6 not found") != std::string::npos);
            CHECK(message.find("missing tensor 'dense.weight' (expected shape [256, 3136])") != std::string::npos);
            CHECK(message.find("unexpected tensor 'fc1.weight' [256, 3136]") != std::string::npos);
            CHECK(message.find("--rename") != std::string::npos);
        }
        CHECK(weights_of(target) == before);
        load_weights(target, dir.file("custom.safetensors"), renamed);
        CHECK(weights_of(target) == weights_of(source));
        // A renaming that matches nothing is a mistake, not something to ignore.
        WeightMatching typo = renamed;
        typo.rename["fc3"] = "dense_1";
        CHECK_THROWS_WITH_AS(load_weights(target, dir.file("custom.safetensors"), typo),
                             doctest::Contains("the renaming 'fc3' -> 'dense_1' matches no tensor"), Error);
        WeightMatching twice{{{"features.conv", "conv2d"}, {"fc1", "dense"}, {"fc2", "dense"}}, true};
        CHECK_THROWS_WITH_AS(load_weights(target, dir.file("custom.safetensors"), twice),
                             doctest::Contains("renaming makes two tensors 'dense."), Error);
    }
    SUBCASE("shapes, extra tensors and other frameworks' layouts are refused, naming each") {
        auto target = fashion_mnist_cnn<float>(12);
        const auto before = weights_of(target);
        auto transposed = positional;  // a Keras-style [in, out] dense kernel
        transposed["7.weight"] = Tensor<float>(Shape{3136, 256});
        save_safetensors(dir.file("shape.safetensors"), transposed, {});
        CHECK_THROWS_WITH_AS(load_weights(target, dir.file("shape.safetensors")),
                             doctest::Contains("tensor '7.weight' (the model's 'dense.weight') has shape [3136, 256], "
                                               "expected [256, 3136]"),
                             Error);
        auto extra = by_name;
        extra["dense_2.weight"] = Tensor<float>(Shape{10, 10});
        save_safetensors(dir.file("extra.safetensors"), extra, {{"format", "pt"}});
        CHECK_THROWS_WITH_AS(load_weights(target, dir.file("extra.safetensors")),
                             doctest::Contains("unexpected tensor 'dense_2.weight' [10, 10]"), Error);
        auto fewer = positional;  // a numbered file with a layer too few is not matched by position
        fewer.erase("10.weight");
        fewer.erase("10.bias");
        save_safetensors(dir.file("fewer.safetensors"), fewer, {});
        CHECK_THROWS_WITH_AS(load_weights(target, dir.file("fewer.safetensors")),
                             doctest::Contains("missing tensor 'dense_1.bias'"), Error);
        save_safetensors(dir.file("tf.safetensors"), by_name, {{"format", "tf"}});
        CHECK_THROWS_WITH_AS(load_weights(target, dir.file("tf.safetensors")),
                             doctest::Contains("metadata 'format' is 'tf': only cnnlite's and PyTorch's"), Error);
        CHECK(weights_of(target) == before);
        // load_model needs an architecture, which weights-only files do not have.
        CHECK_THROWS_WITH_AS(load_model<float>(dir.file("extra.safetensors")),
                             doctest::Contains("metadata 'format' is 'pt', not 'cnnlite': it describes no network"), Error);
        CHECK_FALSE(has_architecture(SafetensorsFile::load(dir.file("extra.safetensors"))));
        save_model(source, dir.file("own.safetensors"));
        CHECK(has_architecture(SafetensorsFile::load(dir.file("own.safetensors"))));
    }
}

TEST_CASE("PyTorch's BatchNorm state_dicts load with num_batches_tracked, by name and by position, and predict as PyTorch") {
    TempDir dir;
    std::ifstream in(torch_fixture("torch_batchnorm.json"));
    const nlohmann::json expected = nlohmann::json::parse(in);
    Tensor<float> x = Tensor<float>::uninitialized(Shape{2, 1, 6, 6});
    for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(std::sin(0.1 * static_cast<double>(i)));
    const auto outputs = expected.at("output").get<std::vector<double>>();
    for (const char* name : {"torch_batchnorm.safetensors", "torch_batchnorm_sequential.safetensors"}) {
        CAPTURE(name);
        // What safetensors.torch.save_file wrote: no metadata, num_batches_tracked as 0-d I64.
        const SafetensorsFile file = SafetensorsFile::load(torch_fixture(name));
        CHECK(file.metadata().empty());
        auto model = torch_batchnorm_network();
        load_weights(model, file);
        CHECK(counts_of(model) == std::vector<std::int64_t>{3, 3});
        const Tensor<float> y = model.predict(x);
        REQUIRE(static_cast<std::size_t>(y.numel()) == outputs.size());
        for (std::size_t i = 0; i < outputs.size(); ++i)
            CHECK(y[static_cast<std::int64_t>(i)] == doctest::Approx(outputs[i]).epsilon(1e-5));

        // Through a cnnlite model file (format version 3) the counts, statistics and outputs survive.
        save_model(model, dir.file("bn.safetensors"));
        CHECK(SafetensorsFile::load(dir.file("bn.safetensors")).metadata().at("format_version") == "3");
        const Model<float> loaded = load_model<float>(dir.file("bn.safetensors"));
        CHECK(counts_of(loaded) == std::vector<std::int64_t>{3, 3});
        const Tensor<float> again = loaded.predict(x);
        for (std::int64_t i = 0; i < y.numel(); ++i) CHECK(again[i] == y[i]);
    }
}

TEST_CASE("num_batches_tracked: files without it still load, a wrong dtype, shape or value is refused naming it") {
    TempDir dir;
    const std::string torch_file = torch_fixture("torch_batchnorm.safetensors");
    const std::string counter = "batch_normalization.num_batches_tracked";
    auto model = torch_batchnorm_network();
    load_weights(model, torch_file);
    model.counters()[1].value[0] = 5;
    const auto weights = weights_of(model);

    SUBCASE("PyTorch's files from before the counter: the counts are left as they are, as PyTorch does") {
        rewrite(torch_file, dir.file("old_torch.safetensors"), counter, Tensor<std::int64_t>());
        load_weights(model, dir.file("old_torch.safetensors"));
        CHECK(counts_of(model) == std::vector<std::int64_t>{3, 3});
        auto fresh = torch_batchnorm_network(2);
        load_weights(fresh, dir.file("old_torch.safetensors"));
        CHECK(counts_of(fresh) == std::vector<std::int64_t>{0, 3});
        CHECK(weights_of(fresh) == weights);
    }
    SUBCASE("cnnlite's files from before format version 3 (no counters) still load") {
        save_model(model, dir.file("new.safetensors"));
        auto meta = model_metadata(model);
        meta["format_version"] = "1";
        meta["cnnlite_version"] = "0.1.0";
        rewrite(dir.file("new.safetensors"), dir.file("v1.safetensors"), counter, Tensor<std::int64_t>(), meta);
        rewrite(dir.file("v1.safetensors"), dir.file("v1.safetensors"), "batch_normalization_1.num_batches_tracked",
                Tensor<std::int64_t>());
        const SafetensorsFile v1 = SafetensorsFile::load(dir.file("v1.safetensors"));
        CHECK_FALSE(v1.contains(counter));
        const Model<float> loaded = load_model<float>(v1);
        CHECK(counts_of(loaded) == std::vector<std::int64_t>{0, 0});
        CHECK(weights_of(loaded) == weights);
    }
    SUBCASE("hostile counters are refused before anything changes") {
        const auto check_refused = [&](const std::string& file, const std::string& message) {
            auto target = torch_batchnorm_network(2);
            const auto before = weights_of(target);
            CHECK_THROWS_WITH_AS(load_weights(target, file), doctest::Contains(message.c_str()), Error);
            CHECK(weights_of(target) == before);
            CHECK(counts_of(target) == std::vector<std::int64_t>{0, 0});
        };
        rewrite(torch_file, dir.file("f32.safetensors"), counter, Tensor<float>::full(Shape{}, 3.0f));
        check_refused(dir.file("f32.safetensors"),
                      "tensor 'batch_normalization.num_batches_tracked' has dtype F32, expected I64 (a count)");
        rewrite(torch_file, dir.file("shape.safetensors"), counter, Tensor<std::int64_t>::from(Shape{1}, {3}));
        check_refused(dir.file("shape.safetensors"),
                      "tensor 'batch_normalization.num_batches_tracked' has shape [1], expected [] (a count)");
        rewrite(torch_file, dir.file("negative.safetensors"), counter, Tensor<std::int64_t>::from(Shape{}, {-2}));
        check_refused(dir.file("negative.safetensors"),
                      "tensor 'batch_normalization.num_batches_tracked' = -2 is negative, but it counts batches");
        // By position too: PyTorch's names for the Sequential's modules, the model's in brackets.
        rewrite(torch_fixture("torch_batchnorm_sequential.safetensors"), dir.file("seq_f32.safetensors"),
                "5.num_batches_tracked", Tensor<float>::full(Shape{}, 3.0f));
        check_refused(dir.file("seq_f32.safetensors"),
                      "tensor '5.num_batches_tracked' (the model's 'batch_normalization_1.num_batches_tracked') has "
                      "dtype F32, expected I64");
        // An integer where a float tensor belongs.
        rewrite(torch_file, dir.file("int_mean.safetensors"), "batch_normalization.running_mean",
                Tensor<std::int64_t>::from(Shape{3}, {0, 1, 2}));
        check_refused(dir.file("int_mean.safetensors"),
                      "tensor 'batch_normalization.running_mean' has dtype I64, expected F32 or F64");
        // A counter of a layer the model does not have is an unexpected tensor.
        rewrite(torch_file, dir.file("extra.safetensors"), "batch_normalization_2.num_batches_tracked",
                Tensor<std::int64_t>::from(Shape{}, {1}));
        check_refused(dir.file("extra.safetensors"), "unexpected tensor 'batch_normalization_2.num_batches_tracked' []");
    }
}

TEST_CASE("PyTorch loads the model file with strict=True and predicts the same") {
    const std::string python = python_with_torch();
    if (python.empty()) {
        MESSAGE("skipped: no python3 with torch, numpy and safetensors (set CNNLITE_PYTHON, e.g. to the peers-ci "
                "venv's python; tests/python/test_explain_parity.py checks the same in `.ci/run peers`)");
        return;
    }
    TempDir dir;
    const auto model = fashion_mnist_cnn<float>(3);
    save_model(model, dir.file("paper.safetensors"));
    const std::string images = test_support::source_dir().string() + "/data/fixtures/t10k-images-idx3-ubyte.gz";
    const std::string cmd = "'" + python + "' " + test_support::source_dir().string() + "/tests/python/torch_paper_model.py " +
                            dir.file("paper.safetensors") + " " + images + " 32 " + dir.file("torch.json");
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream in(dir.file("torch.json"));
    const auto torch_probs = nlohmann::json::parse(in)["probabilities"].get<std::vector<double>>();
    const Tensor<float> ours = model.predict(fixture().test.images().rows(0, 32));
    REQUIRE(static_cast<std::int64_t>(torch_probs.size()) == ours.numel());
    for (std::size_t i = 0; i < torch_probs.size(); ++i)
        REQUIRE(ours[static_cast<std::int64_t>(i)] == doctest::Approx(torch_probs[i]).epsilon(1e-4).scale(1e-5));
}

TEST_CASE("a run resumed from its checkpoint ends bitwise identical to an uninterrupted run") {
    TempDir dir;
    const auto split = split_train_validation(fixture().train.slice(0, 700), 200);
    FitOptions options;
    options.epochs = 3;
    options.seed = 4;
    options.verbosity = Verbosity::silent;

    // Uninterrupted.
    auto straight = fashion_mnist_cnn<float>(4);
    Adam<float> adam_a(straight.trainable_variables());
    KeepBest<float> best_a;
    EarlyStopping<float> stop_a(10);
    const History ha = fit(straight, adam_a, split.train, &split.validation, options, {&best_a, &stop_a});

    // One epoch, checkpoint, then everything rebuilt from scratch and resumed.
    const std::string ckpt = dir.file("checkpoint.safetensors");
    {
        auto model = fashion_mnist_cnn<float>(4);
        Adam<float> adam(model.trainable_variables());
        KeepBest<float> best;
        EarlyStopping<float> stop(10);
        Checkpointer<float> saver(ckpt, adam, &best, &stop, {{"run", "test"}});
        FitOptions first = options;
        first.epochs = 1;
        fit(model, adam, split.train, &split.validation, first, {&best, &stop, &saver});
    }
    auto resumed = fashion_mnist_cnn<float>(999);  // other initial weights: all must come from the file
    Adam<float> adam_b(resumed.trainable_variables());
    KeepBest<float> best_b;
    EarlyStopping<float> stop_b(10);
    const TrainingState progress = load_checkpoint(ckpt, resumed, adam_b, &best_b, &stop_b);
    CHECK(progress.epoch == 1);
    CHECK(progress.metadata.at("run") == "test");
    FitOptions rest = options;
    rest.initial_epoch = progress.epoch;
    const History hb = fit(resumed, adam_b, split.train, &split.validation, rest, {&best_b, &stop_b}, progress.history);

    CHECK(weights_of(resumed) == weights_of(straight));
    REQUIRE(hb.epochs.size() == ha.epochs.size());
    for (std::size_t e = 0; e < ha.epochs.size(); ++e) {
        CHECK(hb.epochs[e].loss == ha.epochs[e].loss);
        CHECK(hb.epochs[e].val_loss == ha.epochs[e].val_loss);
        CHECK(hb.epochs[e].val_accuracy == ha.epochs[e].val_accuracy);
    }
    CHECK(best_b.best_epoch() == best_a.best_epoch());
    best_a.restore(straight);
    best_b.restore(resumed);
    CHECK(weights_of(resumed) == weights_of(straight));

    // A checkpoint of another architecture is refused before anything changes.
    Sequential<float> other(Shape{1, 28, 28});
    other.add(Flatten<float>());
    other.add(Dense<float>(10));
    Adam<float> adam_c(other.trainable_variables());
    CHECK_THROWS_WITH_AS(load_checkpoint(ckpt, other, adam_c),
                         doctest::Contains("another architecture"), Error);
}

}  // namespace test_io_model
