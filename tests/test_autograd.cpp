// Reverse-mode autograd: gradients of small graphs in closed form, hooks, retain_grad, NoGrad,
// detach, accumulation, errors, and the gradchecker itself.
#include <doctest/doctest.h>

#include <thread>

#include "cnnlite/autograd/gradcheck.hpp"
#include "cnnlite/ops/activation.hpp"
#include "cnnlite/ops/elementwise.hpp"
#include "cnnlite/ops/matmul.hpp"
#include "cnnlite/ops/reduction.hpp"

namespace test_autograd {

using namespace cnnlite;

namespace {
Variable<double> leaf(std::initializer_list<double> values, bool requires_grad = true) {
    return Variable<double>(Tensor<double>::from(Shape{static_cast<std::int64_t>(values.size())}, values), requires_grad);
}
}  // namespace

TEST_CASE("gradient of a chain in closed form") {
    // L = sum((3x)^2) -> dL/dx = 18x.
    Variable<double> x = leaf({1, -2, 0.5});
    Variable<double> a = scale(x, 3.0);
    Variable<double> L = sum(mul(a, a));
    CHECK(L.value()[0] == doctest::Approx(9 * (1 + 4 + 0.25)));
    L.backward();
    CHECK(x.grad().to_vector() == std::vector<double>{18, -36, 9});
    CHECK_FALSE(a.has_grad());  // intermediate gradients are not kept unless asked
}

TEST_CASE("hooks see the gradient flowing into an intermediate, and may replace it") {
    Variable<double> x = leaf({1, -2, 0.5});
    Variable<double> a = scale(x, 3.0);
    std::vector<double> seen;
    a.register_hook([&](Tensor<double>& g) { seen = g.to_vector(); });
    a.retain_grad();
    Variable<double> L = sum(mul(a, a));
    L.backward();
    // dL/da = 2a = 6x.
    CHECK(seen == std::vector<double>{6, -12, 3});
    CHECK(a.grad().to_vector() == seen);

    Variable<double> y = leaf({1, 2});
    Variable<double> b = scale(y, 2.0);
    b.register_hook([](Tensor<double>& g) { g.fill(1.0); });  // replace in place
    sum(mul(b, b)).backward();
    CHECK(y.grad().to_vector() == std::vector<double>{2, 2});

    Variable<double> z = leaf({1, 2});
    Variable<double> c = scale(z, 2.0);
    c.register_hook([](Tensor<double>& g) { g = Tensor<double>(Shape{3}); });
    CHECK_THROWS_WITH_AS(sum(c).backward(), doctest::Contains("replaced a gradient of shape [2]"), Error);
}

TEST_CASE("a hook runs once, after every path has contributed") {
    // L = sum(a * a + a) with a = 2x: dL/da = 2a + 1 arrives along two paths.
    Variable<double> x = leaf({1, 3});
    Variable<double> a = scale(x, 2.0);
    int calls = 0;
    std::vector<double> seen;
    a.register_hook([&](Tensor<double>& g) {
        ++calls;
        seen = g.to_vector();
    });
    sum(add(mul(a, a), a)).backward();
    CHECK(calls == 1);
    CHECK(seen == std::vector<double>{5, 13});
    CHECK(x.grad().to_vector() == std::vector<double>{10, 26});
}

TEST_CASE("leaf gradients accumulate until zero_grad") {
    Variable<double> x = leaf({2});
    sum(scale(x, 3.0)).backward();
    sum(scale(x, 3.0)).backward();
    CHECK(x.grad()[0] == 6);
    x.zero_grad();
    CHECK_FALSE(x.has_grad());
    sum(scale(x, 3.0)).backward();
    CHECK(x.grad()[0] == 3);
}

TEST_CASE("NoGrad records nothing; detach cuts the graph") {
    Variable<double> x = leaf({1, 2});
    {
        NoGrad guard;
        CHECK_FALSE(grad_enabled());
        Variable<double> y = scale(x, 2.0);
        CHECK_FALSE(y.requires_grad());
        CHECK(y.is_leaf());
        CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("does not require grad"), Error);
    }
    CHECK(grad_enabled());
    Variable<double> d = scale(x, 2.0).detach();
    CHECK(d.is_leaf());
    CHECK_FALSE(d.requires_grad());
    Variable<double> y = add(mul(d, x), x);  // d is a constant here
    sum(y).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{3, 5});
}

TEST_CASE("NoGrad is per thread") {
    NoGrad guard;
    bool other_thread_enabled = false;
    std::thread([&] { other_thread_enabled = grad_enabled(); }).join();
    CHECK(other_thread_enabled);
    CHECK_FALSE(grad_enabled());
}

TEST_CASE("backward errors name the problem") {
    Variable<double> x = leaf({1, 2});
    Variable<double> y = scale(x, 2.0);
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("give an output gradient"), Error);
    CHECK_THROWS_WITH_AS(y.backward(Tensor<double>(Shape{3})), doctest::Contains("[2] vs [3]"), Error);
    CHECK_THROWS_WITH_AS(y.set_requires_grad(false), doctest::Contains("only leaves"), Error);
    Variable<double> null;
    CHECK_THROWS_WITH_AS(null.value(), doctest::Contains("undefined"), Error);
    CHECK_THROWS_AS(null.register_hook(nullptr), Error);
}

TEST_CASE("backward with a given output gradient") {
    Variable<double> A(Tensor<double>::from({2, 2}, {1, 2, 3, 4}), true);
    Variable<double> B(Tensor<double>::from({2, 1}, {5, 6}), true);
    Variable<double> C = matmul(A, B);
    C.backward(Tensor<double>::from({2, 1}, {1, 10}));
    // dA = dC B^T, dB = A^T dC.
    CHECK(A.grad().to_vector() == std::vector<double>{5, 6, 50, 60});
    CHECK(B.grad().to_vector() == std::vector<double>{31, 42});
}

TEST_CASE("a long chain is released without recursion") {
    Variable<double> x = leaf({1});
    Variable<double> y = x;
    for (int i = 0; i < 200000; ++i) y = scale(y, 1.0);
    y = Variable<double>();  // releasing 200,000 nodes must not overflow the stack
    CHECK(x.defined());
}

TEST_CASE("gradcheck catches a wrong gradient") {
    // A deliberately wrong op: forward x^2, backward claims 3x.
    auto wrong = [](const std::vector<Variable<double>>& v) {
        Tensor<double> y = Tensor<double>::uninitialized(v[0].shape());
        y.array() = v[0].value().array().square();
        return detail::make_result<double>(std::move(y), "wrong_square", detail::should_record<double>({&v[0]}),
                                           +[](detail::Node<double>& n) {
            Tensor<double> g = Tensor<double>::uninitialized(n.grad.shape());
            g.array() = n.grad.array() * 3.0 * n.input(0)->value.array();
            detail::accumulate_grad(n, 0, std::move(g));
        }, {&v[0]});
    };
    const auto r = gradcheck(wrong, {Tensor<double>::from({2}, {0.5, -1.5})});
    CHECK_FALSE(r.ok);
    CHECK(r.message.find("input 0 element 0") != std::string::npos);
}

TEST_CASE("a node takes any number of inputs: a six-way weighted sum backpropagates to each") {
    // out = sum_k (k + 1) * x_k: more inputs than a node holds in place (it keeps four inline).
    const auto weighted_sum = [](const std::vector<Variable<double>>& v) {
        Tensor<double> y = Tensor<double>::full(v[0].shape(), 0.0);
        std::vector<const Variable<double>*> inputs;
        for (std::size_t k = 0; k < v.size(); ++k) {
            y.array() += static_cast<double>(k + 1) * v[k].value().array();
            inputs.push_back(&v[k]);
        }
        return detail::make_result_of<double>(std::move(y), "weighted_sum", detail::should_record<double>({&v[0]}),
                                              +[](detail::Node<double>& n) {
            for (int k = 0; k < n.num_inputs; ++k) {
                if (!detail::wants_grad(n, k)) continue;
                Tensor<double> g = Tensor<double>::uninitialized(n.grad.shape());
                g.array() = n.grad.array() * static_cast<double>(k + 1);
                detail::accumulate_grad(n, k, std::move(g));
            }
        }, inputs);
    };
    std::vector<Variable<double>> xs;
    for (int k = 0; k < 6; ++k) xs.emplace_back(Tensor<double>::from({2}, {0.5 * k, -1.0 + k}), true);
    const Variable<double> out = weighted_sum(xs);
    REQUIRE(out.node()->num_inputs == 6);
    CHECK(out.node()->input(5) == xs[5].node());
    CHECK(out.value()[1] == doctest::Approx(-1 * 1 + 0 * 2 + 1 * 3 + 2 * 4 + 3 * 5 + 4 * 6));
    sum(out).backward();
    for (int k = 0; k < 6; ++k) {
        CAPTURE(k);
        REQUIRE(xs[static_cast<std::size_t>(k)].has_grad());
        CHECK(xs[static_cast<std::size_t>(k)].grad()[0] == k + 1);
        CHECK(xs[static_cast<std::size_t>(k)].grad()[1] == k + 1);
    }
    std::vector<Tensor<double>> points;
    for (int k = 0; k < 6; ++k) points.push_back(Tensor<double>::from({2}, {0.3 * k, 1.0 - k}));
    CHECK(gradcheck(weighted_sum, points).ok);
}

TEST_CASE("float and double variables both work") {
    Variable<float> xf(Tensor<float>::from({2}, {1.f, 2.f}), true);
    sum(mul(xf, xf)).backward();
    CHECK(xf.grad().to_vector() == std::vector<float>{2.f, 4.f});
    Variable<double> xd(Tensor<double>::from({2}, {1.0, 2.0}), true);
    sum(mul(xd, xd)).backward();
    CHECK(xd.grad().to_vector() == std::vector<double>{2.0, 4.0});
}

}  // namespace test_autograd
