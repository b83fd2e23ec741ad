// Choosing the parameters that get no weight decay, by name: the usual recipes of small CNNs
// decay the weights of convolutions and dense layers but not biases or the scale and offset of
// normalisation layers. The optimisers take the chosen indices as their `no_decay` option.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

namespace cnnlite {

/// Whether `name` ("<layer>.<parameter>", as Model::trainable_names() gives) is a bias or a
/// normalisation parameter: the parameter is called "bias", "gamma" or "beta" (Keras' names
/// of a normalisation's scale and offset), or the layer's name contains "normalization"
/// (Keras' default layer names, whose parameters follow PyTorch: "batch_normalization.weight").
inline bool is_bias_or_norm_parameter(const std::string& name) {
    const std::size_t dot = name.rfind('.');
    const std::string layer = dot == std::string::npos ? std::string() : name.substr(0, dot);
    const std::string parameter = dot == std::string::npos ? name : name.substr(dot + 1);
    return parameter == "bias" || parameter == "gamma" || parameter == "beta" ||
           layer.find("normalization") != std::string::npos;
}

/// Positions in `names` of the parameters for which `exclude(name)` is true, for an optimiser's
/// `no_decay` option when it takes the parameters in the same order (trainable_variables() and
/// trainable_names() agree). The default excludes biases and normalisation parameters.
template <class Predicate = bool (*)(const std::string&)>
std::vector<std::size_t> no_decay_indices(const std::vector<std::string>& names,
                                          Predicate exclude = is_bias_or_norm_parameter) {
    static_assert(std::is_invocable_r<bool, Predicate&, const std::string&>::value,
                  "no_decay_indices: the predicate must take a parameter name and return bool");
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < names.size(); ++i)
        if (exclude(names[i])) out.push_back(i);
    return out;
}

}  // namespace cnnlite
