// Model files: a Sequential's weights in the safetensors format, named "<layer>.weight" /
// "<layer>.bias" in PyTorch's layouts, with the architecture in the metadata so that
// load_model() rebuilds the network without the code that defined it.
//
// Compatibility policy: `format_version` is an integer. Readers accept files whose version is
// at most their own (older files keep loading); a newer version is rejected with a message
// saying which cnnlite wrote it. Any change to names, layouts or the architecture JSON that an
// older reader would misread bumps the version.
#pragma once

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
        Shape input(arch.at("input_shape").get<std::vector<std::int64_t>>());
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
    Sequential<T> model = make_sequential<T>(input, layers);
    file.check_tensors(detail::expected_tensors(model));
    auto params = model.parameters();
    for (auto& p : params) p.variable.value().copy_from(file.tensor<T>(p.name));
    return model;
}

}  // namespace cnnlite
