// Synchronised batch normalisation across ranks: the ChannelSumReducer that data-parallel
// training puts in its ForwardContext. BatchNormalization's per-channel sums (values, count,
// squared deviations) are added up over the ranks in forward, so every rank normalises with the
// global batch's mean and variance and updates its running statistics from them; in backward
// the per-channel gradient terms (sums of dy and dy * xhat) are added up the same way, which is
// the gradient of the global batch when every rank backpropagates its share of the global
// batch's mean loss (DataParallelStep does).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cnnlite/distributed/allreduce.hpp"
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/ops/batch_norm.hpp"

namespace cnnlite::distributed {

/// Sums batch normalisation's per-channel values over the ranks of a communicator, in double, by
/// allreduce_sum() (with the ring: the same bits on every rank, so the replicas' running
/// statistics stay identical). Every rank must make the same sequence of calls: the ranks run the
/// same model on their shards. A rank with nothing to contribute (an empty shard running a
/// stand-in batch) switches contributing off and adds zeros. Neither copied nor moved: reducer()
/// refers to this object.
class ChannelSumAllreduce {
public:
    /// Sums over the ranks of `comm` by `algorithm`.
    ChannelSumAllreduce(const Communicator& comm, ReduceAlgorithm algorithm)
        : comm_(comm), algorithm_(algorithm), reducer_([this](double* values, std::int64_t count) {
              if (!contributing_) std::fill(values, values + count, 0.0);
              allreduce_sum(comm_, values, count, algorithm_, scratch_);
              ++calls_;
          }) {}
    ChannelSumAllreduce(const ChannelSumAllreduce&) = delete;
    ChannelSumAllreduce& operator=(const ChannelSumAllreduce&) = delete;

    /// The reducer for ForwardContext::channel_sum_reducer; valid while this object lives.
    const ChannelSumReducer& reducer() const { return reducer_; }
    /// Whether this rank's values enter the sums (true) or it adds zeros (false) while it only
    /// keeps the collectives company.
    void set_contributing(bool on) { contributing_ = on; }
    /// Reductions made so far (forward and backward), each a collective over every rank.
    std::int64_t calls() const { return calls_; }

private:
    Communicator comm_;
    ReduceAlgorithm algorithm_;
    bool contributing_ = true;
    std::int64_t calls_ = 0;
    std::vector<double> scratch_;
    ChannelSumReducer reducer_;  // last: it captures this object, whose other members it uses
};

}  // namespace cnnlite::distributed
