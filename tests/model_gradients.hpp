// Gradients of a whole model, checked by central differences in double: the input gradient
// through gradcheck(), and every parameter's gradient element by element. Shared by the tests
// of layers in a Sequential and of graph models.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "cnnlite/autograd/gradcheck.hpp"
#include "cnnlite/core/init.hpp"
#include "cnnlite/nn/model.hpp"

namespace cnnlite::testing {

/// Checks d(sum(model(x) * W))/dx and /dparameters for random x and W (inputs of shape `input`),
/// in training mode (dropout active) or not.
inline void check_model_gradients(Model<double>& model, const Shape& input, bool training) {
    Tensor<double> x(input);
    fill_uniform(x, RandomStream(3, Purpose::user), -1, 1);
    auto params = model.parameters();
    for (std::size_t k = 0; k < params.size(); ++k)
        fill_uniform(params[k].variable.value(), RandomStream(4, Purpose::user, k), -0.5, 0.5);
    std::vector<std::int64_t> ids(static_cast<std::size_t>(input[0]));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i) + 100;
    // Input gradient through the whole stack.
    const auto r = gradcheck(
        [&](const std::vector<Variable<double>>& v) {
            ForwardContext ctx{training, 9, 1, ids.data()};
            return model.forward(v[0], ctx);
        },
        {x});
    CHECK_MESSAGE(r.ok, r.message);
    // Parameter gradients: backward into the model's own parameter variables.
    for (auto& p : params) p.variable.zero_grad();
    Variable<double> xin(x);
    ForwardContext ctx{training, 9, 1, ids.data()};
    Variable<double> out = model.forward(xin, ctx);
    Tensor<double> weights(out.shape());
    fill_uniform(weights, RandomStream(5, Purpose::user), 0.5, 1.5);
    out.backward(weights);
    for (auto& p : params) {
        Tensor<double>& value = p.variable.value();
        for (std::int64_t i = 0; i < value.numel(); ++i) {
            const double keep = value[i];
            auto objective = [&] {
                NoGrad no_grad;
                const Variable<double> y = model.forward(Variable<double>(x), ctx);
                double s = 0;
                for (std::int64_t k = 0; k < y.value().numel(); ++k) s += y.value()[k] * weights[k];
                return s;
            };
            value[i] = keep + 1e-6;
            const double plus = objective();
            value[i] = keep - 1e-6;
            const double minus = objective();
            value[i] = keep;
            const double numeric = (plus - minus) / 2e-6;
            REQUIRE_MESSAGE(std::fabs(numeric - p.variable.grad()[i]) <= 1e-6 + 1e-4 * std::fabs(numeric), p.name,
                            " element ", i);
        }
    }
}

}  // namespace cnnlite::testing
