// Tutorial chapter 8 (docs/tutorial/08-batchnorm-and-residuals.md): batch normalisation's
// forward and backward pass worked by hand on four numbers, the running statistics of Keras and
// PyTorch, and why a residual connection keeps the gradient of a deep stack alive.
#include <cnnlite/autograd/gradcheck.hpp>
#include <cnnlite/nn/add.hpp>
#include <cnnlite/nn/dense.hpp>
#include <cnnlite/nn/model.hpp>
#include <cnnlite/ops/batch_norm.hpp>
#include <cnnlite/ops/elementwise.hpp>
#include <cnnlite/ops/reduction.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

#include "tutorial.hpp"

using namespace cnnlite;
using tutorial::values;

namespace {

// [snippet:deep_stack]
/// `depth` dense layers of 4 units without bias, each weight 0.1 x identity; with `residual`
/// every layer's output is added to its input (h = h + f(h)), as a residual block does.
Model<double> deep_stack(int depth, bool residual) {
    auto x = Input<double>({4});
    Symbolic<double> h = x;
    for (int i = 0; i < depth; ++i) {
        DenseOptions weak;
        weak.units = 4;
        weak.use_bias = false;
        const Symbolic<double> f = Dense<double>(weak)(h);
        h = residual ? Add<double>()({h, f}) : f;
    }
    Model<double> model(x, h);
    for (auto p : model.parameters()) {  // a copy of the handle, sharing the weights
        Tensor<double>& w = p.variable.value();
        w.fill(0);
        for (std::int64_t i = 0; i < 4; ++i) w[i * 4 + i] = 0.1;
    }
    return model;
}
// [end]

}  // namespace

int main() try {
    std::printf("== batch normalisation of one channel over a batch of four\n");
    // [snippet:forward]
    const double epsilon = 1e-5;
    Variable<double> x(Tensor<double>::from({4, 1, 1, 1}, {1, 2, 3, 6}), true);
    Variable<double> gamma(Tensor<double>::from({1}, {2.0}), true);
    Variable<double> beta(Tensor<double>::from({1}, {0.5}), true);
    BatchStats stats;
    Variable<double> y = batch_norm(x, gamma, beta, epsilon, &stats);
    std::printf("batch mean %.4f, biased variance %.4f\n", stats.mean[0], stats.variance[0]);
    std::printf("y = gamma * (x - mean) / sqrt(var + eps) + beta = %s\n", values(y.value(), 4).c_str());
    // [end]
    const double mean = 3, var = 3.5, invstd = 1 / std::sqrt(var + epsilon);
    std::vector<double> xhat;
    for (double v : {1.0, 2.0, 3.0, 6.0}) xhat.push_back((v - mean) * invstd);
    check(stats.mean[0] == mean && std::fabs(stats.variance[0] - var) < 1e-12, "batch statistics by hand");
    tutorial::expect_close("forward by hand", y.value(),
                           Tensor<double>::from({4}, {2 * xhat[0] + 0.5, 2 * xhat[1] + 0.5, 0.5, 2 * xhat[3] + 0.5}),
                           1e-12);

    std::printf("\n== the backward pass: the loss sees only the first output, dL/dy = [1, 0, 0, 0]\n");
    // [snippet:backward]
    const Variable<double> upstream(Tensor<double>::from({4, 1, 1, 1}, {1, 0, 0, 0}));
    sum(y * upstream).backward();
    std::printf("dL/dbeta  = sum(dy)        = %s\n", values(beta.grad(), 4).c_str());
    std::printf("dL/dgamma = sum(dy * xhat) = %s\n", values(gamma.grad(), 4).c_str());
    std::printf("dL/dx     = %s\n", values(x.grad(), 4).c_str());
    // [end]
    // [snippet:backward_hand]
    // dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))
    const std::vector<double> dy{1, 0, 0, 0};
    double mean_dy = 0, mean_dy_xhat = 0;
    for (int i = 0; i < 4; ++i) {
        mean_dy += dy[i] / 4;
        mean_dy_xhat += dy[i] * xhat[i] / 4;
    }
    std::vector<double> dx(4);
    for (int i = 0; i < 4; ++i) dx[i] = 2.0 * invstd * (dy[i] - mean_dy - xhat[i] * mean_dy_xhat);
    const double total = dx[0] + dx[1] + dx[2] + dx[3];
    std::printf("by hand   = [%.4f, %.4f, %.4f, %.4f], summing to zero: %s\n", dx[0], dx[1], dx[2], dx[3],
                std::fabs(total) < 1e-12 ? "yes" : "no");
    // [end]
    tutorial::expect_close("dL/dx by hand", x.grad(), Tensor<double>::from({4}, {dx[0], dx[1], dx[2], dx[3]}), 1e-12);
    tutorial::expect_close("dL/dgamma by hand", gamma.grad(), Tensor<double>::from({1}, {xhat[0]}), 1e-12);

    // [snippet:gradcheck]
    const GradcheckResult check_result = gradcheck(
        [&](const std::vector<Variable<double>>& v) { return batch_norm(v[0], v[1], v[2], epsilon); },
        {Tensor<double>::from({4, 2, 1, 1}, {1, -1, 2, 0.5, 3, 2, 6, -3}), Tensor<double>::from({2}, {2.0, -1.0}),
         Tensor<double>::from({2}, {0.5, 0.0})});
    std::printf("gradcheck against central differences: %s\n", check_result.ok ? "ok" : "FAILED");
    // [end]
    check(check_result.ok, check_result.message);

    std::printf("\n== running statistics after this batch, starting from mean 0 and variance 1\n");
    // [snippet:running]
    const double n = 4;
    const double keras_mean = 0.99 * 0 + 0.01 * stats.mean[0];
    const double keras_var = 0.99 * 1 + 0.01 * stats.variance[0];                  // biased
    const double torch_mean = 0.9 * 0 + 0.1 * stats.mean[0];
    const double torch_var = 0.9 * 1 + 0.1 * stats.variance[0] * n / (n - 1);      // unbiased
    std::printf("Keras   (momentum 0.99, biased variance):   mean %.4f, variance %.4f\n", keras_mean, keras_var);
    std::printf("PyTorch (momentum 0.1,  unbiased variance): mean %.4f, variance %.4f\n", torch_mean, torch_var);
    // [end]
    check(std::fabs(keras_var - 1.025) < 1e-12 && std::fabs(torch_var - (0.9 + 0.35 * 4.0 / 3.0)) < 1e-12,
          "running variances by hand");

    std::printf("\n== the gradient at the input of 10 weak layers (each 0.1 x identity)\n");
    // [snippet:residual]
    for (bool residual : {false, true}) {
        const Model<double> model = deep_stack(10, residual);
        Variable<double> input(Tensor<double>::from({1, 4}, {1, 2, 3, 4}), true);
        sum(model.forward(input)).backward();
        std::printf("%-8s dL/dx[0] = %.4g\n", residual ? "residual" : "plain", input.grad()[0]);
    }
    // [end]
    {
        Variable<double> input(Tensor<double>::from({1, 4}, {1, 2, 3, 4}), true);
        sum(deep_stack(10, true).forward(input)).backward();
        check(std::fabs(input.grad()[0] - std::pow(1.1, 10)) < 1e-12, "residual gradient is 1.1^10");
        Variable<double> plain_input(Tensor<double>::from({1, 4}, {1, 2, 3, 4}), true);
        sum(deep_stack(10, false).forward(plain_input)).backward();
        check(std::fabs(plain_input.grad()[0] - 1e-10) < 1e-20, "plain gradient is 0.1^10");
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "08_batchnorm_residual: %s\n", e.what());
    return 1;
}
