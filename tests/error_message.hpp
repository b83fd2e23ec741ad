// What the tests ask of an error: the message of the cnnlite::Error an action throws, and
// whether a text mentions a part. Shared by the test files that check messages.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "cnnlite/core/error.hpp"

namespace test_support {

/// The message of the cnnlite::Error that `action` throws. An action that throws none fails the
/// current test (and "" is returned, so the checks on the message fail too).
template <class Action>
std::string error_of(Action&& action) {
    try {
        action();
    } catch (const cnnlite::Error& e) {
        return e.what();
    }
    FAIL_CHECK("expected a cnnlite::Error, but nothing was thrown");
    return "";
}

/// Whether `text` contains `part`.
inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace test_support
