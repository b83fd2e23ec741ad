// Batch normalisation over channels (axis 1 of [N, C] or [N, C, H, W]) as differentiable ops:
// training mode normalises with the batch's own statistics and differentiates through them;
// inference mode uses given running statistics and is an affine map per channel. Gamma and
// beta are optional (Keras' scale=False / center=False: pass undefined variables).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/batch_norm.hpp"

namespace cnnlite {

/// Sums `values[0..count)` element-wise over all processes, in place (an allreduce with a sum):
/// synchronised batch normalisation. batch_norm() calls it with its per-channel statistics in
/// forward (so that it normalises with the global batch's) and with the per-channel gradient
/// terms of the input gradient in backward (sums of dy and of dy * xhat), which add up to the
/// global batch's only when every process backpropagates its share of one global loss (as
/// distributed::DataParallelStep does). Every process must make the same calls in the same order.
using ChannelSumReducer = std::function<void(double* values, std::int64_t count)>;

/// Per-channel statistics of a training batch, for a layer to update its running statistics.
struct BatchStats {
    Tensor<double> mean;      ///< [C] mean of each channel over the batch
    Tensor<double> variance;  ///< [C] biased variance (the squared deviations divided by `count`)
    std::int64_t count = 0;   ///< values per channel (N*H*W, over all processes with a reducer)
};

namespace detail {

/// What the backward of batch_norm needs besides the saved tensors.
struct BatchNormNodeArgs {
    double count = 0;                            ///< values per channel, over all processes
    const ChannelSumReducer* reducer = nullptr;  ///< sums the gradient terms across processes
    bool relu = false;                           ///< a ReLU is fused behind it (batch_norm_relu)
};

/// The checks both batch-normalisation ops share; returns the layout of x.
template <class T>
kernels::BatchNormShape checked_batch_norm_shape(const Variable<T>& x, const Variable<T>& gamma,
                                                 const Variable<T>& beta, double epsilon, const char* op) {
    const Shape& xs = x.shape();
    check(xs.rank() >= 2, op, ": input must be [N, C] or [N, C, H, W], got ", xs);
    kernels::BatchNormShape s;
    s.batch = xs[0];
    s.channels = xs[1];
    s.inner = 1;
    for (std::int64_t d = 2; d < xs.rank(); ++d) s.inner *= xs[d];
    check(!gamma.defined() || gamma.shape() == Shape{s.channels}, op, ": gamma of shape ",
          gamma.defined() ? gamma.shape() : Shape{}, " for ", s.channels, " channels of input ", xs);
    check(!beta.defined() || beta.shape() == Shape{s.channels}, op, ": beta of shape ",
          beta.defined() ? beta.shape() : Shape{}, " for ", s.channels, " channels of input ", xs);
    check(std::isfinite(epsilon) && epsilon >= 0, op, ": epsilon ", epsilon, " must be finite and >= 0");
    return s;
}

inline kernels::BatchNormShape batch_norm_shape(const Shape& xs) {
    kernels::BatchNormShape s;
    s.batch = xs[0];
    s.channels = xs[1];
    for (std::int64_t d = 2; d < xs.rank(); ++d) s.inner *= xs[d];
    return s;
}

/// scale[c] = gamma[c] * invstd[c] (gamma = 1 when undefined).
template <class T>
Tensor<T> batch_norm_scale(const Node<T>* gamma, const Tensor<T>& invstd) {
    Tensor<T> scale = invstd.clone();
    if (gamma) scale.array() *= gamma->value.array();
    return scale;
}

/// Writes dgamma[c] = sum_dy_xhat[c] and dbeta[c] = sum_dy[c] into inputs 1 and 2 when they want them.
template <class T>
void batch_norm_affine_grads(Node<T>& n, const double* sum_dy, const double* sum_dy_xhat, std::int64_t channels) {
    for (int i : {1, 2}) {
        if (!wants_grad(n, i)) continue;
        const double* src = i == 1 ? sum_dy_xhat : sum_dy;
        Tensor<T> g = Tensor<T>::uninitialized(Shape{channels});
        for (std::int64_t c = 0; c < channels; ++c) g[c] = static_cast<T>(src[c]);
        accumulate_grad(n, i, std::move(g));
    }
}


/// batch_norm, and batch_norm_relu when `relu`: one implementation, so that the two give the
/// same bits where the ReLU lets values through.
template <class T>
Variable<T> batch_norm_training(const Variable<T>& x, const Variable<T>& gamma, const Variable<T>& beta,
                                double epsilon, BatchStats* stats, const ChannelSumReducer* reducer, bool relu) {
    const char* op = relu ? "batch_norm_relu" : "batch_norm";
    const kernels::BatchNormShape s = detail::checked_batch_norm_shape(x, gamma, beta, epsilon, op);
    const std::int64_t C = s.channels;
    // [sums (C), count], then the squared deviations reuse the first C entries.
    Tensor<double> work = Tensor<double>::uninitialized(Shape{C + 1});
    double* sums = work.data();
    kernels::batch_norm_channel_sums(s, x.value().data(), sums);
    sums[C] = static_cast<double>(s.per_channel());
    if (reducer) (*reducer)(sums, C + 1);
    const double count = sums[C];
    check(count > 1, op, ": expected more than 1 value per channel when training, got input ", x.shape(),
          reducer ? " (over all processes: " : " (", count, " per channel)");

    Tensor<T> mean = Tensor<T>::uninitialized(Shape{C});
    Tensor<T> invstd = Tensor<T>::uninitialized(Shape{C});
    Tensor<double> mean_d = Tensor<double>::uninitialized(Shape{C});
    for (std::int64_t c = 0; c < C; ++c) mean_d[c] = sums[c] / count;
    kernels::batch_norm_channel_squares(s, x.value().data(), mean_d.data(), sums);
    if (reducer) (*reducer)(sums, C);
    for (std::int64_t c = 0; c < C; ++c) {
        const double var = sums[c] / count;
        mean[c] = static_cast<T>(mean_d[c]);
        invstd[c] = static_cast<T>(1.0 / std::sqrt(var + epsilon));
        sums[c] = var;
    }
    if (stats) {
        stats->mean = mean_d;
        stats->variance = Tensor<double>::uninitialized(Shape{C});
        std::copy(sums, sums + C, stats->variance.data());
        stats->count = static_cast<std::int64_t>(count);
    }

    Tensor<T> scale = detail::batch_norm_scale(gamma.defined() ? gamma.node() : nullptr, invstd);
    Tensor<T> shift = beta.defined() ? beta.value() : Tensor<T>(Shape{C});
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    kernels::batch_norm_apply(s, x.value().data(), mean.data(), scale.data(), shift.data(), y.data(), relu);

    const bool record = detail::should_record<T>({&x, &gamma, &beta});
    Variable<T> out = detail::make_result<T>(std::move(y), op, record, +[](detail::Node<T>& n) {
        const Tensor<T>& xv = n.input(0)->value;
        const kernels::BatchNormShape s = detail::batch_norm_shape(xv.shape());
        const auto a = n.template args<detail::BatchNormNodeArgs>();
        const Tensor<T>& mean = n.saved[0];
        const Tensor<T>& invstd = n.saved[1];
        const std::int64_t C = s.channels;
        // Behind a fused ReLU the gradient passes where its output, this node's value, is > 0.
        const T* relu_y = a.relu ? n.value.data() : nullptr;
        Tensor<double> sums = Tensor<double>::uninitialized(Shape{2 * C});
        kernels::batch_norm_grad_sums(s, xv.data(), n.grad.data(), mean.data(), invstd.data(), sums.data(),
                                      sums.data() + C, relu_y);
        // gamma and beta get this process's sums; the input gradient needs the global ones.
        detail::batch_norm_affine_grads(n, sums.data(), sums.data() + C, C);
        if (!detail::wants_grad(n, 0)) return;
        if (a.reducer) (*a.reducer)(sums.data(), 2 * C);
        Tensor<T> mean_dy = Tensor<T>::uninitialized(Shape{C}), mean_dy_xhat = Tensor<T>::uninitialized(Shape{C});
        for (std::int64_t c = 0; c < C; ++c) {
            mean_dy[c] = static_cast<T>(sums[c] / a.count);
            mean_dy_xhat[c] = static_cast<T>(sums[C + c] / a.count);
        }
        const Tensor<T> scale = detail::batch_norm_scale(n.input(1), invstd);
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::batch_norm_train_dx(s, xv.data(), n.grad.data(), mean.data(), invstd.data(), scale.data(),
                                     mean_dy.data(), mean_dy_xhat.data(), dx->data(), !fresh, relu_y);
    }, {&x, &gamma, &beta});
    if (record) {
        out.node()->saved[0] = std::move(mean);
        out.node()->saved[1] = std::move(invstd);
        out.node()->set_args(detail::BatchNormNodeArgs{count, reducer, relu});
    }
    return out;
}

}  // namespace detail

/// Training-mode batch normalisation: y = (x - mean) / sqrt(var + epsilon) * gamma + beta with
/// each channel's mean and biased variance over the batch (and H, W). `gamma`, `beta` may be
/// undefined (scale 1, shift 0). When `stats` is given it receives those statistics. With a
/// `reducer` the per-channel sums are added across processes before the statistics are formed
/// (synchronised batch norm; it is called twice in forward, with C + 1 values (sums and count)
/// and with C (squared deviations), and once in backward when x needs a gradient, with 2C; it
/// must outlive the backward pass). Needs more than one value per channel (over all processes).
template <class T>
Variable<T> batch_norm(const Variable<T>& x, const Variable<T>& gamma, const Variable<T>& beta, double epsilon,
                       BatchStats* stats = nullptr, const ChannelSumReducer* reducer = nullptr) {
    return detail::batch_norm_training(x, gamma, beta, epsilon, stats, reducer, false);
}

/// relu(batch_norm(x, ...)) as one op: the ReLU is applied in the normalisation's pass, and its
/// mask (the output > 0) is read inside the batch norm's backward passes, so neither the
/// normalised values nor the ReLU's gradient are stored. The same bits as the two ops.
template <class T>
Variable<T> batch_norm_relu(const Variable<T>& x, const Variable<T>& gamma, const Variable<T>& beta, double epsilon,
                            BatchStats* stats = nullptr, const ChannelSumReducer* reducer = nullptr) {
    return detail::batch_norm_training(x, gamma, beta, epsilon, stats, reducer, true);
}

/// Inference-mode batch normalisation with given statistics: y = (x - running_mean) /
/// sqrt(running_var + epsilon) * gamma + beta, per channel. Differentiable in x, gamma and beta
/// (the statistics are constants). `gamma`, `beta` may be undefined.
template <class T>
Variable<T> batch_norm_inference(const Variable<T>& x, const Variable<T>& gamma, const Variable<T>& beta,
                                 const Tensor<T>& running_mean, const Tensor<T>& running_var, double epsilon) {
    const kernels::BatchNormShape s =
        detail::checked_batch_norm_shape(x, gamma, beta, epsilon, "batch_norm_inference");
    const std::int64_t C = s.channels;
    check(running_mean.shape() == Shape{C} && running_var.shape() == Shape{C},
          "batch_norm_inference: running mean ", running_mean.shape(), " and variance ", running_var.shape(),
          " must both be [", C, "] for input ", x.shape());
    Tensor<T> mean = running_mean.clone();  // a copy: the layer may update its statistics in place later
    Tensor<T> invstd = Tensor<T>::uninitialized(Shape{C});
    for (std::int64_t c = 0; c < C; ++c) {
        const double var = static_cast<double>(running_var[c]);
        check(!(var < 0), "batch_norm_inference: running variance ", var, " of channel ", c, " is negative");
        invstd[c] = static_cast<T>(1.0 / std::sqrt(var + epsilon));
    }
    Tensor<T> scale = detail::batch_norm_scale(gamma.defined() ? gamma.node() : nullptr, invstd);
    Tensor<T> shift = beta.defined() ? beta.value() : Tensor<T>(Shape{C});
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    kernels::batch_norm_apply(s, x.value().data(), mean.data(), scale.data(), shift.data(), y.data());

    const bool record = detail::should_record<T>({&x, &gamma, &beta});
    Variable<T> out = detail::make_result<T>(std::move(y), "batch_norm_inference", record, +[](detail::Node<T>& n) {
        const Tensor<T>& xv = n.input(0)->value;
        const kernels::BatchNormShape s = detail::batch_norm_shape(xv.shape());
        const std::int64_t C = s.channels;
        const Tensor<T>& mean = n.saved[0];
        const Tensor<T>& invstd = n.saved[1];
        if (detail::wants_grad(n, 1) || detail::wants_grad(n, 2)) {
            Tensor<double> sums = Tensor<double>::uninitialized(Shape{2 * C});
            kernels::batch_norm_grad_sums(s, xv.data(), n.grad.data(), mean.data(), invstd.data(), sums.data(),
                                          sums.data() + C);
            detail::batch_norm_affine_grads(n, sums.data(), sums.data() + C, C);
        }
        if (!detail::wants_grad(n, 0)) return;
        const Tensor<T> scale = detail::batch_norm_scale(n.input(1), invstd);
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::batch_norm_affine_dx(s, n.grad.data(), scale.data(), dx->data(), !fresh);
    }, {&x, &gamma, &beta});
    if (record) {
        out.node()->saved[0] = std::move(mean);
        out.node()->saved[1] = std::move(invstd);
    }
    return out;
}

}  // namespace cnnlite
