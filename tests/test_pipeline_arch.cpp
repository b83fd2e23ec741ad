// End-to-end tests of examples/fashion_mnist beyond the paper's network: `--arch resnet8` through
// every stage (the model file, metrics.json and the report record the architecture and the
// recipe; the learning rate of the warm-up and cosine schedule is in history.csv), its long
// recipe (weight average, random erasing) killed after a checkpoint and resuming bit for bit, the model file deciding the
// architecture, and the errors of contradicting or changed settings. Small runs on the
// committed fixture (data/fixtures); the accuracy targets are measured by the README's
// commands on the full data set.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/io/csv.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "program_runner.hpp"
#include "source_dir.hpp"

namespace test_pipeline_arch {

namespace fs = std::filesystem;

namespace {

const fs::path fixture_data = test_support::source_dir() / "data" / "fixtures";

using test_support::contains;
using test_support::read_text;
using test_support::RunResult;
using test_support::TempDir;

RunResult run(const std::vector<std::string>& args, const fs::path& scratch) {
    return test_support::run_program(args, scratch);
}

/// A small run: 128 validation and 256 training images in batches of 32 (8 steps an epoch).
std::vector<std::string> small(std::vector<std::string> args) {
    args.insert(args.end(), {"--data", fixture_data.string(), "--val", "128", "--limit", "256", "--batch-size", "32",
                             "--quiet"});
    return args;
}

/// Starts the program with `args` (output discarded) and kills it with SIGKILL as soon as
/// `checkpoint` exists; returns the epoch the checkpoint holds (the last one when the program
/// ended first).
std::int64_t run_until_checkpoint(const std::vector<std::string>& args, const fs::path& checkpoint) {
    const std::string program = test_support::fashion_mnist_program().string();
    std::vector<std::string> argv_text = {program};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::execv(program.c_str(), argv.data());
        ::_exit(127);
    }
    int status = 0;
    for (;;) {
        if (fs::exists(checkpoint)) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        if (::waitpid(pid, &status, WNOHANG) == pid) break;  // ended by itself
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    REQUIRE_MESSAGE(fs::exists(checkpoint), "the program ended without a checkpoint");
    const cnnlite::SafetensorsFile file = cnnlite::SafetensorsFile::load(checkpoint.string());
    return std::stoll(file.metadata().at("epoch"));
}

nlohmann::json read_json(const fs::path& path) {
    REQUIRE_MESSAGE(fs::exists(path), path.string(), " is missing");
    return nlohmann::json::parse(read_text(path));
}

}  // namespace

TEST_CASE("all --arch resnet8: every stage runs, and the outputs record the network and its recipe") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    // Two images for the methods table: each costs every method hundreds of forward passes of
    // the residual network, the longest part of this run under the sanitizers.
    RunResult r = run(small({"all", "--arch", "resnet8", "--epochs", "2", "--methods-images", "2", "--out", out.string()}),
                      tmp.path);
    INFO("stdout:\n", r.out, "\nstderr:\n", r.err);
    REQUIRE(r.status == 0);

    // The model file records the architecture and the recipe; load_model rebuilds the graph.
    const cnnlite::SafetensorsFile file = cnnlite::SafetensorsFile::load((out / "model.safetensors").string());
    REQUIRE(file.metadata().count("fashion_mnist.arch"));
    CHECK(file.metadata().at("fashion_mnist.arch") == "resnet8");
    const nlohmann::json recorded = nlohmann::json::parse(file.metadata().at("fashion_mnist.recipe"));
    CHECK(recorded["optimizer"] == "sgd");
    CHECK(recorded["epochs"] == 2);  // the override
    CHECK(recorded["flip_tta"] == true);
    const cnnlite::Model<float> model = cnnlite::load_model<float>((out / "model.safetensors").string());
    CHECK(!model.is_chain());
    CHECK(model.buffers().size() > 0);  // BatchNorm's running statistics

    // history.csv: the per-step schedule's rate at the end of each epoch. Warm-up over the 8
    // steps of epoch 1 from 0.1 x 0.1, so step 7 runs at 0.1 (0.1 + 0.9 7/8); then a cosine over
    // the remaining 8 steps, of which step 15 is index 7: 0.1 (1 + cos(7 pi / 8)) / 2.
    const auto history = cnnlite::read_csv((out / "history.csv").string());
    REQUIRE(history.size() == 3);
    REQUIRE(history[0][5] == "learning_rate");
    const double pi = 3.141592653589793;
    CHECK(std::stod(history[1][5]) == doctest::Approx(0.1 * (0.1 + 0.9 * 7.0 / 8.0)).epsilon(1e-12));
    CHECK(std::stod(history[2][5]) == doctest::Approx(0.1 * (1 + std::cos(7 * pi / 8)) / 2).epsilon(1e-12));

    const nlohmann::json m = read_json(out / "metrics.json");
    CHECK(m["arch"] == "resnet8");
    CHECK(m["recipe"]["name"] == "fast");
    CHECK(m["recipe"]["label_smoothing"] == 0.1);
    CHECK(m["test_flip_tta"] == true);
    for (const char* key : {"test_accuracy", "top2_accuracy", "macro_f1", "expected_calibration_error"})
        CHECK_MESSAGE((m.contains(key) && m[key].get<double>() >= 0 && m[key].get<double>() <= 1), key);
    CHECK(m["top2_accuracy"].get<double>() >= m["test_accuracy"].get<double>());

    // Explanations at the last residual block; the methods table; the report names it all.
    CHECK(fs::exists(out / "gradcam" / "cams.npy"));
    const std::string methods = read_text(out / "explain" / "methods.csv");
    CHECK(contains(methods, "Grad-CAM,"));
    CHECK(read_json(out / "run.json")["stages"]["explain"]["methods_images"] == 2);
    CHECK(std::count(methods.begin(), methods.end(), '\n') == 12);  // the header and 11 rows
    const std::string report = read_text(out / "report.html");
    CHECK(contains(report, "--arch resnet8"));
    CHECK(contains(report, "on 2 random test images"));
    CHECK(contains(report, "SGD (Nesterov momentum 0.9)"));
    CHECK(contains(report, "Connected to"));  // the graph's summary
    CHECK(contains(report, "with respect to the output of layer re_lu_"));  // the last block's ReLU
    CHECK(contains(report, "with flip test-time augmentation"));
    CHECK(contains(report, "macro F1"));

    // Without --arch, summary shows the folder's network, not the paper's.
    r = run({"summary", "--out", out.string()}, tmp.path);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(contains(r.out, "global_average_pooling2d"));

    // The file decides the network when --arch is left out; a contradicting --arch is an error.
    r = run(small({"evaluate", "--out", out.string()}), tmp.path);
    CHECK_MESSAGE(r.status == 0, r.err);
    r = run(small({"evaluate", "--arch", "paper", "--out", out.string()}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "contradicts"));
    CHECK(contains(r.err, "resnet8"));

    // predict with the residual network: a test image of the fixture as a PNG.
    const cnnlite::FashionMnist data = cnnlite::load_fashion_mnist(fixture_data);
    const fs::path png = tmp.path / "item.png";
    cnnlite::viz::write_png(png.string(), cnnlite::viz::grey_image(data.test.pixels().rows(0, 1)));
    r = run({"predict", png.string(), "--out", out.string()}, tmp.path);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(contains(r.out, png.string() + ": "));
}

TEST_CASE("train --arch resnet8 --recipe long, killed after a checkpoint, resumes bit for bit") {
    TempDir tmp;
    const fs::path whole = tmp.path / "whole", parts = tmp.path / "parts";
    const auto args = [](const fs::path& out, std::vector<std::string> extra = {}) {
        std::vector<std::string> a = {"train", "--arch", "resnet8", "--recipe", "long", "--epochs", "3",
                                      "--seed", "3", "--out", out.string()};
        a.insert(a.end(), extra.begin(), extra.end());
        return small(a);
    };
    RunResult r = run(args(whole), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);

    // The same command, killed (SIGKILL) as soon as its first checkpoint is in place.
    const std::int64_t saved = run_until_checkpoint(args(parts), parts / "checkpoint.safetensors");
    REQUIRE_MESSAGE(saved < 3, "the run ended before it could be killed");
    r = run(args(parts, {"--resume"}), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(test_support::without_run_ids(read_text(whole / "model.safetensors")) ==
          test_support::without_run_ids(read_text(parts / "model.safetensors")));
    const auto history_a = cnnlite::read_csv((whole / "history.csv").string());
    const auto history_b = cnnlite::read_csv((parts / "history.csv").string());
    REQUIRE(history_a.size() == 4);
    REQUIRE(history_b.size() == 4);
    for (std::size_t e = 0; e < 4; ++e)
        for (std::size_t c = 0; c < 6; ++c) CHECK(history_a[e][c] == history_b[e][c]);  // all but the seconds

    // A changed recipe setting, a longer cosine schedule or another network is refused, naming
    // what changed.
    r = run(args(parts, {"--resume", "--label-smoothing", "0.2"}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "label_smoothing"));
    r = run(small({"train", "--arch", "resnet8", "--recipe", "long", "--epochs", "4", "--seed", "3", "--resume",
                   "--out", parts.string()}),
            tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "schedule"));
    r = run(small({"train", "--arch", "paper", "--epochs", "4", "--seed", "3", "--resume", "--out", parts.string()}),
            tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "arch"));
}

TEST_CASE("recipe options: bad values and contradictions are errors naming the option") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    RunResult r = run(small({"train", "--arch", "resnet9", "--out", out.string()}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "--arch"));
    r = run(small({"train", "--arch", "resnet8", "--recipe", "medium", "--out", out.string()}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "--recipe"));
    r = run(small({"train", "--arch", "resnet8", "--epochs", "2", "--warmup", "3", "--out", out.string()}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "--warmup"));
    r = run(small({"train", "--optimizer", "rmsprop", "--out", out.string()}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "--optimizer"));
    r = run(small({"train", "--ema", "1", "--out", out.string()}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "--ema"));
    r = run(small({"explain", "--methods-images", "-1", "--out", out.string()}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "--methods-images"));
    r = run(small({"train", "--methods-images", "5", "--out", out.string()}), tmp.path);  // only explain and all
    CHECK(r.status != 0);
    CHECK(contains(r.err, "--methods-images"));
    r = run({"train", "--help"}, tmp.path);
    CHECK(r.status == 0);
    for (const char* option : {"--arch", "--recipe", "--optimizer", "--lr", "--weight-decay", "--schedule", "--warmup",
                               "--augment", "--ema", "--label-smoothing", "--clip-norm", "--tta"})
        CHECK_MESSAGE(contains(r.out, option), option);
}

}  // namespace test_pipeline_arch
