// Data pipeline benchmarks: on-the-fly augmentation of one training batch [64, 1, 28, 28] (the
// whole pipeline and each step alone) at 1 and 2 threads, next to gathering the batch, in
// images per second. The figure to compare is the paper model's training throughput (about
// 13,000 images/s on one thread): augmentation should cost under 5% of it, i.e. run at well
// over 260,000 images/s. Run:
//     bench_data --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/augmentation.hpp"
#include "cnnlite/data/batching.hpp"
#include "cnnlite/data/dataset.hpp"

namespace {

constexpr std::int64_t batch_size = 64;

// Images shaped like Fashion-MNIST's, with values in [0, 1).
cnnlite::Tensor<float> images(std::int64_t n) {
    cnnlite::Tensor<float> t = cnnlite::Tensor<float>::uninitialized(cnnlite::Shape{n, 1, 28, 28});
    const cnnlite::RandomStream stream(1, cnnlite::Purpose::user);
    for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = stream.uniform_float(static_cast<std::uint64_t>(i));
    return t;
}

// Augments the same batch in place again and again, one epoch per iteration, so that every
// iteration draws afresh; the work per image does not depend on what the image holds.
void run_augmentation(benchmark::State& state, const cnnlite::Augmentation& augmentation) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    cnnlite::Tensor<float> batch = images(batch_size);
    std::vector<std::int64_t> indices(batch_size);
    std::iota(indices.begin(), indices.end(), std::int64_t(1000));
    std::uint64_t epoch = 0;
    for (auto _ : state) {
        augmentation.apply(batch, indices, 42, epoch++);
        benchmark::DoNotOptimize(batch.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * batch_size);
    state.counters["threads"] = static_cast<double>(cnnlite::num_threads());
}

void BM_augment_pipeline(benchmark::State& state) {
    run_augmentation(state, cnnlite::Augmentation().translate(2).flip_horizontal().random_erasing(0.5));
}
void BM_augment_translate(benchmark::State& state) { run_augmentation(state, cnnlite::Augmentation().translate(2)); }
void BM_augment_flip(benchmark::State& state) { run_augmentation(state, cnnlite::Augmentation().flip_horizontal()); }
void BM_augment_erasing(benchmark::State& state) {
    run_augmentation(state, cnnlite::Augmentation().random_erasing(0.5));
}

// What fit() already pays per batch: gathering 64 shuffled samples into the batch buffer.
void BM_gather_batch(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    const std::int64_t n = 60000;
    const cnnlite::Dataset data = cnnlite::Dataset::from_images(images(n), std::vector<int>(n, 0), {"only"});
    const std::vector<std::int64_t> order = cnnlite::epoch_permutation(n, 3, 0);
    cnnlite::Batch batch;
    std::int64_t first = 0;
    for (auto _ : state) {
        cnnlite::gather_batch(data, order.data() + first, batch_size, batch);
        first = (first + batch_size) % (n - batch_size);
        benchmark::DoNotOptimize(batch.images.data());
    }
    state.SetItemsProcessed(state.iterations() * batch_size);
    state.counters["threads"] = static_cast<double>(cnnlite::num_threads());
}

}  // namespace

BENCHMARK(BM_augment_pipeline)->Arg(1)->Arg(2);
BENCHMARK(BM_augment_translate)->Arg(1)->Arg(2);
BENCHMARK(BM_augment_flip)->Arg(1)->Arg(2);
BENCHMARK(BM_augment_erasing)->Arg(1)->Arg(2);
BENCHMARK(BM_gather_batch)->Arg(1)->Arg(2);

BENCHMARK_MAIN();
