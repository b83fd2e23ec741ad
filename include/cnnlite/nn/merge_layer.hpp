// MergeLayer: the base of layers that combine two or more tensors (Add, Concatenate), as
// Keras' merging layers. A model calls build_inputs() and forward_inputs() with all inputs;
// the single-input build() and forward() refuse, naming the layer.
#pragma once

#include <vector>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"

namespace cnnlite {

/// Base of the layers with two or more inputs; `Derived` and `Options` as for LayerWithOptions.
template <class T, class Derived, class Options>
class MergeLayer : public LayerWithOptions<T, Derived, Options> {
public:
    /// 0: any number of inputs (two or more).
    int arity() const override { return 0; }
    /// Per-sample output shape for the per-sample input shapes (at least two).
    virtual Shape merged_shape(const std::vector<Shape>& inputs) const = 0;
    /// The merged batch.
    virtual Variable<T> merge(const std::vector<Variable<T>>& xs, const ForwardContext& ctx) const = 0;

    /// Checks that there are two or more inputs and returns merged_shape() of their shapes.
    Shape build_inputs(const std::vector<Shape>& inputs, const LayerInit&) override {
        check(inputs.size() >= 2, "layer '", this->name_, "' (", this->type(), ") needs two or more inputs, got ",
              inputs.size());
        return merged_shape(inputs);
    }
    /// Checks the number of inputs against the built shapes and returns merge() of them.
    Variable<T> forward_inputs(const std::vector<Variable<T>>& xs, const ForwardContext& ctx) const override {
        check(xs.size() == this->input_shapes_.size(), "layer '", this->name_, "' (", this->type(), ") expects ",
              this->input_shapes_.size(), " inputs, got ", xs.size());
        for (std::size_t i = 0; i < xs.size(); ++i)
            if (!is_batch_of(xs[i].shape(), this->input_shapes_[i]) || xs[i].shape()[0] != xs[0].shape()[0])
                fail("layer '", this->name_, "' (", this->type(), ") expects input ", i, " of shape [N, ",
                     this->input_shapes_[i].str().substr(1), " with the batch of input 0 (", xs[0].shape()[0], "), got ",
                     xs[i].shape());
        return merge(xs, ctx);
    }
    /// Refused: a merging layer has several inputs.
    Shape build(const Shape&, const LayerInit&) override {
        fail("layer '", this->name_, "' (", this->type(), ") merges two or more inputs; call it on a list of tensors");
    }
    /// Refused: a merging layer has several inputs.
    Variable<T> forward(const Variable<T>&, const ForwardContext&) const override {
        fail("layer '", this->name_, "' (", this->type(), ") merges two or more inputs; call forward_inputs()");
    }

protected:
    /// Merging layers pass their validated options up.
    explicit MergeLayer(Options options) : LayerWithOptions<T, Derived, Options>(std::move(options)) {}
};

}  // namespace cnnlite
