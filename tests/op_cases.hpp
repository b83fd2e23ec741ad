// Every differentiable op of cnnlite as a named case, shared by the op tests (forward and
// gradients against PyTorch fixtures, finite-difference gradchecks) and the op benchmarks.
// The names match tests/fixtures/ops/make_op_fixtures.py.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cnnlite/ops/activation.hpp"
#include "cnnlite/ops/conv2d.hpp"
#include "cnnlite/ops/conv2d_relu_max_pool2d.hpp"
#include "cnnlite/ops/elementwise.hpp"
#include "cnnlite/ops/linear.hpp"
#include "cnnlite/ops/matmul.hpp"
#include "cnnlite/ops/max_pool2d.hpp"
#include "cnnlite/ops/reduction.hpp"
#include "cnnlite/ops/reshape.hpp"
#include "cnnlite/ops/softmax_cross_entropy.hpp"

namespace cnnlite::testing {

template <class T>
struct OpCase {
    std::string name;
    std::function<Variable<T>(const std::vector<Variable<T>>&)> run;
};

template <class T>
std::vector<OpCase<T>> op_cases() {
    using V = std::vector<Variable<T>>;
    auto conv = [](std::int64_t sh, std::int64_t pt, std::int64_t pb, std::int64_t pl, std::int64_t pr, bool relu) {
        Conv2dArgs a;
        a.stride_h = a.stride_w = sh;
        a.pad_top = pt, a.pad_bottom = pb, a.pad_left = pl, a.pad_right = pr;
        a.relu = relu;
        return a;
    };
    return {
        {"add", [](const V& v) { return add(v[0], v[1]); }},
        {"sub", [](const V& v) { return sub(v[0], v[1]); }},
        {"mul", [](const V& v) { return mul(v[0], v[1]); }},
        {"scale", [](const V& v) { return scale(v[0], 2.5); }},
        {"sum", [](const V& v) { return sum(v[0]); }},
        {"mean", [](const V& v) { return mean(v[0]); }},
        {"matmul", [](const V& v) { return matmul(v[0], v[1]); }},
        {"relu", [](const V& v) { return relu(v[0]); }},
        {"softmax", [](const V& v) { return softmax(v[0]); }},
        {"log_softmax", [](const V& v) { return log_softmax(v[0]); }},
        {"reshape", [](const V& v) { return reshape(v[0], Shape{6, 4}); }},
        {"flatten", [](const V& v) { return flatten(v[0]); }},
        {"linear", [](const V& v) { return linear(v[0], v[1], v[2]); }},
        {"linear_relu", [](const V& v) { return linear(v[0], v[1], v[2], true); }},
        // 'same' with a 2x2 kernel: the extra row/column of padding at the bottom/right.
        {"conv2d_same_2x2_relu", [=](const V& v) { return conv2d(v[0], v[1], v[2], conv(1, 0, 1, 0, 1, true)); }},
        {"conv2d_valid_3x3", [=](const V& v) { return conv2d(v[0], v[1], v[2], conv(1, 0, 0, 0, 0, false)); }},
        {"conv2d_stride2_pad1_nobias",
         [=](const V& v) { return conv2d(v[0], v[1], Variable<T>(), conv(2, 1, 1, 1, 1, false)); }},
        {"conv2d_same_3x2_stride1", [=](const V& v) { return conv2d(v[0], v[1], v[2], conv(1, 1, 1, 0, 1, false)); }},
        {"max_pool2d_2x2", [](const V& v) { return max_pool2d(v[0], 2, 2, 2, 2); }},
        {"max_pool2d_3x3_stride2", [](const V& v) { return max_pool2d(v[0], 3, 3, 2, 2); }},
        {"max_pool2d_2x2_odd", [](const V& v) { return max_pool2d(v[0], 2, 2, 2, 2); }},
        {"softmax_cross_entropy",
         [](const V& v) { return softmax_cross_entropy(v[0], std::vector<std::int32_t>{3, 0, 2, 1, 3}); }},
        // Fused conv + ReLU + max pool: the small-patch path (sparse backward) and the GEMM path.
        {"conv2d_relu_max_pool2d_same_2x2",
         [=](const V& v) { return conv2d_relu_max_pool2d(v[0], v[1], v[2], conv(1, 0, 1, 0, 1, true), 2, 2, 2, 2); }},
        {"conv2d_relu_max_pool2d_3x3_pool3s2",
         [=](const V& v) { return conv2d_relu_max_pool2d(v[0], v[1], v[2], conv(1, 1, 1, 1, 1, true), 3, 3, 2, 2); }},
    };
}

}  // namespace cnnlite::testing
