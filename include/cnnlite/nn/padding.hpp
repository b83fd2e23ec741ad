// How a convolution pads its input: none ('valid'), enough to keep the size ('same'), or
// explicit rows and columns on each side; with the text form model files store.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// Padding of a convolution.
struct Padding {
    /// How the padding is chosen: valid (none), same (keep the size), explicit_ (the four values below).
    enum class Mode { valid, same, explicit_ };

    Mode mode = Mode::valid;  ///< the kind of padding
    std::int64_t top = 0;     ///< zero rows above (explicit_ only)
    std::int64_t bottom = 0;  ///< zero rows below (explicit_ only)
    std::int64_t left = 0;    ///< zero columns on the left (explicit_ only)
    std::int64_t right = 0;   ///< zero columns on the right (explicit_ only)

    /// No padding: the window stays inside the input.
    static Padding valid() { return {}; }
    /// Output size ceil(in / stride); an odd total padding puts the extra row/column at the
    /// bottom/right (TensorFlow and PyTorch agree).
    static Padding same() { return {Mode::same}; }
    /// The given zero rows and columns on each side.
    static Padding explicit_pad(std::int64_t top, std::int64_t bottom, std::int64_t left, std::int64_t right) {
        return {Mode::explicit_, top, bottom, left, right};
    }
    /// "valid", "same", or "top,bottom,left,right".
    static Padding parse(const std::string& s) {
        if (s == "valid") return valid();
        if (s == "same") return same();
        long long t = -1, b = -1, l = -1, r = -1;
        char extra = 0;
        check(std::sscanf(s.c_str(), "%lld,%lld,%lld,%lld%c", &t, &b, &l, &r, &extra) == 4 && t >= 0 && b >= 0 &&
                  l >= 0 && r >= 0,
              "unknown padding '", s, "' (use valid, same or top,bottom,left,right)");
        return explicit_pad(t, b, l, r);
    }
    /// "valid", "same" or "top,bottom,left,right" (what parse() reads).
    std::string str() const {
        if (mode == Mode::valid) return "valid";
        if (mode == Mode::same) return "same";
        return std::to_string(top) + "," + std::to_string(bottom) + "," + std::to_string(left) + "," + std::to_string(right);
    }
    /// Same padding (mode and, for explicit_, the four sides).
    bool operator==(const Padding& o) const {
        return mode == o.mode && top == o.top && bottom == o.bottom && left == o.left && right == o.right;
    }
};

}  // namespace cnnlite
