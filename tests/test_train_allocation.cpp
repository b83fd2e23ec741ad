// A steady-state training step allocates nothing: after the first steps have sized the
// buffers, graph nodes come from the node pool and every tensor from the buffer pool. This
// executable counts calls to the global operator new to prove it.
#include <doctest/doctest.h>

// The replacement operator delete below frees what the replacement operator new malloc'ed; GCC
// cannot see that pairing through inlining and warns.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <atomic>
#include <cstdlib>
#include <new>

#include "cnnlite/data/augmentation.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/nn/add.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/global_pooling2d.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/nn/symbolic.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/optim/ema.hpp"
#include "cnnlite/optim/schedule.hpp"
#include "cnnlite/optim/sgd.hpp"
#include "cnnlite/optim/weight_decay.hpp"
#include "cnnlite/train/fit.hpp"
#include "source_dir.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace cnnlite;

TEST_CASE("a steady-state training step allocates nothing") {
    const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    auto model = fashion_mnist_cnn<float>(0);
    Adam<float> adam(model.trainable_variables());
    TrainStep<float> step(model, adam);
    Batcher batcher(data.train, BatchOptions{64, true, true, 0});
    Batch batch;
    auto run = [&](std::int64_t b) {
        batcher.fill(b, batch);
        const ForwardContext ctx{true, 0, b, batch.indices.data()};
        return step(batch, ctx, 1, b + 1);
    };
    for (std::int64_t b = 0; b < 3; ++b) run(b);  // warm-up sizes the pools

    const BufferPoolStats before = buffer_pool_stats();
    allocations = 0;
    counting = true;
    for (std::int64_t b = 3; b < 8; ++b) run(b);
    counting = false;
    const BufferPoolStats after = buffer_pool_stats();
    CHECK(allocations.load() == 0);
    CHECK(after.misses == before.misses);
    CHECK(after.hits > before.hits);
}

// The modern recipe on a residual graph: Conv2D without bias, BatchNormalization (PyTorch's
// convention), ReLU, a residual Add with a 1x1 strided shortcut, GlobalAveragePooling2D, SGD
// with Nesterov momentum and weight decay off the biases and BatchNorm parameters, a per-step
// warm-up into cosine schedule, label smoothing, clipping by global norm, a weight average and
// augmented batches (shifts, flips, random erasing).
TEST_CASE("a steady-state training step of a residual network with the modern recipe allocates nothing") {
    const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    auto conv_bn = [](const Symbolic<float>& x, std::int64_t filters, std::int64_t kernel, std::int64_t stride) {
        Conv2dOptions conv;
        conv.filters = filters;
        conv.kernel_size = {kernel, kernel};
        conv.strides = {stride, stride};
        conv.padding = Padding::same();
        conv.use_bias = false;
        return BatchNormalization<float>(BatchNormConvention::torch)(Conv2D<float>(conv)(x));
    };
    auto x = Input<float>({1, 28, 28});
    const Symbolic<float> stem = ReLU<float>()(conv_bn(x, 8, 3, 1));
    const Symbolic<float> shortcut = conv_bn(stem, 16, 1, 2);
    Symbolic<float> h = ReLU<float>()(conv_bn(stem, 16, 3, 2));
    h = ReLU<float>()(Add<float>()({conv_bn(h, 16, 3, 1), shortcut}));
    h = GlobalAveragePooling2D<float>()(h);
    Model<float> model(x, Dense<float>(10).activation("softmax")(h), 0, InitScheme::torch);

    SGDOptions sgd_options;
    sgd_options.learning_rate = 0.1;
    sgd_options.momentum = 0.9;
    sgd_options.nesterov = true;
    sgd_options.weight_decay = 5e-4;
    sgd_options.no_decay = no_decay_indices(model.trainable_names());
    SGD<float> sgd(model.trainable_variables(), sgd_options);
    const LearningRateSchedule schedule = LearningRateSchedule::linear_warmup(
        2, LearningRateSchedule::cosine(20, 0, ScheduleUnit::step), 0.1);
    ExponentialMovingAverage<float> ema(model.trainable_variables());
    StepRecipe<float> recipe;
    recipe.label_smoothing = 0.1;
    recipe.clip_grad_norm = 5.0;
    recipe.schedule = &schedule;
    recipe.ema = &ema;
    TrainStep<float> step(model, sgd, NonFinitePolicy::error, recipe);

    Batcher batcher(data.train, BatchOptions{32, true, true, 0});
    batcher.set_augmentation(Augmentation().translate(2).flip_horizontal().random_erasing(0.5));
    Batch batch;
    auto run = [&](std::int64_t b) {
        batcher.fill(b, batch);
        const ForwardContext ctx{true, 0, b, batch.indices.data()};
        return step(batch, ctx, 1, b + 1);
    };
    for (std::int64_t b = 0; b < 3; ++b) REQUIRE(run(b).applied);  // warm-up sizes the pools

    const BufferPoolStats before = buffer_pool_stats();
    allocations = 0;
    counting = true;
    bool applied = true;
    for (std::int64_t b = 3; b < 8; ++b) applied = run(b).applied && applied;
    counting = false;
    const BufferPoolStats after = buffer_pool_stats();
    CHECK(applied);
    CHECK(allocations.load() == 0);
    CHECK(after.misses == before.misses);
    CHECK(after.hits > before.hits);
}
