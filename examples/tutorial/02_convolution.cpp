// Tutorial chapter 2 (docs/tutorial/02-convolution-im2col.md): a convolution as im2col plus
// one matrix product, 'same' padding, and the backward pass (weight gradient = g * col^T,
// input gradient = col2im(W^T g)), checked against the library's op and a gradcheck.
#include <cnnlite/autograd/gradcheck.hpp>
#include <cnnlite/kernels/im2col.hpp>
#include <cnnlite/ops/conv2d.hpp>
#include <cnnlite/ops/reduction.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

#include "tutorial.hpp"

using namespace cnnlite;
using tutorial::print_matrix;
using tutorial::values;

int main() try {
    std::printf("== im2col of a 3x3 image for a 2x2 kernel\n");
    // [snippet:im2col]
    const Tensor<float> image = Tensor<float>::from({1, 1, 3, 3}, {1, 2, 3,
                                                                   4, 5, 6,
                                                                   7, 8, 9});
    const auto g = kernels::WindowGeometry::valid(/*in*/ 3, 3, /*kernel*/ 2, 2);
    const std::int64_t K = 1 * 2 * 2, P = g.out_h() * g.out_w();  // patch size, output pixels
    Tensor<float> col(Shape{K, P});
    kernels::im2col(image.data(), /*channels=*/1, g, col.data());
    std::printf("col (%lld x %lld): row k = kernel tap (i, j), column p = output pixel\n",
                static_cast<long long>(K), static_cast<long long>(P));
    print_matrix(col, K, P);
    // [end]

    std::printf("\n== the convolution is one matrix product\n");
    // [snippet:gemm]
    const Tensor<float> kernel = Tensor<float>::from({1, 1, 2, 2}, {1, 2,
                                                                    3, 4});
    Tensor<float> y(Shape{1, P});
    y.matrix(1, P).noalias() = kernel.matrix(1, K) * col.matrix(K, P);  // [1, K] x [K, P]
    std::printf("W * col = %s\n", values(y, 0).c_str());

    Variable<float> x(image, true), w(kernel, true);
    Variable<float> out = conv2d(x, w, Variable<float>(), Conv2dArgs{});  // no bias, stride 1, no padding
    std::printf("conv2d  = %s, shape %s\n", values(out.value(), 0).c_str(), out.shape().str().c_str());
    // [end]
    tutorial::expect_close("conv2d vs im2col + GEMM", out.value(), y);
    tutorial::expect_close("conv2d by hand", out.value(), Tensor<float>::from({4}, {37, 47, 67, 77}));

    std::printf("\n== 'same' padding with an even kernel\n");
    // [snippet:same]
    const auto same = kernels::WindowGeometry::same(28, 28, 2, 2);
    std::printf("28x28, kernel 2x2, 'same': pad top %lld, bottom %lld, left %lld, right %lld -> %lldx%lld\n",
                static_cast<long long>(same.pad_top), static_cast<long long>(same.pad_bottom),
                static_cast<long long>(same.pad_left), static_cast<long long>(same.pad_right),
                static_cast<long long>(same.out_h()), static_cast<long long>(same.out_w()));
    // [end]
    check(same.pad_bottom == 1 && same.pad_top == 0 && same.out_h() == 28, "'same' must pad bottom/right");

    std::printf("\n== backward: gradients of loss = sum(conv2d(x, w))\n");
    // [snippet:backward]
    sum(out).backward();  // dloss/dy = 1 at every output pixel
    std::printf("dloss/dw = %s   (row sums of col: g * col^T)\n", values(w.grad(), 0).c_str());
    std::printf("dloss/dx (col2im of W^T g: each pixel collects the weights that read it):\n");
    print_matrix(x.grad(), 3, 3);
    // [end]
    tutorial::expect_close("dw", w.grad(), Tensor<float>::from({4}, {12, 16, 24, 28}));
    tutorial::expect_close("dx", x.grad(), Tensor<float>::from({9}, {1, 3, 2, 4, 10, 6, 3, 7, 4}));

    // The same gradient by hand: dcol = W^T g, folded back with col2im_add.
    // [snippet:col2im]
    Tensor<float> ones = Tensor<float>::full(Shape{1, P}, 1.0f);
    Tensor<float> dcol(Shape{K, P});
    dcol.matrix(K, P).noalias() = kernel.matrix(1, K).transpose() * ones.matrix(1, P);  // [K, 1] x [1, P]
    Tensor<float> dx(Shape{1, 1, 3, 3});  // zeros: col2im adds into it
    kernels::col2im_add(dcol.data(), /*channels=*/1, g, dx.data());
    // [end]
    tutorial::expect_close("col2im vs autograd", dx, x.grad());

    std::printf("\n== gradcheck of conv2d with bias, stride 2 and padding (double)\n");
    // [snippet:gradcheck]
    Conv2dArgs args;
    args.stride_h = args.stride_w = 2;
    args.pad_top = args.pad_left = 1;
    std::vector<Tensor<double>> inputs{Tensor<double>(Shape{2, 3, 5, 5}), Tensor<double>(Shape{4, 3, 3, 3}),
                                       Tensor<double>(Shape{4})};
    for (auto& t : inputs)
        for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = std::sin(0.7 * static_cast<double>(i) + t.numel());
    const GradcheckResult r = gradcheck(
        [&](const std::vector<Variable<double>>& v) { return conv2d(v[0], v[1], v[2], args); }, inputs);
    std::printf("gradcheck: %s\n", r.ok ? "ok" : r.message.c_str());
    // [end]
    check(r.ok, "gradcheck failed: ", r.message);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "02_convolution: %s\n", e.what());
    return 1;
}
