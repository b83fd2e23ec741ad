// Activations that layers can fuse into their output, named as in Keras.
#pragma once

#include <string>

#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// An activation applied by Conv2D/Dense to their output (Keras' `activation=`).
enum class Activation { none, relu, softmax };

/// Keras' spelling: "linear", "relu", "softmax".
inline const char* to_string(Activation a) {
    switch (a) {
        case Activation::relu: return "relu";
        case Activation::softmax: return "softmax";
        default: return "linear";
    }
}

/// Parses "linear"/"none"/"", "relu", "softmax".
inline Activation parse_activation(const std::string& name) {
    if (name.empty() || name == "linear" || name == "none") return Activation::none;
    if (name == "relu") return Activation::relu;
    if (name == "softmax") return Activation::softmax;
    fail("unknown activation '", name, "' (known: linear, relu, softmax)");
}

}  // namespace cnnlite
