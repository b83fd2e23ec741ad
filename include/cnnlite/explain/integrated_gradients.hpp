// Integrated Gradients (Sundararajan, Taly, Yan, 2017): (x - x') times the average gradient
// along the straight path from a baseline x' to x, by the midpoint rule. The attributions of
// an image add up to Y(x) - Y(x') (completeness) up to the quadrature error; the map sums them
// over colour channels.
#pragma once

#include <cstdint>

#include "cnnlite/explain/input_gradients.hpp"

namespace cnnlite::explain {

/// Integrated Gradients' options on top of the common ones.
struct IntegratedGradientsOptions : GradientOptions {
    int steps = 32;       ///< points on the path (midpoint rule)
    double baseline = 0;  ///< value of every element of the baseline image (0: black)
};

/// Per-element attributions [N, C, H, W] of `images` for the given target classes.
template <class T>
Tensor<T> integrated_gradients_attributions(const Model<T>& model, const Tensor<T>& images,
                                            const std::vector<int>& targets, Score score, int steps, double baseline) {
    check(steps >= 1, "integrated_gradients: steps must be at least 1, got ", steps);
    Tensor<T> total(images.shape());
    Tensor<T> point = Tensor<T>::uninitialized(images.shape());
    const T base = static_cast<T>(baseline);
    for (int m = 0; m < steps; ++m) {
        const T t = static_cast<T>((m + 0.5) / steps);
        point.array() = base + t * (images.array() - base);
        LayerProbe<T> probe(model, LayerProbe<T>::model_input, point);
        total.array() += probe.gradient(targets, score).array();
    }
    total.array() *= (images.array() - base) / static_cast<T>(steps);
    return total;
}

/// Integrated Gradients maps [N, H, W] (attributions summed over channels): one forward and
/// backward pass per chunk and step.
template <class T>
Explanation integrated_gradients(const Model<T>& model, const Tensor<T>& images,
                                 const IntegratedGradientsOptions& options = {}) {
    return detail::explain_by_input(
        model, images, options, "integrated_gradients",
        [&](LayerProbe<T>&, const std::vector<int>& targets, const Tensor<T>& chunk, std::int64_t) {
            const Tensor<T> a =
                integrated_gradients_attributions(model, chunk, targets, options.score, options.steps, options.baseline);
            const std::int64_t n = a.dim(0), c = a.dim(1), hw = a.dim(2) * a.dim(3);
            Tensor<T> maps = Tensor<T>::uninitialized(Shape{n, a.dim(2), a.dim(3)});
            for (std::int64_t i = 0; i < n; ++i) maps.rows(i, 1).matrix(1, hw) = a.rows(i, 1).matrix(c, hw).colwise().sum();
            return maps;
        });
}

}  // namespace cnnlite::explain
