// Grad-CAM++ (Chattopadhay et al., 2018) with its closed-form weights
//     alpha_kij = Y''_kij / (2 Y''_kij + sum_ab A_kab Y'''_kij),   w_k = sum_ij alpha_kij relu(Y'_kij),
// where ' is the derivative with respect to A_kij. The paper derives the closed form for
// Y = exp(S_c) with a logit S_c that is piecewise linear in A (true for ReLU, max-pool and dense
// layers), so that Y^(n) = Y S'^n. Here that is the form used for Score::logit.
//
// For Score::probability, Y = p_c = softmax(S)_c is not an exponential of a linear function;
// its derivatives follow from the cumulants of the logit gradients: with s_j = dS_j/dA_kij
// (constant where S is linear) and L = log p_c = S_c - logsumexp(S),
//     L' = s_c - k1,  L'' = -k2,  L''' = -k3   (k_n: n-th cumulant of s_j under p_j),
//     Y'/Y = L',  Y''/Y = L'' + L'^2,  Y'''/Y = L''' + 3 L' L'' + L'^3.
// This needs d S_j / dA for every class j: one backward pass per class, batched over images.
// Weights are computed from Y^(n)/Y; the common positive factor Y of each image is dropped
// (it scales the whole map, which normalisation removes anyway). A zero or non-finite
// denominator gives alpha = 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "cnnlite/explain/cam.hpp"

namespace cnnlite::explain {

/// Element-wise derivatives of the explained quantity Y with respect to the layer output A,
/// divided by Y: first = Y'/Y, second = Y''/Y, third = Y'''/Y, each [N, K, h, w].
template <class T>
struct ScoreDerivatives {
    Tensor<T> first;  ///< Y'/Y.
    Tensor<T> second;  ///< Y''/Y.
    Tensor<T> third;  ///< Y'''/Y.
};

/// The derivatives of Y = p_c (Score::probability) or Y = exp(S_c) (Score::logit) for each
/// image's target class, from the probe's graph (1 backward pass for logits, classes + 1 for
/// probabilities).
template <class T>
ScoreDerivatives<T> score_derivatives(LayerProbe<T>& probe, const std::vector<int>& targets, Score score) {
    const Tensor<T> s_target = probe.gradient(targets, Score::logit);
    ScoreDerivatives<T> d;
    if (score == Score::logit) {
        d.first = s_target;
        d.second = Tensor<T>::uninitialized(s_target.shape());
        d.third = Tensor<T>::uninitialized(s_target.shape());
        d.second.array() = s_target.array().square();
        d.third.array() = s_target.array().cube();
        return d;
    }
    // Raw moments of s_j - s_c under p (shifting by s_c keeps the numbers small when p_c is
    // large, and cumulants of order >= 2 do not change under a shift).
    const std::int64_t n = probe.batch(), classes = probe.num_classes(), per = s_target.numel() / n;
    Tensor<T> m1(s_target.shape()), m2(s_target.shape()), m3(s_target.shape());
    Tensor<T> class_j(probe.logits().shape());
    for (std::int64_t j = 0; j < classes; ++j) {
        class_j.fill(T(0));
        for (std::int64_t i = 0; i < n; ++i) class_j(i, j) = T(1);
        const Tensor<T> s_j = probe.gradient(class_j, Score::logit);
        for (std::int64_t i = 0; i < n; ++i) {
            const T p = probe.probabilities()(i, j);
            const auto diff = s_j.array().segment(i * per, per) - s_target.array().segment(i * per, per);
            m1.array().segment(i * per, per) += p * diff;
            m2.array().segment(i * per, per) += p * diff.square();
            m3.array().segment(i * per, per) += p * diff.cube();
        }
    }
    d.first = Tensor<T>::uninitialized(s_target.shape());
    d.second = Tensor<T>::uninitialized(s_target.shape());
    d.third = Tensor<T>::uninitialized(s_target.shape());
    const auto a1 = m1.array(), a2 = m2.array(), a3 = m3.array();
    const auto l1 = -a1;                                          // L' = s_c - k1
    const auto l2 = -(a2 - a1.square());                          // L'' = -k2
    const auto l3 = -(a3 - T(3) * a1 * a2 + T(2) * a1.cube());   // L''' = -k3
    d.first.array() = l1;
    d.second.array() = l2 + l1.square();
    d.third.array() = l3 + T(3) * l1 * l2 + l1.cube();
    return d;
}

/// Grad-CAM++ channel weights [N, K] from the activations [N, K, h, w] and the derivatives.
template <class T>
Tensor<T> gradcam_pp_weights(const Tensor<T>& activations, const ScoreDerivatives<T>& d) {
    check(activations.rank() == 4 && d.first.shape() == activations.shape() && d.second.shape() == activations.shape() &&
              d.third.shape() == activations.shape(),
          "gradcam_pp_weights: activations ", activations.shape(), " and derivatives ", d.first.shape(), ", ",
          d.second.shape(), ", ", d.third.shape(), " must all be [N, K, h, w]");
    const std::int64_t channels = activations.dim(0) * activations.dim(1);
    const std::int64_t positions = activations.dim(2) * activations.dim(3);
    Tensor<T> weights = Tensor<T>::uninitialized(Shape{activations.dim(0), activations.dim(1)});
    for (std::int64_t c = 0; c < channels; ++c) {
        const T* a = activations.data() + c * positions;
        const T* y1 = d.first.data() + c * positions;
        const T* y2 = d.second.data() + c * positions;
        const T* y3 = d.third.data() + c * positions;
        T total = 0;
        for (std::int64_t p = 0; p < positions; ++p) total += a[p];
        T w = 0;
        for (std::int64_t p = 0; p < positions; ++p) {
            const T denominator = T(2) * y2[p] + total * y3[p];
            const T alpha = (denominator != T(0) && std::isfinite(denominator)) ? y2[p] / denominator : T(0);
            w += alpha * std::max(y1[p], T(0));
        }
        weights[c] = w;
    }
    return weights;
}

/// Grad-CAM++ maps of `images`, batched in chunks like grad_cam().
template <class T>
Explanation grad_cam_plus_plus(const Model<T>& model, const Tensor<T>& images, const CamOptions& options = {}) {
    return detail::explain_by_layer(model, images, options, "grad_cam_plus_plus",
                                    [&](LayerProbe<T>& probe, const std::vector<int>& targets, const Tensor<T>&) {
                                        const ScoreDerivatives<T> d = score_derivatives(probe, targets, options.score);
                                        return weighted_channel_sum(probe.activations(),
                                                                    gradcam_pp_weights(probe.activations(), d));
                                    });
}

}  // namespace cnnlite::explain
