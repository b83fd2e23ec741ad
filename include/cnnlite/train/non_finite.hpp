// NaN and infinity in training: what fit() does when a loss or a gradient is not finite, the
// check of the gradients that runs every step, and the search for where a non-finite loss
// came from (a diverged parameter, a bad input value, or the first layer whose output turns
// non-finite), so that the error names a place instead of just "nan".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnlite/autograd/grad_mode.hpp"
#include "cnnlite/data/batching.hpp"
#include "cnnlite/kernels/finite.hpp"
#include "cnnlite/nn/sequential.hpp"

namespace cnnlite {

/// What to do when a loss or gradient is NaN or infinite.
enum class NonFinitePolicy {
    error,       ///< throw a cnnlite::Error naming the epoch, step and parameter
    skip_batch,  ///< drop the batch (no optimiser step) and carry on
};

namespace detail {

/// Index of the first NaN or infinity in `t`, or -1 when every element is finite.
template <class T>
std::int64_t first_non_finite(const Tensor<T>& t) {
    // One vectorised sum first: NaN or infinite whenever any element is (or when finite
    // values overflow it, which the scan below tells apart).
    if (std::isfinite(static_cast<double>(t.array().sum()))) return -1;
    for (std::int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(static_cast<double>(t.data()[i]))) return i;
    return -1;
}

/// "NaN at element 5 of [64, 10]" for the non-finite element `index` of `t`.
template <class T>
std::string non_finite_text(const Tensor<T>& t, std::int64_t index) {
    const double v = static_cast<double>(t.data()[index]);
    return std::string(std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf") + " at element " + std::to_string(index) +
           " of " + t.shape().str();
}

/// The layer a parameter name ("dense_1.bias") belongs to.
inline std::string layer_of(const std::string& parameter) { return parameter.substr(0, parameter.rfind('.')); }

}  // namespace detail

/// Checks every gradient of `params` for a NaN or infinity: true when all are finite; otherwise
/// false under NonFinitePolicy::skip_batch, and under NonFinitePolicy::error a cnnlite::Error
/// naming the epoch, step, layer, parameter and the first bad element.
template <class T>
bool check_gradients_finite(const std::vector<NamedParameter<T>>& params, std::int64_t epoch, std::int64_t step,
                            NonFinitePolicy policy) {
    for (const auto& p : params) {
        if (!p.variable.has_grad()) continue;
        const Tensor<T>& g = p.variable.grad();
        if (kernels::all_finite(g.data(), g.numel())) continue;  // the parallel pass, every step
        const std::int64_t bad = detail::first_non_finite(g);    // only on the way to an error
        if (policy == NonFinitePolicy::skip_batch) return false;
        fail("fit: non-finite gradient at epoch ", epoch, ", step ", step, " in layer '", detail::layer_of(p.name),
             "': the gradient of '", p.name, "' holds ", detail::non_finite_text(p.variable.grad(), bad),
             " (check the learning rate and the input data; FitOptions::on_non_finite = skip_batch drops such batches)");
    }
    return true;
}

namespace detail {

/// Why a batch's loss is not finite, for the error message: a parameter that already holds
/// NaN/Inf, a non-finite input, or the first layer whose output turns non-finite (found by
/// repeating the forward pass, with the same dropout masks, and watching every layer).
template <class T>
std::string explain_non_finite_loss(const Model<T>& model, const std::vector<NamedParameter<T>>& params,
                                    const Variable<T>& x, const Batch& batch, const ForwardContext& ctx) {
    for (const auto& p : params) {
        const std::int64_t bad = first_non_finite(p.variable.value());
        if (bad >= 0)
            return "in layer '" + layer_of(p.name) + "': its parameter '" + p.name + "' holds non-finite values (" +
                   non_finite_text(p.variable.value(), bad) + "; an earlier step diverged)";
    }
    const std::int64_t bad_input = first_non_finite(x.value());
    if (bad_input >= 0) {
        const std::int64_t per_sample = x.value().numel() / std::max<std::int64_t>(batch.size(), 1);
        const std::int64_t row = bad_input / per_sample;
        return "in the input, before the first layer: sample " +
               std::to_string(batch.indices[static_cast<std::size_t>(row)]) + " of the data set holds a non-finite value (" +
               non_finite_text(x.value(), bad_input) + ")";
    }
    std::string found;
    NoGrad no_grad;
    model.forward_logits(x, ctx, [&](const Layer<T>& layer, Variable<T>& output) {
        if (!found.empty()) return;
        const std::int64_t bad = first_non_finite(output.value());
        if (bad >= 0)
            found = "in layer '" + layer.name() + "' (" + layer.type() + "), the first whose output is not finite (" +
                    non_finite_text(output.value(), bad) + ")";
    });
    return found.empty() ? "in the loss itself: every layer's output is finite" : found;
}

}  // namespace detail

}  // namespace cnnlite
