// Finding the layer whose output a class-activation map explains: any layer with a feature-map
// output ([C, H, W] per sample) by name, such as a residual block's final ReLU, or the last
// Conv2D of the model when no name is given, with errors that list what exists.
#pragma once

#include <cstddef>
#include <string>

#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/sequential.hpp"

namespace cnnlite::explain {

namespace detail {
/// Whether `layer` is a convolution, whose output has the channels and positions a CAM weighs
/// (by its C++ type: a layer of another name that derives from Conv2D counts too).
template <class T>
bool is_convolution(const Layer<T>& layer) {
    return dynamic_cast<const Conv2D<T>*>(&layer) != nullptr;
}

/// The names of the model's convolutions, for error messages.
template <class T>
std::string conv_layer_names(const Model<T>& model) {
    std::string names;
    for (std::size_t i = 0; i < model.size(); ++i)
        if (is_convolution(model.layer(i))) names += (names.empty() ? "" : ", ") + model.layer(i).name();
    return names.empty() ? "none" : names;
}
}  // namespace detail

/// Index of the layer called `name` in `model`, which must output feature maps ([C, H, W] per
/// sample), or of the last Conv2D when `name` is empty. Throws cnnlite::Error naming `op` for an
/// unknown name (listing the layers), a layer with another output shape, or a model without a
/// Conv2D when no name is given.
template <class T>
std::size_t find_conv_layer(const Model<T>& model, const std::string& name, const char* op) {
    if (name.empty()) {
        for (std::size_t i = model.size(); i-- > 0;)
            if (detail::is_convolution(model.layer(i))) return i;
        fail(op, ": the model has no Conv2D layer to explain");
    }
    if (!model.has_layer(name)) {
        std::string known;
        for (std::size_t i = 0; i < model.size(); ++i)
            known += (i ? ", " : "") + model.layer(i).name() + " (" + model.layer(i).type() + ")";
        fail(op, ": no layer named '", name, "'; the model's layers are: ", known);
    }
    const std::size_t index = model.index_of(name);
    const Layer<T>& layer = model.layer(index);
    check(layer.output_shape().rank() == 3, op, ": layer '", name, "' is a ", layer.type(), " layer with output shape ",
          layer.output_shape(), "; class-activation maps need a layer whose output is feature maps [C, H, W] (here ",
          "for example the convolutions: ", detail::conv_layer_names(model), ")");
    return index;
}

}  // namespace cnnlite::explain
