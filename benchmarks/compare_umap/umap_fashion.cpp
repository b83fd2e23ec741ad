// cnnlite's side of the UMAP comparison: embeds the 60,000 Fashion-MNIST training images
// (pixel / 255, 784 features) with the default UmapOptions and writes x,y,label as CSV.
// Usage: umap_fashion [--data DIR] [--out FILE.csv] [--threads N] [--seed S] [--recall M]
//                     [--metrics] [--limit N]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "cnnlite/analysis/knn.hpp"
#include "cnnlite/analysis/trustworthiness.hpp"
#include "cnnlite/analysis/umap.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/idx.hpp"

int main(int argc, char** argv) try {
    std::string data_dir = "/usr/share/datasets/fashion-mnist", out = "umap_cnnlite.csv";
    int threads = 2;
    std::uint64_t seed = 0;
    std::int64_t recall_sample = 0, limit = 0;
    bool metrics = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) cnnlite::fail("umap_fashion: ", arg, " needs a value");
            return argv[++i];
        };
        if (arg == "--data") data_dir = value();
        else if (arg == "--out") out = value();
        else if (arg == "--threads") threads = std::stoi(value());
        else if (arg == "--seed") seed = std::stoull(value());
        else if (arg == "--recall") recall_sample = std::stoll(value());
        else if (arg == "--limit") limit = std::stoll(value());
        else if (arg == "--metrics") metrics = true;
        else cnnlite::fail("umap_fashion: unknown argument ", arg);
    }
    cnnlite::set_num_threads(threads);
    const auto pixels = cnnlite::read_idx_images(data_dir + "/train-images-idx3-ubyte.gz");
    const auto labels = cnnlite::read_idx_labels(data_dir + "/train-labels-idx1-ubyte.gz", 10);
    std::int64_t n = pixels.dim(0);
    if (limit > 0) n = std::min(n, limit);
    const std::int64_t dim = pixels.numel() / pixels.dim(0);
    std::vector<float> x(static_cast<std::size_t>(n * dim));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = pixels.data()[i] / 255.0f;

    cnnlite::UmapOptions options;
    options.seed = seed;
    const cnnlite::UmapResult r = cnnlite::umap(x.data(), n, dim, options);
    std::cout << std::fixed << std::setprecision(3) << "cnnlite umap: n=" << n << " threads=" << threads
              << " total " << r.seconds.total << " s (knn " << r.seconds.knn << ", graph " << r.seconds.graph
              << ", init " << r.seconds.init << ", layout " << r.seconds.layout << "), init: " << r.init
              << ", edges " << r.edges << ", epochs " << r.n_epochs << "\n";

    std::ofstream csv(out);
    csv << "x,y,label\n" << std::setprecision(9);
    csv.unsetf(std::ios::floatfield);
    for (std::int64_t i = 0; i < n; ++i)
        csv << r.embedding(i, 0) << ',' << r.embedding(i, 1) << ',' << labels[static_cast<std::size_t>(i)] << '\n';

    if (recall_sample > 0) {
        // Re-run the neighbour search alone to measure its recall against exact search.
        const auto graph = cnnlite::knn_approximate(x.data(), n, dim, options.n_neighbors, options.knn_options);
        std::cout << "approximate kNN recall@" << options.n_neighbors - 1 << " on " << recall_sample
                  << " points: " << cnnlite::knn_recall(x.data(), n, dim, graph, recall_sample, 1) << "\n";
    }
    if (metrics) {
        const float* y = r.embedding.data();
        std::cout << "trustworthiness@15 (5,000-point sample, cnnlite's metric): "
                  << cnnlite::trustworthiness_sample(x.data(), n, dim, y, 2, 15, 5000, 0) << "\n";
        if (n > 10000) {
            std::vector<std::int32_t> lab(labels.begin(), labels.begin() + n);
            std::cout << "10-NN accuracy (first n-10,000 -> last 10,000, cnnlite's metric): "
                      << cnnlite::knn_classifier_accuracy(y, lab.data(), n - 10000, y + (n - 10000) * 2,
                                                          lab.data() + (n - 10000), 10000, 2, 10)
                      << "\n";
        }
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "umap_fashion: " << e.what() << "\n";
    return 1;
}
