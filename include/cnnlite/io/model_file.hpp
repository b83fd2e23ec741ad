// Model files: a Sequential's weights in the safetensors format, named "<layer>.weight" /
// "<layer>.bias" in PyTorch's layouts, with the architecture in the metadata so that
// load_model() rebuilds the network without the code that defined it.
//
// Compatibility policy: `format_version` is an integer. Readers accept files whose version is
// at most their own (older files keep loading); a newer version is rejected with a message
// saying which cnnlite wrote it. Any change to names, layouts or the architecture JSON that an
// older reader would misread bumps the version.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/core/version.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/nn/layer_factory.hpp"
#include "cnnlite/nn/sequential.hpp"

namespace cnnlite {

/// Version of the model file layout this cnnlite writes and the newest it reads.
constexpr int model_format_version = 1;

namespace detail {

inline std::string version_string() { return version(); }

inline nlohmann::json architecture_json(const Shape& input, const std::vector<LayerConfig>& layers) {
    nlohmann::json arch;
    arch["input_shape"] = input.to_vector();
    arch["layers"] = nlohmann::json::array();
    for (const auto& l : layers) arch["layers"].push_back({{"type", l.type}, {"name", l.name}, {"config", l.args}});
    return arch;
}

/// Parses the architecture metadata; `what` names the file in errors.
inline std::pair<Shape, std::vector<LayerConfig>> parse_architecture(const std::string& text, const std::string& what) {
    nlohmann::json arch;
    try {
        arch = nlohmann::json::parse(text);
        const auto dims = arch.at("input_shape").get<std::vector<std::int64_t>>();
        // Bounded before anything multiplies them: 2^31 values per sample is far beyond any
        // image, and keeps every shape the layers derive from it clear of int64 overflow.
        std::int64_t values = 1;
        for (std::int64_t d : dims) {
            check(d >= 1 && d <= (std::int64_t(1) << 31) / values, what, ": the architecture's input_shape ",
                  nlohmann::json(dims).dump(), " is not a positive shape of at most 2^31 values");
            values *= d;
        }
        check(!dims.empty() && dims.size() < static_cast<std::size_t>(Shape::max_rank), what,
              ": the architecture's input_shape has rank ", dims.size(), " (1 to ", Shape::max_rank - 1, " supported)");
        Shape input(dims);
        std::vector<LayerConfig> layers;
        for (const auto& l : arch.at("layers")) {
            LayerConfig c;
            c.type = l.at("type").get<std::string>();
            c.name = l.at("name").get<std::string>();
            c.args = l.at("config").get<std::map<std::string, std::string>>();
            layers.push_back(std::move(c));
        }
        return {input, layers};
    } catch (const nlohmann::json::exception& e) {
        fail(what, ": the 'architecture' metadata is not a valid cnnlite architecture (", e.what(), ")");
    }
}

/// Checks that the file is a cnnlite model file this version can read.
inline void check_model_format(const SafetensorsFile& file) {
    const std::string& format = file.require_metadata("format");
    check(format == "cnnlite", file.description(), ": metadata 'format' is '", format, "', not 'cnnlite'");
    const std::string& version = file.require_metadata("format_version");
    int v = 0;
    try {
        std::size_t used = 0;
        v = std::stoi(version, &used);
        check(used == version.size(), "");
    } catch (const std::exception&) {
        fail(file.description(), ": metadata 'format_version' = '", version, "' is not an integer");
    }
    check(v >= 1 && v <= model_format_version, file.description(), ": model format version ", v,
          " is newer than this cnnlite (", version_string(), ") reads (", model_format_version, "); it was written by cnnlite ",
          file.metadata().count("cnnlite_version") ? file.metadata().at("cnnlite_version") : std::string("?"));
}

/// Parameters layer `c` gets for per-sample input `input`, computed without building it: a
/// file's architecture may claim any size, and building allocates (and fills) it all. 0 for
/// layers without parameters or with settings that the layer itself will reject.
inline std::uint64_t parameters_of(const LayerConfig& c, const Shape& input) {
    const auto times = [](std::uint64_t a, std::uint64_t b) {  // saturating
        return b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b ? std::numeric_limits<std::uint64_t>::max() : a * b;
    };
    const auto positive = [](std::int64_t v) { return v > 0 ? static_cast<std::uint64_t>(v) : 0; };
    const bool bias = c.args.count("use_bias") && c.args.at("use_bias") == "true";
    if (c.type == "Dense" && input.rank() == 1) {
        const std::uint64_t units = positive(c.integer("units"));
        return times(units, positive(input[0]) + (bias ? 1 : 0));
    }
    if (c.type == "Conv2D" && input.rank() == 3) {
        const std::uint64_t filters = positive(c.integer("filters"));
        const auto [kh, kw] = parse_pair(c, "kernel_size");
        return times(filters, times(times(positive(input[0]), positive(kh)), positive(kw)) + (bias ? 1 : 0));
    }
    return 0;
}

/// The network of an architecture, built layer by layer; a layer that would need more
/// parameters than `available` (the values the file holds) is refused before it is built.
template <class T>
Sequential<T> build_within(const Shape& input, const std::vector<LayerConfig>& layers, std::uint64_t available,
                           const std::string& what) {
    Sequential<T> model(input);
    std::uint64_t used = 0;
    for (const auto& c : layers) {
        const std::uint64_t needed = parameters_of(c, model.output_shape());
        check(needed <= available - used, what, ": the architecture's layer '", c.name, "' (", c.type, ") would have ",
              needed, " parameters, more than the ", available - used, " values left in the file");
        model.add(make_layer<T>(c));
        used += static_cast<std::uint64_t>(model.layer(model.size() - 1).parameter_count());
    }
    return model;
}

template <class T>
std::vector<std::pair<std::string, Shape>> expected_tensors(const Sequential<T>& model) {
    std::vector<std::pair<std::string, Shape>> expected;
    for (const auto& p : model.parameters()) expected.emplace_back(p.name, p.variable.shape());
    return expected;
}

}  // namespace detail

/// The metadata save_model() writes: format, format_version, cnnlite_version, architecture.
template <class T>
std::map<std::string, std::string> model_metadata(const Sequential<T>& model) {
    return {{"format", "cnnlite"},
            {"format_version", std::to_string(model_format_version)},
            {"cnnlite_version", version()},
            {"architecture", detail::architecture_json(model.input_shape(), model.architecture()).dump()}};
}

/// Writes the model's parameters and architecture to `path` (atomically). `extra` metadata
/// (string values) is stored too, unless it would overwrite a reserved key.
template <class T>
void save_model(const Sequential<T>& model, const std::string& path, const std::map<std::string, std::string>& extra = {}) {
    SafetensorsWriter writer;
    for (const auto& p : model.parameters()) writer.add(p.name, p.variable.value());
    const auto meta = model_metadata(model);
    for (const auto& [key, value] : extra) {
        check(!meta.count(key), "save_model: metadata key '", key, "' is reserved");
        writer.set_metadata(key, value);
    }
    for (const auto& [key, value] : meta) writer.set_metadata(key, value);
    writer.save(path);
}

/// Loads the weights in `path` into `model`. Everything is validated first — format, every
/// tensor present with the model's shape, nothing extra, finite values — and the model is left
/// untouched when anything is wrong. The error names the file and the tensor.
template <class T>
void load_weights(const Sequential<T>& model, const std::string& path) {
    const SafetensorsFile file = SafetensorsFile::load(path);
    if (file.metadata().count("format")) detail::check_model_format(file);
    file.check_tensors(detail::expected_tensors(model));
    std::vector<Tensor<T>> values;
    auto params = model.parameters();
    for (const auto& p : params) values.push_back(file.tensor<T>(p.name));
    for (std::size_t i = 0; i < params.size(); ++i) params[i].variable.value().copy_from(values[i]);
}

/// Rebuilds the network stored in `path` from its architecture metadata and loads its weights.
template <class T = float>
Sequential<T> load_model(const std::string& path) {
    const SafetensorsFile file = SafetensorsFile::load(path);
    detail::check_model_format(file);
    auto [input, layers] = detail::parse_architecture(file.require_metadata("architecture"), file.description());
    std::uint64_t available = 0;  // sizes were validated by the reader: no overflow
    for (const auto& [name, entry] : file.entries()) available += static_cast<std::uint64_t>(entry.shape.numel());
    Sequential<T> model = detail::build_within<T>(input, layers, available, file.description());
    file.check_tensors(detail::expected_tensors(model));
    auto params = model.parameters();
    for (auto& p : params) p.variable.value().copy_from(file.tensor<T>(p.name));
    return model;
}

}  // namespace cnnlite
