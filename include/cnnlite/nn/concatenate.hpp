// Concatenate layer: two or more tensors joined along one axis, as Keras' Concatenate — the
// join of Inception-style branches and DenseNet's feature reuse. The axis counts the batch
// axis as 0, as Keras' does; the default, 1, is the channel axis of cnnlite's NCHW batches
// (and the features of [N, F]).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnnlite/nn/merge_layer.hpp"
#include "cnnlite/ops/combine.hpp"

namespace cnnlite {

/// The options of a Concatenate layer.
struct ConcatenateOptions {
    /// The axis of the batch the inputs are joined along (negative counts from the last); not 0,
    /// the batch axis. Keras' default, -1, is its channel axis; cnnlite's channels are axis 1.
    std::int64_t axis = 1;

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("axis", axis);
    }
};

/// Joins two or more inputs along `axis` (Keras' Concatenate); their shapes agree on every other axis.
template <class T = float>
class Concatenate : public MergeLayer<T, Concatenate<T>, ConcatenateOptions> {
public:
    /// The layer's options type.
    using Options = ConcatenateOptions;

    /// Concatenation with its options.
    explicit Concatenate(ConcatenateOptions options) : MergeLayer<T, Concatenate<T>, ConcatenateOptions>(options) {}
    /// Concatenation along `axis` of the batch (default 1: the channels of [N, C, H, W]).
    explicit Concatenate(std::int64_t axis = 1) : Concatenate(ConcatenateOptions{axis}) {}
    /// Sets the layer's name (default: concatenate, concatenate_1, ...).
    Concatenate& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "Concatenate"; }
    const char* default_name() const override { return "concatenate"; }

    /// The inputs' shape with the extents along the axis added up; the inputs must have one
    /// rank and agree on every other axis.
    Shape merged_shape(const std::vector<Shape>& inputs) const override {
        const Shape& first = inputs[0];
        const std::int64_t a = sample_axis(first.rank());
        std::vector<std::int64_t> dims = first.to_vector();
        dims[static_cast<std::size_t>(a)] = 0;
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            const Shape& s = inputs[i];
            bool match = s.rank() == first.rank();
            for (std::int64_t d = 0; match && d < s.rank(); ++d) match = d == a || s[d] == first[d];
            check(match, "layer '", this->name_, "' (Concatenate): input ", i, " has shape [N, ", s.str().substr(1),
                  ", input 0 has [N, ", first.str().substr(1), " (they may differ only on axis ", a + 1, ")");
            dims[static_cast<std::size_t>(a)] += s[a];
        }
        return Shape(dims);
    }
    /// The inputs joined in input order.
    Variable<T> merge(const std::vector<Variable<T>>& xs, const ForwardContext&) const override {
        return concatenate(xs, sample_axis(this->input_shapes_[0].rank()) + 1);
    }

    /// The axis of the batch as configured (may be negative).
    std::int64_t axis() const { return this->options_.axis; }

private:
    // The axis within a sample of rank `rank` (the batch axis is 0, so batch axis a is a - 1).
    std::int64_t sample_axis(std::int64_t rank) const {
        const std::int64_t axis = this->options_.axis;
        const std::int64_t a = axis < 0 ? axis + rank + 1 : axis;
        check(a >= 1 && a <= rank, "layer '", this->name_, "' (Concatenate): axis ", axis, " is not an axis of a sample ",
              "of rank ", rank, " (1 to ", rank, ", or -", rank, " to -1; 0 is the batch)");
        return a - 1;
    }
};

}  // namespace cnnlite
