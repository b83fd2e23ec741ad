// Data-parallel training over MPI, measured (built with CNNLITE_WITH_MPI=ON only). Its own
// main rather than Google Benchmark's: every rank must run the same number of iterations, or
// the collectives would not line up. benchmarks/bench_distributed.sh runs the configurations
// of benchmarks/README_distributed.md; by hand, e.g.
//     mpirun -np 2 bench_distributed allreduce           # allreduce times, alpha-beta fit
//     mpirun -np 2 bench_distributed train --threads 1   # paper network, global batch 64
//     bench_distributed project --alpha 2e-5 --beta 1e-9 --step 0.05
//
//   allreduce  median time of a sum-allreduce of n floats, over sizes up to the paper
//              network's 805,962 parameters, for both algorithms (ring, mpi); then the least-
//              squares fit of the ring's alpha-beta model T(n) = 2(p-1) alpha + 2(p-1)/p 4n beta
//   train      images/s of data-parallel steps of the paper network with a global batch of 64
//              on synthetic 28x28 images, and the share of each step spent averaging gradients
//   project    the ring model's projection to 8 and 64 machines from alpha, beta and a
//              measured step time (see README_distributed.md)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/distributed/allreduce.hpp"
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/distributed/data_parallel.hpp"
#include "cnnlite/distributed/threads.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"

using namespace cnnlite;
using namespace cnnlite::distributed;

namespace {

constexpr std::int64_t paper_parameters = 805962;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

/// Value of `--name X` in the arguments, or `fallback`.
std::string option(int argc, char** argv, const std::string& name, const std::string& fallback) {
    for (int i = 2; i + 1 < argc; ++i)
        if (argv[i] == name) return argv[i + 1];
    return fallback;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

/// Slowest rank's time of each of `repeats` allreduces of n floats; returns the median.
double time_allreduce(const Communicator& comm, std::int64_t n, ReduceAlgorithm algorithm, int repeats) {
    std::vector<float> data(static_cast<std::size_t>(n), 1.0f), scratch;
    std::vector<double> times;
    for (int k = -3; k < repeats; ++k) {  // 3 warm-up rounds
        comm.barrier();
        const double start = now();
        allreduce_sum(comm, data.data(), n, algorithm, scratch);
        double t = now() - start;
        check_mpi(MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm.handle()), "MPI_Allreduce");
        if (k >= 0) times.push_back(t);
    }
    return median(times);
}

void run_allreduce(const Communicator& comm, int argc, char** argv) {
    const int repeats = std::atoi(option(argc, argv, "--repeats", "30").c_str());
    const int p = comm.size();
    const std::vector<std::int64_t> sizes = {1, 256, 4096, 65536, 262144, paper_parameters, 2 * paper_parameters};
    if (comm.is_root()) std::printf("# allreduce, %d rank(s), median of %d (slowest rank each time)\n", p, repeats);
    if (comm.is_root()) std::printf("%-10s %12s %12s %14s\n", "algorithm", "floats", "seconds", "GB/s (algbw)");
    std::vector<double> xs, ys;  // ring: bytes, seconds
    for (const ReduceAlgorithm algorithm : {ReduceAlgorithm::ring, ReduceAlgorithm::mpi}) {
        for (const std::int64_t n : sizes) {
            const double t = time_allreduce(comm, n, algorithm, n >= 65536 ? repeats : 10 * repeats);
            if (comm.is_root())
                std::printf("%-10s %12lld %12.3e %14.3f\n", to_string(algorithm), static_cast<long long>(n), t,
                            t > 0 ? 4.0 * static_cast<double>(n) / t / 1e9 : 0.0);
            if (algorithm == ReduceAlgorithm::ring) {
                xs.push_back(4.0 * static_cast<double>(n));
                ys.push_back(t);
            }
        }
    }
    if (p < 2 || !comm.is_root()) return;
    // Least squares T = a + b * bytes, then alpha = a / (2(p-1)), beta = b / (2(p-1)/p).
    const double m = static_cast<double>(xs.size());
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) sx += xs[i], sy += ys[i], sxx += xs[i] * xs[i], sxy += xs[i] * ys[i];
    const double b = (m * sxy - sx * sy) / (m * sxx - sx * sx), a = (sy - b * sx) / m;
    const double alpha = a / (2.0 * (p - 1)), beta = b / (2.0 * (p - 1) / p);
    std::printf("# ring alpha-beta fit over %d ranks: alpha %.3e s per message, beta %.3e s per byte (%.2f GB/s)\n", p,
                alpha, beta, beta > 0 ? 1e-9 / beta : 0.0);
}

void run_train(const Communicator& comm, int argc, char** argv) {
    const int threads = std::atoi(option(argc, argv, "--threads", std::to_string(threads_per_rank(comm))).c_str());
    const int steps = std::atoi(option(argc, argv, "--steps", "40").c_str());
    const std::int64_t batch = std::atoll(option(argc, argv, "--batch", "64").c_str());
    const std::string algorithm_name = option(argc, argv, "--algorithm", "ring");
    check(threads >= 1 && steps >= 1 && batch >= comm.size(), "train: bad --threads, --steps or --batch");
    check(algorithm_name == "ring" || algorithm_name == "mpi", "train: --algorithm is ring or mpi");
    set_num_threads(threads);

    // Synthetic images: the timing depends on the shapes only.
    const std::int64_t n = batch * 8;
    Tensor<float> images = Tensor<float>::uninitialized(Shape{n, 1, 28, 28});
    const RandomStream stream(1, Purpose::user, 1);
    for (std::int64_t i = 0; i < images.numel(); ++i) images.data()[i] = stream.uniform_float(static_cast<std::uint64_t>(i));
    std::vector<int> labels(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = static_cast<int>(i % 10);
    const Dataset data =
        Dataset::from_images(images, labels, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});

    Sequential<float> model = fashion_mnist_cnn<float>(0);
    Adam<float> adam(model.trainable_variables());
    GradientOptions gradients;
    gradients.algorithm = algorithm_name == "ring" ? ReduceAlgorithm::ring : ReduceAlgorithm::mpi;
    DataParallelStep<float> step(comm, model, adam, NonFinitePolicy::error, gradients);
    Batcher batcher(data, BatchOptions{batch, true, false, 0});
    Batch shard;
    double reduce_seconds = 0;
    double start = 0;
    for (int s = -3; s < steps; ++s) {  // 3 warm-up steps
        if (s == 0) {
            comm.barrier();
            start = now();
            reduce_seconds = 0;
        }
        const std::int64_t b = (s + 3) % batcher.num_batches();
        const Shard part = shard_of(batch, comm.rank(), comm.size());
        gather_batch(data, batcher.order().data() + b * batch + part.first, part.count, shard);
        const ForwardContext ctx{true, 0, s + 3, shard.indices.data()};
        step(shard, batch, ctx, 1, s + 4);
        reduce_seconds += step.averager().last_seconds();
    }
    comm.barrier();
    const double seconds = now() - start;
    double worst_reduce = reduce_seconds;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &worst_reduce, 1, MPI_DOUBLE, MPI_MAX, comm.handle()), "MPI_Allreduce");
    if (comm.is_root())
        std::printf("train: %d rank(s) x %d thread(s), global batch %lld, %s: %.1f images/s, %.2f ms/step, "
                    "gradient averaging %.2f ms/step (%.1f%%, slowest rank)\n",
                    comm.size(), threads, static_cast<long long>(batch), algorithm_name.c_str(),
                    static_cast<double>(batch) * steps / seconds, 1e3 * seconds / steps, 1e3 * worst_reduce / steps,
                    100.0 * worst_reduce / seconds);
}

/// Ring model: T_comm(p) = 2(p-1) alpha + 2(p-1)/p * bytes * beta.
double ring_seconds(int p, double alpha, double beta, double bytes) {
    return p <= 1 ? 0.0 : 2.0 * (p - 1) * alpha + 2.0 * (p - 1) / p * bytes * beta;
}

void run_project(int argc, char** argv) {
    const double alpha = std::atof(option(argc, argv, "--alpha", "0").c_str());
    const double beta = std::atof(option(argc, argv, "--beta", "0").c_str());
    const double step = std::atof(option(argc, argv, "--step", "0").c_str());
    const double bytes = 4.0 * std::atof(option(argc, argv, "--params", std::to_string(paper_parameters)).c_str());
    check(alpha >= 0 && beta >= 0 && step > 0, "project: give --alpha, --beta (seconds) and --step (seconds per step "
                                               "of batch 64 on one machine)");
    std::printf("# ring allreduce of %.0f bytes; alpha %.3e s, beta %.3e s/B; one machine: %.2f ms per step of 64\n",
                bytes, alpha, beta, 1e3 * step);
    std::printf("%9s %12s | %-37s | %-33s\n", "machines", "allreduce", "strong: global batch 64 (64/p each)",
                "weak: batch 64 per machine");
    std::printf("%9s %12s | %12s %12s %10s | %12s %10s\n", "p", "ms", "step ms", "speed-up", "efficiency",
                "images/s", "efficiency");
    for (const int p : {1, 2, 8, 64}) {
        const double comm = ring_seconds(p, alpha, beta, bytes);
        const double strong = step / p + comm;  // compute splits perfectly (optimistic below ~8 samples)
        const double weak = step + comm;
        std::printf("%9d %12.3f | %12.3f %12.2f %9.0f%% | %12.0f %9.0f%%\n", p, 1e3 * comm, 1e3 * strong, step / strong,
                    100.0 * step / strong / p, 64.0 * p / weak, 100.0 * step / weak);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "all";
    if (mode == "project") {  // arithmetic only: no MPI needed
        try {
            run_project(argc, argv);
            return 0;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_distributed: %s\n", e.what());
            return 1;
        }
    }
    MpiEnvironment environment(&argc, &argv);
    const Communicator world;
    try {
        if (mode == "allreduce" || mode == "all") run_allreduce(world, argc, argv);
        if (mode == "train" || mode == "all") run_train(world, argc, argv);
        if (mode != "allreduce" && mode != "train" && mode != "all") {
            if (world.is_root()) std::fprintf(stderr, "usage: bench_distributed [all|allreduce|train|project] [options]\n");
            return 2;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_distributed: rank %d: %s\n", world.rank(), e.what());
        if (world.size() > 1) world.abort(1);
        return 1;
    }
    return 0;
}
