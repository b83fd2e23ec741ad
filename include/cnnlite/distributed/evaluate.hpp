// Evaluation split across ranks: each rank scores its block of the data set and the sums of
// loss and correct predictions are reduced, so every rank gets the loss and accuracy of the
// whole set for 1/p of the work.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "cnnlite/distributed/allreduce.hpp"
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/distributed/sharding.hpp"
#include "cnnlite/train/evaluate.hpp"

namespace cnnlite::distributed {

/// Loss and accuracy of a whole data set, the same on every rank.
struct ShardedEvaluation {
    double loss = 0;      ///< mean softmax cross-entropy over the whole set
    double accuracy = 0;  ///< fraction classified right
};

/// Evaluates `model` on `data` with each rank scoring its shard; collective. With one rank it
/// returns evaluate()'s figures unchanged; with more the loss may differ from evaluate()'s in
/// the last bits (the batches start at other positions, so the partial sums differ).
template <class T>
ShardedEvaluation evaluate_sharded(const Communicator& comm, const Model<T>& model, const Dataset& data,
                                   std::int64_t batch_size = 1000, ReduceAlgorithm algorithm = ReduceAlgorithm::ring) {
    check(!data.empty(), "evaluate_sharded: the data set is empty");
    if (comm.size() == 1) {
        const Evaluation e = evaluate(model, data, batch_size);
        return {e.loss, e.accuracy};
    }
    const Shard shard = shard_of(data.size(), comm.rank(), comm.size());
    std::vector<double> sums = {0.0, 0.0};  // loss sum, correct predictions
    if (shard.count > 0) {
        const Evaluation e = evaluate(model, data.slice(shard.first, shard.count), batch_size);
        sums[0] = e.loss * static_cast<double>(shard.count);
        sums[1] = std::round(e.accuracy * static_cast<double>(shard.count));
    }
    allreduce_sum(comm, sums, algorithm);
    const auto n = static_cast<double>(data.size());
    return {sums[0] / n, sums[1] / n};
}

}  // namespace cnnlite::distributed
