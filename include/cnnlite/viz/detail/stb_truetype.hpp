// Private: stb_truetype compiled into each translation unit as static functions, so that
// cnnlite's copy never clashes at link time with a user's own copy of stb.
#pragma once

// A translation unit that already declared stb_truetype itself (extern functions) cannot also
// receive cnnlite's static copy; stb's implementation part has no include guard of its own.
#if defined(__STB_INCLUDE_STB_TRUETYPE_H__) && !defined(CNNLITE_STB_TRUETYPE_INCLUDED)
#error "cnnlite/viz: include cnnlite's viz headers before <stb_truetype.h>, and do not define STB_TRUETYPE_IMPLEMENTATION in the same file"
#endif

#ifndef CNNLITE_STB_TRUETYPE_INCLUDED
#define CNNLITE_STB_TRUETYPE_INCLUDED

#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wshadow"
#endif

#define STBTT_STATIC
#define STB_TRUETYPE_IMPLEMENTATION
#include <stb_truetype.h>
#undef STB_TRUETYPE_IMPLEMENTATION

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif  // CNNLITE_STB_TRUETYPE_INCLUDED
