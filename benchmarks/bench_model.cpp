// The paper's network end to end (nn/paper_model.hpp): one training step (TrainStep: forward,
// fused loss, backward, Adam) and inference (Sequential::predict), in images per second, at 1
// and 2 threads and for batch sizes 16..512 (inference up to 1,000). The training step is also
// cut into phases (forward with graph recording; + backward; + Adam) so that each phase's share
// is visible without a profiler. A summary at the end gives the headline figures and the
// 2-thread speed-up.
//
// Data: the real Fashion-MNIST training images when found (CNNLITE_DATA, ./data/fashion-mnist,
// /usr/share/datasets/fashion-mnist), else the repository's fixture subset.
//
//   bench_model                                   # everything (~1 minute)
//   bench_model --benchmark_filter='batch:64/'    # batch 64 only
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/core/denormals.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/batching.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/ops/softmax_cross_entropy.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/fit.hpp"
#include "../tests/source_dir.hpp"

namespace {

using Index = std::int64_t;

const cnnlite::Dataset& training_images() {
    static const cnnlite::Dataset data = [] {
        try {
            return cnnlite::load_fashion_mnist().train;
        } catch (const cnnlite::Error&) {
            return cnnlite::load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures").train;
        }
    }();
    return data;
}

void images_per_second(benchmark::State& state, Index images_per_iteration) {
    state.counters["img/s"] = benchmark::Counter(static_cast<double>(images_per_iteration * state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

// A model, its optimiser and a ring of pre-gathered shuffled batches, so that the timed region
// holds the training step alone (gathering a batch of 64 is a 200 KB copy).
struct Trainer {
    cnnlite::FlushDenormals flush;  // as fit() trains
    cnnlite::Sequential<float> model = cnnlite::fashion_mnist_cnn<float>(0);
    cnnlite::Adam<float> adam{model.trainable_variables()};
    cnnlite::TrainStep<float> step{model, adam};
    std::vector<cnnlite::Batch> batches;
    Index next = 0;

    explicit Trainer(Index batch_size) {
        cnnlite::Batcher batcher(training_images(), cnnlite::BatchOptions{batch_size, true, true, 0});
        batcher.start_epoch(0);
        batches.resize(static_cast<std::size_t>(std::min<Index>(8, batcher.num_batches())));
        for (std::size_t b = 0; b < batches.size(); ++b) batcher.fill(static_cast<Index>(b), batches[b]);
    }
    const cnnlite::Batch& batch() { return batches[static_cast<std::size_t>(next % static_cast<Index>(batches.size()))]; }
    cnnlite::ForwardContext context() { return cnnlite::ForwardContext{true, 0, next, batch().indices.data()}; }
    void train_once() {
        const cnnlite::ForwardContext ctx = context();
        step(batch(), ctx, 1, next + 1);
        ++next;
    }
};

void BM_train_step(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    Trainer t(state.range(1));
    for (int i = 0; i < 3; ++i) t.train_once();  // sizes the buffer pools
    for (auto _ : state) t.train_once();
    images_per_second(state, state.range(1));
}

// Phases of the same step: 0 = forward (training mode, graph recorded) + loss; 1 = that +
// zero_grad + backward; the full step (+ Adam) is BM_train_step.
template <int Phase>
void BM_train_phase(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    Trainer t(state.range(1));
    for (int i = 0; i < 3; ++i) t.train_once();
    for (auto _ : state) {
        const cnnlite::Batch& b = t.batch();
        const cnnlite::ForwardContext ctx = t.context();
        cnnlite::Variable<float> logits = t.model.forward_logits(cnnlite::Variable<float>(b.images), ctx);
        cnnlite::Variable<float> loss = cnnlite::softmax_cross_entropy(
            logits, reinterpret_cast<const std::int32_t*>(b.labels.data()), b.size());
        if (Phase >= 1) {
            t.adam.zero_grad();
            loss.backward();
        }
        benchmark::DoNotOptimize(loss.value().data());
        ++t.next;
    }
    images_per_second(state, state.range(1));
}

// predict() over `n` images with its default chunking (256), as a user calls it.
void BM_predict(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    const Index n = state.range(1);
    const cnnlite::Sequential<float> model = cnnlite::fashion_mnist_cnn<float>(0);
    const cnnlite::Tensor<float> x = training_images().images().rows(0, n);
    benchmark::DoNotOptimize(model.predict(x).data());
    for (auto _ : state) {
        cnnlite::Tensor<float> y = model.predict(x);
        benchmark::DoNotOptimize(y.data());
    }
    images_per_second(state, n);
}

// predict() over 1,000 images with other chunk sizes (bounded memory vs per-chunk overhead).
void BM_predict_1000_chunk(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    const cnnlite::Sequential<float> model = cnnlite::fashion_mnist_cnn<float>(0);
    const cnnlite::Tensor<float> x = training_images().images().rows(0, 1000);
    benchmark::DoNotOptimize(model.predict(x, state.range(1)).data());
    for (auto _ : state) {
        cnnlite::Tensor<float> y = model.predict(x, state.range(1));
        benchmark::DoNotOptimize(y.data());
    }
    images_per_second(state, 1000);
}

class SummaryReporter : public benchmark::ConsoleReporter {
public:
    SummaryReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs) {
            if (run.error_occurred) continue;
            const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            if ((run.run_type == Run::RT_Aggregate && !median) || (run.run_type == Run::RT_Iteration && run.repetitions > 1))
                continue;
            auto it = run.counters.find("img/s");
            if (it != run.counters.end()) rates_[run.run_name.function_name + "/" + run.run_name.args] = it->second.value;
        }
        ConsoleReporter::ReportRuns(runs);
    }
    void print_summary() const {
        std::printf("\nSummary (images/s)\n%-36s %12s %12s %9s\n", "", "1 thread", "2 threads", "speed-up");
        auto row = [&](const char* label, const std::string& name, Index batch) {
            const double one = get(name, 1, batch), two = get(name, 2, batch);
            if (one <= 0 && two <= 0) return;
            std::printf("%-36s %12.0f %12.0f %8.2fx\n", label, one, two, one > 0 ? two / one : 0.0);
        };
        row("training step, batch 64", "train_step", 64);
        row("  forward + loss (recorded)", "train_phase/forward", 64);
        row("  forward + loss + backward", "train_phase/forward_backward", 64);
        row("inference, batch 64", "predict", 64);
        row("inference, batch 1,000", "predict", 1000);
        const double f = get("train_phase/forward", 2, 64), fb = get("train_phase/forward_backward", 2, 64),
                     s = get("train_step", 2, 64);
        if (f > 0 && fb > 0 && s > 0) {
            const double ms_f = 64e3 / f, ms_fb = 64e3 / fb, ms_s = 64e3 / s;
            std::printf("batch-64 step at 2 threads: %.2f ms = forward %.2f + backward %.2f + optimiser and the rest %.2f\n",
                        ms_s, ms_f, ms_fb - ms_f, ms_s - ms_fb);
        }
    }

private:
    double get(const std::string& name, int threads, Index batch) const {
        auto it = rates_.find(name + "/threads:" + std::to_string(threads) + "/batch:" + std::to_string(batch));
        return it == rates_.end() ? 0.0 : it->second;
    }
    std::map<std::string, double> rates_;
};

void register_all() {
    auto reg = [](const char* name, void (*fn)(benchmark::State&)) {
        return benchmark::RegisterBenchmark(name, fn)
            ->ArgNames({"threads", "batch"})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    };
    for (Index b : {16, 32, 64, 128, 256, 512}) reg("train_step", BM_train_step)->Args({1, b})->Args({2, b});
    reg("train_phase/forward", BM_train_phase<0>)->Args({1, 64})->Args({2, 64});
    reg("train_phase/forward_backward", BM_train_phase<1>)->Args({1, 64})->Args({2, 64});
    for (Index n : {16, 32, 64, 128, 256, 512, 1000}) reg("predict", BM_predict)->Args({1, n})->Args({2, n});
    auto* chunks = reg("predict_1000_chunk", BM_predict_1000_chunk);
    chunks->ArgNames({"threads", "chunk"});
    for (Index c : {64, 128, 256, 500, 1000}) chunks->Args({2, c});
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    training_images();  // load before timing
    SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_summary();
    benchmark::Shutdown();
    return 0;
}
