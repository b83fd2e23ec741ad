// Denormal (subnormal) floats flushed to zero while training. Arithmetic that reads or makes a
// denormal takes a microcode assist on x86 cores, ~100 cycles instead of one, and training makes
// them steadily: Adam's first moment of a weight whose gradient is zero (a dead ReLU unit)
// shrinks by beta1 every step and is denormal after ~800 steps. In the paper's network an
// eighth of the dense layer's moments are denormal after two epochs, and its 50 epochs take
// 5 min 19 s instead of 4 min 13 s on the 2-core development machine. TensorFlow, and so the
// Keras of the paper, runs every CPU kernel with denormals flushed (its thread pools and op
// executor set FTZ and DAZ); fit() does the same.
#pragma once

#include <cstddef>
#include <vector>

#include "cnnlite/core/threading.hpp"

#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
#define CNNLITE_HAS_MXCSR 1
#endif

namespace cnnlite {

namespace detail {

#ifdef CNNLITE_HAS_MXCSR
/// MXCSR bits: flush denormal results to zero (FTZ, bit 15) and read denormal inputs as
/// zero (DAZ, bit 6).
constexpr unsigned flush_denormal_bits = 0x8040u;
inline unsigned float_mode() { return _mm_getcsr(); }
inline void set_float_mode(unsigned mode) { _mm_setcsr(mode); }
#endif

}  // namespace detail

/// Whether this build can flush denormals (x86 with SSE; elsewhere FlushDenormals does nothing).
constexpr bool can_flush_denormals() {
#ifdef CNNLITE_HAS_MXCSR
    return true;
#else
    return false;
#endif
}

/// Whether the calling thread currently flushes denormal results and inputs to zero.
inline bool flushing_denormals() {
#ifdef CNNLITE_HAS_MXCSR
    return (detail::float_mode() & detail::flush_denormal_bits) == detail::flush_denormal_bits;
#else
    return false;
#endif
}

/// For its lifetime, flushes denormal floats (and doubles) to zero on the calling thread and on
/// every thread of the OpenMP team that cnnlite's kernels and Eigen's products run on; each
/// thread gets its own previous mode back at destruction. Construct it on the thread that
/// calls the kernels, outside any parallel region, and keep the thread count unchanged while it
/// lives (threads that join the team later inherit the mode of the thread that starts them).
class FlushDenormals {
public:
    /// Flushes when `enable` (and the build can: can_flush_denormals()); otherwise does nothing.
    explicit FlushDenormals(bool enable = true) {
#ifdef CNNLITE_HAS_MXCSR
        if (!enable) return;
        saved_.assign(static_cast<std::size_t>(num_threads()), caller_mode_ = detail::float_mode());
        // Every thread of the team records its own mode, then turns flushing on.
#ifdef _OPENMP
#pragma omp parallel num_threads(static_cast<int>(saved_.size()))
#endif
        {
            const std::size_t t = static_cast<std::size_t>(thread_index());
            if (t < saved_.size()) {
                saved_[t] = detail::float_mode();
                detail::set_float_mode(saved_[t] | detail::flush_denormal_bits);
            }
        }
        detail::set_float_mode(caller_mode_ | detail::flush_denormal_bits);
        active_ = true;
#else
        (void)enable;
#endif
    }

    ~FlushDenormals() {
#ifdef CNNLITE_HAS_MXCSR
        if (!active_) return;
#ifdef _OPENMP
#pragma omp parallel num_threads(static_cast<int>(saved_.size()))
#endif
        {
            const std::size_t t = static_cast<std::size_t>(thread_index());
            detail::set_float_mode(t < saved_.size() ? saved_[t] : caller_mode_);
        }
        detail::set_float_mode(caller_mode_);
#endif
    }

    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;

    /// Whether this guard turned flushing on (false when disabled or unsupported).
    bool active() const { return active_; }

private:
    std::vector<unsigned> saved_;  // each team member's mode before, by OpenMP thread number
    unsigned caller_mode_ = 0;
    bool active_ = false;
};

}  // namespace cnnlite
