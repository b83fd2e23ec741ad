// Reading the parts of an ONNX file the importer (io/onnx_import.hpp) trusts nothing about:
// a node's attributes, typed and checked against the names its operator allows, and
// initialisers and Constant tensors, whose byte sizes are checked against their dimensions
// before anything is allocated. Needs CNNLITE_WITH_ONNX; internal to onnx_import.hpp.
#pragma once

#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>

#include "cnnlite/core/error.hpp"

namespace cnnlite {
namespace detail {

/// "node 'conv1' (Conv)": how every importer error names a node.
inline std::string onnx_node_label(const onnx::NodeProto& node) {
    return "node '" + node.name() + "' (" + node.op_type() + ")";
}

/// The name of an ONNX tensor element type, for messages ("FLOAT", "DOUBLE", ...).
inline std::string onnx_type_name(std::int32_t type) {
    if (onnx::TensorProto_DataType_IsValid(type))
        return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(type));
    return "unknown type " + std::to_string(type);
}

/// A constant tensor of the graph (an initialiser or a Constant node's value): float32 or
/// int64 values, row-major, with their dimensions.
struct OnnxConstant {
    std::vector<std::int64_t> dims;   ///< the tensor's dimensions (empty: a scalar)
    bool is_float = true;             ///< float32 values (else int64)
    std::vector<float> floats;        ///< the values of a float32 tensor
    std::vector<std::int64_t> ints;   ///< the values of an int64 tensor

    /// Number of elements.
    std::int64_t numel() const { return static_cast<std::int64_t>(is_float ? floats.size() : ints.size()); }
    /// "[64, 1, 3, 3]".
    std::string dims_text() const {
        std::string s = "[";
        for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
        return s + "]";
    }
};

// Element counts beyond this are refused: no layer cnnlite runs has a weight that large, and
// the check keeps every later product of dimensions far from overflowing.
constexpr std::int64_t onnx_max_elements = std::int64_t(1) << 40;

/// The elements of a tensor of dimensions `dims`, refusing negative dimensions and counts
/// beyond onnx_max_elements; `what` names the tensor in errors.
template <class Dims>
std::int64_t onnx_element_count(const Dims& dims, const std::string& what) {
    std::int64_t n = 1;
    for (const std::int64_t d : dims) {
        check(d >= 0, what, ": dimension ", d, " is negative");
        check(d == 0 || n <= onnx_max_elements / d, what, ": dimensions multiply to more than 2^40 elements");
        n *= d;
    }
    return n;
}

/// Reads `t` (`what` names it in errors): float32 or int64 data held in the file itself, as
/// raw little-endian bytes or in the typed field, whose size must match the dimensions exactly
/// (checked before the values are copied, so a tiny file cannot make us allocate gigabytes).
/// Float values must be finite.
inline OnnxConstant read_onnx_tensor(const onnx::TensorProto& t, const std::string& what) {
    check(t.data_location() != onnx::TensorProto::EXTERNAL && t.external_data_size() == 0, what,
          ": external data (data_location EXTERNAL) is not supported; save the model with its weights inside");
    check(!t.has_segment(), what, ": segmented tensors are not supported");
    OnnxConstant c;
    c.dims.assign(t.dims().begin(), t.dims().end());
    const std::int64_t n = onnx_element_count(c.dims, what);
    const std::int32_t type = t.data_type();
    const std::string& raw = t.raw_data();
    if (type == onnx::TensorProto::FLOAT) {
        if (!raw.empty() || t.float_data_size() == 0) {
            check(raw.size() / sizeof(float) == static_cast<std::uint64_t>(n) && raw.size() % sizeof(float) == 0, what,
                  ": ", raw.size(), " bytes of raw data for ", n, " float32 values of shape ", c.dims_text());
            c.floats.resize(static_cast<std::size_t>(n));
            if (n) std::memcpy(c.floats.data(), raw.data(), raw.size());  // little-endian, as the format says
        } else {
            check(t.float_data_size() == n, what, ": ", t.float_data_size(), " float values for shape ", c.dims_text());
            c.floats.assign(t.float_data().begin(), t.float_data().end());
        }
        for (std::size_t i = 0; i < c.floats.size(); ++i)
            check(std::isfinite(c.floats[i]), what, ": element ", i, " is ", c.floats[i], " (not finite)");
        return c;
    }
    if (type == onnx::TensorProto::INT64) {
        c.is_float = false;
        if (!raw.empty() || t.int64_data_size() == 0) {
            check(raw.size() / sizeof(std::int64_t) == static_cast<std::uint64_t>(n) &&
                      raw.size() % sizeof(std::int64_t) == 0,
                  what, ": ", raw.size(), " bytes of raw data for ", n, " int64 values of shape ", c.dims_text());
            c.ints.resize(static_cast<std::size_t>(n));
            if (n) std::memcpy(c.ints.data(), raw.data(), raw.size());
        } else {
            check(t.int64_data_size() == n, what, ": ", t.int64_data_size(), " int64 values for shape ", c.dims_text());
            c.ints.assign(t.int64_data().begin(), t.int64_data().end());
        }
        return c;
    }
    fail(what, ": data type ", onnx_type_name(type), " is not supported (FLOAT weights, INT64 shapes and pads)");
}

/// A node's attributes, read by name with their types checked. The constructor refuses any
/// attribute the importer does not know for the operator (it could change the result).
class OnnxAttributes {
public:
    /// The attributes of `node`; every name must be in `allowed`.
    OnnxAttributes(const onnx::NodeProto& node, std::initializer_list<const char*> allowed) : node_(node) {
        const std::set<std::string> known(allowed.begin(), allowed.end());
        std::set<std::string> seen;
        for (const auto& a : node.attribute()) {
            check(known.count(a.name()), label(), ": attribute '", a.name(), "' is not supported");
            check(seen.insert(a.name()).second, label(), ": attribute '", a.name(), "' appears twice");
            check(a.ref_attr_name().empty(), label(), ": attribute '", a.name(),
                  "' refers to a function's attribute, which is not supported");
        }
    }

    /// Whether the node sets `name`.
    bool has(const char* name) const { return find(name) != nullptr; }

    /// An INT attribute, or `fallback` when absent.
    std::int64_t integer(const char* name, std::int64_t fallback) const {
        const onnx::AttributeProto* a = find(name);
        if (!a) return fallback;
        expect(*a, onnx::AttributeProto::INT, "INT");
        return a->i();
    }
    /// A FLOAT attribute, or `fallback` when absent; must be finite.
    double real(const char* name, double fallback) const {
        const onnx::AttributeProto* a = find(name);
        if (!a) return fallback;
        expect(*a, onnx::AttributeProto::FLOAT, "FLOAT");
        check(std::isfinite(a->f()), label(), ": attribute '", name, "' = ", a->f(), " is not finite");
        return a->f();
    }
    /// A STRING attribute, or `fallback` when absent.
    std::string text(const char* name, const std::string& fallback) const {
        const onnx::AttributeProto* a = find(name);
        if (!a) return fallback;
        expect(*a, onnx::AttributeProto::STRING, "STRING");
        return a->s();
    }
    /// An INTS attribute of `count` values, or `fallback` when absent.
    std::vector<std::int64_t> integers(const char* name, std::size_t count, std::vector<std::int64_t> fallback) const {
        const onnx::AttributeProto* a = find(name);
        if (!a) return fallback;
        expect(*a, onnx::AttributeProto::INTS, "INTS");
        check(static_cast<std::size_t>(a->ints_size()) == count, label(), ": attribute '", name, "' has ",
              a->ints_size(), " values, expected ", count);
        return std::vector<std::int64_t>(a->ints().begin(), a->ints().end());
    }
    /// A TENSOR attribute (a Constant's value), read and checked like an initialiser.
    OnnxConstant tensor(const char* name) const {
        const onnx::AttributeProto* a = find(name);
        check(a != nullptr, label(), ": attribute '", name, "' is missing");
        expect(*a, onnx::AttributeProto::TENSOR, "TENSOR");
        return read_onnx_tensor(a->t(), label() + " attribute '" + name + "'");
    }
    /// The attribute called `name`, or null.
    const onnx::AttributeProto* find(const char* name) const {
        for (const auto& a : node_.attribute())
            if (a.name() == name) return &a;
        return nullptr;
    }
    /// How errors name the node.
    std::string label() const { return onnx_node_label(node_); }

private:
    void expect(const onnx::AttributeProto& a, onnx::AttributeProto::AttributeType type, const char* type_name) const {
        check(a.type() == type, label(), ": attribute '", a.name(), "' must be ", type_name);
    }

    const onnx::NodeProto& node_;
};

}  // namespace detail
}  // namespace cnnlite

#endif  // CNNLITE_WITH_ONNX
