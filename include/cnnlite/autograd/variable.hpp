// Variable<T>: a tensor that takes part in reverse-mode automatic differentiation.
// Operations on variables record the graph as they run (define-by-run); backward() walks it
// from the output in reverse topological order and accumulates gradients into every leaf that
// requires them. Hooks on any variable see, and may replace, the gradient flowing into it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <initializer_list>
#include <utility>
#include <vector>

#include "cnnlite/autograd/grad_mode.hpp"
#include "cnnlite/autograd/node.hpp"
#include "cnnlite/core/tensor.hpp"

namespace cnnlite {

/// A tensor in the autograd graph: operations on variables record the graph, backward() sends gradients back to the leaves that require them.
template <class T = float>
class Variable {
public:
    /// The graph node type (internal).
    using Node = detail::Node<T>;

    /// A null variable; `defined()` is false.
    Variable() = default;

    /// A leaf holding `value`; with requires_grad, backward() accumulates its gradient.
    explicit Variable(Tensor<T> value, bool requires_grad = false) : node_(detail::NodePool<T>::instance().acquire()) {
        node_->value = std::move(value);
        node_->requires_grad = requires_grad;
    }

    /// Another handle to the same node (shares value, gradient and graph).
    Variable(const Variable& other) : node_(other.node_) { detail::retain(node_); }
    /// Takes over the node of `other`, which becomes null.
    Variable(Variable&& other) noexcept : node_(other.node_) { other.node_ = nullptr; }
    /// Makes this a handle to the node of `other`.
    Variable& operator=(Variable other) noexcept {
        std::swap(node_, other.node_);
        return *this;
    }
    ~Variable() { detail::release(node_); }

    /// Whether this variable refers to a node.
    bool defined() const { return node_ != nullptr; }
    /// The value.
    const Tensor<T>& value() const { return checked()->value; }
    /// Mutable access to the value, for optimisers and initialisers updating leaves in place.
    Tensor<T>& value() { return checked()->value; }
    /// Shape of the value.
    const Shape& shape() const { return value().shape(); }

    /// Whether backward() computes a gradient for this variable.
    bool requires_grad() const { return checked()->requires_grad; }
    /// Turns gradient tracking on or off; only leaves may change it.
    void set_requires_grad(bool on) {
        check(is_leaf(), "set_requires_grad: only leaves can change requires_grad (this is the output of '",
              op_name(), "')");
        node_->requires_grad = on;
    }
    /// Whether this is a leaf (created directly, not the output of an operation).
    bool is_leaf() const { return checked()->is_leaf(); }
    /// Name of the operation that produced this variable ("leaf" for leaves).
    const char* op_name() const { return checked()->op; }

    /// The accumulated gradient; undefined if none has flowed in (or it was not retained).
    const Tensor<T>& grad() const { return checked()->grad; }
    /// Mutable access to the accumulated gradient.
    Tensor<T>& grad() { return checked()->grad; }
    /// Whether a gradient has flowed in (and was kept).
    bool has_grad() const { return checked()->grad.defined(); }
    /// Resets the gradient (drops the buffer, which returns to the pool).
    void zero_grad() { checked()->grad = Tensor<T>(); }

    /// Keeps this (non-leaf) variable's gradient after backward, as PyTorch's retain_grad().
    void retain_grad() { checked()->retains_grad = true; }

    /// Registers `hook`, called with the gradient flowing into this variable once all of it has
    /// arrived and before it flows further back; the hook may change it in place or assign a new
    /// tensor of the same shape.
    void register_hook(std::function<void(Tensor<T>&)> hook) {
        check(static_cast<bool>(hook), "register_hook: empty hook");
        checked()->hooks.push_back(std::move(hook));
    }

    /// A leaf sharing this variable's value but cut off from the graph.
    Variable detach() const { return Variable(value(), false); }

    /// Backward from a scalar output (gradient 1).
    void backward() {
        check(value().numel() == 1, "backward: output of '", op_name(), "' has shape ", shape(),
              "; give an output gradient for non-scalar outputs");
        backward(Tensor<T>::full(shape(), T(1)));
    }
    /// Backward with a given gradient of the output (same shape as the value).
    void backward(const Tensor<T>& output_grad);

    /// Internal: the graph node (used by ops to record results).
    Node* node() const { return node_; }
    /// Internal: adopts a node that already carries one reference.
    static Variable adopt(Node* node) {
        Variable v;
        v.node_ = node;
        return v;
    }

private:
    Node* checked() const {
        check(node_ != nullptr, "Variable: use of an undefined (null) variable");
        return node_;
    }

    Node* node_ = nullptr;
};

namespace detail {

/// Whether an op with these inputs must record a node (grad mode on and some input tracked).
template <class T>
bool should_record(std::initializer_list<const Variable<T>*> inputs) {
    if (!grad_enabled()) return false;
    for (const Variable<T>* v : inputs)
        if (v->defined() && v->requires_grad()) return true;
    return false;
}

/// Wraps `value` as an op result. When `record` is set, the node remembers `backward` and
/// holds a reference to each of `inputs` (any number: a range of `const Variable<T>*`); the
/// caller then fills the node's saved tensors and arguments.
template <class T, class Inputs>
Variable<T> make_result_of(Tensor<T> value, const char* op, bool record, typename Node<T>::BackwardFn backward,
                           const Inputs& inputs) {
    Node<T>* node = NodePool<T>::instance().acquire();
    node->value = std::move(value);
    node->op = op;
    if (record) {
        node->requires_grad = true;
        node->backward = backward;
        for (const Variable<T>* v : inputs) {
            Node<T>* in = v->defined() ? v->node() : nullptr;
            retain(in);
            node->add_input(in);
        }
    }
    return Variable<T>::adopt(node);
}

/// make_result_of() with the inputs listed in braces: `{&x, &weight, &bias}`.
template <class T>
Variable<T> make_result(Tensor<T> value, const char* op, bool record, typename Node<T>::BackwardFn backward,
                        std::initializer_list<const Variable<T>*> inputs) {
    return make_result_of<T>(std::move(value), op, record, backward, inputs);
}

/// Whether input `i` of `node` wants a gradient.
template <class T>
bool wants_grad(const Node<T>& node, int i) {
    const Node<T>* in = node.input(i);
    return in != nullptr && in->requires_grad;
}

/// The gradient buffer of input `i`, for a backward kernel to write into. Returns true when the
/// buffer is fresh (the kernel must overwrite it) and false when it already holds gradient
/// from another path (the kernel must add to it).
template <class T>
bool grad_buffer(Node<T>& node, int i, Tensor<T>*& buffer) {
    Node<T>* in = node.input(i);
    buffer = &in->grad;
    if (in->grad.defined()) return false;
    in->grad = Tensor<T>::uninitialized(in->value.shape());
    return true;
}

/// Adds `g` to input `i`'s gradient (adopting it without a copy when it is the first).
template <class T>
void accumulate_grad(Node<T>& node, int i, Tensor<T> g) {
    Node<T>* in = node.input(i);
    check(in->value.shape() == g.shape(), "backward of '", node.op, "': gradient of shape ", g.shape(),
          " for an input of shape ", in->value.shape());
    if (!in->grad.defined()) {
        // Adopt the buffer when nothing else sees it; copy when it is a view of another gradient.
        in->grad = g.unique() ? std::move(g) : g.clone();
    } else {
        in->grad.array() += g.array();
    }
}

inline std::uint64_t next_visit_mark() {
    static std::atomic<std::uint64_t> mark{0};
    return ++mark;
}

}  // namespace detail

template <class T>
void Variable<T>::backward(const Tensor<T>& output_grad) {
    Node* root = checked();
    check(root->requires_grad, "backward: output of '", root->op,
          "' does not require grad (no input requires grad, or it was computed under NoGrad)");
    check_same_shape("backward: output gradient", root->value, output_grad);

    // Post-order depth-first search gives a topological order; the buffers are thread-local
    // and keep their capacity, so a steady-state step does not allocate here.
    thread_local std::vector<std::pair<Node*, int>> stack;
    thread_local std::vector<Node*> order;
    stack.clear();
    order.clear();
    const std::uint64_t mark = detail::next_visit_mark();
    root->visit_mark = mark;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->num_inputs) {
            Node* in = node->input(next++);
            if (in && in->requires_grad && in->visit_mark != mark) {
                in->visit_mark = mark;
                stack.emplace_back(in, 0);
            }
        } else {
            order.push_back(node);
            stack.pop_back();
        }
    }

    // Gradients of intermediate nodes start afresh on every backward; leaves accumulate.
    for (Node* node : order)
        if (!node->is_leaf()) node->grad = Tensor<T>();

    if (root->grad.defined()) {
        root->grad.array() += output_grad.array();
    } else {
        root->grad = output_grad.clone();
    }

    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node* node = *it;
        if (!node->grad.defined()) continue;  // no path from the output reached it
        for (auto& hook : node->hooks) {
            const Shape before = node->value.shape();
            hook(node->grad);
            check(node->grad.defined() && node->grad.shape() == before, "gradient hook on '", node->op,
                  "' replaced a gradient of shape ", before, " with one of shape ", node->grad.shape());
        }
        if (node->is_leaf()) continue;
        node->backward(*node);
        if (!node->retains_grad) node->grad = Tensor<T>();
    }
}

}  // namespace cnnlite
