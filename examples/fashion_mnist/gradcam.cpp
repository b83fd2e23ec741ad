// The pipeline's one call into Grad-CAM: the library's batched Grad-CAM with its defaults,
// which are the paper's (softmax probability of the predicted class, the last Conv2D's output
// after its ReLU, channel-mean gradient weights, ReLU, divided by the max, input size), at the
// network's last feature maps (cam_layer).
#include <cstdio>

#include "cnnlite/explain/gradcam.hpp"

#include "pipeline.hpp"

namespace fm {

std::string fixed(double v, int decimals) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
    return buffer;
}

std::string cam_layer(const cnnlite::Model<float>& model) {
    for (std::size_t i = 0; i < model.size(); ++i) {
        const std::string type = model.layer(i).type();
        if (type == "GlobalAveragePooling2D" || type == "GlobalMaxPooling2D") return model.inbound(i).front();
    }
    return "";
}

GradCams paper_gradcam(const cnnlite::Model<float>& model, const cnnlite::Tensor<float>& images) {
    cnnlite::explain::CamOptions options;  // defaults = the paper's Grad-CAM
    options.layer = cam_layer(model);
    cnnlite::explain::Explanation e = cnnlite::explain::grad_cam(model, images, options);
    const std::string shape = model.layer(e.layer).output_shape().str();
    return {e.maps, std::move(e.predicted), e.probabilities, e.layer, shape};
}

}  // namespace fm
