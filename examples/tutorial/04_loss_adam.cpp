// Tutorial chapter 4 (docs/tutorial/04-loss-and-adam.md): softmax cross-entropy and its
// gradient (softmax - one-hot) / N, stability with large logits, and Adam's update worked by
// hand and run by the library.
#include <cnnlite/ops/elementwise.hpp>
#include <cnnlite/ops/reduction.hpp>
#include <cnnlite/ops/softmax_cross_entropy.hpp>
#include <cnnlite/optim/adam.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

#include "tutorial.hpp"

using namespace cnnlite;
using tutorial::values;

int main() try {
    std::printf("== softmax cross-entropy of one sample\n");
    // [snippet:loss]
    Variable<double> logits(Tensor<double>::from({1, 3}, {2.0, 1.0, 0.1}), true);
    const std::vector<std::int32_t> label{0};
    Variable<double> loss = softmax_cross_entropy(logits, label);
    loss.backward();
    std::printf("loss = -log softmax(z)[0] = %.4f\n", loss.value()[0]);
    std::printf("dloss/dz = softmax(z) - onehot = %s\n", values(logits.grad(), 4).c_str());
    // [end]
    const double e0 = std::exp(2.0), e1 = std::exp(1.0), e2 = std::exp(0.1), total = e0 + e1 + e2;
    check(std::fabs(loss.value()[0] + std::log(e0 / total)) < 1e-12, "loss by hand");
    tutorial::expect_close("gradient by hand", logits.grad(),
                           Tensor<double>::from({3}, {e0 / total - 1, e1 / total, e2 / total}), 1e-12);

    std::printf("\n== large logits stay finite\n");
    // [snippet:stable]
    Variable<float> big(Tensor<float>::from({2, 2}, {1000, 0, 0, 1000}), true);
    Variable<float> big_loss = softmax_cross_entropy(big, std::vector<std::int32_t>{0, 0});
    big_loss.backward();
    std::printf("loss = %.1f, dloss/dz = %s\n", big_loss.value()[0], values(big.grad(), 1).c_str());
    // [end]
    check(std::isfinite(big_loss.value()[0]) && std::fabs(big_loss.value()[0] - 500.0f) < 1e-3f,
          "the mean of losses 0 and 1000 is 500");

    std::printf("\n== Adam on f(p) = (p - 3)^2, starting at p = 0\n");
    // [snippet:adam_hand]
    const double lr = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-7;
    double p = 0, m = 0, v = 0;
    for (int t = 1; t <= 2; ++t) {
        const double grad = 2 * (p - 3);
        m = beta1 * m + (1 - beta1) * grad;         // running mean of the gradient
        v = beta2 * v + (1 - beta2) * grad * grad;  // running mean of its square
        const double step = lr * std::sqrt(1 - std::pow(beta2, t)) / (1 - std::pow(beta1, t));
        p -= step * m / (std::sqrt(v) + eps);       // Keras' form: eps outside the correction
        std::printf("by hand, step %d: grad %.4f, m %.4f, v %.6f, p %.6f\n", t, grad, m, v, p);
    }
    // [end]

    // [snippet:adam_library]
    Variable<double> param(Tensor<double>::from({1}, {0.0}), true);
    const Variable<double> three(Tensor<double>::from({1}, {3.0}));
    AdamOptions options;
    options.learning_rate = 0.1;  // the other settings are Keras' defaults, as above
    Adam<double> adam({param}, options);
    for (int t = 1; t <= 200; ++t) {
        adam.zero_grad();
        Variable<double> d = param - three;
        sum(d * d).backward();
        adam.step();
        if (t <= 2 || t == 10 || t == 50 || t == 200) std::printf("Adam<double>, step %3d: p %.6f\n", t, param.value()[0]);
        if (t == 2) check(std::fabs(param.value()[0] - p) < 1e-12, "library and hand-worked Adam differ");
    }
    // [end]
    check(std::fabs(param.value()[0] - 3) < 0.05, "Adam should have converged near 3");
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "04_loss_adam: %s\n", e.what());
    return 1;
}
