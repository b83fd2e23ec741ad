// Grad-CAM throughput on the paper's network: one batched call over many images (chunks of
// 64 to 1,000 images, one forward and one backward pass each) against one-image-at-a-time
// loops — the library call per image, and the textbook loop that the paper's notebook runs
// (a hook on the conv output of an ordinary forward pass, then a full backward pass).
// The counter "images/s" is the figure to compare. Run:
//     bench_explain --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/explain/gradcam.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "../tests/source_dir.hpp"

namespace {

using namespace cnnlite;

// The 1,000 test images of the repository's Fashion-MNIST fixture.
const Tensor<float>& images() {
    static const Tensor<float> x = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures").test.images();
    return x;
}

const Sequential<float>& model() {
    static const Sequential<float> m = fashion_mnist_cnn<float>(0);
    return m;
}

void set_counters(benchmark::State& state, std::int64_t images_per_iteration) {
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(images_per_iteration * state.iterations()),
                                                    benchmark::Counter::kIsRate);
    state.counters["threads"] = static_cast<double>(num_threads());
}

// All 1,000 images in one call, processed in chunks of state.range(0).
void BM_gradcam_batched(benchmark::State& state) {
    explain::CamOptions options;
    options.chunk_size = state.range(0);
    for (auto _ : state) benchmark::DoNotOptimize(explain::grad_cam(model(), images(), options).maps.data());
    set_counters(state, images().dim(0));
}
BENCHMARK(BM_gradcam_batched)->Arg(64)->Arg(256)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The library call once per image, over the first 100 images.
void BM_gradcam_one_image_per_call(benchmark::State& state) {
    const std::int64_t n = 100;
    for (auto _ : state)
        for (std::int64_t i = 0; i < n; ++i)
            benchmark::DoNotOptimize(explain::grad_cam(model(), images().rows(i, 1)).maps.data());
    set_counters(state, n);
}
BENCHMARK(BM_gradcam_one_image_per_call)->Unit(benchmark::kMillisecond)->UseRealTime();

// The textbook loop: per image, an ordinary forward pass with a hook on the conv output, a
// backward pass from the predicted class's probability through the whole network (weight
// gradients included), then the map from the hooked gradient.
void BM_gradcam_textbook_loop(benchmark::State& state) {
    const std::int64_t n = 100;
    const Sequential<float>& m = model();
    const Layer<float>* conv = &m.layer(m.index_of("conv2d"));
    for (auto _ : state) {
        for (std::int64_t i = 0; i < n; ++i) {
            Tensor<float> gradient, activation;
            Variable<float> out = m.forward(Variable<float>(images().rows(i, 1)), {},
                                            [&](const Layer<float>& layer, Variable<float>& h) {
                                                if (&layer != conv) return;
                                                activation = h.value();
                                                h.register_hook([&](Tensor<float>& g) { gradient = g.clone(); });
                                            });
            Tensor<float> seed(out.shape());
            std::int64_t best = 0;
            for (std::int64_t c = 1; c < 10; ++c)
                if (out.value()(0, c) > out.value()(0, best)) best = c;
            seed(0, best) = 1;
            out.backward(seed);
            Tensor<float> cam = explain::weighted_channel_sum(activation, explain::gradcam_weights(gradient));
            cam = explain::postprocess_maps(cam, {}, 28, 28);
            benchmark::DoNotOptimize(cam.data());
        }
        for (auto& p : m.parameters()) p.variable.zero_grad();
    }
    set_counters(state, n);
}
BENCHMARK(BM_gradcam_textbook_loop)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
