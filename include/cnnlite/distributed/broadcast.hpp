// Broadcast from one rank (rank 0 by default) of a model's weights and buffers, an optimiser's
// state and a weight average, so that every replica starts from the same bits whatever each
// rank initialised or loaded.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/distributed/allreduce.hpp"
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/optim/ema.hpp"
#include "cnnlite/optim/optimizer.hpp"

namespace cnnlite::distributed {

namespace detail {

/// Broadcasts tensor data in place; the shapes must already agree (checked by the caller).
template <class T>
void broadcast_data(const Communicator& comm, Tensor<T>& tensor, int root, const std::string& name) {
    check_mpi(MPI_Bcast(tensor.data(), mpi_count(tensor.numel(), "a broadcast"),
                        mpi_datatype<T>(), root, comm.handle()),
              ("MPI_Bcast of '" + name + "'").c_str());
}

/// Checks that every rank has the same shapes, so that the broadcasts line up.
inline void check_same_layout(const Communicator& comm, const std::vector<std::int64_t>& layout, const char* what) {
    const auto n = static_cast<std::int64_t>(layout.size());
    std::int64_t extent[2] = {n, -n};  // max n and -min n in one reduction
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, extent, 2, MPI_INT64_T, MPI_MAX, comm.handle()), "MPI_Allreduce (layout)");
    if (extent[0] != -extent[1])
        throw CollectiveError(cnnlite::message("distributed: cannot broadcast ", what,
                                                      ": the ranks hold different numbers of tensors (from ",
                                                      -extent[1], " to ", extent[0], ")"));
    std::vector<std::int64_t> root_layout = layout;
    check_mpi(MPI_Bcast(root_layout.data(), static_cast<int>(n), MPI_INT64_T, 0, comm.handle()),
              "MPI_Bcast (layout)");
    int differs = root_layout != layout ? 1 : 0;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &differs, 1, MPI_INT, MPI_MAX, comm.handle()), "MPI_Allreduce (layout)");
    if (differs)
        throw CollectiveError(cnnlite::message("distributed: cannot broadcast ", what,
                                                      ": the tensor shapes differ between the ranks"));
}

/// Broadcasts named tensors (an optimiser's or a weight average's state) from `root`; the
/// names and sizes must agree on every rank (checked). Collective.
template <class T>
void broadcast_named(const Communicator& comm, std::vector<std::pair<std::string, Tensor<T>>>& state, int root,
                     const char* what) {
    std::vector<std::int64_t> layout;
    for (const auto& [name, tensor] : state) {
        layout.push_back(static_cast<std::int64_t>(std::hash<std::string>{}(name)));
        layout.push_back(tensor.numel());
    }
    check_same_layout(comm, layout, what);
    for (auto& [name, tensor] : state) broadcast_data(comm, tensor, root, name);
}

/// The variables of a model's state (parameters, frozen ones included, and buffers).
template <class T>
std::vector<Variable<T>> state_variables(const Model<T>& model) {
    std::vector<Variable<T>> out;
    for (const auto& s : model.state()) out.push_back(s.variable);
    return out;
}

/// Broadcasts the model's counters (BatchNormalization's num_batches_tracked) from `root`, after
/// checking that every rank has the same number of the same sizes. Collective.
template <class T>
void broadcast_counters(const Communicator& comm, const Model<T>& model, int root) {
    std::vector<NamedCounter> counters = model.counters();
    std::vector<std::int64_t> layout;
    for (const auto& c : counters) layout.push_back(c.value.numel());
    check_same_layout(comm, layout, "the counters");
    for (auto& c : counters) broadcast_data(comm, c.value, root, c.name);
}

}  // namespace detail

/// Overwrites `params` on every rank with rank `root`'s values. Collective; every rank passes
/// the same list (same count and shapes, checked: a mismatch is a CollectiveError everywhere).
template <class T>
void broadcast_parameters(const Communicator& comm, std::vector<Variable<T>> params, int root = 0) {
    check(root >= 0 && root < comm.size(), "broadcast_parameters: root ", root, " is not a rank of ", comm.size());
    std::vector<std::int64_t> layout;
    for (const auto& p : params) {
        layout.push_back(p.value().rank());
        for (int i = 0; i < p.value().rank(); ++i) layout.push_back(p.value().dim(i));
    }
    detail::check_same_layout(comm, layout, "the parameters");
    for (std::size_t i = 0; i < params.size(); ++i)
        detail::broadcast_data(comm, params[i].value(), root, "parameter " + std::to_string(i));
}

/// Overwrites the model's state on every rank with rank `root`'s: every parameter (frozen
/// layers' too), every buffer (BatchNormalization's running statistics) and every counter
/// (its num_batches_tracked). Collective.
template <class T>
void broadcast_parameters(const Communicator& comm, const Model<T>& model, int root = 0) {
    broadcast_parameters(comm, detail::state_variables(model), root);
    if (!model.counters().empty()) detail::broadcast_counters(comm, model, root);
}

/// Overwrites the model's buffers and counters on every rank with rank `root`'s, as PyTorch's
/// DistributedDataParallel does: a layer that updates a buffer from its own rank's shard drifts
/// apart from its replicas between broadcasts (synchronised batch normalisation does not).
/// Collective; nothing without buffers or counters.
template <class T>
void broadcast_buffers(const Communicator& comm, const Model<T>& model, int root = 0) {
    std::vector<Variable<T>> buffers;
    for (const auto& b : model.buffers()) buffers.push_back(b.variable);
    if (!buffers.empty()) broadcast_parameters(comm, buffers, root);
    if (!model.counters().empty()) detail::broadcast_counters(comm, model, root);
}

/// Gives every rank rank `root`'s optimiser state (step counts and buffers, e.g. Adam's
/// moments), as a resumed run needs. Collective; the optimisers must be built alike.
template <class T>
void broadcast_optimizer_state(const Communicator& comm, Optimizer<T>& optimizer, int root = 0) {
    check(root >= 0 && root < comm.size(), "broadcast_optimizer_state: root ", root, " is not a rank of ", comm.size());
    typename Optimizer<T>::State state = optimizer.state();
    detail::broadcast_named(comm, state, root, "the optimiser state");
    optimizer.load_state(state);
}

/// Gives every rank rank `root`'s weight average (update count and averages), as a resumed
/// run needs. Collective; the averages must be built alike.
template <class T>
void broadcast_ema_state(const Communicator& comm, ExponentialMovingAverage<T>& ema, int root = 0) {
    check(root >= 0 && root < comm.size(), "broadcast_ema_state: root ", root, " is not a rank of ", comm.size());
    typename ExponentialMovingAverage<T>::State state = ema.state();
    detail::broadcast_named(comm, state, root, "the weight average");
    ema.load_state(state);
}

}  // namespace cnnlite::distributed
