// Data-parallel training over MPI. Built only with CNNLITE_WITH_MPI; CTest runs this program
// under `mpirun -np 1`, `-np 2` and `-np 3` (loopback, shared memory), and every rank runs
// every test case in the same order, so the collectives inside them line up. Each case holds
// for any number of ranks; the ones about disagreeing ranks need at least two.
//
// The central claim: N ranks sharing a global batch of 64 end with the weights of one process
// training with batch 64, to float tolerance (the gradient of the whole batch is summed in
// another order: per shard, then across ranks), and with one rank bit for bit.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cnnlite/distributed/allreduce.hpp"
#include "cnnlite/distributed/broadcast.hpp"
#include "cnnlite/distributed/channel_sum_allreduce.hpp"
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/distributed/consistency.hpp"
#include "cnnlite/distributed/data_parallel.hpp"
#include "cnnlite/distributed/evaluate.hpp"
#include "cnnlite/distributed/gradient_averager.hpp"
#include "cnnlite/distributed/sharding.hpp"
#include "cnnlite/distributed/threads.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/optim/sgd.hpp"
#include "cnnlite/train/callbacks.hpp"
#include "cnnlite/train/fit.hpp"
#include "running_mean_layer.hpp"

using namespace cnnlite;
using namespace cnnlite::distributed;

namespace {

/// `n` random 28x28 images (uniform in [0, 1]) with random labels; the same on every rank.
Dataset synthetic_data(std::int64_t n, std::uint64_t seed = 11) {
    Tensor<float> images = Tensor<float>::uninitialized(Shape{n, 1, 28, 28});
    const RandomStream stream(seed, Purpose::user, 1);
    for (std::int64_t i = 0; i < images.numel(); ++i) images.data()[i] = stream.uniform_float(static_cast<std::uint64_t>(i));
    std::vector<int> labels(static_cast<std::size_t>(n));
    const RandomStream label_stream(seed, Purpose::user, 2);
    for (std::int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = static_cast<int>(label_stream.below(static_cast<std::uint64_t>(i), 10));
    std::vector<std::string> names;
    for (int c = 0; c < 10; ++c) names.push_back("class " + std::to_string(c));
    return Dataset::from_images(std::move(images), std::move(labels), std::move(names));
}

std::vector<float> flat_weights(const Model<float>& model) {
    std::vector<float> all;
    for (const auto& p : model.parameters())
        all.insert(all.end(), p.variable.value().data(), p.variable.value().data() + p.variable.value().numel());
    return all;
}

/// max |a - b| / (1 + max |b|) over the weights.
double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return diff / (1 + scale);
}

/// A communicator of this rank alone.
MPI_Comm self_communicator() {
    static MPI_Comm self = [] {
        MPI_Comm c = MPI_COMM_NULL;
        check_mpi(MPI_Comm_split(MPI_COMM_WORLD, Communicator().rank(), 0, &c), "MPI_Comm_split");
        return c;
    }();
    return self;
}

FitOptions quiet_options(std::int64_t epochs = 1) {
    FitOptions o;
    o.batch_size = 64;
    o.epochs = epochs;
    o.seed = 5;
    o.verbosity = Verbosity::silent;
    return o;
}

using cnnlite::testing::RunningMean;

Sequential<float> small_model_with_buffer(std::uint64_t seed) {
    Sequential<float> model(Shape{1, 28, 28}, seed);
    model.add(Flatten<float>());
    model.add(std::unique_ptr<Layer<float>>(std::make_unique<RunningMean>()));
    model.add(Dense<float>(16).activation("relu"));
    model.add(Dropout<float>(0.25));
    model.add(Dense<float>(10).activation("softmax"));
    return model;
}

/// conv -> BN -> relu -> pool -> conv -> BN (PyTorch's convention) -> relu -> dense -> BN on
/// features -> relu -> dense: batch normalisation of images and of features, in both conventions.
/// The layers before batch normalisation have no bias: its gradient is zero but for rounding,
/// which Adam would turn into steps of the learning rate's size in random directions.
template <class T>
Sequential<T> batch_norm_model(std::uint64_t seed) {
    Sequential<T> model(Shape{1, 28, 28}, seed);
    model.add(Conv2D<T>(4, 5).strides(2, 2).use_bias(false));
    model.add(BatchNormalization<T>());
    model.add(ReLU<T>());
    model.add(MaxPool2D<T>(2));
    model.add(Conv2D<T>(6, 3).use_bias(false));
    model.add(BatchNormalization<T>(BatchNormConvention::torch));
    model.add(ReLU<T>());
    model.add(Flatten<T>());
    model.add(Dense<T>(16).use_bias(false));
    model.add(BatchNormalization<T>(BatchNormConvention::torch).momentum(0.3));
    model.add(ReLU<T>());
    model.add(Dense<T>(10).activation("softmax"));
    return model;
}

/// The values of every buffer (running statistics), in model order.
template <class T>
std::vector<T> flat_buffers(const Model<T>& model) {
    std::vector<T> all;
    for (const auto& b : model.buffers())
        all.insert(all.end(), b.variable.value().data(), b.variable.value().data() + b.variable.value().numel());
    return all;
}

/// The gradients of the trainable variables, in order (zeros where there is none).
template <class T>
std::vector<double> flat_gradients(const Model<T>& model) {
    std::vector<double> all;
    for (const auto& v : model.trainable_variables())
        for (std::int64_t i = 0; i < v.value().numel(); ++i)
            all.push_back(v.has_grad() ? static_cast<double>(v.grad().data()[i]) : 0.0);
    return all;
}

/// max |a - b| / max |b|.
double max_relative_error(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(a[i] - b[i]));
        scale = std::max(scale, std::abs(b[i]));
    }
    return diff / scale;
}

}  // namespace

TEST_CASE("shard_of cuts a batch into contiguous near-equal blocks in rank order") {
    CHECK(shard_of(64, 0, 2).first == 0);
    CHECK(shard_of(64, 0, 2).count == 32);
    CHECK(shard_of(64, 1, 2).first == 32);
    CHECK(shard_of(64, 1, 2).count == 32);
    // 5 among 3: 2, 2, 1
    CHECK(shard_of(5, 0, 3).count == 2);
    CHECK(shard_of(5, 1, 3).first == 2);
    CHECK(shard_of(5, 1, 3).count == 2);
    CHECK(shard_of(5, 2, 3).first == 4);
    CHECK(shard_of(5, 2, 3).count == 1);
    // fewer samples than ranks: some shards are empty
    CHECK(shard_of(1, 1, 2).count == 0);
    CHECK(shard_of(1, 0, 2).count == 1);
    CHECK_THROWS_AS(shard_of(4, 2, 2), Error);
    CHECK_THROWS_AS(shard_of(-1, 0, 1), Error);
}

TEST_CASE("allreduce sums exactly: hand-computed integers, every size, both algorithms") {
    const Communicator comm;
    const int p = comm.size(), r = comm.rank();
    for (const ReduceAlgorithm algorithm : {ReduceAlgorithm::ring, ReduceAlgorithm::mpi}) {
        for (const std::int64_t n : {0, 1, 2, 3, 7, 1000}) {
            CAPTURE(n);
            CAPTURE(to_string(algorithm));
            std::vector<float> f(static_cast<std::size_t>(n));
            std::vector<std::int64_t> k(static_cast<std::size_t>(n));
            for (std::int64_t i = 0; i < n; ++i) {
                f[static_cast<std::size_t>(i)] = static_cast<float>((r + 1) * (i + 1));
                k[static_cast<std::size_t>(i)] = (std::int64_t(r) + 1) << 33;  // beyond 32 bits
            }
            allreduce_sum(comm, f, algorithm);
            allreduce_sum(comm, k, algorithm);
            bool exact = true;
            for (std::int64_t i = 0; i < n; ++i) {
                exact = exact && f[static_cast<std::size_t>(i)] == static_cast<float>((i + 1) * p * (p + 1) / 2);
                exact = exact && k[static_cast<std::size_t>(i)] == (std::int64_t(p) * (p + 1) / 2) << 33;
            }
            CHECK(exact);
        }
    }
}

TEST_CASE("the ring adds in its documented order and gives every rank the same bits") {
    const Communicator comm;
    const int p = comm.size(), r = comm.rank();
    // Values whose float sum depends on the order of the additions.
    const std::int64_t n = 10 * p + 3;
    auto value = [](int rank, std::int64_t i) {
        const double magnitude[] = {1e8, 1.0, -1e8, 3.5, 1e-3, 7e7};
        return static_cast<float>(magnitude[(rank + i) % 6] * (1 + 0.1 * static_cast<double>(i % 7)));
    };
    std::vector<float> data(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) data[static_cast<std::size_t>(i)] = value(r, i);
    allreduce_sum(comm, data, ReduceAlgorithm::ring);

    // Chunk c is added up as ((x_c + x_c+1) + x_c+2) + ... around the ring (ranks mod p).
    bool as_documented = true;
    for (int c = 0; c < p; ++c) {
        const Shard chunk = shard_of(n, c, p);
        for (std::int64_t i = chunk.first; i < chunk.first + chunk.count; ++i) {
            float sum = value(c, i);
            for (int step = 1; step < p; ++step) sum = sum + value((c + step) % p, i);
            as_documented = as_documented && sum == data[static_cast<std::size_t>(i)];
        }
    }
    CHECK(as_documented);
    std::vector<float> root = data;
    check_mpi(MPI_Bcast(root.data(), static_cast<int>(n), MPI_FLOAT, 0, comm.handle()), "MPI_Bcast");
    CHECK(std::equal(root.begin(), root.end(), data.begin()));
}

TEST_CASE("GradientAverager weights each rank's gradient by its share and buckets in backward order") {
    const Communicator comm;
    const int p = comm.size(), r = comm.rank();
    std::vector<Variable<float>> params = {Variable<float>(Tensor<float>::zeros(Shape{3}), true),
                                           Variable<float>(Tensor<float>::zeros(Shape{2, 2}), true),
                                           Variable<float>(Tensor<float>::zeros(Shape{5}), true)};
    // 4 floats per bucket: [param 2 (5 elements, alone: too big)], [param 1], [param 0]
    GradientAverager<float> averager(comm, params, GradientOptions{16, ReduceAlgorithm::ring});
    REQUIRE(averager.num_buckets() == 3);
    CHECK(averager.bucket_elements(0) == 5);
    CHECK(averager.bucket_elements(1) == 4);
    CHECK(averager.bucket_elements(2) == 3);

    // Rank r has gradient r+1 everywhere and weight 1/2; param 1 has a gradient on rank 0
    // only (the others count as zero).
    for (std::size_t k = 0; k < params.size(); ++k) {
        if (k == 1 && r != 0) continue;
        params[k].grad() = Tensor<float>::full(params[k].value().shape(), static_cast<float>(r + 1));
    }
    std::vector<double> scalars = {static_cast<double>(r), 1.0};
    averager.average(0.5, scalars);
    CHECK(scalars[0] == doctest::Approx(p * (p - 1) / 2.0));
    CHECK(scalars[1] == p);
    for (std::size_t k = 0; k < params.size(); ++k) {
        REQUIRE(params[k].has_grad());
        const float expected = k == 1 ? 0.5f : 0.5f * static_cast<float>(p * (p + 1) / 2);
        for (std::int64_t i = 0; i < params[k].grad().numel(); ++i) CHECK(params[k].grad().data()[i] == expected);
    }
    CHECK_THROWS_AS(GradientAverager<float>(comm, params, GradientOptions{2, ReduceAlgorithm::ring}), Error);
}

TEST_CASE("broadcast_parameters gives every rank rank 0's weights") {
    const Communicator comm;
    Sequential<float> model = fashion_mnist_cnn<float>(100 + static_cast<std::uint64_t>(comm.rank()));
    broadcast_parameters(comm, model);
    CHECK(parameter_hash(model) == parameter_hash(fashion_mnist_cnn<float>(100)));
    check_replicas(comm, model, "after the broadcast");  // throws if not
    if (comm.size() > 1) {
        Sequential<float> other = fashion_mnist_cnn<float>(static_cast<std::uint64_t>(comm.rank()));
        CHECK_THROWS_WITH_AS(check_replicas(comm, other, "in this test"),
                             doctest::Contains("differ from rank 0's in this test"), CollectiveError);
    }
}

TEST_CASE("broadcast_optimizer_state gives every rank rank 0's Adam moments and step counts") {
    const Communicator comm;
    Sequential<float> model = fashion_mnist_cnn<float>(1);
    Adam<float> adam(model.trainable_variables());
    if (comm.is_root()) {  // one step on rank 0 only: moments and counts differ from the others
        for (auto& v : model.trainable_variables()) v.grad() = Tensor<float>::full(v.value().shape(), 0.25f);
        adam.step();
    }
    broadcast_optimizer_state(comm, adam);
    CHECK(adam.steps() == 1);
    const auto state = adam.state();
    bool moments = true;
    for (const auto& [name, tensor] : state)
        if (name.rfind("adam.m.", 0) == 0) moments = moments && tensor.data()[0] == doctest::Approx(0.025);
    CHECK(moments);
}

TEST_CASE("mismatched ranks: every rank gets the same clear error, naming setting and values") {
    const Communicator comm;
    const Dataset data = synthetic_data(128);
    Fingerprint same;
    same.add("seed", 3).add_hash("data", data_hash(data));
    check_consistency(comm, same);  // agrees: no error
    if (comm.size() < 2) return;

    const bool odd = comm.rank() == 1;
    Sequential<float> model = fashion_mnist_cnn<float>(0);
    SGD<float> sgd(model.trainable_variables());
    FitOptions options = quiet_options();
    options.seed = odd ? 7 : 5;
    CHECK_THROWS_WITH_AS(fit_data_parallel(comm, model, sgd, data, nullptr, options),
                         doctest::Contains("disagree on seed (rank 0 has 5, rank 1 has 7)"), CollectiveError);

    // Other data on rank 1 (one label changed): the data hash differs.
    Dataset changed = data;
    if (odd) {
        std::vector<int> labels = data.labels();
        labels[17] = (labels[17] + 1) % 10;
        changed = Dataset::from_images(data.images(), labels, data.class_names());
    }
    CHECK_THROWS_WITH_AS(fit_data_parallel(comm, model, sgd, changed, nullptr, quiet_options()),
                         doctest::Contains("disagree on training data"), CollectiveError);

    // Another architecture on rank 1.
    Sequential<float> small({1, 28, 28}, 0);
    small.add(Flatten<>());
    small.add(Dense<>(10).activation("softmax"));
    Sequential<float>& mine = odd ? small : model;
    SGD<float> sgd_mine(mine.trainable_variables());
    CHECK_THROWS_WITH_AS(fit_data_parallel(comm, mine, sgd_mine, data, nullptr, quiet_options()),
                         doctest::Contains("disagree on architecture"), CollectiveError);
    CHECK_THROWS_WITH_AS(fit_data_parallel(comm, mine, sgd_mine, data, nullptr, quiet_options()),
                         doctest::Contains("parameter count (rank 0 has 805962, rank 1 has 7850)"), CollectiveError);
}

TEST_CASE("bad arguments given alike fail alike on every rank") {
    const Communicator comm;
    const Dataset data = synthetic_data(40);
    Sequential<float> model = fashion_mnist_cnn<float>(0);
    SGD<float> sgd(model.trainable_variables());
    CHECK_THROWS_WITH_AS(fit_data_parallel(comm, model, sgd, data, nullptr, quiet_options()),
                         doctest::Contains("batch size 64 exceeds the 40 training samples"), CollectiveError);
}

TEST_CASE("one rank alone gives fit()'s weights and history bit for bit") {
    const Communicator self(self_communicator());
    REQUIRE(self.size() == 1);
    const Dataset data = synthetic_data(200);  // 3 batches of 64 and one of 8
    const Dataset validation = synthetic_data(70, 12);
    Sequential<float> reference = fashion_mnist_cnn<float>(3);
    Adam<float> adam_reference(reference.trainable_variables());
    const History expected = fit(reference, adam_reference, data, &validation, quiet_options(2));

    Sequential<float> model = fashion_mnist_cnn<float>(3);
    Adam<float> adam(model.trainable_variables());
    const History got = fit_data_parallel(self, model, adam, data, &validation, quiet_options(2));
    CHECK(parameter_hash(model) == parameter_hash(reference));
    REQUIRE(got.epochs.size() == 2);
    for (std::size_t e = 0; e < 2; ++e) {
        CHECK(got.epochs[e].loss == expected.epochs[e].loss);
        CHECK(got.epochs[e].accuracy == expected.epochs[e].accuracy);
        CHECK(got.epochs[e].val_loss == expected.epochs[e].val_loss);
        CHECK(got.epochs[e].val_accuracy == expected.epochs[e].val_accuracy);
    }
}

TEST_CASE("N ranks sharing a global batch of 64 end with one process's weights (paper network, dropout)") {
    const Communicator comm;
    const Dataset data = synthetic_data(200);  // 3 steps of 64 and one of 8 (3, 3, 2 on 3 ranks) per epoch
    const Dataset validation = synthetic_data(70, 12);

    for (const bool use_adam : {false, true}) {
        // The single process: plain fit(), batch 64, on this rank alone.
        Sequential<float> reference = fashion_mnist_cnn<float>(3);
        SGD<float> sgd_reference(reference.trainable_variables(), SGDOptions{0.05});
        Adam<float> adam_reference(reference.trainable_variables());
        Optimizer<float>& opt_reference = use_adam ? static_cast<Optimizer<float>&>(adam_reference) : sgd_reference;
        const History expected = fit(reference, opt_reference, data, &validation, quiet_options(2));

        for (const ReduceAlgorithm algorithm : {ReduceAlgorithm::ring, ReduceAlgorithm::mpi}) {
            CAPTURE(use_adam);
            CAPTURE(to_string(algorithm));
            // Every rank starts from other weights: the broadcast makes them rank 0's.
            Sequential<float> model = fashion_mnist_cnn<float>(comm.rank() == 0 ? 3 : 99);
            SGD<float> sgd(model.trainable_variables(), SGDOptions{0.05});
            Adam<float> adam(model.trainable_variables());
            Optimizer<float>& opt = use_adam ? static_cast<Optimizer<float>&>(adam) : sgd;
            DataParallelOptions parallel;
            parallel.gradients.algorithm = algorithm;
            const History got = fit_data_parallel(comm, model, opt, data, &validation, quiet_options(2), {}, {}, parallel);

            // 8 steps. Measured on 2 and 3 ranks: at most 2.6e-8 (SGD) and 5.3e-7 (Adam) relative
            // to the largest weight; other dropout masks move them by 8.2e-3 (next test).
            const double difference = max_relative_difference(flat_weights(model), flat_weights(reference));
            CAPTURE(difference);
            if (comm.is_root())
                std::printf("%d rank(s), %s, %s: weights differ from one process's by %.3g (relative)\n", comm.size(),
                            use_adam ? "Adam" : "SGD", to_string(algorithm), difference);
            CHECK(difference < 1e-5);
            if (comm.size() == 1 && algorithm == ReduceAlgorithm::ring) CHECK(difference == 0);
            CHECK(opt.steps() == 8);
            check_replicas(comm, model, "after training");  // the replicas hold the same bits
            REQUIRE(got.epochs.size() == 2);
            for (std::size_t e = 0; e < 2; ++e) {
                CHECK(got.epochs[e].loss == doctest::Approx(expected.epochs[e].loss).epsilon(1e-5));
                CHECK(got.epochs[e].accuracy == doctest::Approx(expected.epochs[e].accuracy).epsilon(0.01));
                CHECK(got.epochs[e].val_loss == doctest::Approx(expected.epochs[e].val_loss).epsilon(1e-5));
            }
        }
    }
}

TEST_CASE("recipes across ranks: augmentation, smoothing, clipping, per-step schedule and EMA give one process's weights") {
    const Communicator comm;
    const Dataset data = synthetic_data(200);
    const Dataset validation = synthetic_data(70, 12);
    FitOptions o = quiet_options(2);
    o.augmentation = Augmentation().translate(2).flip_horizontal().random_erasing(0.5);
    o.label_smoothing = 0.1;
    o.clip_grad_norm = 0.5;
    o.schedule = LearningRateSchedule::one_cycle(8);
    o.ema_decay = 0.7;

    Sequential<float> reference = small_model_with_buffer(3);
    Adam<float> adam_reference(reference.trainable_variables());
    const History expected = fit(reference, adam_reference, data, &validation, o);

    // Every rank starts from other weights and buffers: the broadcast makes them rank 0's, and
    // the buffers, which each rank updates from its own shard, are rank 0's again after every
    // epoch (the replica check after each epoch would fail otherwise).
    Sequential<float> model = small_model_with_buffer(comm.rank() == 0 ? 3 : 99);
    Adam<float> adam(model.trainable_variables());
    const History got = fit_data_parallel(comm, model, adam, data, &validation, o);
    const double difference = max_relative_difference(flat_weights(model), flat_weights(reference));
    CAPTURE(difference);
    CHECK(difference < 1e-5);
    if (comm.size() == 1) CHECK(parameter_hash(model) == parameter_hash(reference));
    check_replicas(comm, model, "after training");
    REQUIRE(got.epochs.size() == 2);
    for (std::size_t e = 0; e < 2; ++e) {
        CHECK(got.epochs[e].loss == doctest::Approx(expected.epochs[e].loss).epsilon(1e-5));
        CHECK(got.epochs[e].val_loss == doctest::Approx(expected.epochs[e].val_loss).epsilon(1e-5));
    }
    CHECK(adam.learning_rate() == adam_reference.learning_rate());
    CHECK(adam.steps() == 8);

    // A rank with another recipe setting is named by the consistency check.
    if (comm.size() > 1) {
        FitOptions other = o;
        if (comm.rank() == 1) other.label_smoothing = 0.2;
        CHECK_THROWS_WITH_AS(fit_data_parallel(comm, model, adam, data, &validation, other),
                             doctest::Contains("the ranks disagree on label smoothing"), CollectiveError);
    }
}

TEST_CASE("synchronised BatchNormalization: the ranks' gradient is the whole batch's, empty shards included") {
    const Communicator comm;
    const int p = comm.size();
    const Dataset data = synthetic_data(16);
    // 7 samples (3, 2, 2 on 3 ranks) and 2 (1, 1, 0 on 3 ranks: one rank runs the stand-in).
    for (const std::int64_t global : {std::int64_t(7), std::int64_t(2)}) {
        CAPTURE(global);
        std::vector<std::int64_t> positions(static_cast<std::size_t>(global));
        for (std::int64_t i = 0; i < global; ++i) positions[static_cast<std::size_t>(i)] = 3 + 2 * i;
        const ForwardContext ctx{true, 5, 9, nullptr};

        // One process on the whole batch.
        Sequential<double> reference = batch_norm_model<double>(3);
        Batch whole;
        gather_batch(data, positions.data(), global, whole);
        ForwardContext whole_ctx = ctx;
        whole_ctx.sample_ids = whole.indices.data();
        forward_and_loss(reference, whole, whole_ctx).loss.backward();
        const std::vector<double> expected = flat_gradients(reference);

        // This rank's shard through DataParallelStep; the gradients stay after its update.
        Sequential<double> model = batch_norm_model<double>(3);
        SGD<double> sgd(model.trainable_variables(), SGDOptions{0.01});
        DataParallelStep<double> step(comm, model, sgd);
        const Shard shard = shard_of(global, comm.rank(), p);
        Batch mine;
        gather_batch(data, positions.data() + shard.first, shard.count, mine);
        ForwardContext mine_ctx = ctx;
        mine_ctx.sample_ids = mine.indices.data();
        const StepResult r = step(mine, global, mine_ctx, 1, 1);
        CHECK(r.applied);
        CHECK(r.count == global);
        // Three layers: two reductions each in forward, one each in backward.
        CHECK(step.channel_sums().calls() == 9);
        const double error = max_relative_error(flat_gradients(model), expected);
        CAPTURE(error);
        CHECK(error < 1e-12);
        // The running statistics moved by the global batch's mean and (unbiased) variance.
        const std::vector<double> buffers = flat_buffers(model), expected_buffers = flat_buffers(reference);
        REQUIRE(buffers.size() == expected_buffers.size());
        double buffer_error = 0;
        for (std::size_t i = 0; i < buffers.size(); ++i)
            buffer_error = std::max(buffer_error, std::abs(buffers[i] - expected_buffers[i]));
        CHECK(buffer_error < 1e-12);
        // Every rank counted the step, the one that ran the stand-in too.
        for (const auto& c : model.counters()) CHECK(c.value[0] == 1);
        check_replicas(comm, model, "after a synchronised step");

        // The control: batch statistics of each shard alone give another gradient.
        if (p > 1 && global == 7) {
            Sequential<double> local = batch_norm_model<double>(3);
            forward_and_loss(local, mine, mine_ctx)
                .loss.backward(Tensor<double>::full(Shape{}, static_cast<double>(shard.count) / global));
            std::vector<double> summed = flat_gradients(local);
            allreduce_sum(comm, summed);
            CHECK(max_relative_error(summed, expected) > 1e-3);
        }
    }
}

TEST_CASE("synchronised BatchNormalization: N ranks end with one process's weights and running statistics") {
    const Communicator comm;
    // 3 steps of 64 (22, 21, 21 on 3 ranks) and one of 2 (1, 1, 0 on 3 ranks) per epoch.
    const Dataset data = synthetic_data(194);
    const Dataset validation = synthetic_data(70, 12);
    Sequential<float> reference = batch_norm_model<float>(3);
    Adam<float> adam_reference(reference.trainable_variables());
    const History expected = fit(reference, adam_reference, data, &validation, quiet_options(2));

    for (const ReduceAlgorithm algorithm : {ReduceAlgorithm::ring, ReduceAlgorithm::mpi}) {
        CAPTURE(to_string(algorithm));
        Sequential<float> model = batch_norm_model<float>(comm.rank() == 0 ? 3 : 99);
        Adam<float> adam(model.trainable_variables());
        DataParallelOptions parallel;
        parallel.gradients.algorithm = algorithm;
        const History got = fit_data_parallel(comm, model, adam, data, &validation, quiet_options(2), {}, {}, parallel);
        const double weights = max_relative_difference(flat_weights(model), flat_weights(reference));
        const double buffers = max_relative_difference(flat_buffers(model), flat_buffers(reference));
        CAPTURE(weights);
        CAPTURE(buffers);
        if (comm.is_root())
            std::printf("%d rank(s), batch norm, %s: weights differ from one process's by %.3g, running statistics "
                        "by %.3g (relative)\n", comm.size(), to_string(algorithm), weights, buffers);
        CHECK(weights < 1e-5);
        CHECK(buffers < 1e-5);
        if (comm.size() == 1 && algorithm == ReduceAlgorithm::ring) CHECK(parameter_hash(model) == parameter_hash(reference));
        CHECK(adam.steps() == 8);
        for (const auto& c : model.counters()) CHECK(c.value[0] == 8);  // num_batches_tracked
        check_replicas(comm, model, "after training");
        REQUIRE(got.epochs.size() == 2);
        for (std::size_t e = 0; e < 2; ++e) {
            CHECK(got.epochs[e].loss == doctest::Approx(expected.epochs[e].loss).epsilon(1e-5));
            CHECK(got.epochs[e].val_loss == doctest::Approx(expected.epochs[e].val_loss).epsilon(1e-5));
        }
    }
}

TEST_CASE("a wrong shard would be caught: other dropout keys give other weights") {
    // The control for the tolerance above: the same run with the dropout seed changed (as a
    // rank keying masks by its local row instead of the global index would) ends far away.
    const Dataset data = synthetic_data(128);
    Sequential<float> a = fashion_mnist_cnn<float>(3), b = fashion_mnist_cnn<float>(3);
    SGD<float> sa(a.trainable_variables(), SGDOptions{0.05}), sb(b.trainable_variables(), SGDOptions{0.05});
    FitOptions other = quiet_options();
    other.seed = 6;
    FitOptions o = quiet_options();
    o.shuffle = false;
    other.shuffle = false;  // same batches, only the masks differ
    fit(a, sa, data, nullptr, o);
    fit(b, sb, data, nullptr, other);
    const double difference = max_relative_difference(flat_weights(a), flat_weights(b));
    if (Communicator().is_root()) std::printf("other dropout masks: weights differ by %.3g (relative)\n", difference);
    CHECK(difference > 1e-3);
}

TEST_CASE("a non-finite loss on one rank's shard stops or skips the step on every rank") {
    const Communicator comm;
    Dataset data = synthetic_data(128);
    Tensor<float> images = data.images().clone();
    // Poison sample 0 of the data set: in some rank's shard of some step of the epoch.
    std::fill(images.data(), images.data() + 28 * 28, std::numeric_limits<float>::quiet_NaN());
    const Dataset poisoned = Dataset::from_images(images, data.labels(), data.class_names());

    Sequential<float> model = fashion_mnist_cnn<float>(0);
    SGD<float> sgd(model.trainable_variables());
    CHECK_THROWS_WITH_AS(fit_data_parallel(comm, model, sgd, poisoned, nullptr, quiet_options()),
                         doctest::Contains("non-finite loss"), CollectiveError);

    FitOptions skip = quiet_options();
    skip.on_non_finite = NonFinitePolicy::skip_batch;
    Sequential<float> model2 = fashion_mnist_cnn<float>(0);
    SGD<float> sgd2(model2.trainable_variables());
    const History h = fit_data_parallel(comm, model2, sgd2, poisoned, nullptr, skip);
    CHECK(sgd2.steps() == 1);  // 2 batches, the poisoned one skipped on every rank
    CHECK(std::isfinite(h.epochs.at(0).loss));
    check_replicas(comm, model2, "after skipping");
}

TEST_CASE("a callback asking to stop on one rank stops every rank") {
    const Communicator comm;
    const Dataset data = synthetic_data(64);
    Sequential<float> model = fashion_mnist_cnn<float>(0);
    SGD<float> sgd(model.trainable_variables());
    LambdaCallback<float> stop_on_last_rank([&](const Model<float>&, const History&, TrainControl& control) {
        if (comm.rank() == comm.size() - 1) control.stop = true;
    });
    const History h = fit_data_parallel(comm, model, sgd, data, nullptr, quiet_options(5), {&stop_on_last_rank});
    CHECK(h.epochs.size() == 1);
    CHECK(sgd.steps() == 1);
}

TEST_CASE("evaluate_sharded matches evaluate() on the whole set") {
    const Communicator comm;
    const Dataset data = synthetic_data(203);
    const Sequential<float> model = fashion_mnist_cnn<float>(4);
    const Evaluation whole = evaluate(model, data, 50);
    const ShardedEvaluation sharded = evaluate_sharded(comm, model, data, 50);
    CHECK(sharded.loss == doctest::Approx(whole.loss).epsilon(1e-6));
    CHECK(sharded.accuracy == whole.accuracy);
}

TEST_CASE("threads_per_rank divides the node's cores among its ranks") {
    const Communicator comm;
    const int t = threads_per_rank(comm);
    CHECK(t >= 1);
    CHECK(t <= std::max(1, available_cores()));
    CHECK(t <= std::max(1, node_cores() / comm.local_size()));
    CHECK(comm.local_size() == comm.size());  // the tests run on one machine
}

TEST_CASE("MPI errors come back as cnnlite::Error naming the call") {
    const Communicator comm;
    float x = 1;
    // Rank 'size' does not exist: MPI_ERRORS_RETURN turns this into an error code.
    CHECK_THROWS_WITH_AS(check_mpi(MPI_Send(&x, 1, MPI_FLOAT, comm.size(), 0, comm.handle()), "MPI_Send (test)"),
                         doctest::Contains("MPI: MPI_Send (test) failed"), Error);
}

int main(int argc, char** argv) {
    MpiEnvironment environment(&argc, &argv);
    const Communicator world;
    set_num_threads(threads_per_rank(world));
    doctest::Context context(argc, argv);
    if (!world.is_root()) context.setOption("minimal", true);  // rank 0 reports; the others only failures
    int failed = context.run();
    if (context.shouldExit()) return failed;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, world.handle()), "MPI_Allreduce");
    if (world.is_root()) std::printf("test_distributed: %d rank(s), %s\n", world.size(), failed ? "FAILED" : "passed");
    return failed ? 1 : 0;
}
