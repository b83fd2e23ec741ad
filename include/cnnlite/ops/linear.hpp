// Fully connected layer as one op: y = [relu](x W^T + b), W in PyTorch's [out, in] layout.
// The three products run through Eigen, which spreads them over the OpenMP threads.
#pragma once

#include "cnnlite/autograd/variable.hpp"

namespace cnnlite {

/// y[N, out] = x[N, in] * weight[out, in]^T + bias[out], then ReLU when `relu`. `bias` may be
/// an undefined Variable.
template <class T>
Variable<T> linear(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias, bool relu = false) {
    const Shape& xs = x.shape();
    const Shape& ws = weight.shape();
    check(xs.rank() == 2, "linear: input must be [N, features], got ", xs);
    check(ws.rank() == 2 && ws[1] == xs[1], "linear: input ", xs, " does not match weight ", ws,
          " ([out, in])");
    check(!bias.defined() || bias.shape() == Shape{ws[0]}, "linear: bias shape ",
          bias.defined() ? bias.shape() : Shape{}, " does not match ", ws[0], " outputs");
    Tensor<T> y = Tensor<T>::uninitialized(Shape{xs[0], ws[0]});
    auto Y = y.matrix();
    Y.noalias() = x.value().matrix() * weight.value().matrix().transpose();
    if (bias.defined()) Y.rowwise() += bias.value().matrix(1, ws[0]).row(0);
    if (relu) y.array() = y.array().max(T(0));

    const bool record = detail::should_record<T>({&x, &weight, &bias});
    Variable<T> out = detail::make_result<T>(std::move(y), relu ? "linear_relu" : "linear", record,
                                             +[](detail::Node<T>& n) {
        const auto& xv = n.inputs[0]->value;
        const auto& wv = n.inputs[1]->value;
        const std::int64_t batch = n.value.shape()[0], outs = n.value.shape()[1];
        Tensor<T> masked;
        if (n.ints[0]) {  // ReLU: no gradient where the output was clamped
            masked = Tensor<T>::uninitialized(n.grad.shape());
            masked.array() = (n.value.array() > T(0)).select(n.grad.array(), T(0));
        } else {
            masked = n.grad;
        }
        const auto G = masked.matrix(batch, outs);
        Tensor<T>* g = nullptr;
        if (detail::wants_grad(n, 0)) {  // dx = G W
            if (detail::grad_buffer(n, 0, g)) g->matrix().noalias() = G * wv.matrix();
            else g->matrix().noalias() += G * wv.matrix();
        }
        if (detail::wants_grad(n, 1)) {  // dW = G^T x
            if (detail::grad_buffer(n, 1, g)) g->matrix().noalias() = G.transpose() * xv.matrix();
            else g->matrix().noalias() += G.transpose() * xv.matrix();
        }
        if (n.inputs[2] && detail::wants_grad(n, 2)) {  // db = column sums of G
            if (detail::grad_buffer(n, 2, g)) g->matrix(1, outs).row(0) = G.colwise().sum();
            else g->matrix(1, outs).row(0) += G.colwise().sum();
        }
    }, {&x, &weight, &bias});
    if (record) out.node()->ints[0] = relu ? 1 : 0;
    return out;
}

}  // namespace cnnlite
