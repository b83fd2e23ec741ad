// Sum-allreduce of a flat array across the ranks of a communicator, two ways:
//   ring  cnnlite's own ring allreduce (reduce-scatter, then allgather, p-1 steps each, every
//         rank sending 2(p-1)/p of the array). The order of the additions is fixed: chunk c
//         is summed as ((x_c + x_c+1) + x_c+2) + ... around the ring, so the result depends
//         only on the inputs and the number of ranks, is the same bits on every rank (each
//         chunk is added up once and then copied), and is the same from run to run.
//   mpi   MPI_Allreduce(MPI_SUM): the MPI library picks the algorithm (and with it the order
//         of the additions) by message size and rank count; the standard does not promise
//         the same bits on every rank, so data-parallel training verifies the replicas.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "cnnlite/distributed/communicator.hpp"

namespace cnnlite::distributed {

/// How allreduce_sum() adds up the ranks' arrays.
enum class ReduceAlgorithm {
    ring,  ///< cnnlite's ring: fixed order of additions, bitwise reproducible (the default)
    mpi,   ///< MPI_Allreduce: the MPI library's choice
};

/// "ring" or "mpi".
inline const char* to_string(ReduceAlgorithm algorithm) { return algorithm == ReduceAlgorithm::ring ? "ring" : "mpi"; }

namespace detail {

template <class T>
MPI_Datatype mpi_datatype() {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value ||
                      std::is_same<T, std::int64_t>::value,
                  "allreduce: float, double or int64 only");
    if constexpr (std::is_same<T, float>::value) return MPI_FLOAT;
    else if constexpr (std::is_same<T, double>::value) return MPI_DOUBLE;
    else return MPI_INT64_T;
}

/// First element of chunk `c` when `n` elements are cut into `parts` near-equal chunks.
inline std::int64_t chunk_begin(std::int64_t n, int c, int parts) {
    return n / parts * c + std::min<std::int64_t>(c, n % parts);
}

inline int mpi_count(std::int64_t n, const char* what) {
    check(n >= 0 && n <= INT_MAX, "allreduce: ", what, " of ", n, " elements exceeds MPI's int count (", INT_MAX,
          "); use smaller buckets");
    return static_cast<int>(n);
}

}  // namespace detail

/// Ring allreduce (sum) of data[0..n) in place; `scratch` is reused between calls (it grows to
/// one chunk, n/p elements). Every rank must call it with the same n.
template <class T>
void ring_allreduce_sum(const Communicator& comm, T* data, std::int64_t n, std::vector<T>& scratch) {
    check(n >= 0, "ring_allreduce_sum: negative element count ", n);
    const int p = comm.size(), r = comm.rank();
    if (p == 1 || n == 0) return;
    const int right = (r + 1) % p, left = (r + p - 1) % p;
    const MPI_Datatype type = detail::mpi_datatype<T>();
    const auto begin = [&](int c) { return detail::chunk_begin(n, c, p); };
    const auto length = [&](int c) { return begin(c + 1) - begin(c); };
    if (static_cast<std::int64_t>(scratch.size()) < length(0)) scratch.resize(static_cast<std::size_t>(length(0)));
    constexpr int reduce_tag = 0x636e01, gather_tag = 0x636e02;

    // Reduce-scatter: at step s rank r passes on its running sum of chunk r-s and adds its own
    // values to the running sum of chunk r-s-1 that arrives from the left. The received partial
    // sum is always the left operand, which fixes the order of the additions.
    for (int s = 0; s < p - 1; ++s) {
        const int send = (r - s + 2 * p) % p, receive = (r - s - 1 + 2 * p) % p;
        check_mpi(MPI_Sendrecv(data + begin(send), detail::mpi_count(length(send), "a ring chunk"), type, right,
                               reduce_tag, scratch.data(), detail::mpi_count(length(receive), "a ring chunk"), type,
                               left, reduce_tag, comm.handle(), MPI_STATUS_IGNORE),
                  "MPI_Sendrecv (ring allreduce, reduce-scatter)");
        T* mine = data + begin(receive);
        const T* partial = scratch.data();
        const std::int64_t count = length(receive);
        for (std::int64_t i = 0; i < count; ++i) mine[i] = partial[i] + mine[i];
    }
    // Rank r now holds the complete sum of chunk r+1; pass the complete chunks around.
    for (int s = 0; s < p - 1; ++s) {
        const int send = (r + 1 - s + 2 * p) % p, receive = (r - s + 2 * p) % p;
        check_mpi(MPI_Sendrecv(data + begin(send), detail::mpi_count(length(send), "a ring chunk"), type, right,
                               gather_tag, data + begin(receive), detail::mpi_count(length(receive), "a ring chunk"),
                               type, left, gather_tag, comm.handle(), MPI_STATUS_IGNORE),
                  "MPI_Sendrecv (ring allreduce, allgather)");
    }
}

/// Sum of data[0..n) over the ranks, in place on every rank, by `algorithm`; `scratch` is the
/// ring's reusable buffer. Every rank must call it with the same n and algorithm.
template <class T>
void allreduce_sum(const Communicator& comm, T* data, std::int64_t n, ReduceAlgorithm algorithm,
                   std::vector<T>& scratch) {
    if (algorithm == ReduceAlgorithm::ring) return ring_allreduce_sum(comm, data, n, scratch);
    check(n >= 0, "allreduce_sum: negative element count ", n);
    if (comm.size() == 1 || n == 0) return;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, detail::mpi_count(n, "an MPI_Allreduce"), detail::mpi_datatype<T>(),
                            MPI_SUM, comm.handle()),
              "MPI_Allreduce");
}

/// Convenience overload with its own scratch buffer.
template <class T>
void allreduce_sum(const Communicator& comm, std::vector<T>& values, ReduceAlgorithm algorithm = ReduceAlgorithm::ring) {
    std::vector<T> scratch;
    allreduce_sum(comm, values.data(), static_cast<std::int64_t>(values.size()), algorithm, scratch);
}

}  // namespace cnnlite::distributed
