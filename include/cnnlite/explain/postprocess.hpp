// Post-processing of explanation maps: ReLU, per-map normalisation that is safe for all-zero
// and constant maps (no NaN ever), and bilinear upsampling to the input size.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "cnnlite/core/tensor.hpp"
#include "cnnlite/viz/image.hpp"

namespace cnnlite::explain {

/// How each map is scaled.
enum class Normalization {
    none,     ///< values as computed
    max,      ///< divided by its largest absolute value (the paper's "divide by its max")
    min_max,  ///< (v - min) / (max - min), into [0, 1]
};

/// What happens to maps after they are computed.
struct PostProcess {
    bool relu = true;                                ///< keep only positive evidence
    /// How each map is scaled (default: divided by its max, as the paper).
    Normalization normalization = Normalization::max;
    bool upsample = true;                            ///< bilinear resize to the input size when it differs

    /// The raw weighted sums at the layer's own resolution: no ReLU, no scaling, no resize.
    static PostProcess raw() { return {false, Normalization::none, false}; }
};

/// Normalises every map of `maps` ([N, H, W] or [N, ...]) in place. A map whose scale is zero
/// (all zero, or constant for min-max) becomes all zero; values that are not finite become 0.
inline void normalize_maps(Tensor<float>& maps, Normalization how) {
    if (how == Normalization::none || maps.numel() == 0) return;
    const std::int64_t n = maps.dim(0), per = maps.numel() / n;
    for (std::int64_t i = 0; i < n; ++i) {
        float* m = maps.data() + i * per;
        float lo = 0, hi = 0, largest = 0;
        bool first = true;
        for (std::int64_t j = 0; j < per; ++j) {
            if (!std::isfinite(m[j])) {
                m[j] = 0;
            }
            lo = first ? m[j] : std::min(lo, m[j]);
            hi = first ? m[j] : std::max(hi, m[j]);
            largest = std::max(largest, std::fabs(m[j]));
            first = false;
        }
        const float offset = how == Normalization::min_max ? lo : 0.0f;
        const float range = how == Normalization::min_max ? hi - lo : largest;
        // Below the smallest normal float a quotient could overflow; such maps carry no signal.
        if (!(range >= std::numeric_limits<float>::min())) {
            std::fill(m, m + per, 0.0f);
            continue;
        }
        for (std::int64_t j = 0; j < per; ++j) m[j] = (m[j] - offset) / range;
    }
}

/// Applies `post` to raw maps [N, h, w]: ReLU, normalisation, then upsampling to height x width
/// (only when `post.upsample` is set and the size differs).
inline Tensor<float> postprocess_maps(Tensor<float> maps, const PostProcess& post, std::int64_t height,
                                      std::int64_t width) {
    if (post.relu) maps.array() = maps.array().max(0.0f);
    normalize_maps(maps, post.normalization);
    if (post.upsample && (maps.dim(-2) != height || maps.dim(-1) != width))
        maps = viz::resize_bilinear(maps, static_cast<int>(height), static_cast<int>(width));
    return maps;
}

}  // namespace cnnlite::explain
