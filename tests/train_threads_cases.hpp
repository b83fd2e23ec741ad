// Bodies of the tests that training gives the same bits at any thread count, shared by
// test_train_threads.cpp (the build's own instruction set) and test_kernels_avx512.cpp and
// test_kernels_avx2.cpp (the register_gemm convolutions and Eigen's wider kernels): the same
// weights, running statistics and losses after several steps at 1, 2 and 3 threads, for the
// paper's network (fused conv + ReLU + pool, dropout + pool, dense layers, Adam) and for a
// residual network with the modern recipe (BatchNorm, a strided shortcut, SGD with Nesterov
// momentum, clipping, a weight average and augmented batches).
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cnnlite/core/threading.hpp"
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

namespace train_threads_cases {

using namespace cnnlite;

// Every parameter and buffer of `model`, and each step's loss, as raw bits.
struct Trained {
    std::vector<std::uint32_t> state;
    std::vector<double> losses;
};

inline std::vector<std::uint32_t> bits_of(const Model<float>& model) {
    std::vector<std::uint32_t> out;
    for (const auto& named : {model.parameters(), model.buffers()})
        for (const auto& p : named) {
            const Tensor<float>& v = p.variable.value();
            for (std::int64_t i = 0; i < v.numel(); ++i) {
                std::uint32_t b = 0;
                std::memcpy(&b, &v.data()[i], sizeof b);
                out.push_back(b);
            }
        }
    return out;
}

inline const FashionMnist& fixtures() {
    static const FashionMnist data = load_fashion_mnist(test_support::source_dir().string() + "/data/fixtures");
    return data;
}

// The paper's network, Adam, batches of 64 with dropout: four steps at `threads` threads.
inline Trained paper_steps(int threads) {
    set_num_threads(threads);
    auto model = fashion_mnist_cnn<float>(0);
    Adam<float> adam(model.trainable_variables());
    TrainStep<float> step(model, adam);
    Batcher batcher(fixtures().train, BatchOptions{64, true, true, 0});
    Batch batch;
    Trained t;
    for (std::int64_t b = 0; b < 4; ++b) {
        batcher.fill(b, batch);
        const ForwardContext ctx{true, 0, b, batch.indices.data()};
        t.losses.push_back(step(batch, ctx, 1, b + 1).loss());
    }
    t.state = bits_of(model);
    return t;
}

// A small residual network: a stem, a strided block with a 1x1 shortcut, global pooling.
inline Model<float> residual_model() {
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
    const Symbolic<float> stem = ReLU<float>()(conv_bn(x, 16, 3, 1));
    const Symbolic<float> shortcut = conv_bn(stem, 32, 1, 2);
    Symbolic<float> h = ReLU<float>()(conv_bn(stem, 32, 3, 2));
    h = ReLU<float>()(Add<float>()({conv_bn(h, 32, 3, 1), shortcut}));
    h = GlobalAveragePooling2D<float>()(h);
    return Model<float>(x, Dense<float>(10).activation("softmax")(h), 0, InitScheme::torch);
}

// residual_model() with the modern recipe: four steps at `threads` threads.
inline Trained residual_steps(int threads) {
    set_num_threads(threads);
    Model<float> model = residual_model();
    SGDOptions sgd_options;
    sgd_options.learning_rate = 0.1;
    sgd_options.momentum = 0.9;
    sgd_options.nesterov = true;
    sgd_options.weight_decay = 5e-4;
    sgd_options.no_decay = no_decay_indices(model.trainable_names());
    SGD<float> sgd(model.trainable_variables(), sgd_options);
    const LearningRateSchedule schedule =
        LearningRateSchedule::linear_warmup(2, LearningRateSchedule::cosine(20, 0, ScheduleUnit::step), 0.1);
    ExponentialMovingAverage<float> ema(model.trainable_variables());
    StepRecipe<float> recipe;
    recipe.label_smoothing = 0.1;
    recipe.clip_grad_norm = 1.0;  // small enough to clip: the global norm is a sum over all parameters
    recipe.schedule = &schedule;
    recipe.ema = &ema;
    TrainStep<float> step(model, sgd, NonFinitePolicy::error, recipe);

    Batcher batcher(fixtures().train, BatchOptions{48, true, true, 0});
    batcher.set_augmentation(Augmentation().translate(2).flip_horizontal().random_erasing(0.5));
    Batch batch;
    Trained t;
    for (std::int64_t b = 0; b < 4; ++b) {
        batcher.fill(b, batch);
        const ForwardContext ctx{true, 0, b, batch.indices.data()};
        t.losses.push_back(step(batch, ctx, 1, b + 1).loss());
    }
    t.state = bits_of(model);
    return t;
}

inline void check_same_at_any_thread_count(const std::function<Trained(int)>& train) {
    const int before = num_threads();
    const Trained one = train(1);
    for (const int threads : {2, 3}) {
        CAPTURE(threads);
        const Trained other = train(threads);
        CHECK(other.losses == one.losses);
        REQUIRE(other.state.size() == one.state.size());
        std::size_t differ = 0;
        for (std::size_t i = 0; i < one.state.size(); ++i) differ += other.state[i] != one.state[i] ? 1 : 0;
        CHECK(differ == 0);
    }
    set_num_threads(before);
    // The steps did train: the weights moved from their initial values.
    CHECK(one.losses.front() != one.losses.back());
}

inline void check_paper_network() { check_same_at_any_thread_count(paper_steps); }
inline void check_residual_network() { check_same_at_any_thread_count(residual_steps); }

}  // namespace train_threads_cases
