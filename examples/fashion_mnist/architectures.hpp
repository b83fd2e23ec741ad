// The networks fashion_mnist trains (--arch) and the recipes that train them (--recipe
// fast|long): the paper's CNN with its own recipe, and a small residual network with
// BatchNorm and the recipes of modern fast-training work. Every setting of a recipe can be
// overridden on the command line; the resolved recipe is what the checkpoint, the model file,
// metrics.json and the report record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/nn/model.hpp"

namespace fm {

/// Everything that decides how a network is trained, besides the data and the seed.
struct Recipe {
    std::string name = "fast";             ///< "fast" or "long"
    std::int64_t epochs = 50;
    std::int64_t batch_size = 64;
    std::string optimizer = "adam";        ///< adam | adamw | sgd (SGD with Nesterov momentum 0.9)
    double learning_rate = 1e-3;           ///< peak rate (after warm-up)
    double weight_decay = 0;               ///< L2 for sgd, decoupled for adamw; never on biases or BatchNorm
    std::string schedule = "constant";     ///< constant | cosine (per step, after warm-up)
    double warmup_epochs = 0;              ///< linear warm-up from 0.1 x the rate
    std::string augment = "none";          ///< none | flip-shift | flip-shift-erase
    double ema_decay = 0;                  ///< exponential moving average of the weights; 0 = off
    double label_smoothing = 0;            ///< Keras' definition
    double clip_norm = 0;                  ///< gradient clipping by global norm; 0 = off
    bool flip_tta = false;                 ///< evaluate averages each image with its mirror image

    /// The recipe as a JSON object, for metrics.json, run.json and the report.
    nlohmann::json to_json() const;
    /// One line: "SGD (Nesterov) lr 0.1, cosine, warm-up 1 epoch, ..., 30 epochs of batch 128".
    std::string describe() const;
};

/// A network fashion_mnist can train.
struct Architecture {
    std::string name;         ///< --arch NAME
    std::string description;  ///< a paragraph for --help and the report
    Recipe fast;              ///< --recipe fast (the default)
    Recipe long_recipe;       ///< --recipe long
    /// The untrained network, weights drawn from `seed`.
    cnnlite::Model<float> (*build)(std::uint64_t seed);
};

/// Every architecture, the default ("paper") first.
const std::vector<Architecture>& architectures();
/// The architecture called `name`; the error lists the names there are.
const Architecture& architecture(const std::string& name);
/// "paper, resnet" for help texts and errors.
std::string architecture_names();

/// The metadata keys under which model files and checkpoints record the architecture and
/// the recipe they were trained with.
inline constexpr const char* arch_key = "fashion_mnist.arch";
inline constexpr const char* recipe_key = "fashion_mnist.recipe";

}  // namespace fm
