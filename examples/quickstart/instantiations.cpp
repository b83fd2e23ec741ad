// The one translation unit of quickstart_precompiled that compiles cnnlite's float and double
// instantiations; main.cpp, built with QUICKSTART_PRECOMPILED, declares them extern and compiles faster.
#define CNNLITE_INSTANTIATE
#include <cnnlite/extern_templates.hpp>
