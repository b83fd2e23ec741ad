// summary(): the Keras-style table of a model's layers, output shapes and parameter counts.
// Shapes are printed in cnnlite's NCHW order, e.g. (None, 64, 28, 28).
#pragma once

#include <cstdio>
#include <sstream>
#include <string>

#include "cnnlite/nn/sequential.hpp"

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
/// count), then the totals and the float32 size.
template <class T>
std::string summary(const Sequential<T>& model, const std::string& title = "sequential") {
    const std::size_t c1 = 32, c2 = 26, c3 = 12, width = c1 + c2 + c3;
    const std::string rule(width, '_'), double_rule(width, '=');
    std::ostringstream out;
    out << "Model: \"" << title << "\"\n" << rule << "\n";
    out << detail::pad_right(" Layer (type)", c1) << detail::pad_right("Output Shape", c2) << "Param #\n";
    out << double_rule << "\n";
    for (std::size_t i = 0; i < model.size(); ++i) {
        const auto& layer = model.layer(i);
        out << detail::pad_right(" " + layer.name() + " (" + layer.type() + ")", c1)
            << detail::pad_right(detail::batch_shape(layer.output_shape()), c2)
            << detail::with_commas(layer.parameter_count()) << "\n";
    }
    const std::int64_t total = model.parameter_count();
    char size[64];
    std::snprintf(size, sizeof size, "%.2f MB", static_cast<double>(total) * 4.0 / (1024.0 * 1024.0));
    out << double_rule << "\n";
    out << "Total params: " << detail::with_commas(total) << " (" << size << ")\n";
    out << "Trainable params: " << detail::with_commas(total) << " (" << size << ")\n";
    out << "Non-trainable params: 0\n" << rule << "\n";
    return out.str();
}

}  // namespace cnnlite
