// Every differentiable op of cnnlite as a named case, shared by the op tests (forward and
// gradients against PyTorch fixtures, finite-difference gradchecks) and the op benchmarks.
// The names match tests/fixtures/ops/make_op_fixtures.py.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "cnnlite/ops/activation.hpp"
#include "cnnlite/ops/avg_pool2d.hpp"
#include "cnnlite/ops/batch_norm.hpp"
#include "cnnlite/ops/categorical_cross_entropy.hpp"
#include "cnnlite/ops/combine.hpp"
#include "cnnlite/ops/conv2d.hpp"
#include "cnnlite/ops/conv2d_relu_max_pool2d.hpp"
#include "cnnlite/ops/elementwise.hpp"
#include "cnnlite/ops/global_pool2d.hpp"
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

/// A constant tensor of type T from double values (the cases' fixed, non-differentiated arguments).
template <class T>
Tensor<T> constant(const Shape& shape, std::initializer_list<double> values) {
    Tensor<T> t = Tensor<T>::uninitialized(shape);
    std::int64_t i = 0;
    for (double v : values) t[i++] = static_cast<T>(v);
    return t;
}

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
    // The running statistics of the batch_norm_inference cases (as in make_op_fixtures.py).
    const Tensor<T> running_mean = constant<T>(Shape{3}, {0.2, -0.1, 0.4});
    const Tensor<T> running_var = constant<T>(Shape{3}, {0.5, 1.2, 0.8});
    const Variable<T> none;
    auto pool = [](std::int64_t k_h, std::int64_t k_w, std::int64_t s, std::int64_t pt, std::int64_t pb,
                   std::int64_t pl, std::int64_t pr, bool include_pad) {
        Pool2dArgs a;
        a.pool_h = k_h, a.pool_w = k_w, a.stride_h = a.stride_w = s;
        a.pad_top = pt, a.pad_bottom = pb, a.pad_left = pl, a.pad_right = pr;
        a.count_include_pad = include_pad;
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
        {"batch_norm_train_nchw", [](const V& v) { return batch_norm(v[0], v[1], v[2], 1e-3); }},
        {"batch_norm_train_features", [](const V& v) { return batch_norm(v[0], v[1], v[2], 1e-5); }},
        {"batch_norm_train_no_affine", [=](const V& v) { return batch_norm(v[0], none, none, 1e-3); }},
        {"batch_norm_inference_nchw",
         [=](const V& v) { return batch_norm_inference(v[0], v[1], v[2], running_mean, running_var, 1e-3); }},
        {"batch_norm_inference_scale_only",
         [=](const V& v) { return batch_norm_inference(v[0], v[1], none, running_mean, running_var, 1e-3); }},
        {"leaky_relu", [](const V& v) { return leaky_relu(v[0], 0.2); }},
        {"elu", [](const V& v) { return elu(v[0], 1.3); }},
        {"gelu", [](const V& v) { return gelu(v[0]); }},
        {"gelu_tanh", [](const V& v) { return gelu(v[0], true); }},
        {"silu", [](const V& v) { return silu(v[0]); }},
        {"sigmoid", [](const V& v) { return sigmoid(v[0]); }},
        {"tanh", [](const V& v) { return tanh(v[0]); }},
        {"softplus", [](const V& v) { return softplus(v[0]); }},
        {"max_pool2d_3x3_stride2_pad1", [=](const V& v) { return max_pool2d(v[0], pool(3, 3, 2, 1, 1, 1, 1, false)); }},
        {"max_pool2d_same_2x2_stride1", [=](const V& v) { return max_pool2d(v[0], pool(2, 2, 1, 0, 1, 0, 1, false)); }},
        {"avg_pool2d_2x2", [=](const V& v) { return avg_pool2d(v[0], pool(2, 2, 2, 0, 0, 0, 0, false)); }},
        {"avg_pool2d_3x3_stride2_pad1", [=](const V& v) { return avg_pool2d(v[0], pool(3, 3, 2, 1, 1, 1, 1, false)); }},
        {"avg_pool2d_3x3_stride2_pad1_include_pad",
         [=](const V& v) { return avg_pool2d(v[0], pool(3, 3, 2, 1, 1, 1, 1, true)); }},
        {"avg_pool2d_3x2_stride2_asymmetric_pad", [=](const V& v) { return avg_pool2d(v[0], pool(3, 2, 2, 1, 1, 0, 1, false)); }},
        {"global_avg_pool2d", [](const V& v) { return global_avg_pool2d(v[0]); }},
        {"global_max_pool2d", [](const V& v) { return global_max_pool2d(v[0]); }},
        {"add_n", [](const V& v) { return add_n(v); }},
        {"concatenate_channels", [](const V& v) { return concatenate(v, 1); }},
        {"concatenate_last_axis", [](const V& v) { return concatenate(v, -1); }},
        {"concatenate_first_axis", [](const V& v) { return concatenate(v, 0); }},
        {"softmax_cross_entropy_label_smoothing",
         [](const V& v) { return softmax_cross_entropy(v[0], std::vector<std::int32_t>{3, 0, 2, 1, 3}, 0.1); }},
        {"categorical_cross_entropy_label_smoothing",
         [](const V& v) { return categorical_cross_entropy(v[0], std::vector<std::int32_t>{3, 0, 2, 1, 3}, 0.1); }},
        {"conv2d_dilation2_pad2", [=](const V& v) {
             Conv2dArgs a = conv(1, 2, 2, 2, 2, false);
             a.dilation_h = a.dilation_w = 2;
             return conv2d(v[0], v[1], v[2], a);
         }},
        {"conv2d_depthwise_3x3_relu", [=](const V& v) {
             Conv2dArgs a = conv(1, 1, 1, 1, 1, true);
             a.groups = 3;
             return conv2d(v[0], v[1], v[2], a);
         }},
        {"conv2d_groups2_stride2_dilation1x2_nobias", [=](const V& v) {
             Conv2dArgs a = conv(2, 1, 1, 1, 1, false);
             a.dilation_w = 2;
             a.groups = 2;
             return conv2d(v[0], v[1], Variable<T>(), a);
         }},
        {"batch_norm_relu_train_nchw", [](const V& v) { return batch_norm_relu(v[0], v[1], v[2], 1e-3); }},
        // Wide stride-1 convolutions: float reads the padded image in place (kernels/implicit_conv.hpp).
        {"conv2d_same_3x3_wide_relu", [=](const V& v) { return conv2d(v[0], v[1], v[2], conv(1, 1, 1, 1, 1, true)); }},
        {"conv2d_valid_5x5_wide_nobias",
         [=](const V& v) { return conv2d(v[0], v[1], Variable<T>(), conv(1, 0, 0, 0, 0, false)); }},
        // Depthwise (kernels/depthwise_conv.hpp): a channel multiplier of 2, stride 2, dilated width.
        {"conv2d_depthwise_multiplier2_5x5_stride2", [=](const V& v) {
             Conv2dArgs a = conv(2, 2, 2, 4, 4, false);
             a.dilation_w = 2;
             a.groups = 3;
             return conv2d(v[0], v[1], v[2], a);
         }},
    };
}

}  // namespace cnnlite::testing
