// Classification metrics: accuracy, per-class accuracy, the confusion matrix with per-class
// precision, recall and F1 and their macro averages, top-k accuracy, and calibration (expected
// calibration error over equal-width confidence bins).
#pragma once

#include <cmath>
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
    /// Precision of each class: correct / samples predicted as that class. A class never
    /// predicted has 0/0, reported as 0 (scikit-learn's zero_division=0).
    std::vector<double> precision() const {
        std::vector<double> out(static_cast<std::size_t>(classes_), 0.0);
        for (int p = 0; p < classes_; ++p) {
            std::int64_t column = 0;
            for (int t = 0; t < classes_; ++t) column += count(t, p);
            out[static_cast<std::size_t>(p)] = ratio(count(p, p), column);
        }
        return out;
    }
    /// Recall of each class: correct / samples of that class; 0 for a class with no samples
    /// (zero_division=0). The same as per_class_accuracy().
    std::vector<double> recall() const { return per_class_accuracy(); }
    /// F1 score of each class, 2 tp / (2 tp + fp + fn) (the harmonic mean of precision and
    /// recall); 0 for a class that is neither present nor predicted (zero_division=0).
    std::vector<double> f1() const {
        std::vector<double> out(static_cast<std::size_t>(classes_), 0.0);
        for (int k = 0; k < classes_; ++k) {
            std::int64_t row = 0, column = 0;
            for (int j = 0; j < classes_; ++j) {
                row += count(k, j);
                column += count(j, k);
            }
            out[static_cast<std::size_t>(k)] = ratio(2 * count(k, k), row + column);
        }
        return out;
    }
    /// Unweighted mean of precision() over all classes() classes, as scikit-learn's
    /// average='macro' with labels = every class (classes without samples count, as 0).
    double macro_precision() const { return mean(precision()); }
    /// Unweighted mean of recall() over all classes (balanced accuracy when every class has samples).
    double macro_recall() const { return mean(recall()); }
    /// Unweighted mean of f1() over all classes (not the F1 of the macro precision and recall).
    double macro_f1() const { return mean(f1()); }

    /// Rows of counts, [truth][predicted].
    std::vector<std::vector<std::int64_t>> rows() const {
        std::vector<std::vector<std::int64_t>> out(static_cast<std::size_t>(classes_));
        for (int t = 0; t < classes_; ++t)
            for (int p = 0; p < classes_; ++p) out[static_cast<std::size_t>(t)].push_back(count(t, p));
        return out;
    }

private:
    static double ratio(std::int64_t num, std::int64_t den) {
        return den ? static_cast<double>(num) / static_cast<double>(den) : 0.0;
    }
    static double mean(const std::vector<double>& v) {
        double sum = 0;
        for (double x : v) sum += x;
        return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
    }
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

namespace detail {

/// Checks that `scores` is [N, C] with C >= 1 and `labels` has N labels in [0, C).
template <class T>
void check_scores_and_labels(const Tensor<T>& scores, const std::vector<int>& labels, const char* what) {
    check(scores.rank() == 2 && scores.dim(1) >= 1, what, ": scores must be [N, classes], got ", scores.shape());
    check(static_cast<std::int64_t>(labels.size()) == scores.dim(0), what, ": ", labels.size(), " labels for ",
          scores.dim(0), " rows of scores");
    for (std::size_t i = 0; i < labels.size(); ++i)
        check(labels[i] >= 0 && labels[i] < scores.dim(1), what, ": label ", labels[i], " of sample ", i,
              " is outside 0..", scores.dim(1) - 1);
}

}  // namespace detail

/// Fraction of samples whose label is among the `k` highest scores of its row of `scores`
/// [N, C] (probabilities or logits: the order is the same). Ties are broken by class index, as
/// argmax_rows does: the label's rank is the number of classes scored higher plus the number
/// of classes of lower index scored the same, and it counts when that rank is below k. NaN
/// scores rank below every number. k = 1 is the accuracy of argmax_rows' predictions (for rows
/// without NaN); k >= C counts every sample. 0 for no samples.
template <class T>
double top_k_accuracy(const Tensor<T>& scores, const std::vector<int>& labels, int k) {
    detail::check_scores_and_labels(scores, labels, "top_k_accuracy");
    check(k >= 1, "top_k_accuracy: k must be >= 1, got ", k);
    const std::int64_t n = scores.dim(0), classes = scores.dim(1);
    // "a comes before b" with NaN last.
    auto above = [](T a, T b) { return !std::isnan(a) && (std::isnan(b) || a > b); };
    auto same = [](T a, T b) { return a == b || (std::isnan(a) && std::isnan(b)); };
    std::int64_t hits = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        const T* row = scores.data() + i * classes;
        const int label = labels[static_cast<std::size_t>(i)];
        const T s = row[label];
        std::int64_t rank = 0;
        for (std::int64_t j = 0; j < classes; ++j) rank += above(row[j], s) || (j < label && same(row[j], s));
        hits += rank < k;
    }
    return n ? static_cast<double>(hits) / static_cast<double>(n) : 0.0;
}

/// Calibration of predicted probabilities over equal-width confidence bins (a reliability
/// diagram's data), and its expected calibration error.
struct Calibration {
    /// Samples per bin; bin m holds the confidences in (m / B, (m + 1) / B].
    std::vector<std::int64_t> counts;
    std::vector<double> accuracy;    ///< fraction correct in each bin (0 for an empty bin)
    std::vector<double> confidence;  ///< mean confidence in each bin (0 for an empty bin)
    /// sum over bins of counts / N * |accuracy - confidence| (Guo et al. 2017).
    double expected_calibration_error = 0;
};

/// Calibration of `probabilities` [N, C] (rows of a softmax, every entry in [0, 1]) against
/// `labels`, with `bins` equal-width bins (Guo et al. 2017 use 15). A sample's confidence is
/// its row's largest probability and its prediction that class (the first on ties, as
/// argmax_rows); bin m holds confidences c with m / bins < c <= (m + 1) / bins, the edges
/// computed as m / bins in double; a confidence of exactly 0 goes to the first bin.
template <class T>
Calibration calibration(const Tensor<T>& probabilities, const std::vector<int>& labels, int bins = 15) {
    detail::check_scores_and_labels(probabilities, labels, "calibration");
    check(bins >= 1, "calibration: bins must be >= 1, got ", bins);
    const std::int64_t n = probabilities.dim(0), classes = probabilities.dim(1);
    for (std::int64_t i = 0; i < n * classes; ++i) {
        const T p = probabilities.data()[i];
        check(p >= 0 && p <= 1, "calibration: probability ", p, " at sample ", i / classes, ", class ", i % classes,
              " is not in [0, 1] (pass softmax outputs, not logits)");
    }
    const auto b = static_cast<std::size_t>(bins);
    Calibration out;
    out.counts.assign(b, 0);
    out.accuracy.assign(b, 0.0);
    out.confidence.assign(b, 0.0);
    std::vector<int> predicted;
    argmax_rows(probabilities, predicted);
    for (std::int64_t i = 0; i < n; ++i) {
        const int p = predicted[static_cast<std::size_t>(i)];
        const double c = static_cast<double>(probabilities.data()[i * classes + p]);
        // c * bins rounds, so the guess can be one bin off next to an edge (the double after
        // 1/3, times 3, is 1); the edges m / bins decide.
        std::size_t m = static_cast<std::size_t>(std::max(0.0, std::min(std::ceil(c * bins) - 1, bins - 1.0)));
        if (m > 0 && c <= static_cast<double>(m) / bins) --m;
        if (m + 1 < b && c > static_cast<double>(m + 1) / bins) ++m;
        ++out.counts[m];
        out.accuracy[m] += p == labels[static_cast<std::size_t>(i)] ? 1.0 : 0.0;
        out.confidence[m] += c;
    }
    for (std::size_t m = 0; m < b; ++m) {
        if (out.counts[m] == 0) continue;
        const auto k = static_cast<double>(out.counts[m]);
        out.accuracy[m] /= k;
        out.confidence[m] /= k;
        out.expected_calibration_error += k / static_cast<double>(n) * std::abs(out.accuracy[m] - out.confidence[m]);
    }
    return out;
}

/// Expected calibration error of `probabilities` [N, C] against `labels` with `bins`
/// equal-width bins (15 as Guo et al. 2017); see calibration() for the binning. 0 for no samples.
template <class T>
double expected_calibration_error(const Tensor<T>& probabilities, const std::vector<int>& labels, int bins = 15) {
    return calibration(probabilities, labels, bins).expected_calibration_error;
}

}  // namespace cnnlite
