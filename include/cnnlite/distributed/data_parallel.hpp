// Synchronous data-parallel training: fit() across the ranks of a communicator. Every rank
// holds a replica (rank 0's weights and optimiser state are broadcast at the start), walks
// the same shuffled order of the whole training set (shuffle keyed by the shared seed), and
// takes its block of every global batch. Dropout is keyed by the global step and each
// sample's global index, so a rank draws for its samples exactly the masks a single process
// would. Each rank backpropagates its share (samples / global batch) of the global batch's mean
// loss and the gradients are summed over the ranks, after which every rank makes the same
// optimiser step. BatchNormalization is synchronised: its batch statistics, and the per-channel
// gradient terms of its backward, are summed over the ranks (ChannelSumAllreduce), so it
// normalises with the global batch's mean and variance and its running statistics move as one
// process's would. Loss and accuracy are reduced over the ranks, so the history
// (and every callback's view of it) is the same everywhere; a callback asking to stop on any
// rank stops all of them. Files and progress are the caller's business: pass writing
// callbacks on rank 0 only (progress is printed by rank 0 alone). The recipe options of
// FitOptions act as in fit(): each rank augments its shard with the keys a single process would
// use, the smoothed loss, clipping (of the averaged gradients), schedules and the weight average
// run identically on every rank, and validation uses the averaged weights. Buffers are rank 0's:
// broadcast at the start and before every validation (synchronised batch normalisation keeps
// its running statistics alike on every rank anyway; other layers' buffers may drift).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/data/batching.hpp"
#include "cnnlite/distributed/broadcast.hpp"
#include "cnnlite/distributed/channel_sum_allreduce.hpp"
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/distributed/consistency.hpp"
#include "cnnlite/distributed/evaluate.hpp"
#include "cnnlite/distributed/gradient_averager.hpp"
#include "cnnlite/distributed/sharding.hpp"
#include "cnnlite/train/fit.hpp"

namespace cnnlite::distributed {

/// Settings of data-parallel training besides FitOptions.
struct DataParallelOptions {
    GradientOptions gradients;         ///< bucket size and reduction algorithm
    bool check_replicas = true;        ///< compare the replicas' weight hashes after every epoch
    /// When an error happens on some ranks only (a callback failing to write, a bug), print it
    /// and end the whole job with MPI_Abort instead of leaving the other ranks waiting in the
    /// next collective. Errors every rank raises together (CollectiveError) are thrown.
    bool abort_on_local_error = true;
};

/// One data-parallel optimiser step: forward and backward on this rank's shard (with batch
/// normalisation synchronised over the ranks), gradient summation, the same update on every
/// rank. Holds reusable buffers; neither copied nor moved (the model's batch normalisation
/// layers call back into it during a step).
template <class T>
class DataParallelStep {
public:
    /// What one step measured over the whole global batch (the same on every rank); its
    /// loss_sum is the sum over the ranks of (mean loss of the shard) * (shard size).
    using Result = StepResult;

    /// A step of `model` with `optimizer` over the ranks of `comm` (every rank holds a replica),
    /// with `recipe`'s extras.
    DataParallelStep(const Communicator& comm, const Model<T>& model, Optimizer<T>& optimizer,
                     NonFinitePolicy policy = NonFinitePolicy::error, GradientOptions gradients = {},
                     StepRecipe<T> recipe = {})
        : comm_(comm), model_(model), optimizer_(optimizer), params_(model.parameters()), policy_(policy),
          averager_(comm, model.trainable_variables(), gradients), channel_sums_(comm, gradients.algorithm),
          recipe_(recipe) {}

    /// Trains on `shard`, this rank's part of a global batch of `global_count` samples (it may
    /// be empty); `ctx` carries the global step, seed and the shard's global sample indices (its
    /// channel_sum_reducer is replaced by the step's own). Collective. `epoch` and `step` only
    /// name the place in error messages.
    ///
    /// Every rank runs forward and backward, so that the collectives inside them (synchronised
    /// batch normalisation) line up: a rank with an empty shard (a global batch smaller than the
    /// number of ranks) runs a stand-in sample that contributes nothing to the statistics, the
    /// gradients or the loss, and backward runs even after a non-finite loss (the step is then
    /// skipped or refused on every rank alike).
    StepResult operator()(const Batch& shard, std::int64_t global_count, const ForwardContext& ctx, std::int64_t epoch,
                          std::int64_t step) {
        StepResult r;
        const std::int64_t count = shard.size();
        const bool empty = count == 0;
        optimizer_.zero_grad();
        const Batch& batch = empty ? stand_in() : shard;
        ForwardContext synchronised = ctx;
        synchronised.channel_sum_reducer = &channel_sums_.reducer();
        if (empty) synchronised.sample_ids = batch.indices.data();
        channel_sums_.set_contributing(!empty);
        double loss_sum = 0, correct = 0;
        {
            ForwardAndLoss<T> f = forward_and_loss(model_, batch, synchronised, recipe_.label_smoothing);
            // This rank's share of the global batch's mean loss: the ranks' gradients add up to the
            // global batch's, and backward's synchronised sums all refer to that one loss.
            const double share = static_cast<double>(count) / static_cast<double>(global_count);
            f.loss.backward(Tensor<T>::full(f.loss.shape(), static_cast<T>(share)));
            if (empty) {
                optimizer_.zero_grad();  // the stand-in's gradients are not part of the batch's
            } else {
                loss_sum = f.mean_loss * static_cast<double>(count);
                // A non-finite loss reaches every rank through the sum below.
                if (std::isfinite(f.mean_loss))
                    correct = static_cast<double>(count_correct(f.logits.value(), shard, predicted_));
            }
        }
        channel_sums_.set_contributing(true);
        scalars_.assign({loss_sum, correct, static_cast<double>(count)});
        averager_.average(1.0, scalars_);  // the shares are in the gradients already
        r.loss_sum = scalars_[0];
        r.correct = static_cast<std::int64_t>(scalars_[1]);
        r.count = static_cast<std::int64_t>(scalars_[2]);
        if (r.count != global_count)
            throw CollectiveError(message("distributed fit: the shards of step ", step, " hold ", r.count,
                                          " samples but the global batch has ", global_count));
        if (!std::isfinite(r.loss_sum)) {
            if (policy_ == NonFinitePolicy::skip_batch) return r;
            throw CollectiveError(message("fit: non-finite loss (", r.loss_sum / static_cast<double>(global_count),
                                          ") at epoch ", epoch, ", step ", step,
                                          " (check the learning rate and the input data)"));
        }
        try {
            if (!check_gradients_finite(params_, epoch, step, policy_)) return r;
            update_weights(optimizer_, recipe_);
        } catch (const Error& e) {
            throw CollectiveError(e.what());  // the summed gradients are the same on every rank
        }
        r.applied = true;
        return r;
    }

    /// The gradient averager (bucket layout, time of the last reduction).
    const GradientAverager<T>& averager() const { return averager_; }
    /// The reducer of synchronised batch normalisation (its count of reductions).
    const ChannelSumAllreduce& channel_sums() const { return channel_sums_; }

private:
    // One sample of zeros with label 0, for a rank whose shard is empty.
    const Batch& stand_in() {
        if (stand_in_.labels.empty()) {
            std::vector<std::int64_t> dims{1};
            for (std::int64_t d : model_.input_shape()) dims.push_back(d);
            stand_in_.storage = Tensor<float>::zeros(Shape(dims));
            stand_in_.images = stand_in_.storage;
            stand_in_.labels = {0};
            stand_in_.indices = {0};
        }
        return stand_in_;
    }

    Communicator comm_;
    const Model<T>& model_;
    Optimizer<T>& optimizer_;
    std::vector<NamedParameter<T>> params_;
    NonFinitePolicy policy_;
    GradientAverager<T> averager_;
    ChannelSumAllreduce channel_sums_;
    StepRecipe<T> recipe_;
    Batch stand_in_;
    std::vector<int> predicted_;
    std::vector<double> scalars_;
};

namespace detail {

/// Ends the job when `body` throws anything but a CollectiveError on a job of several ranks.
template <class Body>
auto collective_or_abort(const Communicator& comm, bool abort_on_local_error, Body&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const CollectiveError&) {
        throw;
    } catch (const std::exception& e) {
        if (comm.size() == 1 || !abort_on_local_error) throw;
        std::fprintf(stderr, "cnnlite: rank %d of %d: error: %s\ncnnlite: aborting the job (the other ranks would wait "
                     "for this one forever)\n", comm.rank(), comm.size(), e.what());
        comm.abort(1);
    }
}

}  // namespace detail

/// The step strategy of fit() across the ranks of `comm` (see LocalTraining for what a strategy
/// provides): every rank takes its shard of each global batch (DataParallelStep), validation
/// is sharded, the replicas are compared after each epoch when asked, any rank's callbacks
/// may stop the run, and only rank 0 shows progress.
template <class T>
class DataParallelTraining {
public:
    /// Training of `model` by `optimizer` over the ranks of `comm` with the options and weight
    /// average of `run` (see fit_data_parallel).
    DataParallelTraining(const Communicator& comm, const Model<T>& model, Optimizer<T>& optimizer,
                         const Dataset& train, const Dataset* validation, FitRun<T>& run,
                         const DataParallelOptions& parallel)
        : comm_(comm), model_(model), train_(train), validation_(validation), run_(run), options_(run.options()),
          parallel_(parallel),
          step_(comm, model, optimizer, run.options().on_non_finite, parallel.gradients,
                cnnlite::detail::step_recipe(run)) {}

    /// This rank's shard of mini-batch `b` through DataParallelStep (collective).
    StepResult train_batch(const Batcher& batcher, std::int64_t epoch, std::int64_t b) {
        const std::int64_t first = b * options_.batch_size;
        const std::int64_t global_count = std::min(options_.batch_size, train_.size() - first);
        const Shard shard = shard_of(global_count, comm_.rank(), comm_.size());
        if (shard.count > 0) {
            gather_batch(train_, batcher.order().data() + first + shard.first, shard.count, batch_);
            batcher.augment(batch_);  // keyed by global index: the images a single process gets
        } else {
            batch_.labels.clear();
            batch_.indices.clear();
        }
        const ForwardContext ctx{true, options_.seed, (epoch - 1) * batcher.num_batches() + b, batch_.indices.data()};
        return step_(batch_, global_count, ctx, epoch, b + 1);
    }

    /// Rank 0's buffers to every rank, sharded validation (of the averaged weights when the run
    /// keeps an average) and, when asked, the replicas' comparison (collective).
    void end_epoch(EpochRecord& record) {
        broadcast_buffers(comm_, model_);
        if (validation_) {
            std::optional<AveragedWeights<T>> averaged;
            if (run_.ema()) averaged.emplace(*run_.ema());
            const ShardedEvaluation v = evaluate_sharded(comm_, model_, *validation_, options_.validation_batch_size,
                                                         parallel_.gradients.algorithm);
            record.val_loss = v.loss;
            record.val_accuracy = v.accuracy;
        }
        if (parallel_.check_replicas) check_replicas(comm_, model_, "after epoch " + std::to_string(record.epoch));
    }

    /// Any rank's callbacks may stop the run: then all stop.
    bool stop(bool asked) const {
        int any = asked ? 1 : 0;
        check_mpi(MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, comm_.handle()), "MPI_Allreduce (stop decision)");
        return any != 0;
    }

    /// Progress on rank 0 only.
    Verbosity verbosity(Verbosity wanted) const { return comm_.is_root() ? wanted : Verbosity::silent; }

private:
    Communicator comm_;
    const Model<T>& model_;
    const Dataset& train_;
    const Dataset* validation_;
    FitRun<T>& run_;
    const FitOptions& options_;
    const DataParallelOptions& parallel_;
    DataParallelStep<T> step_;
    Batch batch_;
};

namespace detail {

/// fit_data_parallel() from the start (`resume` null) or from a checkpoint's state.
template <class T>
History fit_data_parallel_run(const Communicator& comm, Model<T>& model, Optimizer<T>& optimizer, const Dataset& train,
                              const Dataset* validation, const FitOptions& options,
                              const std::vector<Callback<T>*>& callbacks, History history, const TrainingState* resume,
                              const DataParallelOptions& parallel) {
    return collective_or_abort(comm, parallel.abort_on_local_error, [&]() -> History {
        check_consistency(comm, fit_fingerprint(model, optimizer, train, validation, options));
        try {  // the arguments are now known to agree, so these checks fail on every rank alike
            check_fit_arguments(model, train, validation, options);
            check(resume || !options.ema_decay || options.initial_epoch == 0, "fit: resuming at epoch ",
                  options.initial_epoch,
                  " with FitOptions::ema_decay needs the weight average: resume with resume_fit_data_parallel() and ",
                  "the TrainingState of load_checkpoint");
        } catch (const Error& e) {
            throw CollectiveError(e.what());
        }
        FitRun<T> run(model, options);
        if (resume) {  // each rank's own checkpoint copy; a refusal on some ranks only ends the job
            check_resumable(*resume, options);
            cnnlite::detail::restore_ema(run, *resume);
        }
        broadcast_parameters(comm, model);
        broadcast_optimizer_state(comm, optimizer);
        if (run.ema()) broadcast_ema_state(comm, *run.ema());

        DataParallelTraining<T> strategy(comm, model, optimizer, train, validation, run, parallel);
        return fit(model, optimizer, train, run, strategy, callbacks, std::move(history));
    });
}

}  // namespace detail

/// fit() across the ranks of `comm` (see the top of this file): the same arguments, given
/// alike on every rank (checked first: a mismatch is a CollectiveError on every rank);
/// `options.batch_size` is the global batch. With one rank it gives fit()'s weights bit for
/// bit. Collective. Returns the history, the same on every rank.
template <class T>
History fit_data_parallel(const Communicator& comm, Model<T>& model, Optimizer<T>& optimizer, const Dataset& train,
                          const Dataset* validation, const FitOptions& options,
                          const std::vector<Callback<T>*>& callbacks = {}, History history = {},
                          const DataParallelOptions& parallel = {}) {
    return detail::fit_data_parallel_run(comm, model, optimizer, train, validation, options, callbacks,
                                         std::move(history), nullptr, parallel);
}

/// fit_data_parallel() resuming from `resume`, what load_checkpoint() returned on each rank (as
/// resume_fit(): the recipe is checked, the weight average restored, then rank 0's
/// state broadcast). Collective.
template <class T>
History resume_fit_data_parallel(const Communicator& comm, Model<T>& model, Optimizer<T>& optimizer,
                                 const Dataset& train, const Dataset* validation, const FitOptions& options,
                                 const TrainingState& resume, const std::vector<Callback<T>*>& callbacks = {},
                                 const DataParallelOptions& parallel = {}) {
    return detail::fit_data_parallel_run(comm, model, optimizer, train, validation, options, callbacks, resume.history,
                                         &resume, parallel);
}

}  // namespace cnnlite::distributed
