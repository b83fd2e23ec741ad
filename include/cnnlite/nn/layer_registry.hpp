// The registry of layer types: the one place that maps the type names of model files
// ("Conv2D", "Dense", ...) to the layer classes, so that a saved model loads without the code
// that defined it. A layer class registers with one line in layer_registry(); its options
// struct (nn/layer_options.hpp) does the rest.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnnlite/nn/activation_layer.hpp"
#include "cnnlite/nn/add.hpp"
#include "cnnlite/nn/avg_pool2d.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/concatenate.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/elu.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/global_pooling2d.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/nn/leaky_relu.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/nn/model.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/nn/softmax.hpp"
#include "cnnlite/nn/spatial_dropout2d.hpp"

namespace cnnlite {

/// Makes an unbuilt layer from a configuration.
template <class T>
using LayerMaker = std::unique_ptr<Layer<T>> (*)(const LayerConfig&);

namespace detail {
/// A `Layer` from its options as the configuration stores them.
template <class Layer, class T>
std::unique_ptr<cnnlite::Layer<T>> make_from_config(const LayerConfig& c) {
    return std::make_unique<Layer>(options_from_config<typename Layer::Options>(c));
}
}  // namespace detail

/// Every layer type a model file may name, by the name its `type()` returns.
template <class T = float>
const std::map<std::string, LayerMaker<T>>& layer_registry() {
    static const std::map<std::string, LayerMaker<T>> registry = {
        {"Activation", detail::make_from_config<ActivationLayer<T>, T>},
        {"Add", detail::make_from_config<Add<T>, T>},
        {"AveragePooling2D", detail::make_from_config<AvgPool2D<T>, T>},
        {"BatchNormalization", detail::make_from_config<BatchNormalization<T>, T>},
        {"Concatenate", detail::make_from_config<Concatenate<T>, T>},
        {"Conv2D", detail::make_from_config<Conv2D<T>, T>},
        {"Dense", detail::make_from_config<Dense<T>, T>},
        {"ELU", detail::make_from_config<ELU<T>, T>},
        {"GlobalAveragePooling2D", detail::make_from_config<GlobalAveragePooling2D<T>, T>},
        {"GlobalMaxPooling2D", detail::make_from_config<GlobalMaxPooling2D<T>, T>},
        {"LeakyReLU", detail::make_from_config<LeakyReLU<T>, T>},
        {"MaxPooling2D", detail::make_from_config<MaxPool2D<T>, T>},
        {"Dropout", detail::make_from_config<Dropout<T>, T>},
        {"Flatten", detail::make_from_config<Flatten<T>, T>},
        {"ReLU", detail::make_from_config<ReLU<T>, T>},
        {"Softmax", detail::make_from_config<Softmax<T>, T>},
        {"SpatialDropout2D", detail::make_from_config<SpatialDropout2D<T>, T>},
    };
    return registry;
}

/// A fresh, unbuilt layer from its configuration; throws for an unknown type (listing the
/// known ones) or a missing or malformed option (naming the layer and the option).
template <class T = float>
std::unique_ptr<Layer<T>> make_layer(const LayerConfig& c) {
    const auto& registry = layer_registry<T>();
    const auto it = registry.find(c.type);
    if (it == registry.end()) {
        std::string known;
        for (const auto& entry : registry) known += (known.empty() ? "" : ", ") + entry.first;
        fail("unknown layer type '", c.type, "' for layer '", c.name, "' (known: ", known, ")");
    }
    std::unique_ptr<Layer<T>> layer = it->second(c);
    layer->set_name(c.name);
    return layer;
}

/// A model rebuilt from an input shape and layer configurations (weights freshly
/// initialised). Each configuration's `inputs` name the layers feeding it ("input" for the
/// model's input); an empty list means the layer before (so a Sequential's list rebuilds as one).
template <class T = float>
Model<T> make_model(const Shape& input_shape, const std::vector<LayerConfig>& layers, std::uint64_t seed = 0,
                    InitScheme scheme = InitScheme::keras) {
    Model<T> model(input_shape, seed, scheme);
    for (const auto& c : layers) {
        std::vector<std::string> inputs = c.inputs;
        if (inputs.empty())
            inputs.push_back(model.size() == 0 ? std::string(model_input_name()) : model.layer(model.size() - 1).name());
        model.connect(make_layer<T>(c), inputs);
    }
    model.check_complete();
    return model;
}

/// A chain of layers rebuilt from an input shape and layer configurations (weights freshly
/// initialised); throws when a configuration names inputs other than the layer before.
template <class T = float>
Sequential<T> make_sequential(const Shape& input_shape, const std::vector<LayerConfig>& layers, std::uint64_t seed = 0,
                              InitScheme scheme = InitScheme::keras) {
    Sequential<T> model(input_shape, seed, scheme);
    for (const auto& c : layers) {
        const std::string previous =
            model.size() == 0 ? std::string(model_input_name()) : model.layer(model.size() - 1).name();
        check(c.inputs.empty() || (c.inputs.size() == 1 && c.inputs[0] == previous), "make_sequential: layer '", c.name,
              "' does not take the output of the layer before it (a graph model: use make_model)");
        model.add(make_layer<T>(c));
    }
    return model;
}

}  // namespace cnnlite
