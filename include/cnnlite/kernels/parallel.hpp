// When kernels run in parallel: the one work threshold below which they stay serial, and the
// thread count and index they size per-thread scratch space by (from core/threading.hpp, the
// single place that decides how many threads run).
#pragma once

#include <cstdint>

#include "cnnlite/core/threading.hpp"

namespace cnnlite::kernels {

/// Work (elements or multiply-adds) below which a kernel runs serially: waking the OpenMP
/// threads costs microseconds, more than a small batch (e.g. one image) takes.
constexpr std::int64_t parallel_threshold = std::int64_t(1) << 16;

}  // namespace cnnlite::kernels
