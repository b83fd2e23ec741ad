// Categorical cross-entropy of predicted probabilities (the output of a softmax), as Keras'
// categorical_crossentropy with from_logits=False: rows rescaled to sum 1, probabilities clipped
// to [epsilon, 1 - epsilon]. Training on logits with softmax_cross_entropy is more accurate;
// this op is for models whose last layer already outputs probabilities.
#pragma once

#include <cmath>
#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/cross_entropy.hpp"
#include "cnnlite/ops/softmax_cross_entropy.hpp"

namespace cnnlite {

/// Arguments of categorical_cross_entropy's node.
struct CategoricalCrossEntropyArgs {
    double epsilon = 1e-7;  ///< the clip margin (Keras' backend epsilon)
};

/// Mean over the rows of -sum_j targets[i, j] * log(clip(probs[i, j] / sum_j probs[i, j],
/// epsilon, 1 - epsilon)), for probabilities and targets [N, C].
template <class T>
Variable<T> categorical_cross_entropy(const Variable<T>& probs, const Tensor<T>& targets, double epsilon = 1e-7) {
    check(probs.value().rank() == 2, "categorical_cross_entropy: probabilities must be [N, classes], got ", probs.shape());
    check_same_shape("categorical_cross_entropy: probabilities vs targets", probs.value(), targets);
    check(probs.shape()[0] > 0, "categorical_cross_entropy: empty batch");
    check(std::isfinite(epsilon) && epsilon >= 0 && epsilon < 0.5, "categorical_cross_entropy: epsilon ", epsilon,
          " outside [0, 0.5)");
    const std::int64_t rows = probs.shape()[0], cols = probs.shape()[1];
    const double loss = kernels::probability_cross_entropy_rows(probs.value().data(), targets.data(), rows, cols,
                                                                static_cast<T>(epsilon));
    const bool record = detail::should_record<T>({&probs});
    Variable<T> out = detail::make_result<T>(Tensor<T>::full(Shape{}, static_cast<T>(loss)), "categorical_cross_entropy",
                                             record, +[](detail::Node<T>& n) {
        const Tensor<T>& p = n.input(0)->value;
        const T eps = static_cast<T>(n.template args<CategoricalCrossEntropyArgs>().epsilon);
        Tensor<T>* dp = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dp);
        kernels::probability_cross_entropy_backward(p.data(), n.saved[0].data(), p.shape()[0], p.shape()[1], eps,
                                                    n.grad[0], dp->data(), !fresh);
    }, {&probs});
    if (record) {
        out.node()->saved[0] = targets;
        out.node()->set_args(CategoricalCrossEntropyArgs{epsilon});
    }
    return out;
}

/// The same with integer labels in [0, C), one per row, smoothed as Keras does: targets =
/// onehot * (1 - label_smoothing) + label_smoothing / C.
template <class T>
Variable<T> categorical_cross_entropy(const Variable<T>& probs, const std::vector<std::int32_t>& labels,
                                      double label_smoothing = 0.0, double epsilon = 1e-7) {
    check(probs.value().rank() == 2, "categorical_cross_entropy: probabilities must be [N, classes], got ", probs.shape());
    return categorical_cross_entropy(
        probs,
        detail::label_targets<T>(labels.data(), static_cast<std::int64_t>(labels.size()), probs.shape()[0],
                                 probs.shape()[1], label_smoothing, "categorical_cross_entropy"),
        epsilon);
}

}  // namespace cnnlite
