// Stage `predict IMAGE...`: classifies a user's own pictures. Each picture (any size, grey or
// colour, PNG or JPEG; read with the limits of cnnlite::viz::read_image) is brought to the data
// set's format by cnnlite::viz::to_mnist_style — grey, light object on a dark background,
// cropped to the object, centred in 28x28, stretched to 0..255 — then the class probabilities
// are printed and OUT/predict/<name>_gradcam.png shows the input and its Grad-CAM.
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/viz/grid.hpp"
#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "cnnlite/viz/image_read.hpp"
#include "cnnlite/viz/mnist_style.hpp"
#include "cnnlite/viz/overlay.hpp"

#include "pipeline.hpp"

namespace fm {

using cnnlite::viz::Image;

void run_predict(const Settings& s) {
    const Paths paths(s);
    const cnnlite::Model<float> model = load_trained_model(s, s.model_path(), "predict");
    const auto& names = cnnlite::fashion_mnist_class_names();
    cnnlite::check(model.output_shape().rank() == 1 && model.output_shape()[0] == 10, "predict: the model in '",
                   s.model_path(), "' has output shape ", model.output_shape(), ", not the 10 Fashion-MNIST classes");
    ensure_dir(paths.predictions());

    // Read and convert everything first, so that a bad file fails before any output.
    std::vector<Image> inputs;
    std::vector<bool> inverted;
    for (const std::string& path : s.images) {
        cnnlite::viz::MnistStyleInput input = cnnlite::viz::to_mnist_style(cnnlite::viz::read_image(path));
        inputs.push_back(std::move(input.image));
        inverted.push_back(input.inverted);
    }
    const auto n = static_cast<std::int64_t>(inputs.size());
    cnnlite::Tensor<float> batch = cnnlite::Tensor<float>::uninitialized(cnnlite::Shape{n, 1, 28, 28});
    for (std::int64_t i = 0; i < n; ++i) {
        const cnnlite::Tensor<float> t = cnnlite::viz::to_tensor(inputs[static_cast<std::size_t>(i)]);
        std::copy(t.begin(), t.end(), batch.data() + i * 784);
    }
    const GradCams cams = paper_gradcam(model, batch);

    std::set<std::string> used;
    for (std::int64_t i = 0; i < n; ++i) {
        const std::string& path = s.images[static_cast<std::size_t>(i)];
        const int best = cams.predicted[static_cast<std::size_t>(i)];
        const float* p = cams.probabilities.data() + i * 10;
        std::printf("%s: %s (%.1f%%)%s\n", path.c_str(), names[static_cast<std::size_t>(best)].c_str(), 100.0 * p[best],
                    inverted[static_cast<std::size_t>(i)] ? " [light background: inverted]" : "");
        for (int c = 0; c < 10; ++c) std::printf("  %-12s %6.2f%%\n", names[static_cast<std::size_t>(c)].c_str(), 100.0 * p[c]);

        std::string stem = fs::path(path).stem().string();
        if (stem.empty()) stem = "image";
        std::string name = stem;
        for (int k = 2; used.count(name); ++k) name = stem + "_" + std::to_string(k);
        used.insert(name);
        const fs::path output = paths.predictions() / (name + "_gradcam.png");

        const cnnlite::Tensor<float> input = batch.rows(i, 1);
        cnnlite::viz::OverlayOptions overlay;
        overlay.heat_min = 0.0;
        overlay.heat_max = 1.0;
        std::vector<cnnlite::viz::GridTile> tiles = {
            {inputs[static_cast<std::size_t>(i)], "network input", cnnlite::viz::colors::black},
            {cnnlite::viz::overlay(input, cams.cams.rows(i, 1), overlay),
             names[static_cast<std::size_t>(best)] + " " + fixed(100.0 * p[best], 1) + "%", cnnlite::viz::colors::black}};
        cnnlite::viz::GridOptions options;
        options.columns = 2;
        options.scale = 6;
        options.title = fs::path(path).filename().string();
        options.figure_title_size = 15;
        cnnlite::viz::write_png(output.string(), cnnlite::viz::make_grid(tiles, options));
        std::printf("  Grad-CAM -> %s\n", output.string().c_str());
    }
    std::fflush(stdout);
}

}  // namespace fm
