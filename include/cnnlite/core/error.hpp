// cnnlite::Error: the one exception type the library throws for bad input, so that callers
// can catch library errors apart from std::bad_alloc and friends.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace cnnlite {

/// Every error the library reports about its input (shapes, files, values, misuse).
/// The message names the operation and the offending values.
class Error : public std::runtime_error {
public:
    /// An error with the given message.
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// The parts streamed into one string: how every error message of the library is made (for
/// exceptions of other types that need the same kind of message).
template <class... Parts>
std::string message(Parts&&... parts) {
    std::ostringstream out;
    (out << ... << std::forward<Parts>(parts));
    return out.str();
}

/// Throws cnnlite::Error with the parts streamed into one message.
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
    throw Error(message(std::forward<Parts>(parts)...));
}

/// Throws cnnlite::Error when `condition` is false.
template <class... Parts>
void check(bool condition, Parts&&... parts) {
    if (!condition) fail(std::forward<Parts>(parts)...);
}

}  // namespace cnnlite
