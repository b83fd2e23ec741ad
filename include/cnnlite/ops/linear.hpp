// Fully connected layer as one op: y = [relu](x W^T + b), W in PyTorch's [out, in] layout.
// The three products run in kernels/dense.hpp, in blocks that threads share.
#pragma once

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/kernels/dense.hpp"

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
    Tensor<T> workspace = Tensor<T>::uninitialized(Shape{kernels::dense_forward_workspace<T>(xs[1], ws[0])});
    kernels::dense_forward(x.value().data(), weight.value().data(), bias.defined() ? bias.value().data() : nullptr,
                           y.data(), xs[0], xs[1], ws[0], relu, workspace.data());

    const bool record = detail::should_record<T>({&x, &weight, &bias});
    Variable<T> out = detail::make_result<T>(std::move(y), relu ? "linear_relu" : "linear", record,
                                             +[](detail::Node<T>& n) {
        const auto& xv = n.input(0)->value;
        const auto& wv = n.input(1)->value;
        const std::int64_t batch = n.value.shape()[0], outs = n.value.shape()[1];
        Tensor<T> masked;
        if (n.template args<bool>()) {  // ReLU: no gradient where the output was clamped
            masked = Tensor<T>::uninitialized(n.grad.shape());
            masked.array() = (n.value.array() > T(0)).select(n.grad.array(), T(0));
        } else {
            masked = n.grad;
        }
        const auto G = masked.matrix(batch, outs);
        Tensor<T>* dx = nullptr;
        Tensor<T>* dw = nullptr;
        const bool add_dx = detail::wants_grad(n, 0) && !detail::grad_buffer(n, 0, dx);
        const bool add_dw = detail::wants_grad(n, 1) && !detail::grad_buffer(n, 1, dw);
        if (dx || dw)  // dx = G W, dW = G^T x
            kernels::dense_backward(masked.data(), xv.data(), wv.data(), dx ? dx->data() : nullptr, add_dx,
                                    dw ? dw->data() : nullptr, add_dw, batch, wv.shape()[1], outs);
        Tensor<T>* g = nullptr;
        if (n.input(2) && detail::wants_grad(n, 2)) {  // db = column sums of G
            if (detail::grad_buffer(n, 2, g)) g->matrix(1, outs).row(0) = G.colwise().sum();
            else g->matrix(1, outs).row(0) += G.colwise().sum();
        }
    }, {&x, &weight, &bias});
    if (record) out.node()->set_args(relu);
    return out;
}

}  // namespace cnnlite
