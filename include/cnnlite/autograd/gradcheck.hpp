// Finite-difference gradient checking: compares the gradients backward() computes with
// central differences, in double precision, for any function of variables.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "cnnlite/autograd/variable.hpp"
#include "cnnlite/core/random.hpp"

namespace cnnlite {

/// Step and tolerances of gradcheck().
struct GradcheckOptions {
    double eps = 1e-6;    ///< step of the central difference
    double atol = 1e-6;   ///< absolute tolerance
    double rtol = 1e-4;   ///< relative tolerance (of the larger of both gradients)
    std::uint64_t seed = 7;  ///< seeds the random projection of non-scalar outputs
};

/// What gradcheck() found.
struct GradcheckResult {
    /// Whether every element matched within the tolerances.
    bool ok = true;
    /// Largest |analytic - numeric| over all elements.
    double max_abs_error = 0;
    std::string message;  ///< first mismatch: input, element, analytic and numeric value
};

/// Checks d(sum(f(x) * R))/dx for every element of every input, where R is a fixed random
/// tensor (so that every output element contributes with its own weight). `f` receives fresh
/// leaf variables that require grad.
inline GradcheckResult gradcheck(const std::function<Variable<double>(const std::vector<Variable<double>>&)>& f,
                                 const std::vector<Tensor<double>>& inputs, GradcheckOptions options = {}) {
    GradcheckResult result;
    auto make_leaves = [&](const std::vector<Tensor<double>>& values) {
        std::vector<Variable<double>> leaves;
        for (const auto& v : values) leaves.emplace_back(v.clone(), true);
        return leaves;
    };
    auto projected = [&](const Tensor<double>& out, const Tensor<double>& weights) {
        double s = 0;
        for (std::int64_t i = 0; i < out.numel(); ++i) s += out[i] * weights[i];
        return s;
    };

    std::vector<Variable<double>> leaves = make_leaves(inputs);
    Variable<double> out = f(leaves);
    Tensor<double> weights = Tensor<double>::uninitialized(out.shape());
    const RandomStream stream(options.seed, Purpose::user);
    for (std::int64_t i = 0; i < weights.numel(); ++i)
        weights[i] = 0.5 + stream.uniform(static_cast<std::uint64_t>(i));
    out.backward(weights);

    for (std::size_t k = 0; k < inputs.size(); ++k) {
        std::vector<Tensor<double>> shifted;
        for (const auto& v : inputs) shifted.push_back(v.clone());
        for (std::int64_t i = 0; i < inputs[k].numel(); ++i) {
            const double original = shifted[k][i];
            shifted[k][i] = original + options.eps;
            double plus;
            double minus;
            {
                NoGrad no_grad;
                plus = projected(f(make_leaves(shifted)).value(), weights);
                shifted[k][i] = original - options.eps;
                minus = projected(f(make_leaves(shifted)).value(), weights);
            }
            shifted[k][i] = original;
            const double numeric = (plus - minus) / (2 * options.eps);
            const double analytic = leaves[k].has_grad() ? leaves[k].grad()[i] : 0.0;
            const double error = std::fabs(numeric - analytic);
            result.max_abs_error = std::max(result.max_abs_error, error);
            const double tolerance = options.atol + options.rtol * std::max(std::fabs(numeric), std::fabs(analytic));
            if (!(error <= tolerance) && result.ok) {
                result.ok = false;
                std::ostringstream msg;
                msg << "gradcheck: input " << k << " element " << i << ": analytic " << analytic << ", numeric "
                    << numeric << " (error " << error << ", tolerance " << tolerance << ")";
                result.message = msg.str();
            }
        }
    }
    return result;
}

}  // namespace cnnlite
