// Tutorial chapter 5 (docs/tutorial/05-training-the-paper-network.md): the paper's network
// built layer by layer, one training step written out, then fit() with KeepBest and an
// evaluation on the test images. Usage: tutorial_05_training [DATA_DIR] (default data/fixtures,
// the 2,000 + 1,000 image subset of Fashion-MNIST committed with the repository).
#include <cnnlite/core/threading.hpp>
#include <cnnlite/data/fashion_mnist.hpp>
#include <cnnlite/data/split.hpp>
#include <cnnlite/nn/conv2d.hpp>
#include <cnnlite/nn/dense.hpp>
#include <cnnlite/nn/dropout.hpp>
#include <cnnlite/nn/flatten.hpp>
#include <cnnlite/nn/max_pool2d.hpp>
#include <cnnlite/nn/sequential.hpp>
#include <cnnlite/nn/summary.hpp>
#include <cnnlite/ops/softmax_cross_entropy.hpp>
#include <cnnlite/optim/adam.hpp>
#include <cnnlite/train/callbacks.hpp>
#include <cnnlite/train/evaluate.hpp>
#include <cnnlite/train/fit.hpp>

#include <cstdio>
#include <string>

using namespace cnnlite;

int main(int argc, char** argv) try {
    // One thread: the printed numbers then do not depend on the machine's core count
    // (same seed + same thread count = bitwise-identical weights).
    set_num_threads(1);
    const std::string folder = argc > 1 ? argv[1] : "data/fixtures";

    // [snippet:data]
    const FashionMnist data = load_fashion_mnist(folder);
    const TrainValidationSplit split = split_train_validation(data.train, /*n_val=*/200);
    std::printf("train %lld, validation %lld, test %lld images of shape %s\n",
                static_cast<long long>(split.train.size()), static_cast<long long>(split.validation.size()),
                static_cast<long long>(data.test.size()), split.train.sample_shape().str().c_str());
    // [end]

    // [snippet:model]
    Sequential<> model({1, 28, 28}, /*seed=*/0);
    model.add(Conv2D<>(64, 2).padding("same").activation("relu"));
    model.add(MaxPool2D<>(2, 2));
    model.add(Dropout<>(0.3));
    model.add(MaxPool2D<>(2, 2));
    model.add(Dropout<>(0.3));
    model.add(Flatten<>());
    model.add(Dense<>(256).activation("relu"));
    model.add(Dropout<>(0.5));
    model.add(Dense<>(10).activation("softmax"));
    std::printf("%s", summary(model).c_str());
    // [end]

    std::printf("\n== one training step, written out\n");
    // [snippet:step]
    Adam<> adam(model.trainable_variables());  // Keras defaults: lr 0.001, eps 1e-7
    const Dataset batch = split.train.slice(0, 64);
    const Variable<float> x(batch.images());  // [64, 1, 28, 28], no gradient wanted
    const ForwardContext training{/*training=*/true, /*seed=*/0, /*step=*/0, /*sample_ids=*/nullptr};
    Variable<float> logits = model.forward_logits(x, training);  // softmax left to the loss
    Variable<float> loss = softmax_cross_entropy(logits, batch.labels().data(), batch.size());
    adam.zero_grad();
    loss.backward();  // fills conv2d.weight.grad(), ..., dense_1.bias.grad()
    adam.step();      // one Adam update of all 6 parameter tensors
    std::printf("batch loss %.3f (log 10 = 2.303: a guess among 10 classes)\n", loss.value()[0]);
    {
        NoGrad no_grad;  // evaluation: dropout off, no graph
        const Variable<float> after = model.forward_logits(x);
        std::printf("the same batch after the step: %.3f\n",
                    softmax_cross_entropy(after, batch.labels().data(), batch.size()).value()[0]);
    }
    // [end]

    std::printf("\n== fit\n");
    // [snippet:fit]
    KeepBest<> best("val_loss");  // keeps the weights of the lowest validation loss
    FitOptions options;
    options.epochs = 4;
    options.batch_size = 64;
    options.seed = 0;
    options.verbosity = Verbosity::silent;
    const History history = fit(model, adam, split.train, &split.validation, options, {&best});
    for (const EpochRecord& e : history.epochs)
        std::printf("epoch %lld: loss %.3f accuracy %.3f - val_loss %.3f val_accuracy %.3f\n",
                    static_cast<long long>(e.epoch), e.loss, e.accuracy, e.val_loss, e.val_accuracy);
    best.restore(model);
    const Evaluation test = evaluate(model, data.test);
    std::printf("kept epoch %lld; test accuracy %.3f, test loss %.3f\n", static_cast<long long>(best.best_epoch()),
                test.accuracy, test.loss);
    // [end]
    check(test.accuracy > 0.6, "after 4 epochs on 1,800 images the test accuracy should exceed 0.6, got ",
          test.accuracy);

    // [snippet:per_class]
    const auto& names = data.test.class_names();
    for (std::size_t c = 0; c < names.size(); ++c)
        std::printf("%-12s %.2f%s", names[c].c_str(), test.per_class_accuracy[c], c % 2 ? "\n" : "   ");
    // [end]
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "05_training: %s\n", e.what());
    return 1;
}
