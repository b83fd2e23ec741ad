// The pipeline's one call into Grad-CAM: the paper's variant for a batch of images.
#include <algorithm>
#include <cstdio>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/train/metrics.hpp"

#include "pipeline.hpp"

namespace fm {

std::string fixed(double v, int decimals) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
    return buffer;
}

// TEMPORARY local Grad-CAM until include/cnnlite/explain/ provides the batched one; replace
// the body with the library call then.
GradCams paper_gradcam(const cnnlite::Sequential<float>& model, const cnnlite::Tensor<float>& images) {
    std::string target;
    for (std::size_t i = 0; i < model.size(); ++i)
        if (std::string(model.layer(i).type()) == "Conv2D") target = model.layer(i).name();
    cnnlite::check(!target.empty(), "Grad-CAM: the model has no Conv2D layer");
    const std::int64_t n = images.dim(0);
    const std::int64_t classes = model.output_shape()[0];
    GradCams out;
    out.predicted.resize(static_cast<std::size_t>(n));
    out.probabilities = cnnlite::Tensor<float>::uninitialized(cnnlite::Shape{n, classes});
    const std::int64_t chunk = 256;
    for (std::int64_t first = 0; first < n; first += chunk) {
        const std::int64_t count = std::min(chunk, n - first);
        cnnlite::Variable<float> activations;
        const cnnlite::Variable<float> y = model.forward(
            cnnlite::Variable<float>(images.rows(first, count)), cnnlite::ForwardContext{},
            [&](const cnnlite::Layer<float>& layer, cnnlite::Variable<float>& output) {
                if (layer.name() == target) {
                    output.retain_grad();
                    activations = output;
                }
            });
        std::vector<int> predicted;
        cnnlite::argmax_rows(y.value(), predicted);
        cnnlite::Tensor<float> seed(y.shape());
        for (std::int64_t i = 0; i < count; ++i) seed[i * classes + predicted[static_cast<std::size_t>(i)]] = 1.0f;
        cnnlite::Variable<float> root = y;
        root.backward(seed);
        const cnnlite::Tensor<float>& a = activations.value();
        const cnnlite::Tensor<float>& g = activations.grad();
        const std::int64_t k = a.dim(1), h = a.dim(2), w = a.dim(3), hw = h * w;
        if (!out.cams.defined()) out.cams = cnnlite::Tensor<float>(cnnlite::Shape{n, h, w});
        for (std::int64_t i = 0; i < count; ++i) {
            out.predicted[static_cast<std::size_t>(first + i)] = predicted[static_cast<std::size_t>(i)];
            for (std::int64_t c = 0; c < classes; ++c)
                out.probabilities[(first + i) * classes + c] = y.value()[i * classes + c];
            float* cam = out.cams.data() + (first + i) * hw;
            std::fill(cam, cam + hw, 0.0f);
            for (std::int64_t ch = 0; ch < k; ++ch) {
                const float* gc = g.data() + (i * k + ch) * hw;
                const float* ac = a.data() + (i * k + ch) * hw;
                double alpha = 0;
                for (std::int64_t p = 0; p < hw; ++p) alpha += gc[p];
                alpha /= static_cast<double>(hw);
                for (std::int64_t p = 0; p < hw; ++p) cam[p] += static_cast<float>(alpha) * ac[p];
            }
            float mx = 0;
            for (std::int64_t p = 0; p < hw; ++p) mx = std::max(mx, cam[p] = std::max(cam[p], 0.0f));
            if (mx > 0)
                for (std::int64_t p = 0; p < hw; ++p) cam[p] /= mx;
        }
    }
    return out;
}

}  // namespace fm
