// Adam (Keras defaults and epsilon placement unless told otherwise) and AdamW (decoupled
// weight decay, PyTorch semantics and defaults), over the fused update kernel.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/kernels/optimizer.hpp"
#include "cnnlite/optim/optimizer.hpp"

namespace cnnlite {

using kernels::AdamEpsilon;

/// Settings of Adam; the defaults are Keras'.
struct AdamOptions {
    double learning_rate = 1e-3;  ///< initial rate (a schedule may change it per epoch or step)
    double beta1 = 0.9;           ///< decay of the first moment (mean of the gradient)
    double beta2 = 0.999;         ///< decay of the second moment (mean of its square)
    double epsilon = 1e-7;        ///< keeps the denominator away from 0; where, see below
    /// keras: p -= lr sqrt(1-beta2^t)/(1-beta1^t) m / (sqrt(v) + eps) (Keras 2.x);
    /// pytorch: p -= lr/(1-beta1^t) m / (sqrt(v)/sqrt(1-beta2^t) + eps) (torch.optim.Adam).
    AdamEpsilon epsilon_placement = AdamEpsilon::keras;
    /// L2 penalty added to the gradient, g + weight_decay * p (torch.optim.Adam's weight_decay).
    double weight_decay = 0;
    /// Indices of parameters without weight decay, e.g. no_decay_indices(model.trainable_names()).
    std::vector<std::size_t> no_decay = {};
};

/// Settings of AdamW; the defaults are PyTorch's (torch.optim.AdamW).
struct AdamWOptions {
    double learning_rate = 1e-3;                           ///< initial rate
    double beta1 = 0.9;                                    ///< decay of the first moment
    double beta2 = 0.999;                                  ///< decay of the second moment
    double epsilon = 1e-8;                                 ///< as in AdamOptions
    AdamEpsilon epsilon_placement = AdamEpsilon::pytorch;  ///< as in AdamOptions
    /// Decoupled decay: p *= 1 - lr * weight_decay before each Adam update.
    double weight_decay = 1e-2;
    /// Indices of parameters without weight decay (a PyTorch param group with weight_decay 0),
    /// e.g. no_decay_indices(model.trainable_names()).
    std::vector<std::size_t> no_decay = {};
};

/// Adam (Kingma & Ba). Keeps two buffers per parameter, saved as `adam.m.<i>` and `adam.v.<i>`;
/// the bias correction uses each parameter's own update count, as in PyTorch.
template <class T = float>
class Adam : public Optimizer<T> {
public:
    /// Adam over `params` (Keras defaults unless `options` says otherwise).
    explicit Adam(std::vector<Variable<T>> params, AdamOptions options = {})
        : Adam("adam", std::move(params), options.learning_rate, options.beta1, options.beta2, options.epsilon,
               options.epsilon_placement, options.weight_decay, 0.0) {
        this->exclude_from_decay(options.no_decay);
    }

    /// Decay of the first moment.
    double beta1() const { return beta1_; }
    /// Decay of the second moment.
    double beta2() const { return beta2_; }
    /// Term added to the denominator, where epsilon_placement() says.
    double epsilon() const { return epsilon_; }
    /// Keras' or PyTorch's formula.
    AdamEpsilon epsilon_placement() const { return placement_; }
    /// Coupled (L2, Adam) and decoupled (AdamW) weight decay; one of them is 0.
    double weight_decay() const { return weight_decay_ != 0 ? weight_decay_ : decoupled_weight_decay_; }

protected:
    /// For AdamW: the full set of settings, checked here once for both.
    Adam(std::string name, std::vector<Variable<T>> params, double lr, double beta1, double beta2, double epsilon,
         AdamEpsilon placement, double weight_decay, double decoupled_weight_decay)
        : Optimizer<T>(std::move(name), std::move(params), lr),
          beta1_(beta1),
          beta2_(beta2),
          epsilon_(epsilon),
          placement_(placement),
          weight_decay_(weight_decay),
          decoupled_weight_decay_(decoupled_weight_decay) {
        const std::string& n = this->name();
        check(beta1 >= 0 && beta1 < 1, n, ": beta1 must be in [0, 1), got ", beta1);
        check(beta2 >= 0 && beta2 < 1, n, ": beta2 must be in [0, 1), got ", beta2);
        check(std::isfinite(epsilon) && epsilon >= 0, n, ": epsilon must be finite and >= 0, got ", epsilon);
        check(std::isfinite(weight_decay) && weight_decay >= 0, n, ": weight_decay must be finite and >= 0, got ",
              weight_decay);
        check(std::isfinite(decoupled_weight_decay) && decoupled_weight_decay >= 0, n,
              ": weight_decay must be finite and >= 0, got ", decoupled_weight_decay);
        m_ = this->add_buffer("m");
        v_ = this->add_buffer("v");
    }

    /// One Adam update of parameter `index` (fused kernel).
    void update(std::size_t index, Tensor<T>& value, const Tensor<T>& grad, std::int64_t t) override {
        const bool decayed = this->decays(index);
        const auto c = kernels::adam_coefficients<T>(this->learning_rate(), beta1_, beta2_, epsilon_, t, placement_,
                                                     decayed ? weight_decay_ : 0.0,
                                                     decayed ? decoupled_weight_decay_ : 0.0);
        kernels::adam_update(value.data(), grad.data(), this->buffer(m_, index).data(),
                             this->buffer(v_, index).data(), value.numel(), c);
    }

private:
    double beta1_, beta2_, epsilon_;
    AdamEpsilon placement_;
    double weight_decay_, decoupled_weight_decay_;
    std::size_t m_ = 0, v_ = 0;
};

/// AdamW (Loshchilov & Hutter): Adam with the weight decay applied to the parameter directly,
/// p *= 1 - lr * weight_decay, instead of through the gradient. State entries `adamw.*`.
template <class T = float>
class AdamW : public Adam<T> {
public:
    /// AdamW over `params` (PyTorch defaults unless `options` says otherwise).
    explicit AdamW(std::vector<Variable<T>> params, AdamWOptions options = {})
        : Adam<T>("adamw", std::move(params), options.learning_rate, options.beta1, options.beta2, options.epsilon,
                  options.epsilon_placement, 0.0, options.weight_decay) {
        this->exclude_from_decay(options.no_decay);
    }
};

}  // namespace cnnlite
