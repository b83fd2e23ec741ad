// ELU as a layer (Keras' ELU): x > 0 ? x : alpha (exp(x) - 1).
#pragma once

#include <cmath>
#include <memory>
#include <string>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/activation.hpp"

namespace cnnlite {

/// The options of an ELU layer.
struct EluOptions {
    double alpha = 1.0;  ///< scale of the negative part (Keras' and PyTorch's default 1)

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("alpha", alpha);
    }
};

/// Exponential linear unit layer: x > 0 ? x : alpha * (exp(x) - 1) element-wise.
template <class T = float>
class ELU : public LayerWithOptions<T, ELU<T>, EluOptions> {
public:
    /// The layer's options type.
    using Options = EluOptions;

    /// ELU with its options; alpha must be finite.
    explicit ELU(EluOptions options) : LayerWithOptions<T, ELU<T>, EluOptions>(options) {
        check(std::isfinite(options.alpha), "ELU: alpha ", options.alpha, " must be finite");
    }
    /// ELU with scale `alpha` (default 1).
    explicit ELU(double alpha = 1.0) : ELU(EluOptions{alpha}) {}
    /// Sets the layer's name (default: elu, elu_1, ...).
    ELU& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "ELU"; }
    const char* default_name() const override { return "elu"; }
    Shape build(const Shape& in, const LayerInit&) override { return in; }
    /// x > 0 ? x : alpha * (exp(x) - 1) element-wise.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return elu(x, this->options_.alpha);
    }
    /// The scale of the negative part.
    double alpha() const { return this->options_.alpha; }
};

}  // namespace cnnlite
