// Activations: relu; the element-wise leaky_relu, elu, gelu (exact or tanh approximation), silu,
// sigmoid, tanh and softplus; and row-wise softmax / log-softmax over the last axis.
#pragma once

#include <algorithm>
#include <cmath>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/activation.hpp"
#include "cnnlite/kernels/softmax.hpp"

namespace cnnlite {

/// max(x, 0) element-wise; the gradient at 0 is taken as 0.
template <class T>
Variable<T> relu(const Variable<T>& x) {
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    kernels::relu_forward(x.value().data(), y.data(), y.numel());
    const bool record = detail::should_record<T>({&x});
    return detail::make_result<T>(std::move(y), "relu", record, +[](detail::Node<T>& n) {
        Tensor<T>* dx = nullptr;
        const bool fresh = detail::grad_buffer(n, 0, dx);
        kernels::relu_backward(n.value.data(), n.grad.data(), dx->data(), n.value.numel(), !fresh);
    }, {&x});
}

/// Which element-wise activation a node applies, and its parameter.
struct ActivationArgs {
    kernels::Activation kind = kernels::Activation::sigmoid;  ///< the function
    double alpha = 0;  ///< leaky_relu's negative slope, elu's scale (unused by the others)
};

namespace detail {
/// The element-wise activation `args` of x as an op named `op`; backward multiplies by the
/// derivative, computed from x and the saved output.
template <class T>
Variable<T> activation_op(const Variable<T>& x, const ActivationArgs& args, const char* op) {
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    kernels::activation_forward(args.kind, static_cast<T>(args.alpha), x.value().data(), y.data(), y.numel());
    const bool record = should_record<T>({&x});
    Variable<T> out = make_result<T>(std::move(y), op, record, +[](Node<T>& n) {
        const auto a = n.template args<ActivationArgs>();
        Tensor<T>* dx = nullptr;
        const bool fresh = grad_buffer(n, 0, dx);
        kernels::activation_backward(a.kind, static_cast<T>(a.alpha), n.input(0)->value.data(), n.value.data(),
                                     n.grad.data(), dx->data(), n.value.numel(), !fresh);
    }, {&x});
    if (record) out.node()->set_args(args);
    return out;
}
}  // namespace detail

/// x > 0 ? x : alpha * x element-wise (Keras' LeakyReLU defaults to alpha = 0.3, PyTorch's to 0.01).
template <class T>
Variable<T> leaky_relu(const Variable<T>& x, double alpha) {
    check(std::isfinite(alpha), "leaky_relu: alpha ", alpha, " must be finite");
    return detail::activation_op(x, ActivationArgs{kernels::Activation::leaky_relu, alpha}, "leaky_relu");
}

/// x > 0 ? x : alpha * (exp(x) - 1) element-wise.
template <class T>
Variable<T> elu(const Variable<T>& x, double alpha = 1.0) {
    check(std::isfinite(alpha), "elu: alpha ", alpha, " must be finite");
    return detail::activation_op(x, ActivationArgs{kernels::Activation::elu, alpha}, "elu");
}

/// x * Phi(x) element-wise (Phi: the standard normal CDF); with `approximate`, the tanh form
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (PyTorch's approximate='tanh').
template <class T>
Variable<T> gelu(const Variable<T>& x, bool approximate = false) {
    return approximate ? detail::activation_op(x, ActivationArgs{kernels::Activation::gelu_tanh, 0}, "gelu_tanh")
                       : detail::activation_op(x, ActivationArgs{kernels::Activation::gelu, 0}, "gelu");
}

/// x * sigmoid(x) element-wise (swish).
template <class T>
Variable<T> silu(const Variable<T>& x) {
    return detail::activation_op(x, ActivationArgs{kernels::Activation::silu, 0}, "silu");
}

/// 1 / (1 + exp(-x)) element-wise, without overflow for large |x|.
template <class T>
Variable<T> sigmoid(const Variable<T>& x) {
    return detail::activation_op(x, ActivationArgs{kernels::Activation::sigmoid, 0}, "sigmoid");
}

/// tanh(x) element-wise.
template <class T>
Variable<T> tanh(const Variable<T>& x) {
    return detail::activation_op(x, ActivationArgs{kernels::Activation::tanh, 0}, "tanh");
}

/// log(1 + exp(x)) element-wise, computed as max(x, 0) + log1p(exp(-|x|)) so that it neither
/// overflows for large x nor loses small values for very negative x.
template <class T>
Variable<T> softplus(const Variable<T>& x) {
    return detail::activation_op(x, ActivationArgs{kernels::Activation::softplus, 0}, "softplus");
}

/// Softmax over the last axis of x viewed as [rows, classes].
template <class T>
Variable<T> softmax(const Variable<T>& x) {
    const std::int64_t classes = x.shape()[-1];
    const std::int64_t rows = classes ? x.value().numel() / classes : 0;
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    kernels::softmax_rows(x.value().data(), y.data(), rows, classes);
    const bool record = detail::should_record<T>({&x});
    return detail::make_result<T>(std::move(y), "softmax", record, +[](detail::Node<T>& n) {
        // dx = y * (dy - sum(dy * y)) per row.
        const std::int64_t c = n.value.shape()[-1];
        const std::int64_t r = c ? n.value.numel() / c : 0;
        Tensor<T> g = Tensor<T>::uninitialized(n.value.shape());
        auto y = n.value.matrix(r, c).array();
        auto dy = n.grad.matrix(r, c).array();
        auto dot = (dy * y).rowwise().sum();
        g.matrix(r, c).array() = y * (dy.colwise() - dot);
        detail::accumulate_grad(n, 0, std::move(g));
    }, {&x});
}

/// log(softmax(x)) over the last axis, computed stably as x - logsumexp(x).
template <class T>
Variable<T> log_softmax(const Variable<T>& x) {
    const std::int64_t classes = x.shape()[-1];
    const std::int64_t rows = classes ? x.value().numel() / classes : 0;
    Tensor<T> y = Tensor<T>::uninitialized(x.shape());
    kernels::log_softmax_rows(x.value().data(), y.data(), rows, classes);
    const bool record = detail::should_record<T>({&x});
    return detail::make_result<T>(std::move(y), "log_softmax", record, +[](detail::Node<T>& n) {
        // dx = dy - softmax(x) * sum(dy) per row.
        const std::int64_t c = n.value.shape()[-1];
        const std::int64_t r = c ? n.value.numel() / c : 0;
        Tensor<T> g = Tensor<T>::uninitialized(n.value.shape());
        auto p = n.value.matrix(r, c).array().exp();
        auto dy = n.grad.matrix(r, c).array();
        auto total = dy.rowwise().sum();
        g.matrix(r, c).array() = dy - p * total.replicate(1, c);
        detail::accumulate_grad(n, 0, std::move(g));
    }, {&x});
}

}  // namespace cnnlite
