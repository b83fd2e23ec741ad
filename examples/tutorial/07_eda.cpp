// Tutorial chapter 7 (docs/tutorial/07-eda-anova-umap.md): the paper's exploratory analysis on
// the fixture: class counts, the non-background ratio per image, one-way ANOVA between train
// and test per class, and a UMAP embedding judged by trustworthiness and a kNN classifier.
// Usage: tutorial_07_eda [DATA_DIR] (default data/fixtures).
#include <cnnlite/analysis/anova.hpp>
#include <cnnlite/analysis/descriptive.hpp>
#include <cnnlite/analysis/trustworthiness.hpp>
#include <cnnlite/analysis/umap.hpp>
#include <cnnlite/core/threading.hpp>
#include <cnnlite/data/fashion_mnist.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

using namespace cnnlite;

int main(int argc, char** argv) try {
    set_num_threads(1);  // printed numbers independent of the core count
    const std::string folder = argc > 1 ? argv[1] : "data/fixtures";
    const FashionMnist data = load_fashion_mnist(folder);
    const auto& names = data.train.class_names();

    std::printf("== non-background ratio: one worked image\n");
    // [snippet:ratio]
    const std::uint8_t* first = data.train.pixels().data();  // raw bytes of image 0, 28 x 28
    std::int64_t lit = 0;
    for (int i = 0; i < 784; ++i) lit += first[i] > 0;
    std::printf("image 0 (%s): %lld of 784 pixels above 0 -> ratio %.4f (library: %.4f)\n",
                names[static_cast<std::size_t>(data.train.labels()[0])].c_str(), static_cast<long long>(lit),
                static_cast<double>(lit) / 784, nonbackground_ratio(first, 784));
    // [end]

    std::printf("\n== per class: counts, median ratio, ANOVA train vs test\n");
    // [snippet:anova]
    const std::vector<double> train_ratio = nonbackground_ratios(data.train.pixels().data(), data.train.size(), 784);
    const std::vector<double> test_ratio = nonbackground_ratios(data.test.pixels().data(), data.test.size(), 784);
    std::printf("%-12s %7s %7s %9s %9s %7s %7s\n", "class", "n_train", "n_test", "med_train", "med_test", "F", "p");
    for (int c = 0; c < 10; ++c) {
        std::vector<double> a, b;  // the ratios of class c in each split
        for (std::size_t i = 0; i < train_ratio.size(); ++i)
            if (data.train.labels()[i] == c) a.push_back(train_ratio[i]);
        for (std::size_t i = 0; i < test_ratio.size(); ++i)
            if (data.test.labels()[i] == c) b.push_back(test_ratio[i]);
        const AnovaResult r = one_way_anova(a, b);
        std::printf("%-12s %7zu %7zu %9.3f %9.3f %7.2f %7.3f\n", names[static_cast<std::size_t>(c)].c_str(), a.size(),
                    b.size(), summarize(a).median, summarize(b).median, r.f_value, r.p_value);
    }
    // [end]

    std::printf("\n== ANOVA by hand on three tiny groups\n");
    // [snippet:anova_hand]
    const AnovaResult tiny = one_way_anova({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}});
    std::printf("F = %.1f with (%lld, %lld) degrees of freedom, p = %.6f\n", tiny.f_value,
                static_cast<long long>(tiny.df_between), static_cast<long long>(tiny.df_within), tiny.p_value);
    // [end]
    // Means 2, 5, 8 around 5: between = 3 * (9 + 0 + 9) / 2 = 27; within = 3 * 2 / 6 = 1.
    check(std::fabs(tiny.f_value - 27) < 1e-9, "F by hand is 27, got ", tiny.f_value);

    std::printf("\n== UMAP of the 1,000 test images (784 raw pixels each)\n");
    // [snippet:umap]
    const std::int64_t n = data.test.size(), dim = 784;
    const float* pixels = data.test.images().data();  // [n, 1, 28, 28] = n rows of 784 floats
    UmapOptions options;                               // 15 neighbours, min_dist 0.1, as the paper
    options.set_seed(0);
    const UmapResult embedding = umap(pixels, n, dim, options);
    const float* xy = embedding.embedding.data();      // [n, 2]
    std::printf("embedding %s after %d epochs of layout\n", embedding.embedding.shape().str().c_str(),
                embedding.n_epochs);
    std::printf("trustworthiness (k = 5): %.2f\n", trustworthiness(pixels, n, dim, xy, 2, 5));
    // [end]

    // [snippet:knn]
    // A 5-nearest-neighbour vote, trained on the first 800 points and tested on the other 200,
    // in the raw pixel space and in the 2-D embedding.
    std::vector<std::int32_t> labels(data.test.labels().begin(), data.test.labels().end());
    const double raw = knn_classifier_accuracy(pixels, labels.data(), 800, pixels + 800 * dim, labels.data() + 800,
                                               200, dim, 5);
    const double flat = knn_classifier_accuracy(xy, labels.data(), 800, xy + 800 * 2, labels.data() + 800, 200, 2, 5);
    std::printf("5-NN accuracy: 784-D pixels %.2f, 2-D UMAP %.2f\n", raw, flat);
    // [end]

    // [snippet:centroids]
    // Which class lies nearest to each class in the embedding (distance between class means)?
    std::vector<double> cx(10, 0), cy(10, 0), count(10, 0);
    for (std::int64_t i = 0; i < n; ++i) {
        const int c = labels[static_cast<std::size_t>(i)];
        cx[c] += xy[2 * i], cy[c] += xy[2 * i + 1], count[c] += 1;
    }
    for (int c = 0; c < 10; ++c) cx[c] /= count[c], cy[c] /= count[c];
    for (int c = 0; c < 10; ++c) {
        int nearest = -1;
        for (int d = 0; d < 10; ++d)
            if (d != c && (nearest < 0 || std::hypot(cx[d] - cx[c], cy[d] - cy[c]) <
                                              std::hypot(cx[nearest] - cx[c], cy[nearest] - cy[c])))
                nearest = d;
        std::printf("%-12s -> %s\n", names[static_cast<std::size_t>(c)].c_str(),
                    names[static_cast<std::size_t>(nearest)].c_str());
    }
    // [end]
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "07_eda: %s\n", e.what());
    return 1;
}
