// Softmax cross-entropy fused into one op: numerically stable (log-sum-exp) and with the
// simple gradient (softmax - target) / N, so a model ending in softmax trains on its logits.
#pragma once

#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/softmax.hpp"

namespace cnnlite {

namespace detail {
template <class T>
void softmax_ce_backward(Node<T>& n) {
    // d loss / d logits = (softmax - target) / N, times the incoming scalar gradient.
    const Tensor<T>& probs = n.saved[0];
    const Tensor<T>& target = n.saved[1];
    const T factor = static_cast<T>(n.grad[0] / static_cast<double>(probs.shape()[0]));
    Tensor<T>* g = nullptr;
    if (grad_buffer(n, 0, g))
        g->array() = (probs.array() - target.array()) * factor;
    else
        g->array() += (probs.array() - target.array()) * factor;
}
}  // namespace detail

/// Mean over the batch of -sum_j target[i, j] * log softmax(logits[i])_j, for logits [N, C]
/// and probability targets [N, C] (one-hot or soft labels).
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& logits, const Tensor<T>& targets) {
    check(logits.value().rank() == 2, "softmax_cross_entropy: logits must be [N, classes], got ", logits.shape());
    check_same_shape("softmax_cross_entropy: logits vs targets", logits.value(), targets);
    check(logits.shape()[0] > 0, "softmax_cross_entropy: empty batch");
    const std::int64_t rows = logits.shape()[0], cols = logits.shape()[1];
    Tensor<T> probs = Tensor<T>::uninitialized(logits.shape());
    const double loss =
        kernels::softmax_cross_entropy_rows(logits.value().data(), targets.data(), probs.data(), rows, cols);
    Tensor<T> value = Tensor<T>::full(Shape{}, static_cast<T>(loss));
    const bool record = detail::should_record<T>({&logits});
    Variable<T> out = detail::make_result<T>(std::move(value), "softmax_cross_entropy", record,
                                             &detail::softmax_ce_backward<T>, {&logits});
    if (record) {
        out.node()->saved[0] = std::move(probs);
        out.node()->saved[1] = targets;
    }
    return out;
}

/// The same with integer class labels in [0, C), one per row.
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& logits, const std::int32_t* labels, std::int64_t count) {
    check(logits.value().rank() == 2, "softmax_cross_entropy: logits must be [N, classes], got ", logits.shape());
    const std::int64_t rows = logits.shape()[0], cols = logits.shape()[1];
    check(count == rows, "softmax_cross_entropy: ", count, " labels for ", rows, " rows of logits");
    Tensor<T> onehot(logits.shape());
    for (std::int64_t i = 0; i < rows; ++i) {
        check(labels[i] >= 0 && labels[i] < cols, "softmax_cross_entropy: label ", labels[i], " of row ", i,
              " outside [0, ", cols, ")");
        onehot[i * cols + labels[i]] = T(1);
    }
    return softmax_cross_entropy(logits, onehot);
}

/// The same with a vector of integer labels, one per row.
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& logits, const std::vector<std::int32_t>& labels) {
    return softmax_cross_entropy(logits, labels.data(), static_cast<std::int64_t>(labels.size()));
}

}  // namespace cnnlite
