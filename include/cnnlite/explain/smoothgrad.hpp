// SmoothGrad (Smilkov et al., 2017): the saliency map averaged over copies of the image with
// Gaussian noise added, which removes much of the gradient's pixel-level noise. The noise of
// image i is keyed by (seed, i, sample), so maps do not depend on the chunk size.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cnnlite/core/random.hpp"
#include "cnnlite/explain/input_gradients.hpp"

namespace cnnlite::explain {

/// SmoothGrad's options on top of the common ones.
struct SmoothGradOptions : GradientOptions {
    int samples = 25;           ///< noisy copies per image
    double noise_level = 0.15;  ///< noise standard deviation as a fraction of the image's value range
    std::uint64_t seed = 0;     ///< keys the noise
};

/// SmoothGrad maps [N, H, W] of `images`: one forward and backward pass per chunk and sample.
/// Targets are chosen on the clean images.
template <class T>
Explanation smoothgrad(const Model<T>& model, const Tensor<T>& images, const SmoothGradOptions& options = {}) {
    check(options.samples >= 1, "smoothgrad: samples must be at least 1, got ", options.samples);
    check(options.noise_level >= 0, "smoothgrad: noise level must not be negative, got ", options.noise_level);
    return detail::explain_by_input(
        model, images, options, "smoothgrad",
        [&](LayerProbe<T>&, const std::vector<int>& targets, const Tensor<T>& chunk, std::int64_t first) {
            const std::int64_t n = chunk.dim(0), per = chunk.numel() / n;
            Tensor<T> sum(Shape{n, chunk.dim(2), chunk.dim(3)});
            Tensor<T> noisy = Tensor<T>::uninitialized(chunk.shape());
            for (int s = 0; s < options.samples; ++s) {
                for (std::int64_t i = 0; i < n; ++i) {
                    const T* x = chunk.data() + i * per;
                    const auto [lo, hi] = std::minmax_element(x, x + per);
                    const double sigma = options.noise_level * static_cast<double>(*hi - *lo);
                    const RandomStream noise(options.seed, Purpose::user, static_cast<std::uint64_t>(first + i),
                                             static_cast<std::uint64_t>(s));
                    T* out = noisy.data() + i * per;
                    for (std::int64_t e = 0; e < per; ++e)
                        out[e] = x[e] + static_cast<T>(sigma * noise.normal(static_cast<std::uint64_t>(e)));
                }
                LayerProbe<T> probe(model, LayerProbe<T>::model_input, noisy);
                sum.array() += max_abs_over_channels(probe.gradient(targets, options.score)).array();
            }
            sum.array() /= static_cast<T>(options.samples);
            return sum;
        });
}

}  // namespace cnnlite::explain
