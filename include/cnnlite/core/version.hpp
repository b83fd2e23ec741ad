// The library's version, as macros (for the preprocessor) and as a function.
#pragma once

#define CNNLITE_VERSION_MAJOR 0
#define CNNLITE_VERSION_MINOR 1
#define CNNLITE_VERSION_PATCH 0
#define CNNLITE_VERSION_STRING "0.1.0"

namespace cnnlite {

/// "MAJOR.MINOR.PATCH" of the headers in use.
inline const char* version() { return CNNLITE_VERSION_STRING; }

}  // namespace cnnlite
