// Folding of the small constant subgraphs exporters write to compute a shape or pads (PyTorch's
// TorchScript exporter turns F.pad's pads into ConstantOfShape, Concat, Reshape, Slice,
// Transpose and Cast nodes): when every input of such a node is a constant, the importer
// (io/onnx_import.hpp) computes its output here instead of building a layer. Needs
// CNNLITE_WITH_ONNX; internal to onnx_import.hpp.
#pragma once

#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "cnnlite/core/error.hpp"
#include "cnnlite/io/detail/onnx_reading.hpp"

namespace cnnlite {
namespace detail {

// Folded constants hold shapes and pads, never weights: anything larger is refused.
constexpr std::int64_t onnx_max_folded_elements = 4096;

/// Whether the importer folds `op` when all its inputs are constants.
inline bool onnx_foldable(const std::string& op) {
    return op == "ConstantOfShape" || op == "Concat" || op == "Reshape" || op == "Slice" || op == "Transpose" ||
           op == "Cast";
}

namespace onnx_folding {

inline std::vector<std::int64_t> strides_of(const std::vector<std::int64_t>& dims) {
    std::vector<std::int64_t> strides(dims.size(), 1);
    for (std::size_t i = dims.size(); i-- > 1;) strides[i - 1] = strides[i] * dims[i];
    return strides;
}

// out[j] = in[source(j)] for every j, where `source` maps an output multi-index to the flat
// input index; a constant keeps its element type.
template <class Source>
OnnxConstant gather(const OnnxConstant& in, const std::vector<std::int64_t>& out_dims, Source source) {
    OnnxConstant out;
    out.dims = out_dims;
    out.is_float = in.is_float;
    const std::int64_t n = onnx_element_count(out_dims, "a folded constant");
    std::vector<std::int64_t> index(out_dims.size(), 0);
    for (std::int64_t j = 0; j < n; ++j) {
        const std::size_t from = static_cast<std::size_t>(source(index));
        if (in.is_float) out.floats.push_back(in.floats[from]);
        else out.ints.push_back(in.ints[from]);
        for (std::size_t d = out_dims.size(); d-- > 0;) {
            if (++index[d] < out_dims[d]) break;
            index[d] = 0;
        }
    }
    return out;
}

inline const std::vector<std::int64_t>& integers(const onnx::NodeProto& n, const OnnxConstant* c, const char* role) {
    check(c && !c->is_float, onnx_node_label(n), ": ", role, " must be an int64 constant");
    return c->ints;
}

inline OnnxConstant constant_of_shape(const onnx::NodeProto& n, const std::vector<const OnnxConstant*>& in) {
    OnnxAttributes a(n, {"value"});
    OnnxConstant out;
    out.dims = integers(n, in.at(0), "shape");
    const std::int64_t count = onnx_element_count(out.dims, onnx_node_label(n));
    check(count <= onnx_max_folded_elements, onnx_node_label(n), ": ", count, " values are more than a folded "
          "constant may hold");
    OnnxConstant value;
    value.floats = {0.0f};
    if (a.has("value")) value = a.tensor("value");
    check(value.numel() == 1, onnx_node_label(n), ": value must hold one element");
    out.is_float = value.is_float;
    if (out.is_float) out.floats.assign(static_cast<std::size_t>(count), value.floats[0]);
    else out.ints.assign(static_cast<std::size_t>(count), value.ints[0]);
    return out;
}

// Along axis 0 of 1-D constants, the case exporters write; other ranks are refused.
inline OnnxConstant concat(const onnx::NodeProto& n, const std::vector<const OnnxConstant*>& in) {
    OnnxAttributes a(n, {"axis"});
    check(a.integer("axis", 0) == 0 || a.integer("axis", 0) == -1, onnx_node_label(n),
          ": folding a Concat of constants works along axis 0 of vectors only");
    OnnxConstant out;
    out.is_float = in.at(0)->is_float;
    for (const OnnxConstant* c : in) {
        check(c->dims.size() == 1 && c->is_float == out.is_float, onnx_node_label(n),
              ": folding a Concat of constants needs vectors of one type");
        out.floats.insert(out.floats.end(), c->floats.begin(), c->floats.end());
        out.ints.insert(out.ints.end(), c->ints.begin(), c->ints.end());
    }
    out.dims = {out.numel()};
    return out;
}

inline OnnxConstant reshape(const onnx::NodeProto& n, const std::vector<const OnnxConstant*>& in) {
    OnnxAttributes a(n, {"allowzero"});
    OnnxConstant out = *in.at(0);
    std::vector<std::int64_t> dims = integers(n, in.at(1), "shape");
    std::int64_t known = 1;
    int inferred = -1;
    for (std::size_t i = 0; i < dims.size(); ++i) {
        if (dims[i] == 0 && a.integer("allowzero", 0) == 0) {
            check(i < out.dims.size(), onnx_node_label(n), ": shape copies a dimension the input lacks");
            dims[i] = out.dims[i];
        }
        if (dims[i] == -1) {
            check(inferred < 0, onnx_node_label(n), ": shape has two -1");
            inferred = static_cast<int>(i);
            continue;
        }
        check(dims[i] >= 0 && dims[i] <= onnx_max_folded_elements, onnx_node_label(n), ": shape value ", dims[i],
              " is not supported");
        // Saturated just past the limit: up to 4096 extents of 4096 would overflow int64.
        known = std::min(known * dims[i], onnx_max_folded_elements + 1);
    }
    if (inferred >= 0) {
        check(known > 0 && out.numel() % known == 0, onnx_node_label(n), ": cannot infer the -1 of the shape");
        dims[static_cast<std::size_t>(inferred)] = out.numel() / known;
        known *= dims[static_cast<std::size_t>(inferred)];
    }
    check(known == out.numel(), onnx_node_label(n), ": ", out.numel(), " values do not fill the shape");
    out.dims = dims;
    return out;
}

// ONNX's Slice: per listed axis, start, end and step, clamped as the operator defines.
inline OnnxConstant slice(const onnx::NodeProto& n, const std::vector<const OnnxConstant*>& in) {
    OnnxAttributes a(n, {});
    const OnnxConstant& data = *in.at(0);
    const std::vector<std::int64_t>& starts = integers(n, in.at(1), "starts");
    const std::vector<std::int64_t>& ends = integers(n, in.at(2), "ends");
    const auto rank = static_cast<std::int64_t>(data.dims.size());
    std::vector<std::int64_t> axes, steps(starts.size(), 1);
    if (in.size() > 3 && in[3]) axes = integers(n, in[3], "axes");
    else for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<std::int64_t>(i));
    if (in.size() > 4 && in[4]) steps = integers(n, in[4], "steps");
    check(ends.size() == starts.size() && axes.size() == starts.size() && steps.size() == starts.size(),
          onnx_node_label(n), ": starts, ends, axes and steps differ in length");
    std::vector<std::int64_t> first(data.dims.size(), 0), step(data.dims.size(), 1), out_dims = data.dims;
    for (std::size_t i = 0; i < starts.size(); ++i) {
        const std::int64_t axis = axes[i] < 0 ? axes[i] + rank : axes[i];
        check(axis >= 0 && axis < rank && steps[i] != 0, onnx_node_label(n), ": axis ", axes[i], " or step ",
              steps[i], " is not valid");
        const std::int64_t size = data.dims[static_cast<std::size_t>(axis)];
        const auto clamp = [](std::int64_t v, std::int64_t lo, std::int64_t hi) { return std::min(std::max(v, lo), hi); };
        std::int64_t s = starts[i] < 0 ? std::max<std::int64_t>(starts[i], -size) + size : starts[i];
        std::int64_t e = ends[i] < 0 ? std::max<std::int64_t>(ends[i], -size - 1) + size : ends[i];
        // The elements from s towards e, every |step|-th: ceil(span / |step|), in unsigned
        // arithmetic, so that a step of +-2^63 does not overflow.
        const std::uint64_t stride = steps[i] > 0 ? static_cast<std::uint64_t>(steps[i]) : 0 - static_cast<std::uint64_t>(steps[i]);
        std::int64_t count = 0;
        if (steps[i] > 0) {
            s = clamp(s, 0, size), e = clamp(e, 0, size);
            count = e > s ? static_cast<std::int64_t>((static_cast<std::uint64_t>(e - s) - 1) / stride + 1) : 0;
        } else {
            s = clamp(s, 0, size - 1), e = clamp(e, -1, size - 1);
            count = s > e ? static_cast<std::int64_t>((static_cast<std::uint64_t>(s - e) - 1) / stride + 1) : 0;
        }
        first[static_cast<std::size_t>(axis)] = s;
        step[static_cast<std::size_t>(axis)] = steps[i];
        out_dims[static_cast<std::size_t>(axis)] = count;
    }
    const std::vector<std::int64_t> strides = strides_of(data.dims);
    return gather(data, out_dims, [&](const std::vector<std::int64_t>& index) {
        std::int64_t flat = 0;
        for (std::size_t d = 0; d < index.size(); ++d) flat += (first[d] + index[d] * step[d]) * strides[d];
        return flat;
    });
}

inline OnnxConstant transpose(const onnx::NodeProto& n, const std::vector<const OnnxConstant*>& in) {
    const OnnxConstant& data = *in.at(0);
    const std::size_t rank = data.dims.size();
    std::vector<std::int64_t> reversed;
    for (std::size_t i = rank; i-- > 0;) reversed.push_back(static_cast<std::int64_t>(i));
    OnnxAttributes a(n, {"perm"});
    const std::vector<std::int64_t> perm = a.integers("perm", rank, reversed);
    std::vector<std::int64_t> sorted = perm, out_dims;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < rank; ++i)
        check(sorted[i] == static_cast<std::int64_t>(i), onnx_node_label(n), ": perm is not a permutation");
    for (std::int64_t p : perm) out_dims.push_back(data.dims[static_cast<std::size_t>(p)]);
    const std::vector<std::int64_t> strides = strides_of(data.dims);
    return gather(data, out_dims, [&](const std::vector<std::int64_t>& index) {
        std::int64_t flat = 0;
        for (std::size_t d = 0; d < rank; ++d) flat += index[d] * strides[static_cast<std::size_t>(perm[d])];
        return flat;
    });
}

// To INT64 (from int64, or from whole float values) or to FLOAT.
inline OnnxConstant cast(const onnx::NodeProto& n, const std::vector<const OnnxConstant*>& in) {
    OnnxAttributes a(n, {"to", "saturate"});
    OnnxConstant out = *in.at(0);
    const std::int64_t to = a.integer("to", 0);
    if (to == onnx::TensorProto::INT64 && out.is_float) {
        for (float v : out.floats) {
            check(v == std::trunc(v) && std::abs(v) < 9.0e15f, onnx_node_label(n), ": ", v, " is not an integer");
            out.ints.push_back(static_cast<std::int64_t>(v));
        }
        out.floats.clear();
        out.is_float = false;
    } else if (to == onnx::TensorProto::FLOAT && !out.is_float) {
        for (std::int64_t v : out.ints) out.floats.push_back(static_cast<float>(v));
        out.ints.clear();
        out.is_float = true;
    } else {
        check((to == onnx::TensorProto::INT64 && !out.is_float) || (to == onnx::TensorProto::FLOAT && out.is_float),
              onnx_node_label(n), ": a cast to ", onnx_type_name(static_cast<std::int32_t>(to)),
              " is not supported (INT64 and FLOAT)");
    }
    return out;
}

}  // namespace onnx_folding

/// The output of node `n` (an operator onnx_foldable() accepts) from its constant inputs `in`
/// (null for an optional input left out); unsupported forms are errors naming the node.
inline OnnxConstant fold_onnx_constant(const onnx::NodeProto& n, const std::vector<const OnnxConstant*>& in) {
    const std::string& op = n.op_type();
    // The inputs each operator needs (Slice: data, starts, ends; axes and steps optional).
    const std::size_t needed = op == "Reshape" ? 2 : op == "Slice" ? 3 : op == "Concat" ? in.size() : 1;
    const std::size_t allowed = op == "Slice" ? 5 : op == "Concat" ? in.size() : needed;
    check(!in.empty() && in.size() >= needed && in.size() <= allowed, onnx_node_label(n), ": ", in.size(),
          " inputs (", needed, " to ", allowed, " expected)");
    for (std::size_t i = 0; i < needed; ++i) check(in[i] != nullptr, onnx_node_label(n), ": input ", i, " is missing");
    for (const OnnxConstant* c : in)
        check(!c || c->numel() <= onnx_max_folded_elements, onnx_node_label(n), ": a constant input of ", c->numel(),
              " values is more than a folded constant may hold");
    OnnxConstant out;
    if (op == "ConstantOfShape") out = onnx_folding::constant_of_shape(n, in);
    else if (op == "Concat") out = onnx_folding::concat(n, in);
    else if (op == "Reshape") out = onnx_folding::reshape(n, in);
    else if (op == "Slice") out = onnx_folding::slice(n, in);
    else if (op == "Transpose") out = onnx_folding::transpose(n, in);
    else if (op == "Cast") out = onnx_folding::cast(n, in);
    else fail(onnx_node_label(n), ": operator ", op, " is not folded");
    return out;
}

}  // namespace detail
}  // namespace cnnlite

#endif  // CNNLITE_WITH_ONNX
