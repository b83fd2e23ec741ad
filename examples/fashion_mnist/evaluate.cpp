// Stage `evaluate`: the kept weights on the 10,000 test images (with flip test-time
// augmentation when the model's recipe or --tta asks for it) — accuracy, loss, per-class
// accuracy, precision, recall, F1, top-2 accuracy, calibration error, the confusion matrix
// (rows = true label) and 50 random test images titled "pred (true)". Results are added to OUT/metrics.json, keeping what `train` wrote there.
#include <cstdio>
#include <string>
#include <vector>

#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/viz/bar_chart.hpp"
#include "cnnlite/viz/grid.hpp"
#include "cnnlite/viz/heatmap_chart.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "cnnlite/viz/svg.hpp"

#include "pipeline.hpp"

namespace fm {

void run_evaluate(const Settings& s) {
    const double start = now_seconds();
    const TestStage stage = open_test_stage(s, "evaluate");
    const ModelOutputs& target = stage.target;
    const Paths& paths = target.paths;
    const cnnlite::Model<float>& model = stage.model;
    const cnnlite::FashionMnist& data = stage.data;
    const auto& names = cnnlite::fashion_mnist_class_names();
    ensure_dir(paths.figures());

    cnnlite::EvaluateOptions options;
    options.flip_tta = recorded_recipe(s, target.model).flip_tta;
    say(s, "evaluate", "classifying the " + with_commas(data.test.size()) + " test images" +
                           (options.flip_tta ? " (each averaged with its mirror image: flip test-time augmentation)" : ""));
    const cnnlite::Evaluation eval = cnnlite::evaluate(model, data.test, options);

    // Test results join what `train` wrote about the same run, and nothing else.
    nlohmann::json metrics = read_json_object(paths.metrics());
    if (metrics.value("run_id", std::string()) != target.run_id) metrics = nlohmann::json::object();
    if (!target.run_id.empty()) metrics["run_id"] = target.run_id;
    metrics["test_accuracy"] = eval.accuracy;
    metrics["test_loss"] = eval.loss;
    metrics["test_flip_tta"] = options.flip_tta;
    metrics["per_class_accuracy"] = eval.per_class_accuracy;
    metrics["confusion_matrix"] = eval.confusion.rows();
    metrics["per_class_precision"] = eval.confusion.precision();
    metrics["per_class_recall"] = eval.confusion.recall();
    metrics["per_class_f1"] = eval.confusion.f1();
    metrics["macro_f1"] = eval.confusion.macro_f1();
    metrics["top2_accuracy"] = cnnlite::top_k_accuracy(eval.probabilities, data.test.labels(), 2);
    metrics["expected_calibration_error"] = cnnlite::expected_calibration_error(eval.probabilities, data.test.labels());
    metrics["test_images"] = data.test.size();
    metrics["evaluated_model"] = target.own ? target.model.string() : fs::absolute(target.model).string();
    if (!metrics.contains("class_names")) metrics["class_names"] = names;
    write_json(paths.metrics(), metrics);

    if (!s.quiet) {
        std::printf("[evaluate] test accuracy %.2f%% (top-2 %.2f%%), test loss %.4f, macro F1 %.4f, ECE %.4f\n",
                    100 * eval.accuracy, 100 * metrics["top2_accuracy"].get<double>(), eval.loss,
                    metrics["macro_f1"].get<double>(), metrics["expected_calibration_error"].get<double>());
        const auto precision = eval.confusion.precision();
        const auto f1 = eval.confusion.f1();
        std::printf("[evaluate]   %-12s %8s %9s %6s\n", "class", "accuracy", "precision", "F1");
        for (std::size_t c = 0; c < names.size(); ++c)
            std::printf("[evaluate]   %-12s %7.2f%% %8.2f%% %6.3f\n", names[c].c_str(), 100 * eval.per_class_accuracy[c],
                        100 * precision[c], f1[c]);
        std::fflush(stdout);
    }

    // Per-class accuracy, value on each bar.
    {
        cnnlite::viz::BarChart chart;
        chart.title = "Test accuracy per class";
        chart.x_label = "class";
        chart.y_label = "accuracy (%)";
        chart.categories = names;
        std::vector<double> percent;
        for (double a : eval.per_class_accuracy) percent.push_back(100 * a);
        chart.series = {{"accuracy", percent, cnnlite::viz::tab10(0)}};
        chart.value_decimals = 1;
        chart.value_suffix = "%";
        chart.y_max = 100;
        chart.width = 1000;
        chart.height = 460;
        cnnlite::viz::write_svg(paths.figure("per_class_accuracy", ".svg").string(), cnnlite::viz::to_svg(chart));
    }
    // Confusion matrix with counts.
    {
        cnnlite::viz::HeatmapChart chart;
        chart.title = "Confusion matrix (test set)";
        chart.x_label = "predicted label";
        chart.y_label = "true label";
        chart.row_labels = names;
        chart.column_labels = names;
        for (const auto& row : eval.confusion.rows()) {
            std::vector<double> values;
            for (auto v : row) values.push_back(static_cast<double>(v));
            chart.values.push_back(values);
        }
        chart.width = 860;
        chart.height = 760;
        cnnlite::viz::write_svg(paths.figure("confusion_matrix", ".svg").string(), cnnlite::viz::to_svg(chart));
    }
    // 50 random test images, "pred (true)", green when right, red when wrong.
    {
        const auto chosen = choose_indices(data.test.size(), 50, s.seed, sample_stream);
        std::vector<cnnlite::viz::GridTile> tiles;
        int right = 0;
        for (std::int64_t i : chosen) {
            const int truth = data.test.labels()[static_cast<std::size_t>(i)];
            const int predicted = eval.predicted[static_cast<std::size_t>(i)];
            right += truth == predicted;
            tiles.push_back({cnnlite::viz::grey_image(data.test.pixels().rows(i, 1)), pred_true_title(predicted, truth),
                             truth == predicted ? cnnlite::viz::colors::green : cnnlite::viz::colors::red});
        }
        cnnlite::viz::GridOptions options;
        options.columns = 10;
        options.scale = 4;
        options.title = "Random test images: predicted (true) label — " + std::to_string(right) + " of " +
                        std::to_string(chosen.size()) + " right";
        cnnlite::viz::write_png(paths.figure("test_samples", ".png").string(), cnnlite::viz::make_grid(tiles, options));
    }

    const double seconds = now_seconds() - start;
    record_stage(s, paths, "evaluate", seconds,
                 {{"model", target.model.string()}, {"data_folder", data.files.folder.string()}});
    say(s, "evaluate", "metrics -> " + paths.metrics().string() + "; done in " + format_seconds(seconds));
}

}  // namespace fm
