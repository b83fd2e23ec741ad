// Symbolic tensors: the placeholders of Keras' functional API. `Input(shape)` starts a graph;
// calling a layer on symbolic tensors (`Conv2D<>(32, 3)(x)`, `Add<>()({a, b})`) records the call
// and returns its output; `Model(input, output)` then builds the layers that the output depends
// on. Nothing is computed and no weight exists until the model is built.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "cnnlite/core/shape.hpp"

namespace cnnlite {

template <class T>
class Layer;

namespace detail {
/// One recorded layer call (or the graph's input, when `layer` is null).
template <class T>
struct SymbolicNode {
    std::shared_ptr<const Layer<T>> layer;               ///< an unbuilt copy of the called layer
    std::vector<std::shared_ptr<SymbolicNode>> inputs;   ///< the tensors it was called on
    Shape input_shape;                                   ///< the per-sample shape, for an input
    std::uint64_t order = 0;                             ///< creation order: a topological order

    /// A process-wide counter, so that any node was created after the nodes it consumes.
    static std::uint64_t next_order() {
        static std::atomic<std::uint64_t> counter{0};
        return ++counter;
    }
};
}  // namespace detail

/// A tensor of a model under construction: the model's input, or the output of a layer call.
template <class T = float>
class Symbolic {
public:
    /// An empty placeholder (assign a layer's output to it).
    Symbolic() = default;
    /// Wraps a recorded node (used by Input() and Layer::operator()).
    explicit Symbolic(std::shared_ptr<detail::SymbolicNode<T>> node) : node_(std::move(node)) {}

    /// Whether it refers to an input or a layer call.
    bool defined() const { return node_ != nullptr; }
    /// Whether it is a model input (made by Input()).
    bool is_input() const { return node_ && !node_->layer; }
    /// The recorded node.
    const std::shared_ptr<detail::SymbolicNode<T>>& node() const { return node_; }

private:
    std::shared_ptr<detail::SymbolicNode<T>> node_;
};

/// The input of a functional model: per-sample shape, e.g. {1, 28, 28} (the batch axis is implicit).
template <class T = float>
Symbolic<T> Input(Shape shape) {
    auto node = std::make_shared<detail::SymbolicNode<T>>();
    node->input_shape = shape;
    node->order = detail::SymbolicNode<T>::next_order();
    return Symbolic<T>(std::move(node));
}

}  // namespace cnnlite
