// Ops that join any number of variables into one graph node: add_n (the element-wise sum of
// same-shape inputs, the join of residual branches) and concatenate (along one axis, e.g. the
// channels of NCHW tensors).
#pragma once

#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/combine.hpp"

namespace cnnlite {

namespace detail {

/// Whether an op on all of `xs` must record a node.
template <class T>
bool should_record_all(const std::vector<Variable<T>>& xs) {
    if (!grad_enabled()) return false;
    for (const Variable<T>& v : xs)
        if (v.requires_grad()) return true;
    return false;
}

/// A node of `value` with every element of xs as an input. The pointer list is thread-local and
/// keeps its capacity, so a steady-state step does not allocate for it.
template <class T>
Variable<T> make_result_of_all(Tensor<T> value, const char* op, bool record, typename Node<T>::BackwardFn backward,
                               const std::vector<Variable<T>>& xs) {
    thread_local std::vector<const Variable<T>*> inputs;
    inputs.clear();
    if (record)
        for (const Variable<T>& v : xs) inputs.push_back(&v);
    return make_result_of<T>(std::move(value), op, record, backward, inputs);
}

}  // namespace detail

/// xs[0] + xs[1] + ... element-wise, for one or more inputs of one shape: one node with n inputs
/// (instead of a chain of n - 1 adds).
template <class T>
Variable<T> add_n(const std::vector<Variable<T>>& xs) {
    check(!xs.empty(), "add_n: no inputs");
    const Shape& shape = xs[0].shape();
    for (std::size_t i = 1; i < xs.size(); ++i)
        check(xs[i].shape() == shape, "add_n: input ", i, " has shape ", xs[i].shape(), ", input 0 has ", shape);
    constexpr std::size_t room = 16;  // pointers for the kernel; more inputs spill into a vector
    const T* local[room];
    std::vector<const T*> spill;
    const T** ptrs = local;
    if (xs.size() > room) {
        spill.resize(xs.size());
        ptrs = spill.data();
    }
    for (std::size_t i = 0; i < xs.size(); ++i) ptrs[i] = xs[i].value().data();
    Tensor<T> y = Tensor<T>::uninitialized(shape);
    kernels::add_n_forward(ptrs, static_cast<std::int64_t>(xs.size()), y.numel(), y.data());
    return detail::make_result_of_all<T>(std::move(y), "add_n", detail::should_record_all(xs), +[](detail::Node<T>& n) {
        for (int i = 0; i < n.num_inputs; ++i) {
            if (!detail::wants_grad(n, i)) continue;
            Tensor<T>* dx = nullptr;
            if (detail::grad_buffer(n, i, dx)) dx->copy_from(n.grad);
            else dx->array() += n.grad.array();
        }
    }, xs);
}

/// Arguments of concatenate's node.
struct ConcatenateArgs {
    std::int64_t axis = 1;  ///< the axis the inputs are joined along (non-negative)
};

/// The inputs joined along `axis` (negative counts from the end; 1 = the channels of NCHW):
/// all inputs have one rank and equal extents on every other axis.
template <class T>
Variable<T> concatenate(const std::vector<Variable<T>>& xs, std::int64_t axis = 1) {
    check(!xs.empty(), "concatenate: no inputs");
    const Shape& first = xs[0].shape();
    const std::int64_t rank = first.rank();
    check(axis >= -rank && axis < rank, "concatenate: axis ", axis, " outside the ", rank, " axes of ", first);
    if (axis < 0) axis += rank;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const Shape& s = xs[i].shape();
        bool match = s.rank() == rank;
        for (std::int64_t d = 0; match && d < rank; ++d) match = d == axis || s[d] == first[d];
        check(match, "concatenate: input ", i, " has shape ", s, ", input 0 has ", first, " (they may differ only on axis ",
              axis, ")");
        total += s[axis];
    }
    std::vector<std::int64_t> dims = first.to_vector();
    dims[static_cast<std::size_t>(axis)] = total;
    Tensor<T> y = Tensor<T>::uninitialized(Shape(dims));
    // Each input is `outer` rows of width extent * inner, placed side by side in the output's rows.
    std::int64_t outer = 1, inner = 1;
    for (std::int64_t d = 0; d < axis; ++d) outer *= first[d];
    for (std::int64_t d = axis + 1; d < rank; ++d) inner *= first[d];
    std::int64_t offset = 0;
    for (const Variable<T>& x : xs) {
        const std::int64_t width = x.shape()[axis] * inner;
        kernels::copy_rows(x.value().data(), width, y.data() + offset, total * inner, outer, width, false);
        offset += width;
    }
    const bool record = detail::should_record_all(xs);
    Variable<T> out = detail::make_result_of_all<T>(std::move(y), "concatenate", record, +[](detail::Node<T>& n) {
        const std::int64_t axis = n.template args<ConcatenateArgs>().axis;
        const Shape& ys = n.value.shape();
        std::int64_t outer = 1, inner = 1;
        for (std::int64_t d = 0; d < axis; ++d) outer *= ys[d];
        for (std::int64_t d = axis + 1; d < ys.rank(); ++d) inner *= ys[d];
        std::int64_t offset = 0;
        for (int i = 0; i < n.num_inputs; ++i) {
            const std::int64_t width = n.input(i)->value.shape()[axis] * inner;
            if (detail::wants_grad(n, i)) {
                Tensor<T>* dx = nullptr;
                const bool fresh = detail::grad_buffer(n, i, dx);
                kernels::copy_rows(n.grad.data() + offset, ys[axis] * inner, dx->data(), width, outer, width, !fresh);
            }
            offset += width;
        }
    }, xs);
    if (record) out.node()->set_args(ConcatenateArgs{axis});
    return out;
}

}  // namespace cnnlite
