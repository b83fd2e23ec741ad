// The fusion pass: pairs of consecutive layers that run as one op, listed in one table. A
// model applies it while it runs its layers, wherever nothing watches the first layer's own
// output (a tap, as the explanation methods use, turns it off), and Sequential::set_fusion
// turns it off entirely. Layers do not know their neighbours: each rule looks at both layers
// of a pair and says whether its fused op applies. A fused op gives the same values and
// gradients as the two layers one after the other (tests/test_nn.cpp, tests/test_ops.cpp).
#pragma once

#include <string>
#include <vector>

#include "cnnlite/autograd/grad_mode.hpp"
#include "cnnlite/kernels/batch_norm.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/relu.hpp"
#include "cnnlite/ops/conv2d_relu_max_pool2d.hpp"
#include "cnnlite/ops/dropout_max_pool2d.hpp"

namespace cnnlite {

/// One entry of the fusion table: a pattern of two layers and the op that runs them as one.
template <class T>
struct FusionRule {
    const char* pattern;  ///< what it fuses, for people: "Conv2D(relu) + MaxPool2D"
    const char* op;       ///< the fused op
    /// The fused output of `first` then `second` on `x`, or an undefined Variable when the
    /// pair does not match (other layer types, or settings the fused op does not cover).
    Variable<T> (*run)(const Layer<T>& first, const Layer<T>& second, const Variable<T>& x, const ForwardContext& ctx);
};

namespace detail {

// Conv2D with a ReLU activation (neither dilated nor grouped), then unpadded max pooling: the
// convolution's output is pooled while it is in the cache and never stored whole
// (kernels/conv_relu_pool.hpp).
template <class T>
Variable<T> fuse_conv_relu_pool(const Layer<T>& first, const Layer<T>& second, const Variable<T>& x,
                                const ForwardContext&) {
    const auto* conv = dynamic_cast<const Conv2D<T>*>(&first);
    const auto* pool = dynamic_cast<const MaxPool2D<T>*>(&second);
    if (conv == nullptr || pool == nullptr || conv->activation() != Activation::relu || pool->padded())
        return Variable<T>();
    const Conv2dArgs args = conv->conv2d_args();
    if (args.dilation_h != 1 || args.dilation_w != 1 || args.groups != 1) return Variable<T>();
    conv->check_input(x);
    return conv2d_relu_max_pool2d(x, conv->weight(), conv->bias(), args, pool->pool_h(), pool->pool_w(),
                                  pool->stride_h(), pool->stride_w());
}

// Dropout in training, then max pooling with non-overlapping windows: the mask is drawn and
// applied inside the pooling windows, and neither the dropout's output nor its mask is stored.
template <class T>
Variable<T> fuse_dropout_pool(const Layer<T>& first, const Layer<T>& second, const Variable<T>& x,
                              const ForwardContext& ctx) {
    const auto* drop = dynamic_cast<const Dropout<T>*>(&first);
    const auto* pool = dynamic_cast<const MaxPool2D<T>*>(&second);
    if (drop == nullptr || pool == nullptr || pool->padded() || !ctx.training || drop->rate() == 0.0 ||
        x.value().rank() != 4 || pool->stride_h() < pool->pool_h() || pool->stride_w() < pool->pool_w())
        return Variable<T>();
    drop->check_input(x);
    return dropout_max_pool2d(x, drop->rate(), drop->random_stream(ctx), drop->sample_ids(ctx, x.shape()[0]),
                              pool->pool_h(), pool->pool_w(), pool->stride_h(), pool->stride_w());
}

/// The weights [filters, ...] and bias [filters] of `conv` followed by `bn` with its running
/// statistics, into `w_out` and `b_out` (kernels::fold_batch_norm); a negative running
/// variance is refused, naming the batch norm. Shared by the fusion rule below and
/// InferenceModel, which folds once.
template <class T>
void fold_into_convolution(const Conv2D<T>& conv, const BatchNormalization<T>& bn, T* w_out, T* b_out) {
    const Tensor<T>& w = conv.weight().value();
    const std::int64_t filters = w.shape()[0];
    const Tensor<T>& var = bn.running_var();
    const std::string& name = static_cast<const Layer<T>&>(bn).name();  // BatchNormalization::name(n) sets it
    for (std::int64_t c = 0; c < filters; ++c)
        check(!(var[c] < T(0)), "BatchNormalization '", name, "': running variance ", var[c], " of channel ", c,
              " is negative");
    const auto data = [](const Variable<T>& v) { return v.defined() ? v.value().data() : nullptr; };
    kernels::fold_batch_norm(filters, w.numel() / filters, w.data(), data(conv.bias()), data(bn.gamma()),
                             data(bn.beta()), bn.running_mean().data(), var.data(), bn.epsilon(), w_out, b_out);
}

// Conv2D without an activation, then BatchNormalization with its running statistics
// (inference, or a frozen layer), while no gradient is recorded: the normalisation is folded
// into the convolution's weights and bias (kernels::fold_batch_norm), so the pass of the
// batch norm over the convolution's output disappears. The folded weights are formed anew at
// every call, so that a layer whose weights or statistics change is never run with stale ones
// (InferenceModel, a snapshot, folds them once).
// Values agree with the two layers to rounding, not bit for bit. Under gradient recording the
// pair runs unfused: the gradients of the weights, gamma and beta need the two ops.
template <class T>
Variable<T> fuse_conv_batch_norm(const Layer<T>& first, const Layer<T>& second, const Variable<T>& x,
                                 const ForwardContext& ctx) {
    const auto* conv = dynamic_cast<const Conv2D<T>*>(&first);
    const auto* bn = dynamic_cast<const BatchNormalization<T>*>(&second);
    if (conv == nullptr || bn == nullptr || conv->activation() != Activation::none || grad_enabled() ||
        (ctx.training && bn->trainable()))
        return Variable<T>();
    conv->check_input(x);
    const Shape& w = conv->weight().shape();
    Tensor<T> folded_w = Tensor<T>::uninitialized(w);
    Tensor<T> folded_b = Tensor<T>::uninitialized(Shape{w[0]});
    fold_into_convolution(*conv, *bn, folded_w.data(), folded_b.data());
    return conv2d(x, Variable<T>(std::move(folded_w)), Variable<T>(std::move(folded_b)), conv->conv2d_args());
}

// BatchNormalization in training (with the batch's statistics), then a ReLU layer: one op
// (batch_norm_relu) that rectifies in the normalisation's pass and reads the ReLU's mask in
// the batch norm's backward passes; the same bits as the two layers.
template <class T>
Variable<T> fuse_batch_norm_relu(const Layer<T>& first, const Layer<T>& second, const Variable<T>& x,
                                 const ForwardContext& ctx) {
    const auto* bn = dynamic_cast<const BatchNormalization<T>*>(&first);
    if (bn == nullptr || dynamic_cast<const ReLU<T>*>(&second) == nullptr) return Variable<T>();
    return bn->forward_relu(x, ctx);  // undefined unless training with the batch's statistics
}

}  // namespace detail

/// The fusion table, tried in order for every pair of consecutive layers.
template <class T>
const std::vector<FusionRule<T>>& fusion_rules() {
    static const std::vector<FusionRule<T>> rules = {
        {"Conv2D(relu, no dilation or groups) + MaxPool2D (unpadded)", "conv2d_relu_max_pool2d",
         detail::fuse_conv_relu_pool<T>},
        {"Dropout (training) + MaxPool2D with non-overlapping unpadded windows", "dropout_max_pool2d",
         detail::fuse_dropout_pool<T>},
        {"Conv2D (no activation) + BatchNormalization (running statistics, no gradient recorded)",
         "conv2d with the batch norm folded into its weights", detail::fuse_conv_batch_norm<T>},
        {"BatchNormalization (training, batch statistics) + ReLU", "batch_norm_relu", detail::fuse_batch_norm_relu<T>},
    };
    return rules;
}

/// The output of `first` then `second` on `x` through the first rule of fusion_rules() that
/// matches them; an undefined Variable when none does.
template <class T>
Variable<T> run_fused(const Layer<T>& first, const Layer<T>& second, const Variable<T>& x, const ForwardContext& ctx) {
    for (const auto& rule : fusion_rules<T>()) {
        Variable<T> y = rule.run(first, second, x, ctx);
        if (y.defined()) return y;
    }
    return Variable<T>();
}

}  // namespace cnnlite
