// Real numbers as text that reads back to the same double: model-file settings (a dropout
// rate), checkpoint metadata (learning rate, best value) and the example's run files all write
// numbers this way, so a file round-trips bit for bit.
#pragma once

#include <cmath>
#include <cstdio>
#include <limits>
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

/// The double that round_trip_text() wrote; "nan" reads as a quiet NaN. Throws
/// std::invalid_argument or std::out_of_range (from std::stod) for other text.
inline double parse_round_trip_text(const std::string& text) {
    if (text == "nan") return std::numeric_limits<double>::quiet_NaN();
    return std::stod(text);
}

}  // namespace cnnlite
