// Rebuilds layers and whole models from their configurations (the architecture stored in a
// model file), so a saved model loads without the code that defined it.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/nn/softmax.hpp"

namespace cnnlite {

namespace detail {
inline std::pair<std::int64_t, std::int64_t> parse_pair(const LayerConfig& c, const std::string& key) {
    long long a = 0, b = 0;
    char extra = 0;
    const std::string& v = c.at(key);
    check(std::sscanf(v.c_str(), "%lld,%lld%c", &a, &b, &extra) == 2, "layer '", c.name, "': '", key, "' = '", v,
          "' is not a pair 'h,w'");
    return {a, b};
}
inline bool parse_bool(const LayerConfig& c, const std::string& key) {
    const std::string& v = c.at(key);
    check(v == "true" || v == "false", "layer '", c.name, "': '", key, "' = '", v, "' is not true/false");
    return v == "true";
}
}  // namespace detail

/// A fresh, unbuilt layer from its configuration.
template <class T = float>
std::unique_ptr<Layer<T>> make_layer(const LayerConfig& c) {
    std::unique_ptr<Layer<T>> layer;
    if (c.type == "Conv2D") {
        const auto [kh, kw] = detail::parse_pair(c, "kernel_size");
        const auto [sh, sw] = detail::parse_pair(c, "strides");
        auto conv = std::make_unique<Conv2D<T>>(c.integer("filters"), kh, kw);
        conv->strides(sh, sw).padding(c.at("padding")).use_bias(detail::parse_bool(c, "use_bias"))
            .activation(c.at("activation"));
        layer = std::move(conv);
    } else if (c.type == "Dense") {
        auto dense = std::make_unique<Dense<T>>(c.integer("units"));
        dense->use_bias(detail::parse_bool(c, "use_bias")).activation(c.at("activation"));
        layer = std::move(dense);
    } else if (c.type == "MaxPooling2D") {
        const auto [ph, pw] = detail::parse_pair(c, "pool_size");
        const auto [sh, sw] = detail::parse_pair(c, "strides");
        auto pool = std::make_unique<MaxPool2D<T>>(ph, pw);
        pool->strides(sh, sw);
        layer = std::move(pool);
    } else if (c.type == "Dropout") {
        layer = std::make_unique<Dropout<T>>(c.real("rate"));
    } else if (c.type == "Flatten") {
        layer = std::make_unique<Flatten<T>>();
    } else if (c.type == "ReLU") {
        layer = std::make_unique<ReLU<T>>();
    } else if (c.type == "Softmax") {
        layer = std::make_unique<Softmax<T>>();
    } else {
        fail("unknown layer type '", c.type, "' for layer '", c.name,
             "' (known: Conv2D, Dense, MaxPooling2D, Dropout, Flatten, ReLU, Softmax)");
    }
    layer->set_name(c.name);
    return layer;
}

/// A model rebuilt from an input shape and layer configurations (weights freshly initialised).
template <class T = float>
Sequential<T> make_sequential(const Shape& input_shape, const std::vector<LayerConfig>& layers, std::uint64_t seed = 0,
                              InitScheme scheme = InitScheme::keras) {
    Sequential<T> model(input_shape, seed, scheme);
    for (const auto& c : layers) model.add(make_layer<T>(c));
    return model;
}

}  // namespace cnnlite
