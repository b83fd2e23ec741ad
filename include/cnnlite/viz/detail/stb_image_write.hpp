// Private: stb_image_write compiled into each translation unit as static functions, so that
// cnnlite's copy never clashes at link time with a user's own copy of stb.
#pragma once

// A translation unit that already declared stb_image_write itself (extern functions) cannot also
// receive cnnlite's static copy; stb's implementation part has no include guard of its own.
#if defined(INCLUDE_STB_IMAGE_WRITE_H) && !defined(CNNLITE_STB_IMAGE_WRITE_INCLUDED)
#error "cnnlite/viz: include cnnlite's viz headers before <stb_image_write.h>, and do not define STB_IMAGE_WRITE_IMPLEMENTATION in the same file"
#endif

#ifndef CNNLITE_STB_IMAGE_WRITE_INCLUDED
#define CNNLITE_STB_IMAGE_WRITE_INCLUDED

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

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO  // cnnlite writes every file itself, atomically
#include <stb_image_write.h>
#undef STB_IMAGE_WRITE_IMPLEMENTATION

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif  // CNNLITE_STB_IMAGE_WRITE_INCLUDED
