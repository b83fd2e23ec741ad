// Real numbers as text that reads back to the same double: model-file settings (a dropout
// rate), checkpoint metadata (learning rate, best value) and the example's run files all write
// numbers this way, so a file round-trips bit for bit.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

namespace cnnlite {

/// `v` with 17 significant digits ("%.17g"), enough for any double to read back exactly;
/// "nan" for a NaN (whose sign and payload carry no meaning here).
inline std::string round_trip_text(double v) {
    if (std::isnan(v)) return "nan";
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.17g", v);
    return buffer;
}

/// `v` with the fewest significant digits (at most 17) that read back to the same double, as
/// people write it: "0.1", not "0.10000000000000001"; "nan" for a NaN. For descriptions that
/// are compared as text, such as a learning-rate schedule's.
inline std::string shortest_round_trip_text(double v) {
    if (std::isnan(v)) return "nan";
    char buffer[40];
    for (int digits = 1; digits < 17; ++digits) {
        std::snprintf(buffer, sizeof buffer, "%.*g", digits, v);
        if (std::strtod(buffer, nullptr) == v) return buffer;
    }
    return round_trip_text(v);
}

/// The double that round_trip_text() wrote; "nan" reads as a quiet NaN and subnormal values
/// come back exactly (std::stod would refuse them). Throws std::invalid_argument for text that
/// is not one number, std::out_of_range for a value beyond double's range.
inline double parse_round_trip_text(const std::string& text) {
    if (text == "nan") return std::numeric_limits<double>::quiet_NaN();
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size())
        throw std::invalid_argument("parse_round_trip_text: '" + text + "' is not a number");
    if (errno == ERANGE && std::isinf(v)) throw std::out_of_range("parse_round_trip_text: '" + text + "' overflows");
    return v;
}

}  // namespace cnnlite
