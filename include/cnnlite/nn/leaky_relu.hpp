// LeakyReLU as a layer (Keras' LeakyReLU): x > 0 ? x : alpha x, with Keras' default slope.
#pragma once

#include <cmath>
#include <memory>
#include <string>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/activation.hpp"

namespace cnnlite {

/// The options of a LeakyReLU layer.
struct LeakyReluOptions {
    /// Slope for negative inputs: Keras' layer default 0.3 (Keras 3 calls it negative_slope;
    /// PyTorch's default is 0.01).
    double alpha = 0.3;

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("alpha", alpha);
    }
};

/// Leaky ReLU layer: x > 0 ? x : alpha * x element-wise.
template <class T = float>
class LeakyReLU : public LayerWithOptions<T, LeakyReLU<T>, LeakyReluOptions> {
public:
    /// The layer's options type.
    using Options = LeakyReluOptions;

    /// Leaky ReLU with its options; alpha must be finite.
    explicit LeakyReLU(LeakyReluOptions options) : LayerWithOptions<T, LeakyReLU<T>, LeakyReluOptions>(options) {
        check(std::isfinite(options.alpha), "LeakyReLU: alpha ", options.alpha, " must be finite");
    }
    /// Leaky ReLU of slope `alpha` (Keras' default 0.3).
    explicit LeakyReLU(double alpha = 0.3) : LeakyReLU(LeakyReluOptions{alpha}) {}
    /// Sets the layer's name (default: leaky_re_lu, leaky_re_lu_1, ...).
    LeakyReLU& name(std::string n) { this->set_name(std::move(n)); return *this; }
    const char* type() const override { return "LeakyReLU"; }
    const char* default_name() const override { return "leaky_re_lu"; }
    Shape build(const Shape& in, const LayerInit&) override { return in; }
    /// x > 0 ? x : alpha * x element-wise.
    Variable<T> forward(const Variable<T>& x, const ForwardContext&) const override {
        this->check_input(x);
        return leaky_relu(x, this->options_.alpha);
    }
    /// The negative slope.
    double alpha() const { return this->options_.alpha; }
};

}  // namespace cnnlite
