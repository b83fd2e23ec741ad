// End-to-end tests of examples/fashion_mnist, the paper's pipeline: the program is run as a
// user runs it (on the committed fixture, data/fixtures) and every output is parsed back and
// checked — CSV columns, metrics.json keys and ranges, the Grad-CAM maps, the report — the EDA
// statistics against NumPy/SciPy values (tests/fixtures/pipeline/, with the script that made
// them), --resume against an uninterrupted run, predict on generated PNGs, and errors.
//
// The program is run by tests/program_runner.hpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/io/csv.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/npy.hpp"
#include "cnnlite/io/onnx_export.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "cnnlite/viz/image_read.hpp"
#include "program_runner.hpp"
#include "source_dir.hpp"

namespace test_pipeline {

namespace fs = std::filesystem;

namespace {

const fs::path source_dir = test_support::source_dir();
const fs::path fixture_data = source_dir / "data" / "fixtures";

using test_support::contains;
using test_support::read_text;
using test_support::RunResult;
using test_support::TempDir;

/// Runs the program with `args`, capturing stdout and stderr.
RunResult run(const std::vector<std::string>& args, const fs::path& scratch) {
    return test_support::run_program(args, scratch);
}

std::size_t count_of(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
    return n;
}

/// The CSV's rows after checking its header.
std::vector<std::vector<std::string>> csv_rows(const fs::path& path, const std::vector<std::string>& header) {
    REQUIRE_MESSAGE(fs::exists(path), path.string(), " is missing");
    auto rows = cnnlite::read_csv(path.string());
    REQUIRE(!rows.empty());
    CHECK(rows[0] == header);
    rows.erase(rows.begin());
    for (const auto& r : rows) REQUIRE(r.size() == header.size());
    return rows;
}

double num(const std::string& s) {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    REQUIRE_MESSAGE(used == s.size(), "'", s, "' is not a number");
    return v;
}

/// Relative closeness for values computed two ways (cnnlite vs NumPy/SciPy).
bool close(double a, double b, double rel) { return std::fabs(a - b) <= rel * std::max({std::fabs(a), std::fabs(b), 1e-300}); }

nlohmann::json read_json(const fs::path& path) {
    REQUIRE_MESSAGE(fs::exists(path), path.string(), " is missing");
    return nlohmann::json::parse(read_text(path));
}

const std::vector<std::string>& class_names() { return cnnlite::fashion_mnist_class_names(); }

/// A grey image of test image `i` of the fixture, as stored (light object on black).
cnnlite::viz::Image fixture_image(const cnnlite::Dataset& test, std::int64_t i) {
    return cnnlite::viz::grey_image(test.pixels().rows(i, 1));
}

}  // namespace

TEST_CASE("all on the fixture writes every output, and they parse back with sane values") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    const RunResult r = run({"all", "--data", fixture_data.string(), "--val", "500", "--limit", "1500", "--epochs", "2",
                             "--out", out.string()},
                            tmp.path);
    INFO("stdout:\n", r.out, "\nstderr:\n", r.err);
    REQUIRE(r.status == 0);
    // Progress of every stage is visible.
    for (const char* stage : {"[eda]", "[summary]", "[train]", "[evaluate]", "[explain]", "[report]", "Epoch 1/2",
                              "Epoch 2/2", "Total params: 805,962"})
        CHECK_MESSAGE(contains(r.out, stage), stage);

    const cnnlite::FashionMnist data = cnnlite::load_fashion_mnist(fixture_data);
    const auto test_counts = data.test.class_counts();

    {  // eda tables
        const auto counts = csv_rows(out / "eda" / "class_counts.csv", {"class", "train", "test"});
        REQUIRE(counts.size() == 10);
        for (std::size_t c = 0; c < 10; ++c) {
            CHECK(counts[c][0] == class_names()[c]);
            CHECK(num(counts[c][2]) == static_cast<double>(test_counts[c]));
        }
        const auto stats = csv_rows(out / "eda" / "pixel_ratio_stats.csv",
                                    {"class", "split", "count", "q1", "median", "q3", "max", "mean", "variance"});
        CHECK(stats.size() == 20);
        for (const auto& row : stats) {
            CHECK((row[1] == "train" || row[1] == "test"));
            const double q1 = num(row[3]), median = num(row[4]), q3 = num(row[5]), max = num(row[6]);
            CHECK((0 <= q1 && q1 <= median && median <= q3 && q3 <= max && max <= 1));
            CHECK(num(row[8]) >= 0);
        }
        const auto anova = csv_rows(out / "eda" / "anova.csv", {"class", "f_value", "p_value"});
        CHECK(anova.size() == 10);
        for (const auto& row : anova) CHECK((num(row[1]) >= 0 && num(row[2]) >= 0 && num(row[2]) <= 1));
        // UMAP of every training image.
        const auto umap = csv_rows(out / "eda" / "umap.csv", {"x", "y", "label"});
        REQUIRE(static_cast<std::int64_t>(umap.size()) == data.train.size());
        for (std::size_t i = 0; i < umap.size(); ++i) {  // file order
            CHECK((std::isfinite(num(umap[i][0])) && std::isfinite(num(umap[i][1]))));
            CHECK(num(umap[i][2]) == data.train.labels()[i]);
        }
    }

    {  // history, model and metrics
        const auto history =
            csv_rows(out / "history.csv",
                     {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"});
        REQUIRE(history.size() == 2);
        for (std::size_t e = 0; e < 2; ++e) {
            CHECK(num(history[e][0]) == static_cast<double>(e + 1));
            CHECK((std::isfinite(num(history[e][1])) && num(history[e][1]) > 0));
            CHECK((num(history[e][2]) >= 0 && num(history[e][2]) <= 1));
            CHECK((std::isfinite(num(history[e][3])) && num(history[e][3]) > 0));
            CHECK((num(history[e][4]) >= 0 && num(history[e][4]) <= 1));
            CHECK(num(history[e][5]) == 0.001);  // the paper's constant Adam rate
            CHECK(num(history[e][6]) > 0);
        }
        CHECK(fs::exists(out / "checkpoint.safetensors"));
        const cnnlite::Model<float> model = cnnlite::load_model<float>((out / "model.safetensors").string());
        CHECK(model.parameter_count() == 805962);

        const nlohmann::json m = read_json(out / "metrics.json");
        for (const char* key : {"best_epoch", "epochs_run", "train_seconds", "train_images_per_second", "seed", "threads",
                                "class_names", "test_accuracy", "test_loss", "per_class_accuracy", "confusion_matrix"})
            CHECK_MESSAGE(m.contains(key), key);
        CHECK(m["epochs_run"] == 2);
        CHECK((m["best_epoch"] >= 1 && m["best_epoch"] <= 2));
        CHECK(m["seed"] == 0);
        CHECK(m["threads"] >= 1);
        CHECK(m["train_seconds"].get<double>() > 0);
        CHECK(m["train_images_per_second"].get<double>() > 0);
        CHECK(m["class_names"].get<std::vector<std::string>>() == class_names());
        // The kept epoch is the one of lowest validation loss.
        const std::size_t best = m["best_epoch"].get<std::size_t>() - 1;
        CHECK(num(history[best][3]) == doctest::Approx(std::min(num(history[0][3]), num(history[1][3]))));

        const double accuracy = m["test_accuracy"].get<double>();
        CHECK((accuracy > 0.3 && accuracy <= 1));  // two epochs on 1,500 images already learn something
        CHECK((std::isfinite(m["test_loss"].get<double>()) && m["test_loss"].get<double>() > 0));
        const auto per_class = m["per_class_accuracy"].get<std::vector<double>>();
        REQUIRE(per_class.size() == 10);
        const auto confusion = m["confusion_matrix"].get<std::vector<std::vector<std::int64_t>>>();
        REQUIRE(confusion.size() == 10);
        std::int64_t total = 0, diagonal = 0;
        for (std::size_t t = 0; t < 10; ++t) {
            REQUIRE(confusion[t].size() == 10);
            std::int64_t row = 0;
            for (std::size_t p = 0; p < 10; ++p) row += confusion[t][p];
            CHECK(row == test_counts[t]);
            CHECK(per_class[t] == doctest::Approx(static_cast<double>(confusion[t][t]) / static_cast<double>(row)));
            total += row;
            diagonal += confusion[t][t];
        }
        CHECK(total == data.test.size());
        CHECK(accuracy == doctest::Approx(static_cast<double>(diagonal) / static_cast<double>(total)));

        // evaluate's numbers are the model's on the test set.
        const cnnlite::Evaluation e = cnnlite::evaluate(model, data.test);
        CHECK(e.accuracy == doctest::Approx(accuracy));
    }

    {  // Grad-CAM maps and their index
        const cnnlite::Tensor<float> cams = cnnlite::load_npy<float>((out / "gradcam" / "cams.npy").string());
        REQUIRE(cams.rank() == 3);
        CHECK(cams.dim(1) == 28);
        CHECK(cams.dim(2) == 28);
        const auto index =
            csv_rows(out / "gradcam" / "cams_index.csv", {"row", "test_index", "true_label", "predicted_label"});
        REQUIRE(static_cast<std::int64_t>(index.size()) == cams.dim(0));
        // 50 samples + per class up to 5 right and 5 wrong + up to 10 and 10 shirts.
        CHECK(cams.dim(0) >= 50);
        CHECK(cams.dim(0) <= 170);
        const cnnlite::Model<float> model = cnnlite::load_model<float>((out / "model.safetensors").string());
        const cnnlite::Evaluation e = cnnlite::evaluate(model, data.test);
        for (std::size_t r = 0; r < index.size(); ++r) {
            CHECK(num(index[r][0]) == static_cast<double>(r));
            const auto i = static_cast<std::int64_t>(num(index[r][1]));
            REQUIRE((i >= 0 && i < data.test.size()));
            CHECK(num(index[r][2]) == data.test.labels()[static_cast<std::size_t>(i)]);
            CHECK(num(index[r][3]) == e.predicted[static_cast<std::size_t>(i)]);
            float lo = 1, hi = 0;
            for (std::int64_t p = 0; p < 784; ++p) {
                lo = std::min(lo, cams[static_cast<std::int64_t>(r) * 784 + p]);
                hi = std::max(hi, cams[static_cast<std::int64_t>(r) * 784 + p]);
            }
            CHECK(lo >= 0);
            CHECK((hi == doctest::Approx(1.0f) || hi == 0));  // divided by the max (all zero stays zero)
        }
    }

    {  // the explanation methods compared
        const auto methods =
            csv_rows(out / "explain" / "methods.csv",
                     {"method", "deletion_auc", "insertion_auc", "road_morf", "road_lerf", "images_per_second",
                      "deletion_auc_low", "deletion_auc_high", "insertion_auc_low", "insertion_auc_high"});
        std::set<std::string> names;
        for (const auto& row : methods) {
            names.insert(row[0]);
            for (std::size_t c = 1; c <= 4; ++c) CHECK((num(row[c]) >= 0 && num(row[c]) <= 1));
            CHECK(num(row[5]) > 0);
            // Each mean lies in its bootstrap interval.
            CHECK((num(row[6]) <= num(row[1]) && num(row[1]) <= num(row[7])));
            CHECK((num(row[8]) <= num(row[2]) && num(row[2]) <= num(row[9])));
        }
        CHECK(methods.size() == 11);
        for (const char* method : {"Grad-CAM", "Grad-CAM (logit)", "Grad-CAM++", "HiResCAM", "LayerCAM", "Score-CAM",
                                   "Saliency", "SmoothGrad", "Integrated Gradients", "Random",
                                   "Grad-CAM (random weights)"})
            CHECK_MESSAGE(names.count(method) == 1, method);
    }

    {  // figures and the self-contained report
        for (const char* name : {"class_frequency", "pixel_ratio_histograms", "learning_curves", "per_class_accuracy",
                                 "confusion_matrix", "test_samples", "gradcam_samples", "gradcam_per_class",
                                 "gradcam_shirt", "umap", "explain_methods"}) {
            const fs::path svg = out / "figures" / (std::string(name) + ".svg");
            const fs::path png = out / "figures" / (std::string(name) + ".png");
            CHECK_MESSAGE((fs::exists(svg) || fs::exists(png)), name);
            if (fs::exists(png)) {
                const cnnlite::viz::Image image = cnnlite::viz::read_image(png.string());
                CHECK(image.width() > 300);
                CHECK(image.height() > 100);
            }
            if (fs::exists(svg)) CHECK(contains(read_text(svg), "<svg"));
        }
        const std::string html = read_text(out / "report.html");
        CHECK(contains(html, "<html"));
        CHECK(contains(html, "</html>"));
        // Six SVG charts inline and five PNG figures as data URIs; nothing loaded from outside.
        CHECK(count_of(html, "<figure>") >= 11);
        CHECK(count_of(html, "data:image/png;base64,") >= 5);
        CHECK(count_of(html, "<svg") >= 6);
        CHECK(!contains(html, "src=\"figures/"));
        CHECK(!contains(html, "src=\"http"));
        for (const char* section : {"Data", "Exploratory data analysis", "The network", "Training",
                                    "Evaluation on the test set", "Grad-CAM", "Explanation methods compared", "Timings",
                                    "Coat", "805,962"})
            CHECK_MESSAGE(contains(html, section), section);
    }

    {  // predict classifies PNGs of any size and colour and writes a Grad-CAM overlay
        // A trouser the trained model gets right with confidence, saved as the data set shows it
        // and as a photo would: larger, RGB, dark object on a light background.
        const cnnlite::Model<float> model = cnnlite::load_model<float>((out / "model.safetensors").string());
        const cnnlite::Evaluation e = cnnlite::evaluate(model, data.test);
        std::int64_t pick = -1;
        for (std::int64_t i = 0; i < data.test.size() && pick < 0; ++i)
            if (data.test.labels()[static_cast<std::size_t>(i)] == 1 && e.predicted[static_cast<std::size_t>(i)] == 1 &&
                e.probabilities[i * 10 + 1] > 0.9f)
                pick = i;
        REQUIRE(pick >= 0);
        const cnnlite::viz::Image grey = fixture_image(data.test, pick);
        cnnlite::viz::Image photo = cnnlite::viz::to_rgb(cnnlite::viz::resize_bilinear(grey, 150, 170));
        for (std::size_t k = 0; k < photo.size(); ++k) photo.data()[k] = static_cast<std::uint8_t>(255 - photo.data()[k]);
        cnnlite::viz::Image framed(190, 230, cnnlite::viz::Rgb{250, 248, 245});  // off-white margin around it
        cnnlite::viz::paste(framed, photo, 20, 30);
        const fs::path small_png = tmp.path / "trouser_28.png", photo_png = tmp.path / "trouser photo.png";
        cnnlite::viz::write_png(small_png.string(), grey);
        cnnlite::viz::write_png(photo_png.string(), framed);

        const RunResult p = run({"predict", small_png.string(), photo_png.string(), "--out", out.string()}, tmp.path);
        INFO("predict stdout:\n", p.out, "\nstderr:\n", p.err);
        REQUIRE(p.status == 0);
        CHECK(contains(p.out, small_png.string() + ": Trouser ("));
        CHECK(contains(p.out, photo_png.string() + ": Trouser ("));
        CHECK(count_of(p.out, "[light background: inverted]") == 1);
        // Ten probabilities per image, summing to 100%.
        std::istringstream lines(p.out);
        std::string line;
        std::vector<double> sums;
        int listed = 0;
        while (std::getline(lines, line)) {
            for (const auto& name : class_names())
                if (line.rfind("  " + name + " ", 0) == 0) {
                    if (listed++ % 10 == 0) sums.push_back(0);
                    sums.back() += num(line.substr(line.find_last_of(' ', line.size() - 2) + 1,
                                                   line.size() - line.find_last_of(' ', line.size() - 2) - 2));
                }
        }
        CHECK(listed == 20);
        for (double s : sums) CHECK(s == doctest::Approx(100).epsilon(0.001));
        for (const char* overlay : {"trouser_28_gradcam.png", "trouser photo_gradcam.png"}) {
            const fs::path file = out / "predict" / overlay;
            REQUIRE_MESSAGE(fs::exists(file), file.string());
            CHECK(cnnlite::viz::read_image(file.string()).channels() == 3);
        }
    }

    {  // explain --methods-images 0: no comparison, and none of the earlier explain left behind
        const RunResult e = run({"explain", "--data", fixture_data.string(), "--methods-images", "0", "--out", out.string()},
                                tmp.path);
        INFO("explain stdout:\n", e.out, "\nstderr:\n", e.err);
        REQUIRE(e.status == 0);
        CHECK(contains(e.out, "explanation methods not compared"));
        CHECK(!fs::exists(out / "explain" / "methods.csv"));
        CHECK(!fs::exists(out / "figures" / "explain_methods.png"));
        CHECK(fs::exists(out / "gradcam" / "cams.npy"));
        const std::string html = read_text(out / "report.html");
        CHECK(contains(html, "Grad-CAM"));
        CHECK(!contains(html, "Explanation methods compared"));
    }
}

TEST_CASE("eda statistics match NumPy and SciPy on the fixture") {
    const nlohmann::json ref = read_json(source_dir / "tests" / "fixtures" / "pipeline" / "eda_reference.json");
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    const RunResult r = run({"eda", "--data", fixture_data.string(), "--out", out.string(), "--quiet"}, tmp.path);
    INFO("stdout:\n", r.out, "\nstderr:\n", r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.empty());  // --quiet

    const auto counts = csv_rows(out / "eda" / "class_counts.csv", {"class", "train", "test"});
    REQUIRE(counts.size() == ref["class_counts"].size());
    for (std::size_t c = 0; c < counts.size(); ++c) {
        CHECK(counts[c][0] == ref["class_counts"][c]["class"].get<std::string>());
        CHECK(num(counts[c][1]) == ref["class_counts"][c]["train"].get<double>());
        CHECK(num(counts[c][2]) == ref["class_counts"][c]["test"].get<double>());
    }

    const auto stats = csv_rows(out / "eda" / "pixel_ratio_stats.csv",
                                {"class", "split", "count", "q1", "median", "q3", "max", "mean", "variance"});
    REQUIRE(stats.size() == ref["pixel_ratio_stats"].size());
    for (std::size_t k = 0; k < stats.size(); ++k) {
        const auto& want = ref["pixel_ratio_stats"][k];
        INFO("row ", k, ": ", want.dump());
        CHECK(stats[k][0] == want["class"].get<std::string>());
        CHECK(stats[k][1] == want["split"].get<std::string>());
        CHECK(num(stats[k][2]) == want["count"].get<double>());
        int column = 3;
        for (const char* key : {"q1", "median", "q3", "max", "mean", "variance"}) {
            // Printed in shortest round-trip form: at least 10 significant digits survive.
            CHECK_MESSAGE(close(num(stats[k][static_cast<std::size_t>(column)]), want[key].get<double>(), 1e-12), key);
            ++column;
        }
    }

    const auto anova = csv_rows(out / "eda" / "anova.csv", {"class", "f_value", "p_value"});
    REQUIRE(anova.size() == ref["anova"].size());
    for (std::size_t c = 0; c < anova.size(); ++c) {
        const auto& want = ref["anova"][c];
        INFO(want.dump());
        CHECK(anova[c][0] == want["class"].get<std::string>());
        CHECK(close(num(anova[c][1]), want["f_value"].get<double>(), 1e-10));
        CHECK(close(num(anova[c][2]), want["p_value"].get<double>(), 1e-9));
    }
}

TEST_CASE("train --resume after an interrupted run gives the same model file as an uninterrupted one") {
    TempDir tmp;
    const std::vector<std::string> common = {"--data", fixture_data.string(), "--val", "128", "--limit", "256",
                                             "--batch-size", "32", "--seed", "7", "--quiet"};
    const auto with = [&](std::vector<std::string> args) {
        args.insert(args.end(), common.begin(), common.end());
        return args;
    };
    const fs::path whole = tmp.path / "whole", parts = tmp.path / "parts";

    RunResult r = run(with({"train", "--epochs", "2", "--out", whole.string()}), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    // The "interrupted" run stopped after epoch 1; its checkpoint is all that --resume gets.
    r = run(with({"train", "--epochs", "1", "--out", parts.string()}), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    fs::remove(parts / "model.safetensors");
    fs::remove(parts / "history.csv");
    r = run(with({"train", "--epochs", "2", "--resume", "--out", parts.string()}), tmp.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);

    CHECK(test_support::without_run_ids(read_text(whole / "model.safetensors")) ==
          test_support::without_run_ids(read_text(parts / "model.safetensors")));
    const auto history_a = cnnlite::read_csv((whole / "history.csv").string());
    const auto history_b = cnnlite::read_csv((parts / "history.csv").string());
    REQUIRE(history_a.size() == 3);
    REQUIRE(history_b.size() == 3);
    for (std::size_t e = 0; e < 3; ++e)
        for (std::size_t c = 0; c < 6; ++c) CHECK(history_a[e][c] == history_b[e][c]);  // all but the seconds
    const nlohmann::json ma = read_json(whole / "metrics.json"), mb = read_json(parts / "metrics.json");
    CHECK(ma["best_epoch"] == mb["best_epoch"]);
    CHECK(mb["epochs_run"] == 2);

    // A checkpoint from other settings is refused, not silently mixed in.
    r = run(with({"train", "--epochs", "3", "--resume", "--out", parts.string(), "--seed", "8"}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "seed"));
    // Nothing to resume.
    r = run(with({"train", "--epochs", "2", "--resume", "--out", (tmp.path / "empty").string()}), tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "no checkpoint"));
}

TEST_CASE("errors are clear messages with a non-zero exit status") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    RunResult r = run({"--help"}, tmp.path);
    CHECK(r.status == 0);
    for (const char* word : {"all", "eda", "summary", "train", "evaluate", "explain", "predict"})
        CHECK_MESSAGE(contains(r.out, word), word);
    r = run({"train", "--help"}, tmp.path);
    CHECK(r.status == 0);
    for (const char* option : {"--data", "--out", "--epochs", "--batch-size", "--seed", "--threads", "--val", "--limit",
                               "--model", "--resume", "--quiet"})
        CHECK_MESSAGE(contains(r.out, option), option);

    r = run({"eda", "--data", (tmp.path / "no such folder").string(), "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "Fashion-MNIST not found"));
    CHECK(contains(r.err, "no such folder"));

    r = run({"evaluate", "--data", fixture_data.string(), "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "no trained model"));

    r = run({"train", "--epochs", "0", "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);
    r = run({"train", "--val", "5000", "--data", fixture_data.string(), "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);  // the fixture has only 2,000 training images
    CHECK(contains(r.err, "validation"));

    // predict: an untrained model is enough to check the failure paths.
    cnnlite::save_model(cnnlite::fashion_mnist_cnn<float>(0), (tmp.path / "model.safetensors").string());
    const fs::path not_an_image = tmp.path / "notes.png";
    std::ofstream(not_an_image) << "this is text, not a picture";
    r = run({"predict", not_an_image.string(), "--model", (tmp.path / "model.safetensors").string(), "--out",
             out.string()},
            tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "notes.png"));
    r = run({"predict", (tmp.path / "missing.jpg").string(), "--model", (tmp.path / "model.safetensors").string(),
             "--out", out.string()},
            tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "missing.jpg"));
    r = run({"predict", "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);  // no image given
}

}  // namespace test_pipeline

namespace test_pipeline {

TEST_CASE("export writes the model as ONNX where cnnlite has ONNX, and refuses clearly otherwise") {
    TempDir tmp;
    const fs::path out = tmp.path / "out";
    const fs::path model = tmp.path / "model.safetensors";
    const fs::path onnx = tmp.path / "model.onnx";
    cnnlite::save_model(cnnlite::fashion_mnist_cnn<float>(0), model.string());

    RunResult r = run({"export", "--help"}, tmp.path);
    CHECK(r.status == 0);
    for (const char* option : {"--format", "--to", "--model", "--out"}) CHECK_MESSAGE(contains(r.out, option), option);

    r = run({"export", "--model", model.string(), "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);  // --to is required
    CHECK(contains(r.out + r.err, "--to"));
    r = run({"export", "--format", "tflite", "--to", onnx.string(), "--model", model.string()}, tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.out + r.err, "tflite"));
    r = run({"export", "--format", "keras", "--to", (tmp.path / "model.weights.h5").string(), "--model",
             model.string(), "--out", out.string()},
            tmp.path);
#if defined(CNNLITE_WITH_KERAS) && CNNLITE_WITH_KERAS
    CHECK_MESSAGE(r.status == 0, r.err);
#else
    CHECK(r.status != 0);
    CHECK(contains(r.err, "without the Keras component"));
#endif
    r = run({"export", "--to", tmp.path.string(), "--model", model.string(), "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "is a folder"));
    r = run({"export", "--to", model.string(), "--model", model.string(), "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "is the model file being exported"));
    CHECK(cnnlite::load_model<float>(model.string()).parameter_count() > 0);  // untouched

    r = run({"export", "--to", onnx.string(), "--model", model.string(), "--out", out.string()}, tmp.path);
#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX
    REQUIRE_MESSAGE(r.status == 0, r.err);
    // The same bytes as the library's own export of the same model file.
    const fs::path expected = tmp.path / "expected.onnx";
    cnnlite::save_onnx(cnnlite::load_model<float>(model.string()), expected.string());
    CHECK(read_text(onnx) == read_text(expected));
#else
    CHECK(r.status != 0);
    CHECK(contains(r.err, "built without ONNX"));
    CHECK(contains(r.err, "CNNLITE_WITH_ONNX=ON"));
    CHECK(!fs::exists(onnx));
#endif
    CHECK(!fs::exists(out));  // export reads a run's folder and never writes into it

    // Keras weights are recognised by content; a build without the Keras component says so.
    const fs::path keras = source_dir / "tests" / "fixtures" / "keras" / "keras3.weights.h5";
    r = run({"evaluate", "--model", keras.string(), "--data", fixture_data.string(), "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);
#if !(defined(CNNLITE_WITH_KERAS) && CNNLITE_WITH_KERAS)
    CHECK(contains(r.err, "holds Keras weights"));
    CHECK(contains(r.err, "CNNLITE_WITH_KERAS=ON"));
#else
    CHECK(contains(r.err, "Keras weights '"));  // the fixture is not the paper's network
#endif

    // No model: the message says where it looked.
    r = run({"export", "--to", onnx.string(), "--out", out.string()}, tmp.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "no trained model"));
}

}  // namespace test_pipeline
