// What the tests ask of an error: the message of the cnnlite::Error an action throws, and
// whether a text mentions a part. Shared by the test files that check messages.
#pragma once

#include <string>

#include "cnnlite/core/error.hpp"

namespace test_support {

/// The message of the cnnlite::Error that `action` throws, or "" when it throws none (so a
/// check on the message fails, and a test may also expect "" from an action that must succeed).
template <class Action>
std::string error_of(Action&& action) {
    try {
        action();
    } catch (const cnnlite::Error& e) {
        return e.what();
    }
    return "";
}

/// Whether `text` contains `part`.
inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace test_support
