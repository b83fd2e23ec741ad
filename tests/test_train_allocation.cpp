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

#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/fit.hpp"

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
    const FashionMnist data = load_fashion_mnist(std::string(CNNLITE_SOURCE_DIR) + "/data/fixtures");
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
