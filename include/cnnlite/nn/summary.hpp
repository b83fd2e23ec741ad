// summary(): the Keras-style table of a model's layers, output shapes and parameter counts.
// Shapes are printed in cnnlite's NCHW order, e.g. (None, 64, 28, 28).
#pragma once

#include <cstdio>
#include <sstream>
#include <string>

#include "cnnlite/nn/model.hpp"

namespace cnnlite {

namespace detail {
inline std::string with_commas(std::int64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    const int len = static_cast<int>(digits.size());
    for (int i = 0; i < len; ++i) {
        if (i && (len - i) % 3 == 0 && digits[static_cast<std::size_t>(i - 1)] != '-') out += ',';
        out += digits[static_cast<std::size_t>(i)];
    }
    return out;
}
inline std::string batch_shape(const Shape& s) {
    std::string out = "(None";
    for (std::int64_t d : s) out += ", " + std::to_string(d);
    return out + ")";
}
inline std::string pad_right(std::string s, std::size_t width) {
    if (s.size() < width) s.append(width - s.size(), ' ');
    return s;
}
}  // namespace detail

/// The model as a Keras-like table: one row per layer ("name (Type)", output shape, parameter
/// count, and for a graph Keras' "Connected to" column: the layers feeding it), then the totals
/// split into trainable and non-trainable values (frozen layers' parameters and buffers such as
/// BatchNormalization's running statistics) and their float32 size.
template <class T>
std::string summary(const Model<T>& model, const std::string& title = "") {
    const bool graph = !model.is_chain();
    const std::string name = !title.empty() ? title : graph ? "functional" : "sequential";
    const std::size_t c1 = 32, c2 = 26, c3 = 12, c4 = graph ? 26 : 0, width = c1 + c2 + c3 + c4;
    const std::string rule(width, '_'), double_rule(width, '=');
    std::ostringstream out;
    out << "Model: \"" << name << "\"\n" << rule << "\n";
    out << detail::pad_right(" Layer (type)", c1) << detail::pad_right("Output Shape", c2);
    out << (graph ? detail::pad_right("Param #", c3) + "Connected to" : std::string("Param #")) << "\n";
    out << double_rule << "\n";
    if (graph)
        out << detail::pad_right(std::string(" ") + model_input_name() + " (InputLayer)", c1)
            << detail::pad_right(detail::batch_shape(model.input_shape()), c2) << detail::pad_right("0", c3) << "-\n";
    for (std::size_t i = 0; i < model.size(); ++i) {
        const auto& layer = model.layer(i);
        const std::string params = detail::with_commas(layer.parameter_count() + layer.buffer_count());
        out << detail::pad_right(" " + layer.name() + " (" + layer.type() + ")", c1)
            << detail::pad_right(detail::batch_shape(layer.output_shape()), c2);
        if (!graph) {
            out << params << "\n";
            continue;
        }
        out << detail::pad_right(params, c3);
        const auto inbound = model.inbound(i);
        for (std::size_t k = 0; k < inbound.size(); ++k)
            out << (k ? "\n" + std::string(c1 + c2 + c3, ' ') : std::string()) << inbound[k];
        out << "\n";
    }
    const auto size = [](std::int64_t values) {
        char text[64];
        std::snprintf(text, sizeof text, "%.2f MB", static_cast<double>(values) * 4.0 / (1024.0 * 1024.0));
        return std::string(text);
    };
    const std::int64_t trainable = model.trainable_count(), frozen = model.non_trainable_count();
    const std::int64_t total = trainable + frozen;
    out << double_rule << "\n";
    out << "Total params: " << detail::with_commas(total) << " (" << size(total) << ")\n";
    out << "Trainable params: " << detail::with_commas(trainable) << " (" << size(trainable) << ")\n";
    out << "Non-trainable params: " << detail::with_commas(frozen);
    if (frozen > 0) out << " (" << size(frozen) << ")";
    out << "\n" << rule << "\n";
    return out.str();
}

}  // namespace cnnlite
