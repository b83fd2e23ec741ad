// Stage `predict IMAGE...`: classifies a user's own pictures. Each picture (any size, grey or
// colour, PNG or JPEG) is brought to the data set's format — grey, light object on a dark
// background (inverted when its border is light), cropped to the object, centred in a square,
// shrunk to 28x28 and stretched to the full 0..255 range — then the class probabilities are
// printed and OUT/predict/<name>_gradcam.png shows the input and its Grad-CAM.
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "cnnlite/viz/grid.hpp"
#include "cnnlite/viz/image.hpp"
#include "cnnlite/viz/image_io.hpp"
#include "cnnlite/viz/overlay.hpp"

#include "pipeline.hpp"

namespace fm {

namespace {

using cnnlite::viz::Image;

std::uint8_t border_median(const Image& grey) {
    std::vector<std::uint8_t> border;
    const int w = grey.width(), h = grey.height();
    const int ring = std::max(1, std::min(w, h) / 50);  // a few pixels thick on large pictures
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            if (x < ring || y < ring || x >= w - ring || y >= h - ring) border.push_back(grey.at(x, y));
    std::nth_element(border.begin(), border.begin() + static_cast<std::ptrdiff_t>(border.size() / 2), border.end());
    return border[border.size() / 2];
}

}  // namespace

/// A picture as the network's 28x28 input: grey, light object on dark.
Image to_fashion_mnist_format(const Image& picture, bool* inverted) {
    Image grey = cnnlite::viz::to_grey(picture);
    *inverted = border_median(grey) > 127;
    if (*inverted)
        for (std::size_t i = 0; i < grey.size(); ++i) grey.data()[i] = static_cast<std::uint8_t>(255 - grey.data()[i]);
    const int background = border_median(grey);

    // Crop to the object: pixels clearly brighter than the background.
    const int w = grey.width(), h = grey.height();
    int x0 = w, y0 = h, x1 = -1, y1 = -1, brightest = background;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int v = grey.at(x, y);
            brightest = std::max(brightest, v);
            if (v > background + 24) x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
        }
    if (x1 < 0) x0 = 0, y0 = 0, x1 = w - 1, y1 = h - 1;  // nothing stands out: keep the whole picture
    const int cw = x1 - x0 + 1, ch = y1 - y0 + 1, side = std::max(cw, ch);
    Image square(side, side, 1);
    for (std::size_t i = 0; i < square.size(); ++i) square.data()[i] = static_cast<std::uint8_t>(background);
    const int ox = (side - cw) / 2, oy = (side - ch) / 2;
    for (int y = 0; y < ch; ++y)
        for (int x = 0; x < cw; ++x) square.at(ox + x, oy + y) = grey.at(x0 + x, y0 + y);
    Image small = side >= 28 ? cnnlite::viz::resize_area(square, 28, 28) : cnnlite::viz::resize_bilinear(square, 28, 28);

    // Background to 0, the brightest object pixel to 255, like the data set's images.
    const double range = std::max(1, brightest - background);
    for (std::size_t i = 0; i < small.size(); ++i) {
        const double v = (small.data()[i] - background) * 255.0 / range;
        small.data()[i] = static_cast<std::uint8_t>(std::clamp(v + 0.5, 0.0, 255.0));
    }
    return small;
}

void run_predict(const Settings& s) {
    const Paths paths(s);
    const cnnlite::Sequential<float> model = load_trained_model(s, "predict");
    const auto& names = cnnlite::fashion_mnist_class_names();
    cnnlite::check(model.output_shape().rank() == 1 && model.output_shape()[0] == 10, "predict: the model in '",
                   s.model_path(), "' has output shape ", model.output_shape(), ", not the 10 Fashion-MNIST classes");
    ensure_dir(paths.predictions());

    // Read and convert everything first, so that a bad file fails before any output.
    std::vector<Image> inputs;
    std::vector<bool> inverted;
    for (const std::string& path : s.images) {
        bool inv = false;
        inputs.push_back(to_fashion_mnist_format(cnnlite::viz::read_image(path), &inv));
        inverted.push_back(inv);
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
