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

namespace detail {
/// Targets [rows, cols] from integer labels, smoothed as Keras does:
/// onehot * (1 - smoothing) + smoothing / cols. `op` names the op in errors.
template <class T>
Tensor<T> label_targets(const std::int32_t* labels, std::int64_t count, std::int64_t rows, std::int64_t cols,
                        double smoothing, const char* op) {
    check(count == rows, op, ": ", count, " labels for ", rows, " rows");
    check(smoothing >= 0 && smoothing <= 1, op, ": label smoothing ", smoothing, " outside [0, 1]");
    Tensor<T> targets = Tensor<T>::full(Shape{rows, cols}, static_cast<T>(smoothing / static_cast<double>(cols)));
    const T on = static_cast<T>(1.0 - smoothing + smoothing / static_cast<double>(cols));
    for (std::int64_t i = 0; i < rows; ++i) {
        check(labels[i] >= 0 && labels[i] < cols, op, ": label ", labels[i], " of row ", i, " outside [0, ", cols, ")");
        targets[i * cols + labels[i]] = on;
    }
    return targets;
}
}  // namespace detail

/// The same with integer class labels in [0, C), one per row.
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& logits, const std::int32_t* labels, std::int64_t count) {
    return softmax_cross_entropy(logits, labels, count, 0.0);
}

/// The same with label smoothing as Keras defines it (and PyTorch's label_smoothing): the
/// targets are onehot * (1 - label_smoothing) + label_smoothing / C.
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& logits, const std::int32_t* labels, std::int64_t count,
                                  double label_smoothing) {
    check(logits.value().rank() == 2, "softmax_cross_entropy: logits must be [N, classes], got ", logits.shape());
    return softmax_cross_entropy(logits, detail::label_targets<T>(labels, count, logits.shape()[0], logits.shape()[1],
                                                                  label_smoothing, "softmax_cross_entropy"));
}

/// The same with a vector of integer labels, one per row.
template <class T>
Variable<T> softmax_cross_entropy(const Variable<T>& logits, const std::vector<std::int32_t>& labels,
                                  double label_smoothing = 0.0) {
    return softmax_cross_entropy(logits, labels.data(), static_cast<std::int64_t>(labels.size()), label_smoothing);
}

}  // namespace cnnlite
