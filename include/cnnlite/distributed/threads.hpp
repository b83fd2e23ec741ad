// How many threads a rank should run: the node's cores divided among the ranks on it, and
// never more than the cores this process may use (mpirun may bind each rank to a core).
#pragma once

#include <unistd.h>

#include <algorithm>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/distributed/communicator.hpp"

namespace cnnlite::distributed {

/// Online cores of the whole node (ignores this process's affinity mask).
inline int node_cores() {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? static_cast<int>(n) : 1;
}

/// Default thread count of this rank: max(1, min(available_cores(), node cores / ranks on
/// the node)), so that the ranks sharing a node do not oversubscribe it.
inline int threads_per_rank(const Communicator& comm) {
    const int share = std::max(1, node_cores() / std::max(1, comm.local_size()));
    return std::max(1, std::min(available_cores(), share));
}

}  // namespace cnnlite::distributed
