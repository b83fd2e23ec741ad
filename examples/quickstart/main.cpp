// cnnlite quickstart: the paper's Fashion-MNIST network defined, trained, saved, reloaded and
// evaluated. Usage: quickstart [DATA_DIR] [EPOCHS]   (defaults: the installed data set, 5)
#include <cnnlite/data.hpp>   // only the areas it uses (the umbrella <cnnlite/cnnlite.hpp> has them all)
#include <cnnlite/nn.hpp>
#include <cnnlite/optim.hpp>
#include <cnnlite/train.hpp>
#ifdef QUICKSTART_PRECOMPILED  // the target quickstart_precompiled: float instantiations from instantiations.cpp
#include <cnnlite/extern_templates.hpp>
#endif

#include <cstdio>
#include <string>

using namespace cnnlite;

int main(int argc, char** argv) try {
    const std::string folder = argc > 1 ? argv[1] : "";
    const int epochs = argc > 2 ? std::stoi(argv[2]) : 5;

    // Data: 60,000 training and 10,000 test images; the first 5,000 training images validate.
    const FashionMnist data = load_fashion_mnist(folder);
    const auto split = split_train_validation(data.train, data.train.size() / 12);

    // The network of the paper (its Figure 4), as Keras users would write it.
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

    // Train with Adam (Keras defaults), keeping the weights of the lowest validation loss.
    Adam<> adam(model.trainable_variables());
    KeepBest<> best("val_loss");
    FitOptions options;
    options.epochs = epochs;
    options.batch_size = 64;
    fit(model, adam, split.train, &split.validation, options, {&best});
    best.restore(model);

    // Save, reload without the code above, and evaluate on the test set.
    save_model(model, "quickstart.safetensors");
    const Model<> reloaded = load_model("quickstart.safetensors");
    const Evaluation test = evaluate(reloaded, data.test);
    std::printf("best epoch %lld, test accuracy %.4f, test loss %.4f\n", static_cast<long long>(best.best_epoch()),
                test.accuracy, test.loss);
    return 0;
} catch (const cnnlite::Error& e) {
    std::fprintf(stderr, "quickstart: %s\n", e.what());
    return 1;
}
