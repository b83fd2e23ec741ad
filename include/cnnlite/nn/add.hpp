// Add layer: the element-wise sum of two or more tensors of one shape, as Keras' Add — the
// join of a residual connection.
#pragma once

#include <string>
#include <vector>

#include "cnnlite/nn/merge_layer.hpp"
#include "cnnlite/ops/combine.hpp"

namespace cnnlite {

/// Element-wise sum of two or more inputs of the same shape (Keras' Add).
template <class T = float>
class Add : public MergeLayer<T, Add<T>, NoOptions> {
public:
    /// The layer's options type (it has none).
    using Options = NoOptions;

    Add() : MergeLayer<T, Add<T>, NoOptions>(NoOptions{}) {}
    /// The same, from its (empty) options.
    explicit Add(NoOptions) : Add() {}
    /// Sets the layer's name (default: add, add_1, ...).
    Add& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "Add"; }
    const char* default_name() const override { return "add"; }

    /// All inputs must have one shape, which is the output's.
    Shape merged_shape(const std::vector<Shape>& inputs) const override {
        for (std::size_t i = 1; i < inputs.size(); ++i)
            check(inputs[i] == inputs[0], "layer '", this->name_, "' (Add): input ", i, " has shape ", inputs[i],
                  ", input 0 has ", inputs[0], " (Add needs one shape)");
        return inputs[0];
    }
    /// x0 + x1 + ... in input order, as one add_n node (one pass, one graph node for any count).
    Variable<T> merge(const std::vector<Variable<T>>& xs, const ForwardContext&) const override {
        return add_n(xs);
    }
};

}  // namespace cnnlite
