// Which part of a global batch (or data set) each rank takes: contiguous, near-equal blocks in
// rank order, so that the ranks' shards put side by side are exactly the global batch of a
// single process, and sizes differ by at most one sample.
#pragma once

#include <cstdint>

#include "cnnlite/core/error.hpp"
#include "cnnlite/distributed/allreduce.hpp"

namespace cnnlite::distributed {

/// A half-open range [first, first + count) of positions.
struct Shard {
    std::int64_t first = 0;  ///< first position
    std::int64_t count = 0;  ///< number of positions
};

/// Rank `rank`'s block of `total` positions cut among `ranks` ranks.
inline Shard shard_of(std::int64_t total, int rank, int ranks) {
    check(total >= 0, "shard_of: negative total ", total);
    check(ranks >= 1 && rank >= 0 && rank < ranks, "shard_of: rank ", rank, " is not one of ", ranks, " ranks");
    const std::int64_t first = detail::chunk_begin(total, rank, ranks);
    return {first, detail::chunk_begin(total, rank + 1, ranks) - first};
}

}  // namespace cnnlite::distributed
