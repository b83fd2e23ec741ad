// What an explanation explains: the class of each image (the predicted one, given ones, or one
// chosen by a function of the model's output) and the score of that class that is
// differentiated (the softmax probability, as the paper does, or the logit).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/tensor.hpp"

namespace cnnlite::explain {

/// The quantity whose gradient explains an image.
enum class Score {
    probability,  ///< softmax probability of the target class (the paper's choice)
    logit,        ///< logit of the target class (the output before the softmax)
};

/// "probability" or "logit".
inline const char* to_string(Score s) { return s == Score::probability ? "probability" : "logit"; }

/// Which class each image is explained for.
class Target {
public:
    /// Picks one class per row of `probabilities` ([rows, classes], softmax output of the
    /// model); `first` is the index of the first row in the whole batch (explanations run in
    /// chunks, so the function sees a chunk at a time).
    using Chooser = std::function<std::vector<int>(const Tensor<float>& probabilities, std::int64_t first)>;

    /// The class the model predicts (highest probability; the first on ties). The default.
    static Target predicted() { return Target(); }
    /// The given class for each image, in batch order (one entry per image).
    static Target classes(std::vector<int> per_image) {
        Target t;
        t.kind_ = Kind::given;
        t.classes_ = std::move(per_image);
        return t;
    }
    /// The same class for every image.
    static Target same_class(int c) {
        Target t;
        t.kind_ = Kind::same;
        t.classes_ = {c};
        return t;
    }
    /// Classes chosen by a function of the model's output.
    static Target chosen_by(Chooser chooser) {
        check(static_cast<bool>(chooser), "Target::chosen_by: empty function");
        Target t;
        t.kind_ = Kind::chooser;
        t.chooser_ = std::move(chooser);
        return t;
    }

    /// Throws unless the target suits a batch of `n` images (given classes: one per image).
    void check_batch(std::int64_t n, const char* op) const {
        if (kind_ == Kind::given)
            check(static_cast<std::int64_t>(classes_.size()) == n, op, ": ", classes_.size(), " target classes for ",
                  n, " images (give one per image)");
    }

    /// The target classes of rows [first, first + rows) given their probabilities and
    /// predictions; each class is checked against the number of classes.
    std::vector<int> resolve(const Tensor<float>& probabilities, const std::vector<int>& predicted, std::int64_t first,
                             const char* op) const {
        const std::int64_t rows = probabilities.dim(0), num_classes = probabilities.dim(1);
        std::vector<int> out;
        switch (kind_) {
            case Kind::predicted: out = predicted; break;
            case Kind::same: out.assign(static_cast<std::size_t>(rows), classes_[0]); break;
            case Kind::given:
                out.assign(classes_.begin() + first, classes_.begin() + first + rows);
                break;
            case Kind::chooser:
                out = chooser_(probabilities, first);
                check(static_cast<std::int64_t>(out.size()) == rows, op, ": the target function returned ", out.size(),
                      " classes for ", rows, " images (rows ", first, " to ", first + rows - 1, ")");
                break;
        }
        for (std::size_t i = 0; i < out.size(); ++i)
            check(out[i] >= 0 && out[i] < num_classes, op, ": target class ", out[i], " of image ",
                  first + static_cast<std::int64_t>(i), " is outside [0, ", num_classes, ")");
        return out;
    }

private:
    enum class Kind { predicted, given, same, chooser };
    Kind kind_ = Kind::predicted;
    std::vector<int> classes_;
    Chooser chooser_;
};

}  // namespace cnnlite::explain
