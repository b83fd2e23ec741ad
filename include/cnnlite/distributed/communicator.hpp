// The MPI side of cnnlite: MpiEnvironment starts and ends MPI (RAII), Communicator wraps a
// communicator with its rank and size. Every MPI call goes through check_mpi(), and the
// communicators are switched to MPI_ERRORS_RETURN, so that an MPI failure becomes a
// cnnlite::Error naming the call instead of MPI's default of killing the job silently.
//
// Needs MPI's headers: the build defines CNNLITE_WITH_MPI when they are available (CMake
// -DCNNLITE_WITH_MPI=ON, Meson -Dmpi=enabled), and the umbrella header includes distributed/
// only then.
#pragma once

#include <mpi.h>

#include <cstdio>
#include <exception>
#include <string>

#include "cnnlite/core/error.hpp"

namespace cnnlite::distributed {

/// An error that every rank of the communicator raises together (after a collective that gave
/// all of them the same facts), so catching it does not leave other ranks waiting.
class CollectiveError : public Error {
public:
    /// An error with `message`, raised on every rank.
    explicit CollectiveError(const std::string& message) : Error(message) {}
};

/// Throws cnnlite::Error when an MPI call returned `code` other than MPI_SUCCESS; the message
/// names the call (`what`) and gives MPI's own text for the code.
inline void check_mpi(int code, const char* what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) std::snprintf(text, sizeof text, "unknown MPI error");
    fail("MPI: ", what, " failed with error code ", code, ": ", text);
}

/// Whether MPI_Init has run and MPI_Finalize has not.
inline bool mpi_active() {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    return initialized && !finalized;
}

/// Starts MPI for the lifetime of the object (MPI_Init_thread with MPI_THREAD_FUNNELED: only
/// the main thread calls MPI, OpenMP threads never do) and finalises it at the end. When MPI
/// is already running it leaves it alone. If the object is destroyed while an exception
/// unwinds in a job of several ranks, it aborts the job: finalising would make the other
/// ranks wait for this one forever.
class MpiEnvironment {
public:
    /// Starts MPI with the program's arguments (may be null).
    MpiEnvironment(int* argc = nullptr, char*** argv = nullptr) : uncaught_(std::uncaught_exceptions()) {
        int initialized = 0;
        check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
        if (initialized) return;
        int provided = 0;
        check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        owner_ = true;
        // Errors of MPI_COMM_WORLD (and of communicators derived from it) come back as codes.
        check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        if (provided < MPI_THREAD_FUNNELED) {
            MPI_Finalize();
            owner_ = false;
            fail("MPI: the library provides thread level ", provided, " but cnnlite needs MPI_THREAD_FUNNELED (",
                 MPI_THREAD_FUNNELED, ") to run OpenMP next to MPI");
        }
    }
    MpiEnvironment(const MpiEnvironment&) = delete;
    MpiEnvironment& operator=(const MpiEnvironment&) = delete;

    ~MpiEnvironment() {
        if (!owner_ || !mpi_active()) return;
        int size = 1;
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1 && std::uncaught_exceptions() > uncaught_) {
            std::fprintf(stderr, "cnnlite: an exception left the MPI environment on one rank; aborting the job\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        MPI_Finalize();
    }

    /// Whether this object started MPI (and will finalise it).
    bool owner() const { return owner_; }

private:
    bool owner_ = false;
    int uncaught_ = 0;
};

/// A communicator (MPI_COMM_WORLD by default; not owned) with its rank and size, switched to
/// MPI_ERRORS_RETURN so that failures become cnnlite::Error. MPI must be running; the
/// constructor is collective (every rank of `comm` constructs one together).
class Communicator {
public:
    /// Wraps `comm`, which must stay valid while this object is used.
    explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
        check(mpi_active(), "distributed: MPI is not running (create a cnnlite::distributed::MpiEnvironment first)");
        check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
        // Ranks that share this node's memory: they also share its cores.
        MPI_Comm node = MPI_COMM_NULL;
        check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                  "MPI_Comm_split_type (ranks on this node)");
        const int code = MPI_Comm_size(node, &local_size_);
        MPI_Comm_free(&node);
        check_mpi(code, "MPI_Comm_size (ranks on this node)");
    }

    /// This process's rank, 0 .. size()-1.
    int rank() const { return rank_; }
    /// Number of ranks.
    int size() const { return size_; }
    /// Whether this is rank 0, the one that writes files and prints progress.
    bool is_root() const { return rank_ == 0; }
    /// Ranks of this communicator running on this node (they share its cores).
    int local_size() const { return local_size_; }
    /// The MPI handle.
    MPI_Comm handle() const { return comm_; }

    /// Waits until every rank arrives.
    void barrier() const { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

    /// Ends every rank of the job with exit status `code` (MPI_Abort): the way out for an
    /// error seen by one rank only, which the others would otherwise wait for forever.
    [[noreturn]] void abort(int code) const {
        std::fflush(stdout);
        std::fflush(stderr);
        MPI_Abort(comm_, code);
        std::terminate();  // MPI_Abort does not return; this keeps [[noreturn]] honest
    }

private:
    MPI_Comm comm_;
    int rank_ = 0, size_ = 1, local_size_ = 1;
};

}  // namespace cnnlite::distributed
