// The one translation unit of quickstart_precompiled that compiles cnnlite's float training
// path; main.cpp, built with QUICKSTART_PRECOMPILED, declares it extern and compiles faster.
#define CNNLITE_INSTANTIATE
#include <cnnlite/extern_templates.hpp>
