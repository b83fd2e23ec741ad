// OUT/report.html: one self-contained page laid out like the paper — data, exploratory
// analysis, model, training, evaluation, Grad-CAM — built from the files the stages wrote
// (CSV, JSON, figures), so any stage can refresh it. A stage that has not run yet shows as
// such instead of failing the page.
#include <cmath>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "cnnlite/core/files.hpp"
#include "cnnlite/core/version.hpp"
#include "cnnlite/io/csv.hpp"
#include "cnnlite/nn/summary.hpp"
#include "cnnlite/viz/report.hpp"

#include "pipeline.hpp"

namespace fm {

namespace {

using cnnlite::viz::Cell;
using cnnlite::viz::Report;
using cnnlite::viz::ReportTable;
using Rows = std::vector<std::vector<std::string>>;

bool file_exists(const fs::path& p) {
    std::error_code ec;
    return fs::exists(p, ec);
}

/// The CSV's data rows (header checked against `columns`); empty when the file is missing.
Rows read_table(const fs::path& path, const std::vector<std::string>& columns) {
    if (!file_exists(path)) return {};
    Rows rows = cnnlite::read_csv(path.string());
    cnnlite::check(!rows.empty() && rows[0] == columns, "report: '", path.string(), "' does not have the columns ",
                   nlohmann::json(columns).dump());
    rows.erase(rows.begin());
    return rows;
}

/// history.csv's rows (epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds);
/// a history written before the learning-rate column gets an empty one.
Rows read_history(const fs::path& path) {
    const std::vector<std::string> old_columns = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"};
    if (!file_exists(path)) return {};
    Rows rows = cnnlite::read_csv(path.string());
    if (!rows.empty() && rows[0] == old_columns) {
        rows.erase(rows.begin());
        for (auto& r : rows) r.insert(r.begin() + 5, "");
        return rows;
    }
    return read_table(path, {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"});
}

/// The recipe the run was trained with, as metrics.json describes it (runs from before --recipe:
/// the paper's).
std::string recipe_text(const nlohmann::json& metrics) {
    const std::string name = metrics.contains("recipe") && metrics["recipe"].is_object()
                                 ? metrics["recipe"].value("name", std::string()) + " recipe: "
                                 : std::string();
    return name + metrics.value("recipe_text", std::string("Adam lr 0.001 (Keras' defaults: beta1 0.9, beta2 0.999, "
                                                           "epsilon 1e-7); 50 epochs of batch 64"));
}

double number(const std::string& text) {
    try {
        return std::stod(text);
    } catch (const std::exception&) {
        return std::nan("");
    }
}

std::string percent(double fraction, int decimals = 2) { return fixed(100 * fraction, decimals) + "%"; }

/// Adds figures/<name>.svg or .png when present, a note otherwise.
void add_figure(Report& report, const Paths& paths, const std::string& name, const std::string& caption,
                const std::string& missing) {
    for (const char* ext : {".svg", ".png"}) {
        const fs::path file = paths.figure(name, ext);
        if (file_exists(file)) {
            report.figure_file(file.string(), caption);
            return;
        }
    }
    report.paragraph("[" + name + ": " + missing + "]");
}

/// A small text file of the run (the model summary), read like any untrusted file.
std::string read_text(const fs::path& path) {
    const std::vector<std::uint8_t> bytes = cnnlite::InputFile(path.string(), "text file").read_all(1 << 20);
    return std::string(bytes.begin(), bytes.end());
}

std::string json_text(const nlohmann::json& j, const char* key) {
    if (!j.contains(key)) return "?";
    const auto& v = j.at(key);
    return v.is_string() ? v.get<std::string>() : v.dump();
}

/// What the report is made from: the program's settings and the files of the run's folder.
struct ReportSources {
    const Settings& settings;
    Paths paths;
    nlohmann::json metrics;  ///< metrics.json, empty when it belongs to another run
    nlohmann::json run;      ///< run.json
    nlohmann::json stages;   ///< run.json's "stages"
};

/// The run: the settings of its training and the time each stage took.
void add_run_section(Report& report, const ReportSources& src) {
    const Settings& s = src.settings;
    const nlohmann::json& metrics = src.metrics;
    const nlohmann::json& run = src.run;
    const nlohmann::json& stages = src.stages;
    const auto stage_seconds = [&](const char* stage) -> std::string {
        return stages.contains(stage) ? format_seconds(stages[stage].value("seconds", 0.0)) : "not run";
    };
    report.section("The run");
    std::vector<std::pair<std::string, std::string>> settings = {
        {"output folder", s.out},
        {"run", json_text(run, "run_id")},
        {"cnnlite", cnnlite::version()},
        {"this report by", s.command_line},
    };
    if (stages.contains("train")) {
        const auto& t = stages["train"];
        if (t.contains("command") && t["command"] != s.command_line)
            settings.push_back({"trained by", json_text(t, "command")});
        settings.push_back({"data", json_text(t, "data_folder")});
        settings.push_back({"epochs", json_text(t, "epochs")});
        settings.push_back({"batch size", json_text(t, "batch_size")});
        settings.push_back({"training images", json_text(t, "train_images")});
        settings.push_back({"validation images", json_text(t, "validation_images") + " (the first of the training file)"});
        settings.push_back({"seed", json_text(t, "seed")});
        settings.push_back({"threads", json_text(t, "threads")});
        settings.push_back({"network", metrics.value("arch", std::string("paper"))});
        settings.push_back({"recipe", recipe_text(metrics)});
        if (t.value("resumed_after_epoch", 0) > 0)
            settings.push_back({"resumed", "after epoch " + json_text(t, "resumed_after_epoch")});
    } else if (stages.contains("eda")) {
        settings.push_back({"data", json_text(stages["eda"], "data_folder")});
    }
    report.settings("Settings", settings);
    std::vector<std::pair<std::string, std::string>> timings;
    for (const char* stage : {"eda", "summary", "train", "evaluate", "explain"}) {
        std::string text = stage_seconds(stage);
        if (stages.contains(stage)) {
            text += " (finished " + json_text(stages[stage], "finished");
            if (stages[stage].contains("peak_memory_mb"))
                text += ", process peak memory " + fixed(stages[stage]["peak_memory_mb"].get<double>(), 0) + " MB";
            text += ")";
        }
        timings.push_back({stage, text});
    }
    if (metrics.contains("train_seconds")) {
        const double epochs = metrics.value("epochs_run", 1.0);
        timings.push_back({"training, per epoch", format_seconds(metrics["train_seconds"].get<double>() / epochs) +
                                                      " on average (training and validation)"});
        timings.push_back({"training throughput", with_commas(std::llround(metrics.value("train_images_per_second", 0.0))) +
                                                      " images/s"});
    }
    if (stages.contains("explain") && stages["explain"].contains("gradcam_images_per_second"))
        timings.push_back({"Grad-CAM throughput",
                           with_commas(std::llround(stages["explain"]["gradcam_images_per_second"].get<double>())) +
                               " images/s (batched)"});
    report.settings("Timings", timings);
}

/// 1. The data set: images per class.
void add_data_section(Report& report, const ReportSources& src) {
    const Paths& paths = src.paths;
    report.section("Data");
    report.paragraph(
        "Fashion-MNIST (Zalando Research): grey 28x28 images of 10 kinds of clothing, 60,000 for training and 10,000 "
        "for testing. The network sees pixel / 255. Validation = the first images of the training file; training = "
        "the rest.");
    const Rows counts = read_table(paths.class_counts(), {"class", "train", "test"});
    if (!counts.empty()) {
        ReportTable t{"Images per class", {"label", "class", "train", "test"}, {}};
        for (std::size_t i = 0; i < counts.size(); ++i)
            t.rows.push_back({Cell(static_cast<int>(i)), counts[i][0], Cell(static_cast<long long>(number(counts[i][1]))),
                              Cell(static_cast<long long>(number(counts[i][2])))});
        report.table(t);
    }
    add_figure(report, paths, "class_frequency", "Images per class in the training and test files.", "run `eda`");
}

/// 2. Exploratory analysis: pixel-ratio statistics, ANOVA, UMAP.
void add_eda_section(Report& report, const ReportSources& src) {
    const Paths& paths = src.paths;
    const nlohmann::json& stages = src.stages;
    report.section("Exploratory data analysis");
    report.paragraph(
        "Instance size: for every image the non-background ratio = pixels whose raw value is above 0, divided by "
        "784. Quartiles by linear interpolation between order statistics; variance over n.");
    const Rows stats = read_table(paths.pixel_ratio_stats(),
                                  {"class", "split", "count", "q1", "median", "q3", "max", "mean", "variance"});
    if (!stats.empty()) {
        ReportTable t{"Non-background pixel ratio per class and split",
                      {"class", "split", "count", "Q1", "median", "Q3", "max", "mean", "variance"}, {}};
        for (const auto& r : stats)
            t.rows.push_back({r[0], r[1], Cell(static_cast<long long>(number(r[2]))), Cell::fixed(number(r[3]), 4),
                              Cell::fixed(number(r[4]), 4), Cell::fixed(number(r[5]), 4), Cell::fixed(number(r[6]), 4),
                              Cell::fixed(number(r[7]), 4), Cell(number(r[8]), 4)});
        report.table(t);
    } else {
        report.paragraph("[pixel-ratio statistics: run `eda`]");
    }
    add_figure(report, paths, "pixel_ratio_histograms",
               "Histograms of the non-background pixel ratio (30 bins), one translucent series per class.", "run `eda`");
    const Rows anova = read_table(paths.anova(), {"class", "f_value", "p_value"});
    if (!anova.empty()) {
        ReportTable t{"One-way ANOVA of the ratios, training against test set, per class",
                      {"class", "F", "p-value", "differs at 5%?"}, {}};
        std::string significant;
        for (const auto& r : anova) {
            const double p = number(r[2]);
            t.rows.push_back({r[0], Cell(number(r[1]), 4), Cell(p, 4), p < 0.05 ? "yes" : "no"});
            if (p < 0.05) significant += (significant.empty() ? "" : ", ") + r[0];
        }
        report.table(t);
        report.paragraph("Classes whose training and test ratios differ at the 5% level: " +
                         (significant.empty() ? std::string("none") : significant) +
                         ". (The paper found only Coat, p ~ 0.006; every other class p > 0.09.)");
    }
    report.heading("UMAP of the training images");
    if (file_exists(paths.umap())) {
        std::string timing;
        if (stages.contains("eda") && stages["eda"].contains("umap_seconds"))
            timing = " (computed in " + format_seconds(stages["eda"]["umap_seconds"].get<double>()) + ")";
        report.paragraph("UMAP with the reference implementation's defaults (15 neighbours, min_dist 0.1, euclidean) "
                         "on the raw pixels" + timing + "; coordinates in eda/umap.csv. The paper reads off it that "
                         "sneaker/sandal, dress/T-shirt and coat/pullover lie close together.");
        add_figure(report, paths, "umap", "UMAP of the training images, coloured by class.", "figure missing");
    } else {
        report.paragraph("[UMAP: run `eda`]");
    }
}

/// 3. The network (--arch; the paper's Figure 4 by default).
void add_model_section(Report& report, const ReportSources& src) {
    const Settings& s = src.settings;
    const Paths& paths = src.paths;
    const std::string arch = src.metrics.value("arch", s.arch_or_default());
    const Architecture& network = architecture(arch);
    report.section("The network");
    report.paragraph("--arch " + network.name + ". " + network.description + " Shapes are NCHW.");
    if (src.metrics.contains("recipe_text")) report.paragraph("Trained with the " + recipe_text(src.metrics) + ".");
    report.preformatted(file_exists(paths.model_summary()) ? read_text(paths.model_summary())
                                                      : cnnlite::summary(network.build(s.seed)));
}

/// 4. Training: the kept epoch, the learning curves, the history.
void add_training_section(Report& report, const ReportSources& src) {
    const Paths& paths = src.paths;
    const nlohmann::json& metrics = src.metrics;
    report.section("Training");
    const bool paper = metrics.value("arch", std::string("paper")) == "paper";
    report.paragraph(recipe_text(metrics) + "; the training set shuffled every epoch; after every epoch the " +
                     "validation loss (of the weight average, when the recipe keeps one) decides whether the weights " +
                     "are kept" + (paper ? " (the paper's best epoch was 39 of 50)." : "."));
    if (metrics.contains("best_epoch")) {
        report.paragraph("Kept the weights of epoch " + json_text(metrics, "best_epoch") + " of " +
                         json_text(metrics, "epochs_run") + ": validation loss " +
                         fixed(metrics.value("best_val_loss", std::nan("")), 4) + ", validation accuracy " +
                         percent(metrics.value("best_val_accuracy", std::nan(""))) + ".");
    }
    add_figure(report, paths, "learning_curves", "Loss and accuracy per epoch, training and validation.",
               "run `train`");
    const Rows history = read_history(paths.history());
    if (!history.empty()) {
        ReportTable t{"History (history.csv)",
                      {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning rate", "seconds"},
                      {}};
        for (const auto& r : history)
            t.rows.push_back({Cell(static_cast<long long>(number(r[0]))), Cell::fixed(number(r[1]), 4),
                              Cell::fixed(number(r[2]), 4), Cell::fixed(number(r[3]), 4), Cell::fixed(number(r[4]), 4),
                              r[5].empty() ? Cell("") : Cell(number(r[5]), 3), Cell::fixed(number(r[6]), 1)});
        report.table(t);
    }
}

/// 5. Evaluation on the test set.
void add_evaluation_section(Report& report, const ReportSources& src) {
    const Paths& paths = src.paths;
    const nlohmann::json& metrics = src.metrics;
    const auto& names = cnnlite::fashion_mnist_class_names();
    report.section("Evaluation on the test set");
    if (metrics.contains("test_accuracy")) {
        std::string text = "Test accuracy of the kept weights: " + percent(metrics["test_accuracy"].get<double>()) +
                           (metrics.value("test_flip_tta", false) ? " with flip test-time augmentation" : "") +
                           " (the paper: 91.2%); test loss " + fixed(metrics["test_loss"].get<double>(), 4);
        if (metrics.contains("top2_accuracy"))
            text += "; top-2 accuracy " + percent(metrics["top2_accuracy"].get<double>()) + ", macro F1 " +
                    fixed(metrics.value("macro_f1", std::nan("")), 4) + ", expected calibration error " +
                    fixed(metrics.value("expected_calibration_error", std::nan("")), 4);
        report.paragraph(text + ".");
        const auto acc = metrics["per_class_accuracy"].get<std::vector<double>>();
        const auto column = [&](const char* key) {
            return metrics.contains(key) ? metrics[key].get<std::vector<double>>() : std::vector<double>();
        };
        const std::vector<double> precision = column("per_class_precision"), f1 = column("per_class_f1");
        ReportTable t{"Accuracy per class", {"label", "class", "accuracy = recall (%)", "precision (%)", "F1"}, {}};
        std::size_t weakest = 0;
        for (std::size_t c = 0; c < acc.size() && c < names.size(); ++c) {
            t.rows.push_back({Cell(static_cast<int>(c)), names[c], Cell::fixed(100 * acc[c], 2),
                              c < precision.size() ? Cell::fixed(100 * precision[c], 2) : Cell(""),
                              c < f1.size() ? Cell::fixed(f1[c], 3) : Cell("")});
            if (acc[c] < acc[weakest]) weakest = c;
        }
        report.table(t);
        report.paragraph("Weakest class: " + names[weakest] + " (" + percent(acc[weakest], 1) +
                         "); the paper's weakest was Shirt at ~73%.");
    } else {
        report.paragraph("[test results: run `evaluate`]");
    }
    add_figure(report, paths, "per_class_accuracy", "Test accuracy per class.", "run `evaluate`");
    add_figure(report, paths, "confusion_matrix", "Confusion matrix: rows are true labels, columns predictions.",
               "run `evaluate`");
    add_figure(report, paths, "test_samples",
               "50 random test images titled \"predicted (true)\": green when right, red when wrong.",
               "run `evaluate`");
}

/// 6. Grad-CAM as the paper computes it.
void add_gradcam_section(Report& report, const ReportSources& src) {
    const Paths& paths = src.paths;
    const nlohmann::json explain = src.stages.contains("explain") ? src.stages["explain"] : nlohmann::json::object();
    const std::string layer = explain.contains("cam_layer")
                                  ? "the output of layer " + json_text(explain, "cam_layer") + " (" +
                                        json_text(explain, "cam_layer_output") + ")"
                                  : "the convolution's output after its ReLU";
    report.section("Grad-CAM");
    report.paragraph(
        "Grad-CAM (Selvaraju et al., 2017) as in the paper: the softmax probability of the predicted class is "
        "differentiated with respect to " + layer + ", the network's last feature maps; each channel is "
        "weighted by the mean of its gradient, the weighted sum goes through a ReLU and is divided by its maximum "
        "and upsampled to 28x28. Shown in 'magma' at alpha 0.5 over the grey image. The maps are in "
        "gradcam/cams.npy, indexed by gradcam/cams_index.csv.");
    add_figure(report, paths, "gradcam_samples", "Grad-CAM of 50 random test images, \"predicted (true)\".",
               "run `explain`");
    add_figure(report, paths, "gradcam_per_class",
               "Per class (rows): 5 correctly classified and 5 misclassified test images with their Grad-CAM.",
               "run `explain`");
    add_figure(report, paths, "gradcam_shirt", "Shirts: correctly classified against misclassified.",
               "run `explain`");
}

/// 7. The explanation methods compared (once `explain` has run).
void add_methods_section(Report& report, const ReportSources& src) {
    const Paths& paths = src.paths;
    const nlohmann::json& stages = src.stages;
    const fs::path methods_csv = paths.out / "explain" / "methods.csv";
    if (file_exists(methods_csv)) {
        report.section("Explanation methods compared");
        std::string sample = "a sample of random test images";
        if (stages.contains("explain") && stages["explain"].contains("methods_images"))
            sample = json_text(stages["explain"], "methods_images") + " random test images (computed in " +
                     format_seconds(stages["explain"].value("methods_seconds", 0.0)) + ")";
        report.paragraph(
            "Every explanation method of cnnlite on " + sample + ", each explaining the predicted class. Deletion: "
            "the probability of that class as the most important pixels are blacked out, area under the curve "
            "(lower = more faithful); insertion: as they are revealed from a blurred image (higher = more faithful); "
            "ROAD: mean probability with the most (MoRF, lower is better) or least (LeRF, higher is better) relevant "
            "pixels imputed from their neighbours. Every method differentiates the softmax probability (the paper's "
            "choice), except Grad-CAM (logit), the same Grad-CAM on the class logit. Two baselines: Random "
            "(random maps) and Grad-CAM (random weights), the maps of a copy of the network with re-drawn weights "
            "(Adebayo et al. 2018), scored on the trained network. The intervals are 95% percentile-bootstrap "
            "intervals of the mean over the images. Table in explain/methods.csv.");
        const Rows methods = read_table(methods_csv, methods_columns());
        ReportTable t{"Faithfulness of the explanation methods (deletion: lower is better; insertion: higher is better)",
                      {"method", "deletion AUC", "95% interval", "insertion AUC", "95% interval", "ROAD MoRF",
                       "ROAD LeRF", "images/s"},
                      {}};
        const auto interval = [](const std::string& low, const std::string& high) {
            return "[" + fixed(number(low), 3) + ", " + fixed(number(high), 3) + "]";
        };
        for (const auto& r : methods)
            t.rows.push_back({r[0], Cell(number(r[1]), 4), interval(r[6], r[7]), Cell(number(r[2]), 4),
                              interval(r[8], r[9]), Cell(number(r[3]), 4), Cell(number(r[4]), 4),
                              Cell(number(r[5]), 4)});
        report.table(t);
        add_figure(report, paths, "explain_methods", "The same test images under each explanation method.",
                   "figure missing");
    }
}

}  // namespace

void write_report(const Settings& s) {
    ReportSources src{s, Paths(s), read_json_object(Paths(s).metrics()), read_json_object(Paths(s).run_log()), {}};
    // Results of another run than the folder's (a run started over them and not finished) are
    // not this run's: leave them out rather than describe them as its own.
    if (src.metrics.contains("run_id") && src.run.contains("run_id") && src.metrics["run_id"] != src.run["run_id"])
        src.metrics = nlohmann::json::object();
    src.stages = src.run.value("stages", nlohmann::json::object());

    Report report("Fashion-MNIST image classification using a CNN and Grad-CAM — reproduced with cnnlite");
    report.paragraph(
        "This page rebuilds, step by step, the pipeline of the paper \"Fashion-MNIST Image Classification using CNN "
        "and Grad-CAM\" (Kim, Li, Bak; Texas A&M, ECEN 758, 2023), which used TensorFlow/Keras. Every number "
        "below comes from the files next to this page (CSV, JSON, .npy); every figure is in figures/." +
            (src.metrics.value("arch", std::string("paper")) == "paper"
                 ? std::string()
                 : " This run trains --arch " + src.metrics.value("arch", std::string()) +
                       " instead of the paper's network: the pipeline is the paper's, the network and its training "
                       "recipe are not."));
    add_run_section(report, src);
    add_data_section(report, src);
    add_eda_section(report, src);
    add_model_section(report, src);
    add_training_section(report, src);
    add_evaluation_section(report, src);
    add_gradcam_section(report, src);
    add_methods_section(report, src);
    report.write(src.paths.report().string());
}

}  // namespace fm
