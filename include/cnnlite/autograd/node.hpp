// A node of the autograd graph: a value, its gradient and, for results of operations, the
// function that sends the gradient back to the operation's inputs. Nodes are reference
// counted and recycled through a free list, so that a training step which builds the same
// graph every time reuses the same nodes (and, through the buffer pool, the same buffers).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <type_traits>
#include <vector>

#include "cnnlite/core/tensor.hpp"

namespace cnnlite::detail {

template <class T>
struct Node {
    static constexpr int inline_inputs = 4;  // inputs held in the node itself; more spill into a vector
    static constexpr int max_saved = 4;
    using BackwardFn = void (*)(Node&);
    using Hook = std::function<void(Tensor<T>&)>;

    std::atomic<int> refs{0};
    Tensor<T> value;
    Tensor<T> grad;                      // undefined until a gradient flows in
    bool requires_grad = false;
    bool retains_grad = false;           // non-leaf keeps its gradient after backward
    const char* op = "leaf";             // names the operation in errors and graph dumps
    BackwardFn backward = nullptr;       // null for leaves
    std::array<Node*, inline_inputs> first_inputs{};  // each holds a reference (null: an undefined input)
    std::vector<Node*> more_inputs;                  // inputs beyond inline_inputs (a many-way Add or Concatenate)
    int num_inputs = 0;
    std::array<Tensor<T>, max_saved> saved;  // tensors the backward needs (masks, probabilities, ...)
    Tensor<std::int32_t> indices;            // integer data the backward needs (argmax, labels)
    // The op's arguments (strides, padding, a scale, ...): one trivially copyable struct of the
    // op's own, stored in place (set_args/args), so recording a node never allocates.
    static constexpr std::size_t max_args_bytes = 96;
    alignas(std::max_align_t) unsigned char args_bytes[max_args_bytes] = {};
    std::vector<Hook> hooks;
    std::uint64_t visit_mark = 0;            // used by backward's topological sort

    bool is_leaf() const { return backward == nullptr; }

    /// Input `i` of the op (0 <= i < num_inputs); null for an input that was undefined.
    Node* input(int i) const {
        return i < inline_inputs ? first_inputs[static_cast<std::size_t>(i)]
                                 : more_inputs[static_cast<std::size_t>(i - inline_inputs)];
    }
    /// Appends an input (the node then holds the reference the caller passes in).
    void add_input(Node* in) {
        if (num_inputs < inline_inputs) first_inputs[static_cast<std::size_t>(num_inputs)] = in;
        else more_inputs.push_back(in);
        ++num_inputs;
    }

    /// Stores the op's arguments `a` for its backward function.
    template <class Args>
    void set_args(const Args& a) {
        static_assert(std::is_trivially_copyable<Args>::value, "op arguments must be trivially copyable");
        static_assert(sizeof(Args) <= max_args_bytes, "op arguments are larger than a node holds");
        std::memcpy(args_bytes, &a, sizeof(Args));
    }
    /// The arguments set_args<Args>() stored.
    template <class Args>
    Args args() const {
        Args a;
        std::memcpy(&a, args_bytes, sizeof(Args));
        return a;
    }

    void clear() {
        value = Tensor<T>();
        grad = Tensor<T>();
        requires_grad = retains_grad = false;
        op = "leaf";
        backward = nullptr;
        num_inputs = 0;
        first_inputs.fill(nullptr);
        more_inputs.clear();  // keeps its capacity: a recycled node does not allocate again
        for (auto& s : saved) s = Tensor<T>();
        indices = Tensor<std::int32_t>();
        hooks.clear();
    }
};

/// Free list of nodes, one per scalar type. Thread-safe: a node may die on another thread.
template <class T>
class NodePool {
public:
    static NodePool& instance() {
        static NodePool* pool = new NodePool();  // leaked on purpose, like the buffer pool
        return *pool;
    }
    Node<T>* acquire() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!free_.empty()) {
                Node<T>* node = free_.back();
                free_.pop_back();
                node->refs.store(1, std::memory_order_relaxed);
                return node;
            }
        }
        auto* node = new Node<T>();
        node->refs.store(1, std::memory_order_relaxed);
        return node;
    }
    void release(Node<T>* node) {
        std::lock_guard<std::mutex> lock(mutex_);
        free_.push_back(node);
    }

private:
    std::mutex mutex_;
    std::vector<Node<T>*> free_;
};

template <class T>
void retain(Node<T>* node) {
    if (node) node->refs.fetch_add(1, std::memory_order_relaxed);
}

/// Drops one reference; a node whose count reaches zero drops its inputs in turn. Iterative,
/// so that releasing a long chain cannot overflow the stack.
template <class T>
void release(Node<T>* node) {
    // The nodes still to drop live in this frame, not in a thread_local: a Variable destroyed
    // at program exit (in a static model) is released after thread_local objects are gone.
    // The fixed room never allocates (training steps stay allocation-free); a graph that needs
    // more spills into a vector. Re-entrant calls (a hook's captures dropped by clear()) get
    // their own frame.
    constexpr std::size_t room = 256;
    Node<T>* local[room];
    std::size_t count = 0;
    std::vector<Node<T>*> spill;
    const auto push = [&](Node<T>* n) {
        if (count < room) local[count++] = n;
        else spill.push_back(n);
    };
    if (node) push(node);
    while (count > 0 || !spill.empty()) {
        Node<T>* n = nullptr;
        if (!spill.empty()) {
            n = spill.back();
            spill.pop_back();
        } else {
            n = local[--count];
        }
        if (n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) continue;
        for (int i = 0; i < n->num_inputs; ++i)
            if (Node<T>* in = n->input(i)) push(in);
        n->clear();
        NodePool<T>::instance().release(n);
    }
}

}  // namespace cnnlite::detail
