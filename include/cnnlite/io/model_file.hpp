// Model files: a model's weights, buffers and counters in the safetensors format, named
// "<layer>.weight" / "<layer>.bias" / "<layer>.running_mean" / "<layer>.num_batches_tracked" in
// PyTorch's layouts and dtypes (counters are 0-d I64), with the architecture (the
// layers and, for a graph, what feeds each) in the metadata so that
// load_model() rebuilds the network without the code that defined it. load_weights() also
// reads weights-only files that PyTorch writes (safetensors.torch.save_file of a state_dict)
// into a model built in code, matching PyTorch's module names to the model's layers.
//
// Compatibility policy: `format_version` is an integer. Readers accept files whose version is
// at most their own (older files keep loading); a newer version is rejected with a message
// saying which cnnlite wrote it. Any change to names, layouts or the architecture JSON that an
// older reader would misread, or new tensors it would refuse as unexpected, bumps the version.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cnnlite/core/version.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/nn/layer_registry.hpp"
#include "cnnlite/nn/sequential.hpp"

namespace cnnlite {

/// Version of the model file layout: the newest this cnnlite reads. Files record the oldest
/// version that describes them: 1 for a chain of layers, 2 for a graph (layers list their
/// inputs), 3 for a model with counters (BatchNormalization's num_batches_tracked, I64), which
/// older readers would refuse as unexpected tensors.
constexpr int model_format_version = 3;

namespace detail {

inline std::string version_string() { return version(); }

inline nlohmann::json architecture_json(const Shape& input, const std::vector<LayerConfig>& layers) {
    nlohmann::json arch;
    arch["input_shape"] = input.to_vector();
    arch["layers"] = nlohmann::json::array();
    bool chain = true;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const std::string previous = i == 0 ? std::string(model_input_name()) : layers[i - 1].name;
        if (!(layers[i].inputs.empty() || (layers[i].inputs.size() == 1 && layers[i].inputs[0] == previous))) chain = false;
    }
    for (const auto& l : layers) {
        nlohmann::json layer = {{"type", l.type}, {"name", l.name}, {"config", l.args}};
        if (!chain) layer["inputs"] = l.inputs;  // a chain's files stay readable by version 1
        arch["layers"].push_back(std::move(layer));
    }
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
            if (l.contains("inputs")) c.inputs = l.at("inputs").get<std::vector<std::string>>();
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
        const Extent2 kernel = Extent2::parse(c.at("kernel_size"), "layer '" + c.name + "': 'kernel_size'");
        // Each filter of a grouped convolution sees input[0] / groups channels.
        const std::uint64_t groups = c.args.count("groups") ? positive(c.integer("groups")) : 1;
        if (groups == 0) return 0;
        const std::uint64_t seen = positive(input[0]) / groups;
        return times(filters, times(times(seen, positive(kernel.h)), positive(kernel.w)) + (bias ? 1 : 0));
    }
    return 0;
}

/// The network of an architecture, built layer by layer; a layer that would need more
/// parameters than `available` (the values the file holds) is refused before it is built.
template <class T>
Model<T> build_within(const Shape& input, const std::vector<LayerConfig>& layers, std::uint64_t available,
                      const std::string& what) {
    Model<T> model(input);
    std::uint64_t used = 0;
    for (const auto& c : layers) {
        std::vector<std::string> inputs = c.inputs;
        if (inputs.empty())
            inputs.push_back(model.size() == 0 ? std::string(model_input_name()) : model.layer(model.size() - 1).name());
        const Shape first = inputs[0] == model_input_name() ? input
                            : model.has_layer(inputs[0]) ? model.layer(inputs[0]).output_shape()
                                                         : Shape{};
        const std::uint64_t needed = parameters_of(c, first);
        check(needed <= available - used, what, ": the architecture's layer '", c.name, "' (", c.type, ") would have ",
              needed, " parameters, more than the ", available - used, " values left in the file");
        try {
            model.connect(make_layer<T>(c), inputs);
        } catch (const Error& e) {
            fail(what, ": ", e.what());
        }
        const Layer<T>& added = model.layer(model.size() - 1);
        used += static_cast<std::uint64_t>(added.parameter_count() + added.buffer_count());
    }
    try {
        model.check_complete();
    } catch (const Error& e) {
        fail(what, ": ", e.what());
    }
    return model;
}

}  // namespace detail

/// The metadata save_model() writes: format, format_version, cnnlite_version, architecture.
template <class T>
std::map<std::string, std::string> model_metadata(const Model<T>& model) {
    return {{"format", "cnnlite"},
            {"format_version", !model.counters().empty() ? "3" : model.is_chain() ? "1" : "2"},
            {"cnnlite_version", version()},
            {"architecture", detail::architecture_json(model.input_shape(), model.architecture()).dump()}};
}

/// Writes the model's parameters, buffers, counters and architecture to `path` (atomically).
/// `extra` metadata (string values) is stored too, unless it would overwrite a reserved key.
template <class T>
void save_model(const Model<T>& model, const std::string& path, const std::map<std::string, std::string>& extra = {}) {
    SafetensorsWriter writer;
    for (const auto& p : model.state()) writer.add(p.name, p.variable.value());
    for (const auto& c : model.counters()) writer.add(c.name, c.value);
    const auto meta = model_metadata(model);
    for (const auto& [key, value] : extra) {
        check(!meta.count(key), "save_model: metadata key '", key, "' is reserved");
        writer.set_metadata(key, value);
    }
    for (const auto& [key, value] : meta) writer.set_metadata(key, value);
    writer.save(path);
}

/// How load_weights() finds each of the model's parameters in a weights file.
///
/// The file's names are first renamed by `rename` (a module prefix of the file, everything
/// before the last '.', to the model's layer name: {"features.0", "conv2d"} reads
/// "features.0.weight" as "conv2d.weight"); every entry of `rename` must match a tensor. Then:
///  1. when every parameter's name is in the file, names decide ("conv2d.weight", as cnnlite
///     and a PyTorch module with attributes named like cnnlite's layers write them);
///  2. otherwise, when every name in the file is positional ("0.weight", "3.bias": what
///     torch.nn.Sequential writes) and `positional` is on, the numbered modules, in ascending
///     order, are the model's layers with parameters, in order — nn.Sequential numbers its
///     modules in execution order, so this is the network's order, not a guess;
///  3. otherwise loading fails, listing the model's names and shapes next to the file's.
/// Shapes must then agree exactly (PyTorch's layouts: OIHW kernels, Dense weights [out, in]).
/// Counters (Model::counters(), "<layer>.num_batches_tracked") are matched with the other
/// tensors of their layer, must be 0-d I64 non-negative counts, and may be missing (PyTorch's
/// files from before it had them, cnnlite's from before format version 3): the model's count is
/// then left as it is, as PyTorch's load_state_dict does.
struct WeightMatching {
    std::map<std::string, std::string> rename;  ///< file module prefix -> model layer name
    bool positional = true;                     ///< allow rule 2
};

namespace detail {

/// "conv2d.weight" -> {"conv2d", "weight"}; a name without '.' is all prefix.
inline std::pair<std::string, std::string> split_parameter_name(const std::string& name) {
    const auto dot = name.rfind('.');
    if (dot == std::string::npos) return {name, ""};
    return {name.substr(0, dot), name.substr(dot + 1)};
}

inline bool is_number(const std::string& text) {
    return !text.empty() && text.size() <= 9 &&
           std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

/// "  conv2d.weight [64, 1, 2, 2]" lines for an error message.
inline std::string listing(const std::vector<std::pair<std::string, Shape>>& tensors) {
    std::string text;
    for (const auto& [name, shape] : tensors) text += "\n    " + name + " " + shape.str();
    return text;
}

/// Where load_weights() finds a model's tensors in a file: the file's name for each entry of
/// model.state(), and for each of model.counters() its name or "" (absent: left as it is).
struct WeightSources {
    std::vector<std::string> state;     // in model.state() order
    std::vector<std::string> counters;  // in model.counters() order
};

/// For each of the model's parameters, buffers and counters, the name of the file's tensor that
/// holds it, by the rules of WeightMatching; fails listing both sides.
template <class T>
WeightSources match_weights(const Model<T>& model, const SafetensorsFile& file, const WeightMatching& matching) {
    const std::string& what = file.description();
    // The file's names after renaming, with the original name each came from.
    std::map<std::string, std::string> renamed;  // renamed -> original
    std::map<std::string, bool> rename_used;
    for (const auto& [from, to] : matching.rename) rename_used[from] = false;
    for (const auto& [name, entry] : file.entries()) {
        auto [prefix, suffix] = split_parameter_name(name);
        std::string target = name;
        const auto it = matching.rename.find(prefix);
        if (it != matching.rename.end()) {
            rename_used[prefix] = true;
            target = it->second + (suffix.empty() ? "" : "." + suffix);
        }
        const auto [slot, added] = renamed.emplace(target, name);
        check(added, what, ": renaming makes two tensors '", target, "' ('", slot->second, "' and '", name, "')");
    }
    for (const auto& [from, used] : rename_used)
        check(used, what, ": the renaming '", from, "' -> '", matching.rename.at(from),
              "' matches no tensor of the file (it renames module prefixes: the part of a name before its last '.')");

    const auto params = model.state();
    const auto counters = model.counters();
    std::vector<std::pair<std::string, Shape>> expected;
    for (const auto& p : params) expected.emplace_back(p.name, p.variable.shape());

    WeightSources sources{std::vector<std::string>(params.size()), std::vector<std::string>(counters.size())};
    std::vector<std::string>& source = sources.state;
    bool by_name = true;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto it = renamed.find(params[i].name);
        if (it == renamed.end()) {
            by_name = false;
            break;
        }
        source[i] = it->second;
    }
    if (by_name)
        for (std::size_t i = 0; i < counters.size(); ++i) {
            const auto it = renamed.find(counters[i].name);
            if (it != renamed.end()) sources.counters[i] = it->second;
        }
    if (!by_name && matching.positional && !renamed.empty()) {
        // Rule 2: numbered modules in ascending order onto the layers that have parameters.
        std::map<long, std::vector<std::string>> modules;  // number -> suffixes, sorted
        bool numbered = true;
        for (const auto& [name, original] : renamed) {
            const auto [prefix, suffix] = split_parameter_name(name);
            if (!is_number(prefix) || suffix.empty()) {
                numbered = false;
                break;
            }
            modules[std::stol(prefix)].push_back(suffix);
        }
        std::vector<std::pair<std::string, std::vector<std::string>>> layers;  // layer -> suffixes, in order
        for (const auto& p : params) {
            const auto [layer, suffix] = split_parameter_name(p.name);
            if (layers.empty() || layers.back().first != layer) layers.push_back({layer, {}});
            layers.back().second.push_back(suffix);
        }
        std::map<std::string, std::vector<std::string>> optional;  // layer -> its counters' suffixes
        for (const auto& c : counters) {
            const auto [layer, suffix] = split_parameter_name(c.name);
            optional[layer].push_back(suffix);
        }
        if (numbered && modules.size() == layers.size()) {
            std::map<std::string, std::string> model_to_file;
            auto module = modules.begin();
            bool same_parts = true;
            for (auto& [layer, suffixes] : layers) {
                // The module holds the layer's parameters and buffers, and any of its counters.
                std::vector<std::string> wanted = suffixes;
                for (const auto& suffix : optional[layer])
                    if (std::binary_search(module->second.begin(), module->second.end(), suffix))
                        wanted.push_back(suffix);
                std::sort(wanted.begin(), wanted.end());
                if (wanted != module->second) same_parts = false;
                for (const auto& suffix : wanted)
                    model_to_file[layer + "." + suffix] = renamed.at(std::to_string(module->first) + "." + suffix);
                ++module;
            }
            if (same_parts) {
                for (std::size_t i = 0; i < params.size(); ++i) source[i] = model_to_file.at(params[i].name);
                for (std::size_t i = 0; i < counters.size(); ++i) {
                    const auto it = model_to_file.find(counters[i].name);
                    if (it != model_to_file.end()) sources.counters[i] = it->second;
                }
                by_name = true;  // every parameter has its tensor now
            }
        }
    }
    if (!by_name) {
        std::string problems;
        std::size_t missing = 0;
        for (const auto& [name, shape] : expected)
            if (!renamed.count(name)) {
                problems += "\n    missing tensor '" + name + "' (expected shape " + shape.str() + ")";
                ++missing;
            }
        std::map<std::string, bool> wanted;
        for (const auto& e : expected) wanted[e.first] = true;
        for (const auto& c : counters) wanted[c.name] = true;
        for (const auto& [name, original] : renamed)
            if (!wanted.count(name))
                problems += "\n    unexpected tensor '" + name + "' " + file.entries().at(original).shape.str() +
                            (name == original ? "" : " (renamed from '" + original + "')");
        fail(what, ": its tensor names do not match the model's parameters (", missing, " of ", expected.size(),
             " not found):", problems,
             "\n  Rename the file's modules to the model's layer names (WeightMatching::rename; fashion_mnist: "
             "--rename FILE_MODULE=LAYER), or save a torch.nn.Sequential of the same layers (its numbered names "
             "are matched in order).");
    }
    // The matches are one to one, so what is left to check is each shape and dtype and the
    // tensors the model has no use for.
    std::string problems;
    std::map<std::string, bool> used;
    const auto model_name = [](const std::string& file_name, const std::string& name) {
        return file_name == name ? std::string() : " (the model's '" + name + "')";
    };
    for (std::size_t i = 0; i < params.size(); ++i) {
        used[source[i]] = true;
        const SafetensorsEntry& have = file.entries().at(source[i]);
        if (have.dtype == SafetensorsDtype::I64)
            problems += "\n    tensor '" + source[i] + "'" + model_name(source[i], params[i].name) +
                        " has dtype I64, expected F32 or F64";
        else if (have.shape != params[i].variable.shape())
            problems += "\n    tensor '" + source[i] + "'" + model_name(source[i], params[i].name) + " has shape " +
                        have.shape.str() + ", expected " + params[i].variable.shape().str();
    }
    for (std::size_t i = 0; i < counters.size(); ++i) {
        const std::string& name = sources.counters[i];
        if (name.empty()) continue;
        used[name] = true;
        const SafetensorsEntry& have = file.entries().at(name);
        if (have.dtype != SafetensorsDtype::I64)
            problems += "\n    tensor '" + name + "'" + model_name(name, counters[i].name) + " has dtype " +
                        dtype_name(have.dtype) + ", expected I64 (a count)";
        else if (have.shape != counters[i].value.shape())
            problems += "\n    tensor '" + name + "'" + model_name(name, counters[i].name) + " has shape " +
                        have.shape.str() + ", expected " + counters[i].value.shape().str() + " (a count)";
    }
    for (const auto& [name, entry] : file.entries())
        if (!used.count(name)) problems += "\n    unexpected tensor '" + name + "' " + entry.shape.str();
    if (!problems.empty()) {
        for (const auto& c : counters) expected.emplace_back(c.name + " (I64, optional)", c.value.shape());
        fail(what, ": the weights do not fit the model:", problems, "\n  The model expects:", listing(expected));
    }
    return sources;
}

/// Checks what a weights file says it is: cnnlite's own model files (of a readable version),
/// PyTorch's ("format": "pt", as safetensors.torch.save_model writes) and files without a
/// format (safetensors.torch.save_file) are accepted; other frameworks' layouts are not.
inline void check_weights_format(const SafetensorsFile& file) {
    const auto it = file.metadata().find("format");
    if (it == file.metadata().end() || it->second == "pt") return;
    if (it->second == "cnnlite") return check_model_format(file);
    fail(file.description(), ": metadata 'format' is '", it->second,
         "': only cnnlite's and PyTorch's ('pt') weights load, because other frameworks store kernels in other layouts "
         "(Keras: HWIO convolutions, [in, out] dense weights)");
}

}  // namespace detail

/// Loads the weights of `file` into `model`, which must have been built with the file's
/// architecture (a cnnlite model file, or weights PyTorch saved from the same network; see
/// WeightMatching for how names are matched). Everything is validated first — format, every
/// parameter found with the model's shape, nothing extra, finite values — and the model is
/// left untouched when anything is wrong. Errors name the file and list the tensors.
template <class T>
void load_weights(const Model<T>& model, const SafetensorsFile& file, const WeightMatching& matching = {}) {
    detail::check_weights_format(file);
    const detail::WeightSources source = detail::match_weights(model, file, matching);
    std::vector<Tensor<T>> values;
    auto params = model.state();
    for (std::size_t i = 0; i < params.size(); ++i) values.push_back(file.tensor<T>(source.state[i]));
    std::vector<Tensor<std::int64_t>> counts;
    auto counters = model.counters();
    for (std::size_t i = 0; i < counters.size(); ++i) {
        if (source.counters[i].empty()) continue;
        counts.push_back(file.tensor<std::int64_t>(source.counters[i]));
        for (std::int64_t k = 0; k < counts.back().numel(); ++k)
            check(counts.back().data()[k] >= 0, file.description(), ": tensor '", source.counters[i], "' = ",
                  counts.back().data()[k], " is negative, but it counts batches");
    }
    for (std::size_t i = 0; i < params.size(); ++i) params[i].variable.value().copy_from(values[i]);
    for (std::size_t i = 0, k = 0; i < counters.size(); ++i)
        if (!source.counters[i].empty()) counters[i].value.copy_from(counts[k++]);
}

/// load_weights() from the file at `path`.
template <class T>
void load_weights(const Model<T>& model, const std::string& path, const WeightMatching& matching = {}) {
    load_weights(model, SafetensorsFile::load(path), matching);
}

/// Whether `file` describes its network (a cnnlite model file, which load_model() rebuilds) or
/// holds weights only (PyTorch's files), which need a model built in code and load_weights().
inline bool has_architecture(const SafetensorsFile& file) {
    return file.metadata().count("format") && file.metadata().at("format") == "cnnlite" &&
           file.metadata().count("architecture");
}

/// Rebuilds the network stored in a cnnlite model file from its architecture metadata and
/// loads its weights. Weights-only files (PyTorch's) are refused: they need load_weights().
template <class T = float>
Model<T> load_model(const SafetensorsFile& file) {
    if (!file.metadata().count("format") || file.metadata().at("format") != "cnnlite")
        fail(file.description(),
             file.metadata().count("format") ? ": metadata 'format' is '" + file.metadata().at("format") + "', not 'cnnlite'"
                                             : std::string(": no metadata 'format' (not a cnnlite model file)"),
             ": it describes no network to rebuild; for weights saved by PyTorch, build the network in code and "
             "call load_weights()");
    detail::check_model_format(file);
    auto [input, layers] = detail::parse_architecture(file.require_metadata("architecture"), file.description());
    std::uint64_t available = 0;  // sizes were validated by the reader: no overflow
    for (const auto& [name, entry] : file.entries()) available += static_cast<std::uint64_t>(entry.shape.numel());
    Model<T> model = detail::build_within<T>(input, layers, available, file.description());
    load_weights(model, file, WeightMatching{{}, false});  // cnnlite's own names: matched by name only
    return model;
}

/// load_model() from the file at `path`.
template <class T = float>
Model<T> load_model(const std::string& path) {
    return load_model<T>(SafetensorsFile::load(path));
}

}  // namespace cnnlite
