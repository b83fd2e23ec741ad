// Layer options, written once. Every layer keeps its hyper-parameters in an options struct
// (as PyTorch's Conv2dOptions) that lists its fields in one `visit` function:
//
//     template <class Visitor>
//     void visit(Visitor& v) { v("units", units); v("use_bias", use_bias); v("activation", activation); }
//
// From that list alone come the layer's configuration in the model file (options_to_args),
// its rebuilding from a model file (options_from_config, through nn/layer_registry.hpp) and
// its copy (the struct is a value). Field types: std::int64_t, double, bool, Extent2,
// Padding, and enums with a `to_string(E)` and a `parse_option(text, E&)` beside them
// (Activation, BatchNormConvention); the text of each is what model files have always stored.
// A field added to a layer after files were written is listed with `v.optional(key, field)`:
// files without it load with the field's default.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/number_text.hpp"
#include "cnnlite/nn/activation.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/padding.hpp"

namespace cnnlite {

/// Two extents, height then width (a kernel, a window, strides); stored as "h,w".
struct Extent2 {
    std::int64_t h = 1;  ///< height (rows)
    std::int64_t w = 1;  ///< width (columns)

    /// "h,w".
    std::string str() const { return std::to_string(h) + "," + std::to_string(w); }
    /// Parses "h,w"; `what` names the value in the error.
    static Extent2 parse(const std::string& text, const std::string& what) {
        long long a = 0, b = 0;
        char extra = 0;
        check(std::sscanf(text.c_str(), "%lld,%lld%c", &a, &b, &extra) == 2, what, " = '", text,
              "' is not a pair 'h,w'");
        return {a, b};
    }
    /// Whether both extents are equal.
    bool operator==(const Extent2& o) const { return h == o.h && w == o.w; }
};

/// The options of a layer without hyper-parameters (Flatten, ReLU, Softmax).
struct NoOptions {
    /// Lists no fields.
    template <class Visitor>
    void visit(Visitor&) {}
};

namespace detail {

/// Writes each visited field as text into a LayerConfig's arguments.
struct OptionsWriter {
    std::map<std::string, std::string> args;

    void operator()(const char* key, std::int64_t v) { args[key] = std::to_string(v); }
    void operator()(const char* key, double v) { args[key] = round_trip_text(v); }
    void operator()(const char* key, bool v) { args[key] = v ? "true" : "false"; }
    void operator()(const char* key, const Extent2& v) { args[key] = v.str(); }
    void operator()(const char* key, const Padding& v) { args[key] = v.str(); }
    template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
    void operator()(const char* key, E v) {
        args[key] = to_string(v);
    }
    /// Optional fields are written like the others: only reading tolerates their absence.
    template <class V>
    void optional(const char* key, const V& v) {
        (*this)(key, v);
    }
};

/// Reads each visited field from a LayerConfig; errors name the layer and the key.
struct OptionsReader {
    const LayerConfig& config;

    void operator()(const char* key, std::int64_t& v) { v = config.integer(key); }
    void operator()(const char* key, double& v) { v = config.real(key); }
    void operator()(const char* key, bool& v) {
        const std::string& text = config.at(key);
        check(text == "true" || text == "false", "layer '", config.name, "': '", key, "' = '", text,
              "' is not true/false");
        v = text == "true";
    }
    void operator()(const char* key, Extent2& v) { v = Extent2::parse(config.at(key), "layer '" + config.name + "': '" + key + "'"); }
    void operator()(const char* key, Padding& v) { v = Padding::parse(config.at(key)); }
    template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
    void operator()(const char* key, E& v) {
        const std::string& text = config.at(key);
        try {
            parse_option(text, v);
        } catch (const Error& e) {
            fail("layer '", config.name, "' (", config.type, "): '", key, "': ", e.what());
        }
    }
    /// A field that older files lack: read when present, otherwise left at its default.
    template <class V>
    void optional(const char* key, V& v) {
        if (config.args.count(key)) (*this)(key, v);
    }
};

}  // namespace detail

/// The text arguments of a LayerConfig for `options` (one per visited field).
template <class Options>
std::map<std::string, std::string> options_to_args(Options options) {
    detail::OptionsWriter writer;
    options.visit(writer);
    return writer.args;
}

/// The options stored in `config` (every visited field must be present and well formed).
template <class Options>
Options options_from_config(const LayerConfig& config) {
    Options options;
    detail::OptionsReader reader{config};
    options.visit(reader);
    return options;
}

/// The part of a layer that its options decide: holds them, and derives the layer's
/// configuration and its unbuilt copy from them. `Derived` is the layer class, constructible
/// from its Options (which it validates there).
template <class T, class Derived, class Options>
class LayerWithOptions : public Layer<T> {
public:
    /// The layer's hyper-parameters.
    const Options& options() const { return options_; }

    /// The layer's type, name and options as text (what model files store).
    LayerConfig config() const override {
        return {this->type(), this->name_, options_to_args(options_), {}};
    }
    /// An unbuilt layer with the same options and name.
    std::unique_ptr<Layer<T>> clone_config() const override {
        auto copy = std::make_unique<Derived>(options_);
        copy->set_name(this->name_);
        return copy;
    }

protected:
    /// Layers pass their validated options up.
    explicit LayerWithOptions(Options options) : options_(std::move(options)) {}

    /// The options (layers change them through their chainable setters, before building).
    Options options_;
};

}  // namespace cnnlite
