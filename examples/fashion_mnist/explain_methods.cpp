// Part of stage `explain`: the explanation methods of the library compared on a sample of test
// images — faithfulness (deletion and insertion AUC with 95% bootstrap intervals, ROAD
// MoRF/LeRF) and speed, with random maps and Grad-CAM of randomised weights as baselines — as
// OUT/explain/methods.csv and figures/explain_methods (the same images under every method).
#include <string>
#include <system_error>
#include <vector>

#include "cnnlite/explain/methods.hpp"
#include "cnnlite/io/csv.hpp"
#include "cnnlite/viz/grid.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "cnnlite/viz/overlay.hpp"

#include "pipeline.hpp"

namespace fm {

double compare_explanation_methods(const Settings& s, const Paths& paths, const cnnlite::Model<float>& model,
                                   const cnnlite::Dataset& test) {
    const double start = now_seconds();
    const fs::path folder = paths.out / "explain";
    const std::int64_t sample = methods_sample_size(test.size(), s.methods_images);
    if (sample == 0) {
        for (const fs::path& old : {folder / "methods.csv", paths.figure("explain_methods", ".png")}) {
            std::error_code ec;
            fs::remove(old, ec);
            cnnlite::check(!ec, "cannot remove '", old.string(), "' of an earlier explain: ", ec.message());
        }
        say(s, "explain", "explanation methods not compared (--methods-images 0)");
        return 0.0;
    }
    ensure_dir(folder);

    // The sample: random test images, the same for every method.
    const std::vector<std::int64_t> chosen = choose_indices(test.size(), sample, s.seed, methods_stream);
    const auto n = static_cast<std::int64_t>(chosen.size());
    cnnlite::Tensor<float> images = cnnlite::Tensor<float>::uninitialized(cnnlite::Shape{n, 1, 28, 28});
    for (std::int64_t r = 0; r < n; ++r)
        std::copy_n(test.images().data() + chosen[static_cast<std::size_t>(r)] * 784, 784, images.data() + r * 784);
    say(s, "explain", "comparing the explanation methods on " + std::to_string(n) +
                          " random test images (deletion/insertion AUC, ROAD, speed)");

    cnnlite::explain::ComparisonOptions options;
    options.explain.seed = s.seed;
    options.explain.layer = cam_layer(model);
    options.curves.seed = s.seed;
    options.road.seed = s.seed;
    std::vector<cnnlite::explain::MethodScore> rows;
    std::vector<cnnlite::explain::Explanation> maps;
    // Every method on the softmax probability (the paper's score), and Grad-CAM also on the
    // logit: saturated probabilities of a confident model give vanishing, cancelling channel
    // weights, which the logit avoids.
    struct Variant {
        cnnlite::explain::Method method;
        cnnlite::explain::Score score;
        std::string name;  // empty: the method's own name
    };
    std::vector<Variant> variants;
    for (cnnlite::explain::Method m : cnnlite::explain::all_methods()) {
        variants.push_back({m, cnnlite::explain::Score::probability, ""});
        if (m == cnnlite::explain::Method::grad_cam)
            variants.push_back({m, cnnlite::explain::Score::logit, "Grad-CAM (logit)"});
    }
    for (const Variant& v : variants) {
        // One method at a time, so that progress shows.
        options.methods = {v.method};
        options.explain.score = v.score;
        // With the random maps, the second baseline: Grad-CAM of a copy with re-drawn weights.
        options.randomized_weights_baseline = v.method == cnnlite::explain::Method::random;
        cnnlite::explain::MethodComparison c = cnnlite::explain::compare_methods(model, images, options);
        if (!v.name.empty()) c.rows.front().method = v.name;
        for (std::size_t k = 0; k < c.rows.size(); ++k) {
            const auto& row = c.rows[k];
            say(s, "explain",
                "  " + row.method + ": deletion AUC " + fixed(row.deletion_auc, 4) + " [" +
                    fixed(row.deletion_auc_low, 4) + ", " + fixed(row.deletion_auc_high, 4) + "], insertion AUC " +
                    fixed(row.insertion_auc, 4) + " [" + fixed(row.insertion_auc_low, 4) + ", " +
                    fixed(row.insertion_auc_high, 4) + "], ROAD MoRF " + fixed(row.road_morf, 4) + " / LeRF " +
                    fixed(row.road_lerf, 4) + ", " + fixed(row.images_per_second, 0) + " images/s");
            rows.push_back(row);
            maps.push_back(std::move(c.explanations[k]));
        }
    }
    {
        std::vector<std::vector<cnnlite::CsvCell>> csv;
        for (const auto& r : rows)
            csv.push_back({r.method, r.deletion_auc, r.insertion_auc, r.road_morf, r.road_lerf, r.images_per_second,
                           r.deletion_auc_low, r.deletion_auc_high, r.insertion_auc_low, r.insertion_auc_high});
        cnnlite::write_csv((folder / "methods.csv").string(), methods_columns(), csv);
    }

    // Figure: the first images of the sample, as they are and under every method.
    const std::int64_t shown = std::min<std::int64_t>(n, 8);
    std::vector<cnnlite::viz::GridTile> tiles;
    cnnlite::viz::GridOptions grid;
    grid.columns = static_cast<int>(shown);
    grid.title = "The same test images under each explanation method (predicted class explained)";
    grid.row_labels.push_back("image");
    const auto& e0 = maps.front();
    for (std::int64_t k = 0; k < shown; ++k) {
        const std::int64_t i = chosen[static_cast<std::size_t>(k)];
        const int truth = test.labels()[static_cast<std::size_t>(i)], predicted = e0.predicted[static_cast<std::size_t>(k)];
        tiles.push_back({cnnlite::viz::grey_image(test.pixels().rows(i, 1)), pred_true_title(predicted, truth),
                         predicted == truth ? cnnlite::viz::colors::green : cnnlite::viz::colors::red});
    }
    cnnlite::viz::OverlayOptions overlay;
    overlay.heat_min = 0.0;
    overlay.heat_max = 1.0;
    for (std::size_t m = 0; m < maps.size(); ++m) {
        grid.row_labels.push_back(rows[m].method);
        for (std::int64_t k = 0; k < shown; ++k)
            tiles.push_back({cnnlite::viz::overlay(images.rows(k, 1), maps[m].maps.rows(k, 1), overlay), "",
                             cnnlite::viz::colors::black});
    }
    cnnlite::viz::write_png(paths.figure("explain_methods", ".png").string(), cnnlite::viz::make_grid(tiles, grid));
    const double seconds = now_seconds() - start;
    say(s, "explain", "methods table -> " + (folder / "methods.csv").string() + " (" + format_seconds(seconds) + ")");
    return seconds;
}

}  // namespace fm
