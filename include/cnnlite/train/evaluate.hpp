// evaluate(): loss, accuracy, per-class accuracy, confusion matrix and predictions of a model
// on a data set, in inference mode, batched and without building a graph; optionally with
// flip test-time augmentation.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "cnnlite/autograd/grad_mode.hpp"
#include "cnnlite/data/dataset.hpp"
#include "cnnlite/data/image_transforms.hpp"
#include "cnnlite/kernels/softmax.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/train/metrics.hpp"

namespace cnnlite {

/// What evaluate() measures.
struct Evaluation {
    double loss = 0;                        ///< mean softmax cross-entropy
    double accuracy = 0;                    ///< fraction classified right
    std::vector<double> per_class_accuracy; ///< by label
    ConfusionMatrix confusion;              ///< rows: true label; columns: predicted
    std::vector<int> predicted;             ///< predicted label of every sample, in data set order
    Tensor<float> probabilities;            ///< [N, classes] softmax output
};

/// Settings of evaluate().
struct EvaluateOptions {
    std::int64_t batch_size = 1000;  ///< images per forward pass
    /// Test-time augmentation: score each image by the mean of the logits of the image and of
    /// its left-right mirror image (as the CIFAR-10 airbench recipes do); twice the work.
    bool flip_tta = false;
};

/// Evaluates `model` on `data` with `options`. A model ending in softmax is scored on its
/// logits (stable loss); any other model's output is taken as logits.
template <class T>
Evaluation evaluate(const Model<T>& model, const Dataset& data, const EvaluateOptions& options) {
    const std::int64_t batch_size = options.batch_size;
    check(!data.empty(), "evaluate: the data set is empty");
    check(batch_size > 0, "evaluate: batch size must be positive, got ", batch_size);
    model.check_batch(data.images().shape(), "evaluate");
    const Shape out = model.output_shape();
    check(out.rank() == 1 && out[0] == data.num_classes(), "evaluate: the model has output shape ", out,
          " but the data set has ", data.num_classes(), " classes");
    NoGrad no_grad;
    const std::int64_t n = data.size(), classes = out[0];
    Evaluation result;
    result.confusion = ConfusionMatrix(static_cast<int>(classes));
    result.predicted.resize(static_cast<std::size_t>(n));
    result.probabilities = Tensor<float>::uninitialized(Shape{n, classes});
    double loss_sum = 0;
    Tensor<T> onehot;
    for (std::int64_t first = 0; first < n; first += batch_size) {
        const std::int64_t count = std::min(batch_size, n - first);
        const auto as_t = [](const Tensor<float>& images) {
            if constexpr (std::is_same<T, float>::value) return images;
            else return images.template cast<T>();
        };
        const Tensor<float> images = data.images().rows(first, count);
        Variable<T> logits = model.forward_logits(Variable<T>(as_t(images)));
        if (options.flip_tta) {
            const Variable<T> mirrored = model.forward_logits(Variable<T>(as_t(flipped_horizontally(images))));
            Tensor<T> mean = logits.value().clone();
            const T* other = mirrored.value().data();
            for (std::int64_t i = 0; i < mean.numel(); ++i) mean[i] = (mean[i] + other[i]) / T(2);
            logits = Variable<T>(mean);
        }
        onehot = Tensor<T>(Shape{count, classes});
        for (std::int64_t i = 0; i < count; ++i)
            onehot[i * classes + data.labels()[static_cast<std::size_t>(first + i)]] = T(1);
        Tensor<T> probs = Tensor<T>::uninitialized(Shape{count, classes});
        loss_sum += static_cast<double>(count) *
                    kernels::softmax_cross_entropy_rows(logits.value().data(), onehot.data(), probs.data(), count, classes);
        for (std::int64_t i = 0; i < count; ++i) {
            const T* row = probs.data() + i * classes;
            std::int64_t best = 0;
            for (std::int64_t j = 0; j < classes; ++j) {
                result.probabilities[(first + i) * classes + j] = static_cast<float>(row[j]);
                if (row[j] > row[best]) best = j;
            }
            result.predicted[static_cast<std::size_t>(first + i)] = static_cast<int>(best);
            result.confusion.add(data.labels()[static_cast<std::size_t>(first + i)], static_cast<int>(best));
        }
    }
    result.loss = loss_sum / static_cast<double>(n);
    result.accuracy = result.confusion.accuracy();
    result.per_class_accuracy = result.confusion.per_class_accuracy();
    return result;
}

/// Evaluates `model` on `data` in batches of `batch_size`, without test-time augmentation.
template <class T>
Evaluation evaluate(const Model<T>& model, const Dataset& data, std::int64_t batch_size = 1000) {
    EvaluateOptions options;
    options.batch_size = batch_size;
    return evaluate(model, data, options);
}

}  // namespace cnnlite
