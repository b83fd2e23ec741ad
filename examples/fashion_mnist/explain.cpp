// Stage `explain`: the paper's Grad-CAM figures. Every map drawn is also saved, in figure
// order, to OUT/gradcam/cams.npy ([N, 28, 28] float32) with OUT/gradcam/cams_index.csv telling
// which test image each row belongs to. The maps of all figures come from one batched call.
// Then the library's explanation methods are compared (explain_methods.cpp).
#include <algorithm>
#include <string>
#include <vector>

#include "cnnlite/io/csv.hpp"
#include "cnnlite/io/npy.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/viz/grid.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "cnnlite/viz/overlay.hpp"

#include "pipeline.hpp"

namespace fm {

namespace {

constexpr int shirt_label = 6;
constexpr std::int64_t random_samples = 50;   // the images of evaluate's test_samples figure
constexpr std::int64_t per_class_each = 5;    // per class: this many correct, then as many misclassified
constexpr std::int64_t shirts_each = 10;      // shirts: a row of correct ones, a row of misclassified
constexpr int grid_columns = 10;

/// One Grad-CAM figure: its grid slots in reading order, each a test image (or -1 for an empty
/// slot), and the row of cams.npy that holds each slot's map (-1 for an empty slot).
struct CamFigure {
    std::string name;                      ///< figures/<name>.png
    std::string title;
    std::vector<std::string> row_labels;
    std::vector<std::int64_t> test_index;  ///< per slot
    std::vector<std::int64_t> cam_row;     ///< per slot, filled by assign_cam_rows()
};

/// A tile for a grid slot with no image (a class with fewer misclassified images than slots).
cnnlite::viz::GridTile empty_tile() {
    return {cnnlite::viz::Image(28, 28, cnnlite::viz::colors::white), "(none)", cnnlite::viz::colors::grey};
}

/// The paper's three Grad-CAM figures with their images: random test images, each class's
/// correct and misclassified ones, and shirts. Every choice is keyed by the seed.
std::vector<CamFigure> choose_figures(const Settings& s, const cnnlite::Dataset& test, const cnnlite::Evaluation& eval) {
    const auto label = [&](std::int64_t i) { return test.labels()[static_cast<std::size_t>(i)]; };
    const auto predicted = [&](std::int64_t i) { return eval.predicted[static_cast<std::size_t>(i)]; };
    // `count` test images of class `cls`, correctly classified or not; -1 pads a short supply.
    const auto pick = [&](int cls, bool correct, std::int64_t count, std::uint64_t stream) {
        std::vector<std::int64_t> pool;
        for (std::int64_t i = 0; i < test.size(); ++i)
            if (label(i) == cls && (predicted(i) == cls) == correct) pool.push_back(i);
        std::vector<std::int64_t> chosen;
        for (std::int64_t k : choose_indices(static_cast<std::int64_t>(pool.size()), count, s.seed, stream))
            chosen.push_back(pool[static_cast<std::size_t>(k)]);
        chosen.resize(static_cast<std::size_t>(count), -1);
        return chosen;
    };
    const auto append = [](std::vector<std::int64_t>& to, const std::vector<std::int64_t>& more) {
        to.insert(to.end(), more.begin(), more.end());
    };

    CamFigure samples{"gradcam_samples",
                      "Grad-CAM of 50 random test images (the images of test_samples): predicted (true) label",
                      {}, choose_indices(test.size(), random_samples, s.seed, sample_stream), {}};
    CamFigure per_class{"gradcam_per_class",
                        "Grad-CAM per class: 5 correctly classified (left) and 5 misclassified (right) test images",
                        {}, {}, {}};
    for (int c = 0; c < 10; ++c) {
        per_class.row_labels.push_back(cnnlite::fashion_mnist_class_names()[static_cast<std::size_t>(c)]);
        append(per_class.test_index, pick(c, true, per_class_each, per_class_stream * 1000 + 2 * c));
        append(per_class.test_index, pick(c, false, per_class_each, per_class_stream * 1000 + 2 * c + 1));
    }
    CamFigure shirts{"gradcam_shirt", "Shirts: correctly classified (top) and misclassified (bottom), predicted (true) label",
                     {"correct", "misclassified"}, pick(shirt_label, true, shirts_each, shirt_stream * 1000), {}};
    append(shirts.test_index, pick(shirt_label, false, shirts_each, shirt_stream * 1000 + 1));
    return {samples, per_class, shirts};
}

/// Gives every non-empty slot of the figures, in figure order, the next row of cams.npy;
/// returns the test image of each row.
std::vector<std::int64_t> assign_cam_rows(std::vector<CamFigure>& figures) {
    std::vector<std::int64_t> rows;
    for (CamFigure& figure : figures) {
        figure.cam_row.clear();
        for (std::int64_t i : figure.test_index) {
            figure.cam_row.push_back(i < 0 ? -1 : static_cast<std::int64_t>(rows.size()));
            if (i >= 0) rows.push_back(i);
        }
    }
    return rows;
}

}  // namespace

void run_explain(const Settings& s) {
    const double start = now_seconds();
    const TestStage stage = open_test_stage(s, "explain");
    const ModelOutputs& target = stage.target;
    const Paths& paths = target.paths;
    const cnnlite::Model<float>& model = stage.model;
    const cnnlite::Dataset& test = stage.data.test;
    ensure_dir(paths.gradcam());
    ensure_dir(paths.figures());

    say(s, "explain", "classifying the test images to pick correct and misclassified examples");
    const cnnlite::Evaluation eval = cnnlite::evaluate(model, test);
    const auto label = [&](std::int64_t i) { return test.labels()[static_cast<std::size_t>(i)]; };
    const auto predicted = [&](std::int64_t i) { return eval.predicted[static_cast<std::size_t>(i)]; };

    // One batched Grad-CAM call for the maps of every figure: row r of cams.npy is test image
    // rows[r], and each figure slot knows its row.
    std::vector<CamFigure> figures = choose_figures(s, test, eval);
    const std::vector<std::int64_t> rows = assign_cam_rows(figures);
    const auto n = static_cast<std::int64_t>(rows.size());
    cnnlite::Tensor<float> batch = cnnlite::Tensor<float>::uninitialized(cnnlite::Shape{n, 1, 28, 28});
    for (std::int64_t r = 0; r < n; ++r)
        std::copy_n(test.images().data() + rows[static_cast<std::size_t>(r)] * 784, 784, batch.data() + r * 784);

    say(s, "explain", "Grad-CAM of " + std::to_string(n) + " test images (one batched call)");
    const double cam_start = now_seconds();
    const GradCams cams = paper_gradcam(model, batch);
    const double cam_seconds = now_seconds() - cam_start;
    for (std::int64_t r = 0; r < n; ++r)
        cnnlite::check(cams.predicted[static_cast<std::size_t>(r)] == predicted(rows[static_cast<std::size_t>(r)]),
                       "explain: Grad-CAM's predicted class of test image ", rows[static_cast<std::size_t>(r)],
                       " differs from evaluate()'s");

    cnnlite::save_npy(paths.cams().string(), cams.cams);
    std::vector<std::vector<cnnlite::CsvCell>> index_rows;
    for (std::int64_t r = 0; r < n; ++r) {
        const std::int64_t i = rows[static_cast<std::size_t>(r)];
        index_rows.push_back({r, i, label(i), predicted(i)});
    }
    cnnlite::write_csv(paths.cams_index().string(), {"row", "test_index", "true_label", "predicted_label"}, index_rows);
    say(s, "explain", "maps -> " + paths.cams().string() + " and " + paths.cams_index().string());

    cnnlite::viz::OverlayOptions overlay;  // magma at alpha 0.5, as the paper
    overlay.heat_min = 0.0;
    overlay.heat_max = 1.0;
    for (const CamFigure& figure : figures) {
        std::vector<cnnlite::viz::GridTile> tiles;
        for (std::size_t slot = 0; slot < figure.test_index.size(); ++slot) {
            const std::int64_t i = figure.test_index[slot];
            if (i < 0) {
                tiles.push_back(empty_tile());
                continue;
            }
            tiles.push_back({cnnlite::viz::overlay(test.images().rows(i, 1), cams.cams.rows(figure.cam_row[slot], 1), overlay),
                             pred_true_title(predicted(i), label(i)),
                             predicted(i) == label(i) ? cnnlite::viz::colors::green : cnnlite::viz::colors::red});
        }
        cnnlite::viz::GridOptions options;
        options.columns = grid_columns;
        options.title = figure.title;
        options.row_labels = figure.row_labels;
        cnnlite::viz::write_png(paths.figure(figure.name, ".png").string(), cnnlite::viz::make_grid(tiles, options));
    }

    const double methods_seconds = compare_explanation_methods(s, paths, model, test);

    const double seconds = now_seconds() - start;
    record_stage(s, paths, "explain", seconds,
                 {{"maps", n}, {"gradcam_seconds", cam_seconds}, {"methods_seconds", methods_seconds},
                  {"methods_images", methods_sample_size(test.size(), s.methods_images)},
                  {"gradcam_images_per_second", cam_seconds > 0 ? static_cast<double>(n) / cam_seconds : 0.0},
                  {"model", target.model.string()}, {"cam_layer", cams.layer},
                  {"cam_layer_output", cams.layer_output}});
    say(s, "explain", "figures -> " + paths.figures().string() + "; done in " + format_seconds(seconds));
}

}  // namespace fm
