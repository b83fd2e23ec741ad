// When kernels run in parallel: the one work threshold below which they stay serial, and the
// thread count and index they size per-thread scratch space by (from core/threading.hpp, the
// single place that decides how many threads run); and the sums over a batch that give the
// same bits at any thread count (fixed slices of the batch, added in slice order), which the
// convolutions' weight gradients share.
#pragma once

#include <algorithm>
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

namespace detail {

/// dw [O, K] and db [O] (may be null) as the sum of the slices' partial sums, `partial` =
/// [slices][O*K + O], added in slice order (reduction_slices), so the
/// result depends neither on the thread count nor on which thread took which slice. Threads
/// split the filters; each element is still summed slice by slice, from 0.
/// `transposed`: the partial weight gradients are stored as dW^T [K, O].
template <class T>
void sum_slice_partials(const T* partial, std::int64_t slices, std::int64_t O, std::int64_t K, T* dw, T* db,
                        bool transposed = false) {
    const std::int64_t stride = O * (K + 1);
#pragma omp parallel for schedule(static) if (slices * stride >= parallel_threshold)
    for (std::int64_t o = 0; o < O; ++o) {
        if (dw) {
            T* row = dw + o * K;
            std::fill(row, row + K, T(0));
            for (std::int64_t t = 0; t < slices; ++t) {
                const T* pw = partial + t * stride;
                if (transposed) {
                    for (std::int64_t k = 0; k < K; ++k) row[k] += pw[k * O + o];
                } else {
                    for (std::int64_t k = 0; k < K; ++k) row[k] += pw[o * K + k];
                }
            }
        }
        if (db) {
            T sum = 0;
            for (std::int64_t t = 0; t < slices; ++t) sum += partial[t * stride + O * K + o];
            db[o] = sum;
        }
    }
}

/// Runs `item(i, scratch, partial)` for the items [0, items) of a batch, cut into
/// reduction_slices(items) slices: each slice's items in order on one thread, into the slice's
/// own partial (`partial_size` elements at partials + slice * partial_size, zeroed first), with
/// that thread's `per_thread` elements of `workspace` as scratch. Threads share the slices when
/// `parallel`. Returns the slice count, for sum_slice_partials.
template <class T, class Item>
std::int64_t accumulate_in_slices(std::int64_t items, bool parallel, T* workspace, std::int64_t per_thread,
                                  T* partials, std::int64_t partial_size, const Item& item) {
    const std::int64_t slices = reduction_slices(items);
    (void)parallel;  // read by the pragma only
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t slice = 0; slice < slices; ++slice) {
        std::int64_t first = 0, last = 0;
        slice_items(items, slices, slice, first, last);
        T* scratch = workspace + thread_index() * per_thread;
        T* partial = partials + slice * partial_size;
        std::fill(partial, partial + partial_size, T(0));
        for (std::int64_t i = first; i < last; ++i) item(i, scratch, partial);
    }
    return slices;
}

}  // namespace detail

}  // namespace cnnlite::kernels
