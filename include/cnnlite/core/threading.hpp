// The one place that decides how many threads run. OpenMP parallelises cnnlite's kernels at
// their outermost loop; Eigen's matrix products use the same OpenMP pool when called from
// serial code and run single-threaded when called inside a parallel region, so the two never
// nest and never oversubscribe the cores. Without OpenMP everything runs serially.
#pragma once

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// Threads the library uses for parallel kernels.
inline int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// The calling thread's index in its parallel region (0 outside one, or without OpenMP).
inline int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/// Threads of the parallel region the caller is in (1 outside one, or without OpenMP). Inside
/// a region this is what `num_threads()` was when the region started, or fewer.
inline int team_size() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/// Cores this process may run on (the OpenMP runtime honours the affinity mask).
inline int available_cores() {
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

/// Most threads set_num_threads() accepts: four per available core. More only wait for one
/// another at every barrier (a run with 500 threads on two cores is several times slower), and
/// tens of thousands exhaust the process's memory for stacks inside the OpenMP runtime.
inline int max_threads() { return 4 * available_cores(); }

/// Sets the threads used by cnnlite's kernels and by Eigen's products, 1..max_threads().
inline void set_num_threads(int n) {
    check(n >= 1, "set_num_threads: need at least one thread, got ", n);
    check(n <= max_threads(), "set_num_threads: ", n, " threads is more than ", max_threads(), " (four for each of the ",
          available_cores(), " cores this process may use)");
#ifdef _OPENMP
    omp_set_num_threads(n);
    Eigen::setNbThreads(n);
#endif
}

/// Restores the thread count it found when it goes out of scope (also through an exception).
class ThreadCountGuard {
public:
    /// Remembers the current thread count.
    ThreadCountGuard() : saved_(num_threads()) {}
    /// Sets it again.
    ~ThreadCountGuard() {
#ifdef _OPENMP
        omp_set_num_threads(saved_);
        Eigen::setNbThreads(saved_);
#endif
    }
    ThreadCountGuard(const ThreadCountGuard&) = delete;
    ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

private:
    int saved_;
};

/// Runs the calling thread's parallel regions with `n` threads while it is in scope, then
/// restores the count it found (also through an exception). OpenMP keeps this count per thread,
/// so other threads running their own work at the same time keep theirs; Eigen's products keep
/// the count set_num_threads() gave them.
class CallingThreadCount {
public:
    /// Sets the calling thread's count to `n` (>= 1).
    explicit CallingThreadCount(int n) : saved_(num_threads()) {
        check(n >= 1, "CallingThreadCount: need at least one thread, got ", n);
#ifdef _OPENMP
        omp_set_num_threads(n);
#endif
    }
    /// Restores the count.
    ~CallingThreadCount() {
#ifdef _OPENMP
        omp_set_num_threads(saved_);
#endif
    }
    CallingThreadCount(const CallingThreadCount&) = delete;
    CallingThreadCount& operator=(const CallingThreadCount&) = delete;

private:
    int saved_;
};

/// Whether the library was built with OpenMP.
constexpr bool has_openmp() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

}  // namespace cnnlite
