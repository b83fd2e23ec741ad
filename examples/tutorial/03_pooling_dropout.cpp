// Tutorial chapter 3 (docs/tutorial/03-pooling-and-dropout.md): max pooling keeps each
// window's argmax and backward routes the gradient there; the fused Conv2D+ReLU+MaxPool op
// gives the same values; inverted dropout and its reproducible masks.
#include <cnnlite/core/random.hpp>
#include <cnnlite/ops/conv2d.hpp>
#include <cnnlite/ops/conv2d_relu_max_pool2d.hpp>
#include <cnnlite/ops/dropout.hpp>
#include <cnnlite/ops/elementwise.hpp>
#include <cnnlite/ops/max_pool2d.hpp>
#include <cnnlite/ops/reduction.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "tutorial.hpp"

using namespace cnnlite;
using tutorial::print_matrix;
using tutorial::values;

int main() try {
    std::printf("== 2x2 max pooling, stride 2\n");
    // [snippet:pool]
    Variable<float> x(Tensor<float>::from({1, 1, 4, 4}, {1, 5, 2, 0,
                                                         3, 4, 8, 8,
                                                         0, 0, 6, 1,
                                                         9, 2, 7, 3}), true);
    Variable<float> y = max_pool2d(x, /*pool*/ 2, 2, /*stride*/ 2, 2);
    std::printf("y =\n");
    print_matrix(y.value(), 2, 2);
    std::printf("argmax (index of each winner in the 4x4 plane): %s\n",
                values(y.node()->indices.cast<float>(), 0).c_str());
    // [end]
    tutorial::expect_close("pooled", y.value(), Tensor<float>::from({4}, {5, 8, 9, 7}));

    // [snippet:pool_backward]
    Variable<float> weights(Tensor<float>::from({1, 1, 2, 2}, {10, 20, 30, 40}));
    sum(y * weights).backward();  // dloss/dy = [[10, 20], [30, 40]]
    std::printf("dloss/dx =\n");
    print_matrix(x.grad(), 4, 4);
    // [end]
    tutorial::expect_close("pool backward", x.grad(),
                           Tensor<float>::from({16}, {0, 10, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 30, 0, 40, 0}));

    std::printf("\n== fused Conv2D + ReLU + MaxPool2D\n");
    // [snippet:fused]
    Tensor<float> images(Shape{8, 1, 28, 28}), kernel(Shape{64, 1, 2, 2}), bias(Shape{64});
    for (std::int64_t i = 0; i < images.numel(); ++i) images[i] = std::sin(0.37f * static_cast<float>(i));
    for (std::int64_t i = 0; i < kernel.numel(); ++i) kernel[i] = std::cos(1.3f * static_cast<float>(i));
    for (std::int64_t i = 0; i < bias.numel(); ++i) bias[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
    Variable<float> xs(images), w(kernel, true), b(bias, true);
    Conv2dArgs same_relu;
    same_relu.pad_bottom = same_relu.pad_right = 1;  // 'same' for a 2x2 kernel
    same_relu.relu = true;
    Variable<float> three_ops = max_pool2d(conv2d(xs, w, b, same_relu), 2, 2, 2, 2);
    Variable<float> fused = conv2d_relu_max_pool2d(xs, w, b, same_relu, 2, 2, 2, 2);
    float largest = 0;
    for (std::int64_t i = 0; i < fused.value().numel(); ++i)
        largest = std::max(largest, std::fabs(fused.value()[i] - three_ops.value()[i]));
    std::printf("output %s, largest difference between the two: %g\n", fused.shape().str().c_str(), largest);
    // [end]
    check(largest == 0, "fused and unfused outputs differ by ", largest);
    // Their gradients agree too (up to the order of float sums).
    sum(three_ops).backward();
    const Tensor<float> dw_three = w.grad().clone();
    w.zero_grad();
    sum(fused).backward();
    tutorial::expect_close("fused weight gradient", w.grad(), dw_three, 1e-3);

    std::printf("\n== inverted dropout, rate 0.5\n");
    // [snippet:dropout]
    Variable<float> ones(Tensor<float>::full(Shape{2, 8}, 1.0f), true);
    const RandomStream stream(/*seed=*/0, Purpose::dropout, /*layer=*/2, /*step=*/0);
    const std::vector<std::int64_t> samples{0, 1};  // the rows' indices in the data set
    Variable<float> dropped = dropout(ones, 0.5, stream, samples.data());
    std::printf("y =\n");
    print_matrix(dropped.value(), 2, 8, 0, 2);
    Variable<float> again = dropout(ones, 0.5, stream, samples.data());
    std::printf("same stream and samples, same mask: %s\n",
                std::equal(again.value().begin(), again.value().end(), dropped.value().begin()) ? "yes" : "no");
    sum(dropped).backward();
    std::printf("dloss/dx = the mask again: %s\n", values(ones.grad(), 0).c_str());
    // [end]
    tutorial::expect_close("dropout backward is the mask", ones.grad(), dropped.value());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "03_pooling_dropout: %s\n", e.what());
    return 1;
}
