// Classification metrics: accuracy, per-class accuracy and the confusion matrix.
#pragma once

#include <cstdint>
#include <vector>

#include "cnnlite/core/tensor.hpp"
#include "cnnlite/kernels/argmax.hpp"

namespace cnnlite {

/// Counts of (true label, predicted label) pairs: rows are true labels, columns predictions.
class ConfusionMatrix {
public:
    /// An all-zero matrix for `classes` classes.
    explicit ConfusionMatrix(int classes = 0)
        : classes_(classes), counts_(static_cast<std::size_t>(classes) * static_cast<std::size_t>(classes), 0) {}

    /// Counts one sample of label `truth` predicted as `predicted`.
    void add(int truth, int predicted) {
        check(truth >= 0 && truth < classes_ && predicted >= 0 && predicted < classes_, "ConfusionMatrix: pair (",
              truth, ", ", predicted, ") outside 0..", classes_ - 1);
        ++counts_[index(truth, predicted)];
    }
    /// Number of classes.
    int classes() const { return classes_; }
    /// Samples of label `truth` predicted as `predicted`.
    std::int64_t count(int truth, int predicted) const { return counts_[index(truth, predicted)]; }
    /// Samples counted.
    std::int64_t total() const {
        std::int64_t n = 0;
        for (auto c : counts_) n += c;
        return n;
    }
    /// Fraction of samples on the diagonal (0 when empty).
    double accuracy() const {
        std::int64_t right = 0;
        for (int k = 0; k < classes_; ++k) right += count(k, k);
        const std::int64_t n = total();
        return n ? static_cast<double>(right) / static_cast<double>(n) : 0.0;
    }
    /// Recall of each class: correct / samples of that class (0 for a class with no samples).
    std::vector<double> per_class_accuracy() const {
        std::vector<double> acc(static_cast<std::size_t>(classes_), 0.0);
        for (int t = 0; t < classes_; ++t) {
            std::int64_t row = 0;
            for (int p = 0; p < classes_; ++p) row += count(t, p);
            acc[static_cast<std::size_t>(t)] = row ? static_cast<double>(count(t, t)) / static_cast<double>(row) : 0.0;
        }
        return acc;
    }
    /// Rows of counts, [truth][predicted].
    std::vector<std::vector<std::int64_t>> rows() const {
        std::vector<std::vector<std::int64_t>> out(static_cast<std::size_t>(classes_));
        for (int t = 0; t < classes_; ++t)
            for (int p = 0; p < classes_; ++p) out[static_cast<std::size_t>(t)].push_back(count(t, p));
        return out;
    }

private:
    std::size_t index(int t, int p) const {
        return static_cast<std::size_t>(t) * static_cast<std::size_t>(classes_) + static_cast<std::size_t>(p);
    }
    int classes_;
    std::vector<std::int64_t> counts_;
};

/// Index of the largest value in each row of `scores` [N, C] (first on ties).
template <class T>
void argmax_rows(const Tensor<T>& scores, std::vector<int>& out) {
    check(scores.rank() == 2, "argmax_rows: scores must be [N, classes], got ", scores.shape());
    out.resize(static_cast<std::size_t>(scores.dim(0)));
    kernels::argmax_rows(scores.data(), scores.dim(0), scores.dim(1), out.data());
}

}  // namespace cnnlite
