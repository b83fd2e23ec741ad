// Stage `explain`: the paper's Grad-CAM figures. Every map drawn is also saved, in figure
// order, to OUT/gradcam/cams.npy ([N, 28, 28] float32) with OUT/gradcam/cams_index.csv telling
// which test image each row belongs to. The maps of all figures come from one batched call.
// Then the library's explanation methods are compared (explain_methods.cpp).
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

/// A tile for a grid slot with no image (a class with fewer misclassified images than slots).
cnnlite::viz::GridTile empty_tile() {
    return {cnnlite::viz::Image(28, 28, cnnlite::viz::colors::white), "(none)", cnnlite::viz::colors::grey};
}

}  // namespace

void run_explain(const Settings& s) {
    const double start = now_seconds();
    const ModelOutputs target = outputs_for_model(s);
    const Paths& paths = target.paths;
    if (!target.own)
        say(s, "explain", "the model is not the run in " + s.out + ": its results go to " + paths.out.string());
    const cnnlite::Sequential<float> model = load_trained_model(s, target.model, "explain");
    cnnlite::FashionMnistLimits limits;
    limits.train_images = 0;  // the test set only
    const cnnlite::FashionMnist data = load_data(s, "explain", limits);
    const cnnlite::Dataset& test = data.test;
    const auto& names = cnnlite::fashion_mnist_class_names();
    ensure_dir(paths.gradcam());
    ensure_dir(paths.figures());

    say(s, "explain", "classifying the test images to pick correct and misclassified examples");
    const cnnlite::Evaluation eval = cnnlite::evaluate(model, test);
    const auto label = [&](std::int64_t i) { return test.labels()[static_cast<std::size_t>(i)]; };
    const auto predicted = [&](std::int64_t i) { return eval.predicted[static_cast<std::size_t>(i)]; };

    // The images of every figure, in figure order (rows of cams.npy); -1 marks an empty slot.
    const std::vector<std::int64_t> samples = choose_indices(test.size(), 50, s.seed, sample_stream);
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
    std::vector<std::int64_t> per_class;  // 10 rows: 5 correct then 5 misclassified
    for (int c = 0; c < 10; ++c) {
        for (std::int64_t i : pick(c, true, 5, per_class_stream * 1000 + 2 * c)) per_class.push_back(i);
        for (std::int64_t i : pick(c, false, 5, per_class_stream * 1000 + 2 * c + 1)) per_class.push_back(i);
    }
    std::vector<std::int64_t> shirts = pick(shirt_label, true, 10, shirt_stream * 1000);
    for (std::int64_t i : pick(shirt_label, false, 10, shirt_stream * 1000 + 1)) shirts.push_back(i);

    std::vector<std::int64_t> rows;  // test index of each row of cams.npy
    for (const auto* list : std::initializer_list<const std::vector<std::int64_t>*>{&samples, &per_class, &shirts})
        for (std::int64_t i : *list)
            if (i >= 0) rows.push_back(i);
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
    {
        std::vector<std::vector<cnnlite::CsvCell>> index_rows;
        for (std::int64_t r = 0; r < n; ++r) {
            const std::int64_t i = rows[static_cast<std::size_t>(r)];
            index_rows.push_back({r, i, label(i), predicted(i)});
        }
        cnnlite::write_csv(paths.cams_index().string(), {"row", "test_index", "true_label", "predicted_label"},
                           index_rows);
    }
    say(s, "explain", "maps -> " + paths.cams().string() + " and " + paths.cams_index().string());

    // Figures: tiles in the same order as the rows.
    cnnlite::viz::OverlayOptions overlay;  // magma at alpha 0.5, as the paper
    overlay.heat_min = 0.0;
    overlay.heat_max = 1.0;
    std::int64_t next_row = 0;
    const auto tiles_for = [&](const std::vector<std::int64_t>& list) {
        std::vector<cnnlite::viz::GridTile> tiles;
        for (std::int64_t i : list) {
            if (i < 0) {
                tiles.push_back(empty_tile());
                continue;
            }
            const std::int64_t r = next_row++;
            const cnnlite::Tensor<float> map = cams.cams.rows(r, 1);
            tiles.push_back({cnnlite::viz::overlay(test.images().rows(i, 1), map, overlay),
                             pred_true_title(predicted(i), label(i)),
                             predicted(i) == label(i) ? cnnlite::viz::colors::green : cnnlite::viz::colors::red});
        }
        return tiles;
    };
    {
        cnnlite::viz::GridOptions options;
        options.columns = 10;
        options.title = "Grad-CAM of 50 random test images (the images of test_samples): predicted (true) label";
        cnnlite::viz::write_png(paths.figure("gradcam_samples", ".png").string(),
                                cnnlite::viz::make_grid(tiles_for(samples), options));
    }
    {
        cnnlite::viz::GridOptions options;
        options.columns = 10;
        options.title = "Grad-CAM per class: 5 correctly classified (left) and 5 misclassified (right) test images";
        for (const auto& name : names) options.row_labels.push_back(name);
        cnnlite::viz::write_png(paths.figure("gradcam_per_class", ".png").string(),
                                cnnlite::viz::make_grid(tiles_for(per_class), options));
    }
    {
        cnnlite::viz::GridOptions options;
        options.columns = 10;
        options.title = "Shirts: correctly classified (top) and misclassified (bottom), predicted (true) label";
        options.row_labels = {"correct", "misclassified"};
        cnnlite::viz::write_png(paths.figure("gradcam_shirt", ".png").string(),
                                cnnlite::viz::make_grid(tiles_for(shirts), options));
    }

    const double methods_seconds = compare_explanation_methods(s, paths, model, test);

    const double seconds = now_seconds() - start;
    record_stage(s, paths, "explain", seconds,
                 {{"maps", n}, {"gradcam_seconds", cam_seconds}, {"methods_seconds", methods_seconds},
                  {"methods_images", methods_sample_size(test.size())},
                  {"gradcam_images_per_second", cam_seconds > 0 ? static_cast<double>(n) / cam_seconds : 0.0},
                  {"model", target.model.string()}});
    say(s, "explain", "figures -> " + paths.figures().string() + "; done in " + format_seconds(seconds));
}

}  // namespace fm
