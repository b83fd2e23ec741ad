// SGD with optional momentum, dampening, Nesterov momentum and L2 weight decay, with PyTorch's
// semantics (torch.optim.SGD), over the fused update kernel.
#pragma once

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "cnnlite/kernels/optimizer.hpp"
#include "cnnlite/optim/optimizer.hpp"

namespace cnnlite {

/// Settings of SGD. The learning rate default is Keras' (PyTorch has none).
struct SGDOptions {
    double learning_rate = 1e-2;  ///< initial rate (a schedule may change it per epoch or step)
    /// 0 for plain SGD; otherwise buf = momentum * buf + (1 - dampening) * g, and the step
    /// follows buf (or g + momentum * buf with nesterov).
    double momentum = 0;
    double dampening = 0;     ///< in [0, 1]; the first step is never dampened (PyTorch's rule)
    bool nesterov = false;    ///< needs momentum > 0 and dampening 0, as in PyTorch
    double weight_decay = 0;  ///< L2 penalty added to the gradient, g + weight_decay * p
    /// Indices of parameters without weight decay (a PyTorch param group with weight_decay 0),
    /// e.g. no_decay_indices(model.trainable_names()).
    std::vector<std::size_t> no_decay = {};
};

/// Stochastic gradient descent. With momentum it keeps one buffer per parameter, saved as
/// `sgd.momentum.<i>`, which starts as the first gradient (PyTorch's rule).
template <class T = float>
class SGD : public Optimizer<T> {
public:
    /// SGD over `params`.
    explicit SGD(std::vector<Variable<T>> params, SGDOptions options = {})
        : Optimizer<T>("sgd", std::move(params), options.learning_rate), options_(options) {
        check(std::isfinite(options.momentum) && options.momentum >= 0, "sgd: momentum must be finite and >= 0, got ",
              options.momentum);
        check(std::isfinite(options.dampening) && options.dampening >= 0 && options.dampening <= 1,
              "sgd: dampening must be in [0, 1], got ", options.dampening);
        check(std::isfinite(options.weight_decay) && options.weight_decay >= 0,
              "sgd: weight_decay must be finite and >= 0, got ", options.weight_decay);
        check(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
              "sgd: nesterov needs momentum > 0 and dampening 0, got momentum ", options.momentum, " and dampening ",
              options.dampening);
        this->exclude_from_decay(options.no_decay);
        if (options.momentum != 0) momentum_ = this->add_buffer("momentum");
    }

    /// The settings given at construction (the current learning rate is learning_rate()).
    const SGDOptions& options() const { return options_; }

protected:
    /// One SGD update of parameter `index` (fused kernel).
    void update(std::size_t index, Tensor<T>& value, const Tensor<T>& grad, std::int64_t t) override {
        kernels::SgdCoefficients<T> c;
        c.learning_rate = static_cast<T>(this->learning_rate());
        c.momentum = static_cast<T>(options_.momentum);
        c.one_minus_dampening = static_cast<T>(1.0 - options_.dampening);
        c.weight_decay = this->decays(index) ? static_cast<T>(options_.weight_decay) : T(0);
        c.nesterov = options_.nesterov;
        c.first_step = t == 1;
        T* buf = options_.momentum != 0 ? this->buffer(momentum_, index).data() : nullptr;
        kernels::sgd_update(value.data(), grad.data(), buf, value.numel(), c);
    }

private:
    SGDOptions options_;
    std::size_t momentum_ = 0;
};

}  // namespace cnnlite
