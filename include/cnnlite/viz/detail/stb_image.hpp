// Private: stb_image (PNG, JPEG, BMP decoding) compiled into each translation unit as static functions, so that
// cnnlite's copy never clashes at link time with a user's own copy of stb.
#pragma once

// A translation unit that already declared stb_image itself (extern functions) cannot also
// receive cnnlite's static copy; stb's implementation part has no include guard of its own.
#if defined(STBI_INCLUDE_STB_IMAGE_H) && !defined(CNNLITE_STB_IMAGE_INCLUDED)
#error "cnnlite/viz: include cnnlite's viz headers before <stb_image.h>, and do not define STB_IMAGE_IMPLEMENTATION in the same file"
#endif

#ifndef CNNLITE_STB_IMAGE_INCLUDED
#define CNNLITE_STB_IMAGE_INCLUDED

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

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO  // cnnlite reads the bytes itself, to name the file in its errors
// Only the formats a user's own picture comes in; fewer decoders compile faster.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#include <stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif  // CNNLITE_STB_IMAGE_INCLUDED
