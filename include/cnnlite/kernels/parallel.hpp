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

/// Sums over a batch that must not depend on the thread count (a convolution's weight and bias
/// gradients): the batch's items (images, or products of a few images) are cut into
/// reduction_slices() contiguous slices, a number fixed by the item count alone. Each slice sums
/// its items in order into its own partial, and the partials are added in slice order, so one
/// thread or eight give the same bits. Four slices keep two threads busy with two each; more
/// partials only add memory traffic to summing them.
constexpr std::int64_t max_reduction_slices = 4;

/// The slices `items` items are summed in: min(items, max_reduction_slices), at least 1.
inline std::int64_t reduction_slices(std::int64_t items) {
    return items < 1 ? 1 : (items < max_reduction_slices ? items : max_reduction_slices);
}

/// Items [begin, end) of slice `slice` of `slices`: near-equal contiguous ranges.
inline void slice_items(std::int64_t items, std::int64_t slices, std::int64_t slice, std::int64_t& begin,
                        std::int64_t& end) {
    begin = items * slice / slices;
    end = items * (slice + 1) / slices;
}

}  // namespace cnnlite::kernels
