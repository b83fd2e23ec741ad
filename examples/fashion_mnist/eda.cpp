// Stage `eda`: the paper's exploratory analysis. Class frequencies; the non-background pixel
// ratio of every image (pixels with raw value > 0, over 784) summarised per class and split;
// a one-way ANOVA per class of train against test ratios; histograms; and a UMAP of the
// training images.
#include <cstdio>
#include <string>
#include <vector>

#include "cnnlite/analysis/anova.hpp"
#include "cnnlite/analysis/umap.hpp"
#include "cnnlite/analysis/descriptive.hpp"
#include "cnnlite/io/csv.hpp"
#include "cnnlite/viz/bar_chart.hpp"
#include "cnnlite/viz/histogram_chart.hpp"
#include "cnnlite/viz/scatter_chart.hpp"
#include "cnnlite/viz/svg.hpp"

#include "pipeline.hpp"

namespace fm {

namespace {

/// Ratios of one split grouped by label.
std::vector<std::vector<double>> ratios_by_class(const cnnlite::Dataset& data) {
    const auto& pixels = data.pixels();
    cnnlite::check(pixels.defined(), "eda: the data set has no raw pixels");
    const std::int64_t per_image = pixels.numel() / data.size();
    const std::vector<double> ratios = cnnlite::nonbackground_ratios(pixels.data(), data.size(), per_image);
    std::vector<std::vector<double>> groups(static_cast<std::size_t>(data.num_classes()));
    for (std::int64_t i = 0; i < data.size(); ++i)
        groups[static_cast<std::size_t>(data.labels()[static_cast<std::size_t>(i)])].push_back(
            ratios[static_cast<std::size_t>(i)]);
    return groups;
}

std::string histogram_panel(const std::vector<std::vector<double>>& groups, const std::string& split,
                            double lo, double hi) {
    cnnlite::viz::HistogramChart chart;
    chart.title = "Non-background pixel ratio, " + split + " set";
    chart.x_label = "non-background pixel ratio (pixels > 0 / 784)";
    chart.y_label = "images";
    chart.bins = 30;
    chart.lo = lo;
    chart.hi = hi;
    chart.opacity = 0.35;
    chart.width = 620;
    chart.height = 440;
    const auto& names = cnnlite::fashion_mnist_class_names();
    for (std::size_t c = 0; c < groups.size(); ++c) chart.series.push_back({names[c], groups[c], std::nullopt});
    return cnnlite::viz::to_svg(chart);
}

/// Step 4: UMAP of the training images (784 pixel features, pixel / 255; the reference
/// implementation's defaults: 15 neighbours, min_dist 0.1, euclidean), as eda/umap.csv
/// (x,y,label: one row per training image in file order) and figures/umap.svg.
double run_umap(const Settings& s, const Paths& paths, const cnnlite::Dataset& train) {
    const double start = now_seconds();
    const auto& names = cnnlite::fashion_mnist_class_names();
    const std::int64_t n = train.size(), dim = train.images().numel() / n;
    say(s, "eda", "UMAP of the " + with_commas(n) + " training images (" + std::to_string(dim) +
                      " pixels each, 15 neighbours, min_dist 0.1)");
    cnnlite::UmapOptions options;
    options.seed = s.seed;
    std::string last_phase;
    int last_tenth = -1;
    options.progress = [&](const std::string& phase, double fraction) {
        const int tenth = static_cast<int>(fraction * 10);
        if (phase == last_phase && tenth == last_tenth) return;
        if (phase != "layout" && phase == last_phase) return;  // other phases: start only
        last_phase = phase, last_tenth = tenth;
        say(s, "eda", "  UMAP " + phase + (phase == "layout" ? " " + std::to_string(tenth * 10) + "%" : std::string()) +
                          " (" + format_seconds(now_seconds() - start) + ")");
    };
    const cnnlite::UmapResult r = cnnlite::umap(train.images().data(), n, dim, options);

    std::vector<std::vector<cnnlite::CsvCell>> rows;
    cnnlite::viz::ScatterChart chart;
    chart.title = "UMAP of the " + with_commas(n) + " training images (784 raw pixels)";
    chart.x_label = "UMAP 1";
    chart.y_label = "UMAP 2";
    chart.class_names = names;
    chart.point_radius = n > 10000 ? 1.2 : 2.2;
    chart.opacity = n > 10000 ? 0.5 : 0.8;
    chart.raster_scale = 2;
    chart.width = 960;
    chart.height = 720;
    for (std::int64_t i = 0; i < n; ++i) {
        const int label = train.labels()[static_cast<std::size_t>(i)];
        const float x = r.embedding[i * 2], y = r.embedding[i * 2 + 1];
        rows.push_back({static_cast<double>(x), static_cast<double>(y), label});
        chart.x.push_back(x);
        chart.y.push_back(y);
        chart.labels.push_back(label);
    }
    cnnlite::write_csv(paths.umap().string(), {"x", "y", "label"}, rows);
    cnnlite::viz::write_svg(paths.figure("umap", ".svg").string(), cnnlite::viz::to_svg(chart));
    const double seconds = now_seconds() - start;
    say(s, "eda", "UMAP -> " + paths.umap().string() + " in " + format_seconds(seconds) + " (kNN " +
                      format_seconds(r.seconds.knn) + ", layout " + format_seconds(r.seconds.layout) + ")");
    return seconds;
}

}  // namespace

void run_eda(const Settings& s) {
    const double start = now_seconds();
    const Paths paths(s);
    const cnnlite::FashionMnist data = load_data(s, "eda");
    const auto& names = cnnlite::fashion_mnist_class_names();
    ensure_dir(paths.eda());
    ensure_dir(paths.figures());

    // 1. Class frequency.
    const auto train_counts = data.train.class_counts(), test_counts = data.test.class_counts();
    {
        std::vector<std::vector<cnnlite::CsvCell>> rows;
        for (std::size_t c = 0; c < names.size(); ++c) rows.push_back({names[c], train_counts[c], test_counts[c]});
        cnnlite::write_csv(paths.class_counts().string(), {"class", "train", "test"}, rows);
        cnnlite::viz::BarChart chart;
        chart.title = "Images per class";
        chart.x_label = "class";
        chart.y_label = "images";
        chart.categories = names;
        chart.width = 1000;
        chart.height = 460;
        std::vector<double> tr, te;
        for (std::size_t c = 0; c < names.size(); ++c) {
            tr.push_back(static_cast<double>(train_counts[c]));
            te.push_back(static_cast<double>(test_counts[c]));
        }
        chart.series = {{"train", tr, std::nullopt}, {"test", te, std::nullopt}};
        cnnlite::viz::write_svg(paths.figure("class_frequency", ".svg").string(), cnnlite::viz::to_svg(chart));
        say(s, "eda", "class counts -> " + paths.class_counts().string());
    }

    // 2. Instance size: the non-background ratio per class and split.
    const auto train_groups = ratios_by_class(data.train), test_groups = ratios_by_class(data.test);
    {
        std::vector<std::vector<cnnlite::CsvCell>> rows;
        for (std::size_t c = 0; c < names.size(); ++c) {
            for (const auto& [split, groups] : {std::pair<const char*, const std::vector<std::vector<double>>*>{
                                                    "train", &train_groups},
                                                {"test", &test_groups}}) {
                const auto& values = (*groups)[c];
                cnnlite::check(!values.empty(), "eda: class '", names[c], "' has no ", split,
                               " images, so its pixel-ratio statistics are undefined");
                const cnnlite::Summary t = cnnlite::summarize(values);
                rows.push_back({names[c], split, t.count, t.q1, t.median, t.q3, t.max, t.mean, t.variance});
            }
        }
        cnnlite::write_csv(paths.pixel_ratio_stats().string(),
                           {"class", "split", "count", "q1", "median", "q3", "max", "mean", "variance"}, rows);
        say(s, "eda", "pixel-ratio statistics -> " + paths.pixel_ratio_stats().string());

        double lo = 1, hi = 0;
        for (const auto* groups : {&train_groups, &test_groups})
            for (const auto& g : *groups)
                for (double v : g) lo = std::min(lo, v), hi = std::max(hi, v);
        const std::string svg = cnnlite::viz::svg_side_by_side(
            {histogram_panel(train_groups, "train", lo, hi), histogram_panel(test_groups, "test", lo, hi)}, 24);
        cnnlite::viz::write_svg(paths.figure("pixel_ratio_histograms", ".svg").string(), svg);
    }

    // 3. One-way ANOVA per class, train ratios against test ratios.
    {
        std::vector<std::vector<cnnlite::CsvCell>> rows;
        for (std::size_t c = 0; c < names.size(); ++c) {
            const cnnlite::AnovaResult r = cnnlite::one_way_anova(train_groups[c], test_groups[c]);
            rows.push_back({names[c], r.f_value, r.p_value});
        }
        cnnlite::write_csv(paths.anova().string(), {"class", "f_value", "p_value"}, rows);
        say(s, "eda", "ANOVA train vs test per class -> " + paths.anova().string());
    }

    // 4. UMAP of the training images.
    const double umap_seconds = run_umap(s, paths, data.train);

    const double seconds = now_seconds() - start;
    record_stage(s, "eda", seconds, {{"train_images", data.train.size()}, {"test_images", data.test.size()},
                                     {"data_folder", data.files.folder.string()},
                                     {"umap_seconds", umap_seconds}});
    say(s, "eda", "done in " + format_seconds(seconds));
}

}  // namespace fm
