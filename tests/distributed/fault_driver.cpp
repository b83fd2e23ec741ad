// Failure cases of data-parallel training, one per mode, each run by CTest under
// `mpirun -np 2` and expected to end the whole job, quickly and with a clear message:
//   die       rank 1 exits without a word after epoch 1; rank 0 is then waiting in an
//             allreduce. OpenMPI's mpirun notices the lost process and ends the job.
//   kill      the same with SIGKILL (a crash, the OOM killer).
//   throw     a callback on rank 1 alone fails (e.g. a full disk); fit_data_parallel prints
//             the error with the rank and ends the job with MPI_Abort.
//   mismatch  rank 1 uses another seed; every rank raises the same error, and rank 0 checks
//             that all of them did and prints one summary line.
// Any mode would otherwise hang; the CTest timeout turns a hang into a failure.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/distributed/data_parallel.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/optim/sgd.hpp"
#include "cnnlite/train/callbacks.hpp"

using namespace cnnlite;
using namespace cnnlite::distributed;

namespace {

Dataset small_data(std::int64_t n) {
    Tensor<float> images = Tensor<float>::uninitialized(Shape{n, 1, 8, 8});
    const RandomStream stream(1, Purpose::user, 1);
    for (std::int64_t i = 0; i < images.numel(); ++i) images.data()[i] = stream.uniform_float(static_cast<std::uint64_t>(i));
    std::vector<int> labels(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = static_cast<int>(i % 3);
    return Dataset::from_images(std::move(images), std::move(labels), {"a", "b", "c"});
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode != "die" && mode != "kill" && mode != "throw" && mode != "mismatch") {
        std::fprintf(stderr, "usage: mpirun -np 2 fault_driver die|kill|throw|mismatch\n");
        return 2;
    }
    MpiEnvironment environment(&argc, &argv);
    const Communicator world;
    set_num_threads(1);

    const Dataset data = small_data(256);
    Sequential<float> model({1, 8, 8}, 0);
    model.add(Flatten<>());
    model.add(Dense<>(3).activation("softmax"));
    SGD<float> sgd(model.trainable_variables());
    FitOptions options;
    options.batch_size = 32;
    options.epochs = 1000;  // far more than the failure needs: a hang would show
    options.seed = mode == "mismatch" && world.rank() == 1 ? 7 : 5;
    options.verbosity = Verbosity::silent;

    LambdaCallback<float> failure([&](const Model<float>&, const History& history, TrainControl&) {
        if (world.rank() != 1 || history.epochs.size() != 1) return;
        if (mode == "die") std::_Exit(3);
        if (mode == "kill") std::raise(SIGKILL);
        if (mode == "throw") fail("writing history.csv: no space left on device (simulated on rank 1)");
    });
    try {
        fit_data_parallel(world, model, sgd, data, nullptr, options, {&failure});
    } catch (const CollectiveError& e) {
        std::fprintf(stderr, "fault_driver: rank %d: error: %s\n", world.rank(), e.what());
        int reported = 1;
        check_mpi(MPI_Allreduce(MPI_IN_PLACE, &reported, 1, MPI_INT, MPI_SUM, world.handle()), "MPI_Allreduce");
        if (world.is_root())
            std::fprintf(stderr, "fault_driver: all %d of %d ranks reported: %s\n", reported, world.size(), e.what());
        return 1;
    }
    std::fprintf(stderr, "fault_driver: rank %d: training finished although mode '%s' should have ended it\n",
                 world.rank(), mode.c_str());
    return 0;
}
