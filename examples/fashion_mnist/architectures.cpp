// The architectures and recipes of fashion_mnist (architectures.hpp).
#include "architectures.hpp"

#include <cstdio>

#include "cnnlite/core/error.hpp"
#include "cnnlite/nn/add.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/global_pooling2d.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/nn/symbolic.hpp"

namespace fm {

namespace {

using cnnlite::Symbolic;

/// Conv2D (no bias: the BatchNorm after it has one) -> BatchNormalization with PyTorch's
/// settings (momentum 0.1, epsilon 1e-5), as the recipe and the PyTorch comparison use.
Symbolic<float> conv_bn(const Symbolic<float>& x, std::int64_t filters, std::int64_t kernel, std::int64_t stride) {
    cnnlite::Conv2dOptions conv;
    conv.filters = filters;
    conv.kernel_size = {kernel, kernel};
    conv.strides = {stride, stride};
    conv.padding = cnnlite::Padding::same();
    conv.use_bias = false;
    return cnnlite::BatchNormalization<float>(cnnlite::BatchNormConvention::torch)(cnnlite::Conv2D<float>(conv)(x));
}

/// A basic residual block (He et al. 2016): two 3x3 convolutions with BatchNorm, added to the
/// input (through a 1x1 convolution when the shape changes), then ReLU. The shortcut is made
/// first so that the block's last Conv2D is the one on its main path.
Symbolic<float> residual_block(const Symbolic<float>& x, std::int64_t in_filters, std::int64_t filters,
                               std::int64_t stride) {
    const Symbolic<float> shortcut = stride == 1 && in_filters == filters ? x : conv_bn(x, filters, 1, stride);
    Symbolic<float> h = cnnlite::ReLU<float>()(conv_bn(x, filters, 3, stride));
    h = conv_bn(h, filters, 3, 1);
    return cnnlite::ReLU<float>()(cnnlite::Add<float>()({h, shortcut}));
}

/// ResNet-8 for 28x28 images: a 3x3 stem with 32 filters, one residual block at each of 28x28
/// (32 filters), 14x14 (64) and 7x7 (128), global average pooling and a softmax layer; 0.3 M
/// parameters, about 37 M multiply-adds per image.
cnnlite::Model<float> resnet8(std::uint64_t seed) {
    auto x = cnnlite::Input<float>({1, 28, 28});
    Symbolic<float> h = cnnlite::ReLU<float>()(conv_bn(x, 32, 3, 1));
    h = residual_block(h, 32, 32, 1);
    h = residual_block(h, 32, 64, 2);
    h = residual_block(h, 64, 128, 2);
    h = cnnlite::GlobalAveragePooling2D<float>()(h);
    auto y = cnnlite::Dense<float>(10).activation("softmax")(h);
    return cnnlite::Model<float>(x, y, seed, cnnlite::InitScheme::torch);
}

cnnlite::Model<float> paper(std::uint64_t seed) { return cnnlite::fashion_mnist_cnn<float>(seed); }

/// The paper's recipe: Adam with Keras' defaults, batch 64, 50 epochs, nothing else.
Recipe paper_recipe(const char* name) {
    Recipe r;
    r.name = name;
    return r;
}

/// Recipes for the residual network, after fast-training work on small images (Jordan's
/// CIFAR-10 airbench; Zhong et al. 2020 for random erasing): SGD with Nesterov momentum and a
/// short linear warm-up into a cosine decay, weight decay off the biases and BatchNorm
/// parameters, label smoothing 0.1, flips and 2-pixel shifts, flip test-time augmentation;
/// the long recipe adds random erasing and an average of the weights.
Recipe resnet_recipe(bool long_run) {
    Recipe r;
    r.name = long_run ? "long" : "fast";
    r.epochs = long_run ? 40 : 15;
    r.batch_size = 128;
    r.optimizer = "sgd";
    r.learning_rate = 0.1;
    r.weight_decay = 5e-4;
    r.schedule = "cosine";
    r.warmup_epochs = 1;
    r.augment = long_run ? "flip-shift-erase" : "flip-shift";
    r.ema_decay = long_run ? 0.999 : 0;
    r.label_smoothing = 0.1;
    r.flip_tta = true;
    return r;
}

std::string number(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", v);
    return text;
}

}  // namespace

nlohmann::json Recipe::to_json() const {
    return {{"name", name},
            {"epochs", epochs},
            {"batch_size", batch_size},
            {"optimizer", optimizer},
            {"learning_rate", learning_rate},
            {"weight_decay", weight_decay},
            {"schedule", schedule},
            {"warmup_epochs", warmup_epochs},
            {"augment", augment},
            {"ema_decay", ema_decay},
            {"label_smoothing", label_smoothing},
            {"clip_norm", clip_norm},
            {"flip_tta", flip_tta}};
}

std::string Recipe::describe() const {
    std::string text = optimizer == "sgd" ? "SGD (Nesterov momentum 0.9)" : optimizer == "adamw" ? "AdamW" : "Adam";
    text += " lr " + number(learning_rate);
    if (weight_decay > 0) text += ", weight decay " + number(weight_decay);
    if (schedule != "constant") text += ", " + schedule + " schedule";
    if (warmup_epochs > 0) text += ", warm-up " + number(warmup_epochs) + " epoch(s)";
    if (augment != "none") text += ", augmentation " + augment;
    if (label_smoothing > 0) text += ", label smoothing " + number(label_smoothing);
    if (ema_decay > 0) text += ", weight average (EMA " + number(ema_decay) + ")";
    if (clip_norm > 0) text += ", gradient norm clipped at " + number(clip_norm);
    if (flip_tta) text += ", flip test-time augmentation";
    return text + "; " + std::to_string(epochs) + " epochs of batch " + std::to_string(batch_size);
}

const std::vector<Architecture>& architectures() {
    static const std::vector<Architecture> list = {
        {"paper",
         "The paper's Figure 4: one 2x2 convolution with 64 filters ('same' padding, ReLU), two max-pooling stages "
         "with dropout 0.3, a 256-unit dense layer with dropout 0.5 and a 10-way softmax.",
         paper_recipe("fast"), paper_recipe("long"), paper},
        {"resnet8",
         "ResNet-8: a 3x3 convolution with 32 filters, one residual block (two 3x3 convolutions with BatchNorm and "
         "a shortcut) at each of 28x28 (32 filters), 14x14 (64) and 7x7 (128), global average pooling and a "
         "10-way softmax; 0.3 M parameters.",
         resnet_recipe(false), resnet_recipe(true), resnet8},
    };
    return list;
}

const Architecture& architecture(const std::string& name) {
    for (const Architecture& a : architectures())
        if (a.name == name) return a;
    cnnlite::fail("unknown architecture '", name, "'; fashion_mnist knows ", architecture_names());
}

std::string architecture_names() {
    std::string names;
    for (const Architecture& a : architectures()) names += (names.empty() ? "" : ", ") + a.name;
    return names;
}

}  // namespace fm
