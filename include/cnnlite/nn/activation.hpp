// Activations by Keras name: what Conv2D/Dense apply to their output (`activation=`) and what
// the Activation layer (nn/activation_layer.hpp) applies on its own, with the op of each.
#pragma once

#include <string>

#include "cnnlite/core/error.hpp"
#include "cnnlite/ops/activation.hpp"

namespace cnnlite {

/// An activation applied by Conv2D/Dense to their output (Keras' `activation=`) or by the
/// Activation layer.
enum class Activation {
    none,        ///< the identity ("linear")
    relu,        ///< max(x, 0)
    softmax,     ///< softmax over the last axis
    leaky_relu,  ///< x > 0 ? x : 0.2 x (keras.activations.leaky_relu's slope; the LeakyReLU layer sets its own)
    elu,         ///< x > 0 ? x : exp(x) - 1 (alpha 1; the ELU layer sets its own)
    gelu,        ///< x Phi(x), exact (Keras' approximate=False, PyTorch's approximate='none')
    gelu_tanh,   ///< GELU's tanh approximation (Keras' approximate=True, PyTorch's approximate='tanh')
    silu,        ///< x sigmoid(x) (Keras also calls it "swish")
    sigmoid,     ///< 1 / (1 + exp(-x))
    tanh,        ///< tanh(x)
    softplus,    ///< log(1 + exp(x))
};

/// Keras' spelling: "linear", "relu", "softmax", "leaky_relu", "elu", "gelu", "silu",
/// "sigmoid", "tanh", "softplus"; "gelu_tanh" for the tanh approximation of GELU (Keras has no
/// name for it).
inline const char* to_string(Activation a) {
    switch (a) {
        case Activation::none: return "linear";
        case Activation::relu: return "relu";
        case Activation::softmax: return "softmax";
        case Activation::leaky_relu: return "leaky_relu";
        case Activation::elu: return "elu";
        case Activation::gelu: return "gelu";
        case Activation::gelu_tanh: return "gelu_tanh";
        case Activation::silu: return "silu";
        case Activation::sigmoid: return "sigmoid";
        case Activation::tanh: return "tanh";
        case Activation::softplus: return "softplus";
    }
    return "linear";
}

/// Parses the names of to_string(), "none"/"" (linear) and "swish" (silu); `where` (e.g.
/// "Dense 'dense'") starts the error for an unknown name, which lists the known ones.
inline Activation parse_activation(const std::string& name, const std::string& where = "") {
    if (name.empty() || name == "none") return Activation::none;
    if (name == "swish") return Activation::silu;
    for (Activation a : {Activation::none, Activation::relu, Activation::softmax, Activation::leaky_relu,
                         Activation::elu, Activation::gelu, Activation::gelu_tanh, Activation::silu,
                         Activation::sigmoid, Activation::tanh, Activation::softplus})
        if (name == to_string(a)) return a;
    fail(where, where.empty() ? "" : ": ", "unknown activation '", name,
         "' (known: linear, relu, softmax, leaky_relu, elu, gelu, gelu_tanh, silu, swish, sigmoid, tanh, softplus)");
}

/// Reads an Activation option from a model file (nn/layer_options.hpp).
inline void parse_option(const std::string& text, Activation& out) { out = parse_activation(text); }

/// The parameter an activation given only by name uses: leaky_relu's negative slope 0.2
/// (keras.activations.leaky_relu), elu's alpha 1; 0 for the others.
inline double default_activation_alpha(Activation a) {
    return a == Activation::leaky_relu ? 0.2 : a == Activation::elu ? 1.0 : 0.0;
}

/// The activation `a` of x element-wise (softmax: over the last axis); `alpha` is leaky_relu's
/// negative slope or elu's scale and is ignored by the others.
template <class T>
Variable<T> apply_activation(const Variable<T>& x, Activation a, double alpha) {
    switch (a) {
        case Activation::none: return x;
        case Activation::relu: return relu(x);
        case Activation::softmax: return softmax(x);
        case Activation::leaky_relu: return leaky_relu(x, alpha);
        case Activation::elu: return elu(x, alpha);
        case Activation::gelu: return gelu(x, false);
        case Activation::gelu_tanh: return gelu(x, true);
        case Activation::silu: return silu(x);
        case Activation::sigmoid: return sigmoid(x);
        case Activation::tanh: return tanh(x);
        case Activation::softplus: return softplus(x);
    }
    fail("apply_activation: invalid activation ", static_cast<int>(a));
}

/// apply_activation() with the parameter of default_activation_alpha().
template <class T>
Variable<T> apply_activation(const Variable<T>& x, Activation a) {
    return apply_activation(x, a, default_activation_alpha(a));
}

}  // namespace cnnlite
