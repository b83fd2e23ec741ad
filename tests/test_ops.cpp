// Every differentiable op, run the same way: forward and gradients against PyTorch fixtures
// (double and float), and a finite-difference gradcheck in double. Plus hand-computed cases.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "cnnlite/autograd/gradcheck.hpp"
#include "cnnlite/core/init.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/ops/dropout.hpp"
#include "cnnlite/ops/dropout_max_pool2d.hpp"
#include "cnnlite/ops/spatial_dropout2d.hpp"
#include "op_cases.hpp"
#include "source_dir.hpp"

namespace test_ops {

using namespace cnnlite;
using cnnlite::testing::op_cases;

namespace {

nlohmann::json load_fixtures() {
    const std::string path = test_support::source_dir().string() + "/tests/fixtures/ops/op_fixtures.json";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "missing fixture file ", path);
    return nlohmann::json::parse(in);
}

template <class T>
Tensor<T> to_tensor(const nlohmann::json& shape, const nlohmann::json& data) {
    std::vector<std::int64_t> dims = shape.get<std::vector<std::int64_t>>();
    std::vector<double> values = data.get<std::vector<double>>();
    Tensor<T> t = Tensor<T>::uninitialized(Shape(dims));
    REQUIRE(static_cast<std::int64_t>(values.size()) == t.numel());
    for (std::size_t i = 0; i < values.size(); ++i) t[static_cast<std::int64_t>(i)] = static_cast<T>(values[i]);
    return t;
}

// The largest difference, relative to the value where it exceeds 1 in magnitude: a float sum of
// a few hundred terms near 1 (a bias gradient) is off by a few units in its last place, which
// an absolute bound would mistake for an error as the sum grows.
template <class T>
double max_scaled_diff(const Tensor<T>& got, const std::vector<double>& want) {
    REQUIRE(static_cast<std::int64_t>(want.size()) == got.numel());
    double worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(got[static_cast<std::int64_t>(i)]) - want[i]) /
                                    std::max(1.0, std::fabs(want[i])));
    return worst;
}

// Forward and backward of one case in scalar type T against the fixture.
template <class T>
void check_against_fixture(const cnnlite::testing::OpCase<T>& op, const nlohmann::json& fx, double tol) {
    std::vector<Variable<T>> inputs;
    for (const auto& in : fx["inputs"]) inputs.emplace_back(to_tensor<T>(in["shape"], in["data"]), true);
    Variable<T> out = op.run(inputs);
    CHECK(out.shape().to_vector() == fx["output"]["shape"].get<std::vector<std::int64_t>>());
    CHECK_MESSAGE(max_scaled_diff(out.value(), fx["output"]["data"].get<std::vector<double>>()) <= tol,
                  op.name, ": forward differs from PyTorch");
    out.backward(to_tensor<T>(fx["output"]["shape"], fx["grad_output"]));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const auto& want = fx["grads"][i];
        if (want.is_null()) continue;
        REQUIRE_MESSAGE(inputs[i].has_grad(), op.name, ": no gradient for input ", i);
        CHECK_MESSAGE(max_scaled_diff(inputs[i].grad(), want.get<std::vector<double>>()) <= tol, op.name,
                      ": gradient of input ", i, " differs from PyTorch");
    }
}

}  // namespace

TEST_CASE("every op has a PyTorch fixture and every fixture an op") {
    const auto fixtures = load_fixtures()["cases"];
    std::set<std::string> ops, fixture_names;
    for (const auto& op : op_cases<double>()) ops.insert(op.name);
    for (auto it = fixtures.begin(); it != fixtures.end(); ++it) fixture_names.insert(it.key());
    CHECK(ops == fixture_names);
}

TEST_CASE("ops match PyTorch in double and float, and pass gradcheck") {
    const auto fixtures = load_fixtures()["cases"];
    const auto double_ops = op_cases<double>();
    const auto float_ops = op_cases<float>();
    for (std::size_t k = 0; k < double_ops.size(); ++k) {
        const auto& name = double_ops[k].name;
        CAPTURE(name);
        REQUIRE(fixtures.contains(name));
        const auto& fx = fixtures[name];
        check_against_fixture(double_ops[k], fx, 1e-10);
        check_against_fixture(float_ops[k], fx, 2e-5);

        std::vector<Tensor<double>> inputs;
        for (const auto& in : fx["inputs"]) inputs.push_back(to_tensor<double>(in["shape"], in["data"]));
        const GradcheckResult r = gradcheck(double_ops[k].run, inputs);
        CHECK_MESSAGE(r.ok, name, ": ", r.message);
    }
}

TEST_CASE("conv2d 'same' with a 2x2 kernel, computed by hand") {
    // x = [[1, 2], [3, 4]], w = [[1, 10], [100, 1000]], bias 0.5. 'same' pads one row at the
    // bottom and one column at the right, so y[i][j] = sum over the 2x2 window starting at (i, j).
    Variable<double> x(Tensor<double>::from({1, 1, 2, 2}, {1, 2, 3, 4}));
    Variable<double> w(Tensor<double>::from({1, 1, 2, 2}, {1, 10, 100, 1000}));
    Variable<double> b(Tensor<double>::from({1}, {0.5}));
    Conv2dArgs a;
    a.pad_bottom = a.pad_right = 1;
    const Variable<double> y = conv2d(x, w, b, a);
    REQUIRE(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.value()(0, 0, 0, 0) == doctest::Approx(1 * 1 + 2 * 10 + 3 * 100 + 4 * 1000 + 0.5));
    CHECK(y.value()(0, 0, 0, 1) == doctest::Approx(2 * 1 + 4 * 100 + 0.5));
    CHECK(y.value()(0, 0, 1, 0) == doctest::Approx(3 * 1 + 4 * 10 + 0.5));
    CHECK(y.value()(0, 0, 1, 1) == doctest::Approx(4 * 1 + 0.5));
}

TEST_CASE("relu by hand: NaN stays NaN, and a second path's gradient is added to, not replaced") {
    // y = relu(x) + x: add's backward reaches x first, so relu's backward must accumulate.
    Variable<double> x(Tensor<double>::from({1, 5}, {-2, 0, 3, std::nan(""), -0.5}), true);
    const Variable<double> r = relu(x);
    CHECK(r.value()[0] == 0);
    CHECK(r.value()[1] == 0);
    CHECK(r.value()[2] == 3);
    CHECK(std::isnan(r.value()[3]));
    CHECK(r.value()[4] == 0);
    Variable<double> y = add(r, x);
    y.backward(Tensor<double>::from({1, 5}, {10, 20, 30, 40, 50}));
    // dy/dx = 1 + [x > 0]; the NaN output passes no gradient through relu.
    CHECK(x.grad().to_vector() == std::vector<double>{10, 20, 60, 40, 50});
}

TEST_CASE("relu on a tensor large enough for the parallel loop equals the element-wise rule") {
    const std::int64_t n = 3 * kernels::parallel_threshold + 17;
    Tensor<float> t = Tensor<float>::uninitialized(Shape{n});
    for (std::int64_t i = 0; i < n; ++i) t[i] = static_cast<float>((i * 7919) % 201 - 100) / 10.f;
    Variable<float> x(t, true);
    Variable<float> y = relu(x);
    Tensor<float> g = Tensor<float>::uninitialized(Shape{n});
    for (std::int64_t i = 0; i < n; ++i) g[i] = static_cast<float>(i % 13) - 6.f;
    y.backward(g);
    std::int64_t wrong_value = 0, wrong_grad = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        wrong_value += y.value()[i] != std::max(t[i], 0.f);
        wrong_grad += x.grad()[i] != (t[i] > 0 ? g[i] : 0.f);
    }
    CHECK(wrong_value == 0);
    CHECK(wrong_grad == 0);
}

TEST_CASE("max_pool2d routes the gradient to the argmax, first element on ties") {
    Variable<double> x(Tensor<double>::from({1, 1, 2, 4}, {1, 5, 7, 7, 3, 2, 0, 7}), true);
    Variable<double> y = max_pool2d(x, 2, 2, 2, 2);
    CHECK(y.value().to_vector() == std::vector<double>{5, 7});
    y.backward(Tensor<double>::from({1, 1, 1, 2}, {10, 20}));
    CHECK(x.grad().to_vector() == std::vector<double>{0, 10, 20, 0, 0, 0, 0, 0});
}

TEST_CASE("softmax cross-entropy stays finite for huge logits and matches the closed form") {
    Variable<float> z(Tensor<float>::from({2, 3}, {1000.f, 0.f, -1000.f, 0.f, 0.f, 0.f}), true);
    Variable<float> loss = softmax_cross_entropy(z, std::vector<std::int32_t>{0, 2});
    // Row 0: log-sum-exp = 1000, loss 0. Row 1: uniform, loss log 3. Mean: log(3) / 2.
    CHECK(loss.value()[0] == doctest::Approx(std::log(3.0) / 2).epsilon(1e-6));
    loss.backward();
    CHECK(std::isfinite(z.grad()[0]));
    CHECK(z.grad()[5] == doctest::Approx((1.0 / 3 - 1) / 2));
}

TEST_CASE("softmax cross-entropy rejects labels out of range and mismatched counts") {
    Variable<float> z(Tensor<float>(Shape{2, 3}), true);
    CHECK_THROWS_WITH_AS(softmax_cross_entropy(z, std::vector<std::int32_t>{0, 3}),
                         doctest::Contains("label 3 of row 1 outside [0, 3)"), Error);
    CHECK_THROWS_WITH_AS(softmax_cross_entropy(z, std::vector<std::int32_t>{0}), doctest::Contains("1 labels for 2 rows"),
                         Error);
}

TEST_CASE("op shape errors name the op and both shapes") {
    Variable<float> a(Tensor<float>(Shape{2, 3})), b(Tensor<float>(Shape{3, 2}));
    CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shape mismatch [2, 3] vs [3, 2]"), Error);
    CHECK_THROWS_WITH_AS(matmul(a, a), doctest::Contains("matmul: shapes [2, 3] and [2, 3]"), Error);
    Variable<float> img(Tensor<float>(Shape{1, 2, 5, 5})), w(Tensor<float>(Shape{4, 3, 2, 2}));
    CHECK_THROWS_WITH_AS(conv2d(img, w, Variable<float>(), Conv2dArgs{}), doctest::Contains("input has 2 channels"),
                         Error);
    Variable<float> big(Tensor<float>(Shape{4, 2, 9, 9}));
    CHECK_THROWS_WITH_AS(conv2d(img, big, Variable<float>(), Conv2dArgs{}), doctest::Contains("larger than"), Error);
}

TEST_CASE("dropout: inverted scaling, keep rate, mask a pure function of sample id") {
    const std::int64_t rows = 4, features = 5000;
    Variable<double> x(Tensor<double>::full(Shape{rows, features}, 1.0), true);
    const RandomStream stream(42, Purpose::dropout, 3, 17);
    std::vector<std::int64_t> ids{10, 11, 12, 13};
    Variable<double> y = dropout(x, 0.3, stream, ids.data());
    std::int64_t kept = 0;
    for (double v : y.value()) {
        CHECK((v == 0.0 || v == doctest::Approx(1 / 0.7)));
        kept += v != 0.0;
    }
    CHECK(static_cast<double>(kept) / (rows * features) == doctest::Approx(0.7).epsilon(0.02));
    // The same sample in another batch position gets the same mask.
    std::vector<std::int64_t> other{12};
    Variable<double> single(Tensor<double>::full(Shape{1, features}, 1.0));
    Variable<double> y2 = dropout(single, 0.3, stream, other.data());
    for (std::int64_t j = 0; j < features; ++j) REQUIRE(y2.value()[j] == y.value()[2 * features + j]);
    // Another step gives another mask.
    Variable<double> y3 = dropout(single, 0.3, RandomStream(42, Purpose::dropout, 3, 18), other.data());
    CHECK(y3.value().to_vector() != y2.value().to_vector());
    CHECK_THROWS_AS(dropout(x, 1.0, stream, ids.data()), Error);
}

TEST_CASE("dropout passes gradcheck") {
    const RandomStream stream(1, Purpose::dropout, 0, 0);
    std::vector<std::int64_t> ids{4, 9};
    Tensor<double> x(Shape{2, 7});
    fill_uniform(x, RandomStream(5, Purpose::user), -1, 1);
    const auto r = gradcheck([&](const std::vector<Variable<double>>& v) { return dropout(v[0], 0.4, stream, ids.data()); },
                             {x});
    CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("a NaN in a pooling window propagates, fused or not") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int first : {0, 1}) {
        Tensor<double> x = Tensor<double>::from({1, 1, 2, 2}, {1, 2, 3, 4});
        x[first ? 0 : 3] = nan;
        CHECK(std::isnan(max_pool2d(Variable<double>(x), 2, 2, 2, 2).value()[0]));
        CHECK(std::isnan(max_pool2d(Variable<double>(x), 2, 2, 1, 1).value()[0]));
        Variable<double> w(Tensor<double>::from({1, 1, 1, 1}, {1.0}));
        Conv2dArgs a;
        a.relu = true;
        CHECK(std::isnan(conv2d_relu_max_pool2d(Variable<double>(x), w, Variable<double>(), a, 2, 2, 2, 2).value()[0]));
    }
}

TEST_CASE("dropout masks do not depend on the thread count") {
    const std::int64_t rows = 64, features = 3136;  // large enough to run in parallel
    Tensor<float> ones = Tensor<float>::full(Shape{rows, features}, 1.0f);
    std::vector<std::int64_t> ids(static_cast<std::size_t>(rows));
    for (std::int64_t i = 0; i < rows; ++i) ids[static_cast<std::size_t>(i)] = 1000 + 7 * i;
    const RandomStream stream(9, Purpose::dropout, 4, 123);
    const int before = num_threads();
    set_num_threads(1);
    const auto one = dropout(Variable<float>(ones), 0.3, stream, ids.data()).value().to_vector();
    set_num_threads(2);
    const auto two = dropout(Variable<float>(ones), 0.3, stream, ids.data()).value().to_vector();
    set_num_threads(before);
    CHECK(one == two);
}

namespace {

bool same_bits_or_nan(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// dropout_max_pool2d against dropout then max_pool2d: equal values and input gradients (through
// two uses of x, so the second backward adds to the first), NaN and infinities included.
template <class T>
void check_dropout_pool_fusion(const Shape& shape, std::int64_t pool, std::int64_t stride) {
    CAPTURE(shape);
    CAPTURE(pool);
    CAPTURE(stride);
    Tensor<T> x(shape);
    fill_uniform(x, RandomStream(3, Purpose::user), -1, 1);
    x[5] = std::numeric_limits<T>::quiet_NaN();
    x[x.numel() / 2] = std::numeric_limits<T>::infinity();
    x[x.numel() - 1] = -std::numeric_limits<T>::infinity();
    std::vector<std::int64_t> ids;
    for (std::int64_t i = 0; i < shape[0]; ++i) ids.push_back(100 + 3 * i);
    const RandomStream s1(8, Purpose::dropout, 2, 5), s2(8, Purpose::dropout, 2, 6);
    Tensor<T> weights(Shape{shape[0], shape[1], (shape[2] - pool) / stride + 1, (shape[3] - pool) / stride + 1});
    fill_uniform(weights, RandomStream(4, Purpose::user), -2, 2);
    const Variable<T> c(weights);

    Variable<T> xf(x.clone(), true), xu(x.clone(), true);
    Variable<T> f1 = dropout_max_pool2d(xf, 0.3, s1, ids.data(), pool, pool, stride, stride);
    Variable<T> f2 = dropout_max_pool2d(xf, 0.5, s2, ids.data(), pool, pool, stride, stride);
    Variable<T> u1 = max_pool2d(dropout(xu, 0.3, s1, ids.data()), pool, pool, stride, stride);
    Variable<T> u2 = max_pool2d(dropout(xu, 0.5, s2, ids.data()), pool, pool, stride, stride);
    for (std::int64_t i = 0; i < f1.value().numel(); ++i) {
        REQUIRE(same_bits_or_nan(f1.value()[i], u1.value()[i]));
        REQUIRE(same_bits_or_nan(f2.value()[i], u2.value()[i]));
    }
    add(sum(mul(f1, c)), sum(mul(f2, c))).backward();
    add(sum(mul(u1, c)), sum(mul(u2, c))).backward();
    for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(same_bits_or_nan(xf.grad()[i], xu.grad()[i]));
}

}  // namespace

TEST_CASE("dropout_max_pool2d gives the values and gradients of dropout then max_pool2d, bit for bit") {
    check_dropout_pool_fusion<double>(Shape{3, 2, 6, 6}, 2, 2);
    check_dropout_pool_fusion<float>(Shape{3, 2, 6, 6}, 2, 2);
    check_dropout_pool_fusion<float>(Shape{2, 3, 7, 9}, 2, 2);   // odd planes: a row and column in no window
    check_dropout_pool_fusion<double>(Shape{2, 3, 7, 9}, 3, 3);  // the generic window loop
    check_dropout_pool_fusion<float>(Shape{2, 2, 8, 8}, 2, 3);   // gaps between windows
    check_dropout_pool_fusion<float>(Shape{64, 4, 14, 14}, 2, 2);  // parallel, several decision chunks per row
}

TEST_CASE("dropout_max_pool2d: gradcheck, thread-count independence, bad arguments") {
    const RandomStream stream(1, Purpose::dropout, 0, 0);
    std::vector<std::int64_t> ids{4, 9};
    Tensor<double> x(Shape{2, 2, 4, 6});
    fill_uniform(x, RandomStream(5, Purpose::user), -1, 1);
    const auto r = gradcheck(
        [&](const std::vector<Variable<double>>& v) { return dropout_max_pool2d(v[0], 0.4, stream, ids.data(), 2, 2, 2, 2); },
        {x});
    CHECK_MESSAGE(r.ok, r.message);

    Tensor<float> big(Shape{64, 8, 14, 14});
    fill_uniform(big, RandomStream(6, Purpose::user), -1, 1);
    std::vector<std::int64_t> many;
    for (std::int64_t i = 0; i < 64; ++i) many.push_back(7 * i);
    const int before = num_threads();
    std::vector<std::vector<float>> results;
    for (int t : {1, 2}) {
        set_num_threads(t);
        Variable<float> v(big, true);
        Variable<float> y = dropout_max_pool2d(v, 0.3, stream, many.data(), 2, 2, 2, 2);
        sum(y).backward();
        results.push_back(y.value().to_vector());
        results.push_back(v.grad().to_vector());
    }
    set_num_threads(before);
    CHECK(results[0] == results[2]);
    CHECK(results[1] == results[3]);

    Variable<double> v(x);
    CHECK_THROWS_WITH_AS(dropout_max_pool2d(v, 0.3, stream, ids.data(), 2, 2, 1, 1),
                         doctest::Contains("overlapping windows (pool 2x2, stride 1x1)"), Error);
    CHECK_THROWS_WITH_AS(dropout_max_pool2d(v, 0.0, stream, ids.data(), 2, 2, 2, 2), doctest::Contains("rate 0"), Error);
    CHECK_THROWS_WITH_AS(dropout_max_pool2d(v, 0.3, stream, static_cast<const std::int64_t*>(nullptr), 2, 2, 2, 2),
                         doctest::Contains("sample indices"), Error);
    CHECK_THROWS_WITH_AS(dropout_max_pool2d(Variable<double>(Tensor<double>(Shape{2, 48})), 0.3, stream, ids.data(), 2, 2,
                                            2, 2),
                         doctest::Contains("[N, C, H, W], got [2, 48]"), Error);
}

// ---- batch normalisation ----

TEST_CASE("batch_norm: batch statistics by hand, returned for the running averages") {
    // Channel 0 holds 1, 3, 5, 7 (mean 4, biased variance 5), channel 1 holds 2, 2, 2, 6 (mean 3, variance 3).
    Variable<double> x(Tensor<double>::from({2, 2, 1, 2}, {1, 3, 2, 2, 5, 7, 2, 6}), true);
    Variable<double> gamma(Tensor<double>::from({2}, {2, 0.5}), true), beta(Tensor<double>::from({2}, {1, -1}), true);
    BatchStats stats;
    const double eps = 1e-3;
    Variable<double> y = batch_norm(x, gamma, beta, eps, &stats);
    CHECK(stats.count == 4);
    CHECK(stats.mean.to_vector() == std::vector<double>{4, 3});
    CHECK(stats.variance.to_vector() == std::vector<double>{5, 3});
    CHECK(y.value()(0, 0, 0, 0) == doctest::Approx((1 - 4) / std::sqrt(5 + eps) * 2 + 1));
    CHECK(y.value()(1, 1, 0, 1) == doctest::Approx((6 - 3) / std::sqrt(3 + eps) * 0.5 - 1));
    // d/dbeta of sum(y) = values per channel; d/dgamma = sum of xhat = 0; dx = 0 (y's sum is constant in x).
    sum(y).backward();
    CHECK(beta.grad().to_vector() == std::vector<double>{4, 4});
    CHECK(gamma.grad()[0] == doctest::Approx(0).epsilon(1e-12));
    for (double g : x.grad()) CHECK(g == doctest::Approx(0).epsilon(1e-12));
}

TEST_CASE("batch_norm: the variance of a channel with a large mean stays exact") {
    // E[x^2] - E[x]^2 would lose every digit here; deviations about the mean do not.
    Variable<double> x(Tensor<double>::from({4, 1}, {1e9, 1e9 + 1, 1e9 + 2, 1e9 + 3}));
    BatchStats stats;
    batch_norm(x, Variable<double>(), Variable<double>(), 0.0, &stats);
    CHECK(stats.variance[0] == 1.25);
    Variable<float> xf(Tensor<float>::from({4, 1}, {1000.f, 1000.5f, 1001.f, 1001.5f}));
    const Variable<float> yf = batch_norm(xf, Variable<float>(), Variable<float>(), 0.0, &stats);
    CHECK(stats.variance[0] == 0.3125);
    CHECK(yf.value()[0] == doctest::Approx(-0.75 / std::sqrt(0.3125)).epsilon(1e-6));
}

TEST_CASE("batch_norm in inference mode is an affine map with the running statistics") {
    Variable<double> x(Tensor<double>::from({2, 2}, {1, 2, 3, 4}), true);
    Variable<double> gamma(Tensor<double>::from({2}, {2, 3}), true);
    const Tensor<double> mean = Tensor<double>::from({2}, {1, -1}), var = Tensor<double>::from({2}, {3, 8});
    Variable<double> y = batch_norm_inference(x, gamma, Variable<double>(), mean, var, 1.0);
    CHECK(y.value().to_vector() == std::vector<double>{0, 3, 2, 5});  // (x - m) / sqrt(v + 1) * gamma
    y.backward(Tensor<double>::from({2, 2}, {1, 1, 1, 2}));
    CHECK(x.grad().to_vector() == std::vector<double>{1, 1, 1, 2});   // gamma / sqrt(v + 1) = 1, 1
    // sum dy * xhat: xhat = (0, 1) in channel 0 and (1, 5/3) in channel 1.
    CHECK(gamma.grad()[0] == doctest::Approx(1));
    CHECK(gamma.grad()[1] == doctest::Approx(1 + 2 * 5.0 / 3));
}

TEST_CASE("batch_norm: a NaN spoils only its own channel") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Variable<double> x(Tensor<double>::from({3, 2}, {1, 1, nan, 2, 3, 4}));
    const Variable<double> y = batch_norm(x, Variable<double>(), Variable<double>(), 1e-3);
    for (std::int64_t n = 0; n < 3; ++n) {
        CHECK(std::isnan(y.value()(n, 0)));
        CHECK(std::isfinite(y.value()(n, 1)));
    }
}

TEST_CASE("batch_norm rejects mismatched channels, one value per channel and bad epsilon") {
    Variable<float> x(Tensor<float>(Shape{2, 3, 2, 2}));
    Variable<float> g4(Tensor<float>(Shape{4})), g3(Tensor<float>(Shape{3}));
    CHECK_THROWS_WITH_AS(batch_norm(x, g4, g3, 1e-3),
                         doctest::Contains("batch_norm: gamma of shape [4] for 3 channels of input [2, 3, 2, 2]"), Error);
    CHECK_THROWS_WITH_AS(batch_norm(x, g3, g4, 1e-3), doctest::Contains("batch_norm: beta of shape [4]"), Error);
    CHECK_THROWS_WITH_AS(batch_norm(Variable<float>(Tensor<float>(Shape{1, 3})), g3, g3, 1e-3),
                         doctest::Contains("batch_norm: expected more than 1 value per channel when training, "
                                           "got input [1, 3]"),
                         Error);
    CHECK_THROWS_WITH_AS(batch_norm(Variable<float>(Tensor<float>(Shape{1, 3, 1, 1})), g3, g3, 1e-3),
                         doctest::Contains("more than 1 value per channel"), Error);
    CHECK_THROWS_WITH_AS(batch_norm(x, g3, g3, -1.0), doctest::Contains("batch_norm: epsilon -1 must be finite and >= 0"),
                         Error);
    CHECK_THROWS_WITH_AS(batch_norm(x, g3, g3, std::numeric_limits<double>::quiet_NaN()),
                         doctest::Contains("must be finite and >= 0"), Error);
    CHECK_THROWS_WITH_AS(batch_norm(Variable<float>(Tensor<float>(Shape{6})), g3, g3, 1e-3),
                         doctest::Contains("batch_norm: input must be [N, C] or [N, C, H, W], got [6]"), Error);
    const Tensor<float> m3(Shape{3}), m2(Shape{2});
    CHECK_THROWS_WITH_AS(batch_norm_inference(x, g3, g3, m3, m2, 1e-3),
                         doctest::Contains("batch_norm_inference: running mean [3] and variance [2] must both be [3]"), Error);
    CHECK_THROWS_WITH_AS(batch_norm_inference(x, g3, g3, m3, Tensor<float>::full(Shape{3}, -1.f), 1e-3),
                         doctest::Contains("running variance -1 of channel 0 is negative"), Error);
    CHECK_THROWS_WITH_AS(batch_norm_inference(x, g4, g3, m3, m3, 1e-3), doctest::Contains("batch_norm_inference: gamma"), Error);
}

namespace {

// An in-process stand-in for an allreduce between two ranks: each call blocks until both have
// contributed, then both get the sum. Rounds alternate between two buffers, so a rank that
// starts the next round cannot overwrite a sum the other has not read yet.
class TwoRankSum {
public:
    void sum(double* values, std::int64_t count) {
        std::unique_lock<std::mutex> lock(mutex_);
        const int round = round_;
        std::vector<double>& acc = acc_[round % 2];
        if (arrived_ == 0) acc.assign(values, values + count);
        else for (std::int64_t i = 0; i < count; ++i) acc[static_cast<std::size_t>(i)] += values[i];
        if (++arrived_ == 2) {
            arrived_ = 0;
            ++round_;
            done_.notify_all();
        } else {
            done_.wait(lock, [&] { return round_ != round; });
        }
        std::copy(acc.begin(), acc.end(), values);
    }

private:
    std::mutex mutex_;
    std::condition_variable done_;
    std::vector<double> acc_[2];
    int arrived_ = 0, round_ = 0;
};

}  // namespace

TEST_CASE("batch_norm with a reducer: two ranks normalise with the statistics of their joint batch") {
    Tensor<double> full(Shape{5, 2, 2, 3}), dy(Shape{5, 2, 2, 3});
    fill_uniform(full, RandomStream(11, Purpose::user), -2, 3);
    fill_uniform(dy, RandomStream(12, Purpose::user), -1, 1);
    const Tensor<double> gamma_value = Tensor<double>::from({2}, {1.5, 0.7});
    const Tensor<double> beta_value = Tensor<double>::from({2}, {0.1, -0.3});
    const std::int64_t per_sample = 12;
    // One process with all five samples.
    Variable<double> x(full.clone(), true), g(gamma_value.clone(), true), b(beta_value.clone(), true);
    BatchStats whole;
    Variable<double> y = batch_norm(x, g, b, 1e-3, &whole);
    y.backward(dy);
    // Rank 0 gets samples 0-1, rank 1 samples 2-4 (unequal shares, as the last batch can give).
    TwoRankSum channel;
    const ChannelSumReducer reducer = [&](double* v, std::int64_t n) { channel.sum(v, n); };
    struct Rank { std::vector<double> y, dx, dgamma, dbeta; BatchStats stats; };
    Rank ranks[2];
    auto run = [&](int r) {
        const std::int64_t first = r == 0 ? 0 : 2, count = r == 0 ? 2 : 3;
        auto slice = [&](const Tensor<double>& t) {
            return Tensor<double>::from(Shape{count, 2, 2, 3}, t.data() + first * per_sample,
                                        static_cast<std::size_t>(count * per_sample));
        };
        Variable<double> xr(slice(full), true), gr(gamma_value.clone(), true), br(beta_value.clone(), true);
        Variable<double> yr = batch_norm(xr, gr, br, 1e-3, &ranks[r].stats, &reducer);
        yr.backward(slice(dy));
        ranks[r].y = yr.value().to_vector();
        ranks[r].dx = xr.grad().to_vector();
        ranks[r].dgamma = gr.grad().to_vector();
        ranks[r].dbeta = br.grad().to_vector();
    };
    std::thread other(run, 1);
    run(0);
    other.join();
    for (int r = 0; r < 2; ++r) {
        CAPTURE(r);
        CHECK(ranks[r].stats.count == 30);  // 5 samples of 2x3 values
        for (std::int64_t c = 0; c < 2; ++c) {
            CHECK(ranks[r].stats.mean[c] == doctest::Approx(whole.mean[c]).epsilon(1e-12));
            CHECK(ranks[r].stats.variance[c] == doctest::Approx(whole.variance[c]).epsilon(1e-12));
        }
        const std::int64_t first = r == 0 ? 0 : 2 * per_sample;
        for (std::size_t i = 0; i < ranks[r].y.size(); ++i) {
            REQUIRE(ranks[r].y[i] == doctest::Approx(y.value()[first + static_cast<std::int64_t>(i)]).epsilon(1e-12));
            REQUIRE(ranks[r].dx[i] == doctest::Approx(x.grad()[first + static_cast<std::int64_t>(i)]).epsilon(1e-9));
        }
    }
    // Parameter gradients stay per rank (the gradient averager sums them afterwards).
    for (std::int64_t c = 0; c < 2; ++c) {
        CHECK(ranks[0].dgamma[c] + ranks[1].dgamma[c] == doctest::Approx(g.grad()[c]).epsilon(1e-12));
        CHECK(ranks[0].dbeta[c] + ranks[1].dbeta[c] == doctest::Approx(b.grad()[c]).epsilon(1e-12));
    }
    // One sample per rank is enough when the ranks together have more than one value per channel.
    TwoRankSum pair;
    const ChannelSumReducer pair_reducer = [&](double* v, std::int64_t n) { pair.sum(v, n); };
    BatchStats single;
    const Variable<double> none;
    std::thread peer([&] {
        batch_norm(Variable<double>(Tensor<double>::from({1, 1}, {3.0})), none, none, 0.0, nullptr, &pair_reducer);
    });
    batch_norm(Variable<double>(Tensor<double>::from({1, 1}, {1.0})), none, none, 0.0, &single, &pair_reducer);
    peer.join();
    CHECK(single.count == 2);
    CHECK(single.mean[0] == 2);
    CHECK(single.variance[0] == 1);
}

// ---- element-wise activations ----

TEST_CASE("activations stay finite and exact for large |x|") {
    Variable<float> x(Tensor<float>::from({1, 4}, {-1000.f, -100.f, 100.f, 1000.f}), true);
    const Variable<float> sp = softplus(x);
    CHECK(sp.value()[0] == 0.f);
    CHECK(sp.value()[1] == doctest::Approx(std::exp(-100.0)).epsilon(1e-5));  // log1p keeps the tiny value
    CHECK(sp.value()[2] == 100.f);
    CHECK(sp.value()[3] == 1000.f);
    CHECK(sigmoid(x).value().to_vector() == std::vector<float>{0.f, std::exp(-100.f), 1.f, 1.f});
    const Variable<float> s = silu(x);
    CHECK(s.value()[0] == 0.f);
    CHECK(s.value()[3] == 1000.f);
    // Far out the tanh GELU's derivative is 0 or 1, not 0 * inf.
    Variable<float> huge(Tensor<float>::from({1, 2}, {-1e30f, 1e30f}), true);
    Variable<float> g = gelu(huge, true);
    CHECK(g.value().to_vector() == std::vector<float>{0.f, 1e30f});
    g.backward(Tensor<float>::full(Shape{1, 2}, 1.f));
    CHECK(huge.grad().to_vector() == std::vector<float>{0.f, 1.f});
    for (auto* op : {&softplus<float>, &sigmoid<float>, &silu<float>, &tanh<float>}) {
        Variable<float> v(x.value().clone(), true);
        op(v).backward(Tensor<float>::full(Shape{1, 4}, 1.f));
        for (float d : v.grad()) CHECK(std::isfinite(d));
    }
}

TEST_CASE("activations at 0, by hand, and NaN propagation") {
    Variable<double> x(Tensor<double>::from({3}, {0, -2, 1}), true);
    // PyTorch's convention at 0: the negative branch's slope.
    Variable<double> y = leaky_relu(x, 0.1);
    CHECK(y.value().to_vector() == std::vector<double>{0, -0.2, 1});
    y.backward(Tensor<double>::full(Shape{3}, 1.0));
    CHECK(x.grad().to_vector() == std::vector<double>{0.1, 0.1, 1});
    Variable<double> z(Tensor<double>::from({3}, {0, -2, 1}), true);
    Variable<double> e = elu(z, 2.0);
    CHECK(e.value()[1] == doctest::Approx(2 * (std::exp(-2.0) - 1)));
    e.backward(Tensor<double>::full(Shape{3}, 1.0));
    CHECK(z.grad().to_vector() == std::vector<double>{2, 2 * std::exp(-2.0), 1});
    CHECK(gelu(Variable<double>(Tensor<double>::from({1}, {1.0}))).value()[0] ==
          doctest::Approx(0.5 * (1 + std::erf(1 / std::sqrt(2.0)))));

    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Variable<double> n(Tensor<double>::from({1}, {nan}));
    for (const auto& f : std::vector<std::function<Variable<double>(const Variable<double>&)>>{
             [](const Variable<double>& v) { return leaky_relu(v, 0.3); }, [](const Variable<double>& v) { return elu(v); },
             [](const Variable<double>& v) { return gelu(v); }, [](const Variable<double>& v) { return gelu(v, true); },
             silu<double>, sigmoid<double>, tanh<double>, softplus<double>})
        CHECK(std::isnan(f(n).value()[0]));
    CHECK_THROWS_WITH_AS(leaky_relu(n, nan), doctest::Contains("leaky_relu: alpha nan must be finite"), Error);
}

// ---- pooling with padding, average and global pooling ----

namespace {
Pool2dArgs pool_args(std::int64_t size, std::int64_t stride, std::int64_t pad_top, std::int64_t pad_bottom,
                     std::int64_t pad_left, std::int64_t pad_right, bool include_pad = false) {
    Pool2dArgs a;
    a.pool_h = a.pool_w = size;
    a.stride_h = a.stride_w = stride;
    a.pad_top = pad_top, a.pad_bottom = pad_bottom, a.pad_left = pad_left, a.pad_right = pad_right;
    a.count_include_pad = include_pad;
    return a;
}
}  // namespace

TEST_CASE("avg_pool2d 'same' by hand: padded cells in the divisor or not") {
    Variable<double> x(Tensor<double>::from({1, 1, 2, 2}, {1, 2, 3, 4}), true);
    Variable<double> keras = avg_pool2d(x, pool_args(2, 1, 0, 1, 0, 1));
    CHECK(keras.value().to_vector() == std::vector<double>{2.5, 3, 3.5, 4});
    CHECK(avg_pool2d(x, pool_args(2, 1, 0, 1, 0, 1, true)).value().to_vector() ==
          std::vector<double>{2.5, 1.5, 1.75, 1});
    // Cell (1, 1) is in all four windows, with 4, 2, 2 and 1 input cells.
    keras.backward(Tensor<double>::full(Shape{1, 1, 2, 2}, 1.0));
    CHECK(x.grad().to_vector() == std::vector<double>{0.25, 0.25 + 0.5, 0.25 + 0.5, 0.25 + 0.5 + 0.5 + 1});
}

TEST_CASE("max_pool2d with padding: padded cells never win, ties go to the first") {
    Variable<double> x(Tensor<double>::from({1, 1, 2, 2}, {-5, -6, -7, -8}), true);
    Variable<double> y = max_pool2d(x, pool_args(2, 1, 1, 1, 1, 1));
    CHECK(y.value().to_vector() == std::vector<double>{-5, -5, -6, -5, -5, -6, -7, -7, -8});
    Variable<double> t(Tensor<double>::from({1, 1, 2, 2}, {3, 3, 3, 3}), true);
    Variable<double> m = max_pool2d(t, pool_args(2, 1, 0, 1, 0, 1));
    m.backward(Tensor<double>::full(Shape{1, 1, 2, 2}, 1.0));
    CHECK(t.grad().to_vector() == std::vector<double>{1, 1, 1, 1});  // each window's first cell is its own
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Variable<double> n(Tensor<double>::from({1, 1, 2, 2}, {1, nan, 3, 4}));
    CHECK(std::isnan(max_pool2d(n, pool_args(2, 2, 1, 1, 1, 1)).value()[1]));
    CHECK(std::isnan(avg_pool2d(n, pool_args(2, 2, 1, 1, 1, 1)).value()[1]));
}

TEST_CASE("global pooling by hand: mean, first maximum, NaN") {
    Variable<double> x(Tensor<double>::from({1, 2, 2, 2}, {1, 7, 7, 3, -1, -2, -3, -4}), true);
    Variable<double> avg = global_avg_pool2d(x);
    CHECK(avg.value().to_vector() == std::vector<double>{4.5, -2.5});
    Variable<double> mx = global_max_pool2d(x);
    CHECK(mx.shape() == Shape{1, 2});
    CHECK(mx.value().to_vector() == std::vector<double>{7, -1});
    add(avg, mx).backward(Tensor<double>::from({1, 2}, {4, 8}));
    CHECK(x.grad().to_vector() == std::vector<double>{1, 5, 1, 1, 10, 2, 2, 2});
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Variable<double> n(Tensor<double>::from({1, 1, 1, 3}, {1, nan, 3}));
    CHECK(std::isnan(global_max_pool2d(n).value()[0]));
    CHECK(std::isnan(global_avg_pool2d(n).value()[0]));
}

TEST_CASE("pooling ops reject padding as large as the window and inputs that are not NCHW") {
    Variable<float> x(Tensor<float>(Shape{1, 2, 5, 5}));
    CHECK_THROWS_WITH_AS(max_pool2d(x, pool_args(2, 2, 2, 0, 0, 0)),
                         doctest::Contains("max_pool2d: padding (top 2, bottom 0, left 0, right 0) must be smaller than "
                                           "the pool size 2x2"),
                         Error);
    CHECK_THROWS_WITH_AS(avg_pool2d(x, pool_args(3, 1, 0, 0, 0, 3)), doctest::Contains("avg_pool2d: padding"), Error);
    CHECK_THROWS_WITH_AS(avg_pool2d(x, pool_args(7, 1, 0, 0, 0, 0)),
                         doctest::Contains("avg_pool2d: kernel 7x7 larger than the padded input 5x5"), Error);
    CHECK_THROWS_WITH_AS(avg_pool2d(x, pool_args(2, 0, 0, 0, 0, 0)), doctest::Contains("stride 0x0 must be positive"),
                         Error);
    Variable<float> flat(Tensor<float>(Shape{2, 8}));
    CHECK_THROWS_WITH_AS(avg_pool2d(flat, Pool2dArgs{}), doctest::Contains("avg_pool2d: input must be [N, C, H, W], got [2, 8]"),
                         Error);
    CHECK_THROWS_WITH_AS(global_avg_pool2d(flat), doctest::Contains("global_avg_pool2d: input must be [N, C, H, W]"), Error);
    CHECK_THROWS_WITH_AS(global_max_pool2d(Variable<float>(Tensor<float>(Shape{1, 2, 0, 3}))),
                         doctest::Contains("global_max_pool2d: empty planes in input [1, 2, 0, 3]"), Error);
}

// ---- add_n and concatenate ----

TEST_CASE("add_n: one node for any number of inputs, repeated inputs get every share") {
    Variable<double> a(Tensor<double>::from({2}, {1, 2}), true), b(Tensor<double>::from({2}, {10, 20}), true);
    Variable<double> y = add_n(std::vector<Variable<double>>{a, b, a});
    CHECK(y.value().to_vector() == std::vector<double>{12, 24});
    CHECK(y.node()->num_inputs == 3);
    y.backward(Tensor<double>::from({2}, {1, 3}));
    CHECK(a.grad().to_vector() == std::vector<double>{2, 6});
    CHECK(b.grad().to_vector() == std::vector<double>{1, 3});
    // More inputs than the kernel's pointers held in place.
    std::vector<Variable<double>> many;
    for (int i = 0; i < 20; ++i) many.emplace_back(Tensor<double>::full(Shape{3}, i), true);
    Variable<double> total = add_n(many);
    CHECK(total.value().to_vector() == std::vector<double>{190, 190, 190});
    sum(total).backward();
    CHECK(many[19].grad().to_vector() == std::vector<double>{1, 1, 1});
    CHECK(add_n(std::vector<Variable<double>>{a}).value().to_vector() == a.value().to_vector());
    CHECK_THROWS_WITH_AS(add_n(std::vector<Variable<double>>{}), doctest::Contains("add_n: no inputs"), Error);
    CHECK_THROWS_WITH_AS(add_n(std::vector<Variable<double>>{a, Variable<double>(Tensor<double>(Shape{3}))}),
                         doctest::Contains("add_n: input 1 has shape [3], input 0 has [2]"), Error);
}

TEST_CASE("concatenate along channels by hand, and its shape errors") {
    Variable<double> a(Tensor<double>::from({1, 1, 1, 2}, {1, 2}), true);
    Variable<double> b(Tensor<double>::from({1, 2, 1, 2}, {3, 4, 5, 6}), true);
    Variable<double> y = concatenate(std::vector<Variable<double>>{b, a});
    CHECK(y.shape() == Shape{1, 3, 1, 2});
    CHECK(y.value().to_vector() == std::vector<double>{3, 4, 5, 6, 1, 2});
    y.backward(Tensor<double>::from({1, 3, 1, 2}, {10, 20, 30, 40, 50, 60}));
    CHECK(a.grad().to_vector() == std::vector<double>{50, 60});
    CHECK(b.grad().to_vector() == std::vector<double>{10, 20, 30, 40});
    CHECK_THROWS_WITH_AS(concatenate(std::vector<Variable<double>>{a, Variable<double>(Tensor<double>(Shape{1, 1, 2, 2}))}),
                         doctest::Contains("concatenate: input 1 has shape [1, 1, 2, 2], input 0 has [1, 1, 1, 2] (they "
                                           "may differ only on axis 1)"),
                         Error);
    CHECK_THROWS_WITH_AS(concatenate(std::vector<Variable<double>>{a}, 4),
                         doctest::Contains("concatenate: axis 4 outside the 4 axes of [1, 1, 1, 2]"), Error);
    CHECK_THROWS_WITH_AS(concatenate(std::vector<Variable<double>>{a, Variable<double>(Tensor<double>(Shape{1, 2}))}),
                         doctest::Contains("input 1 has shape [1, 2]"), Error);
}

// ---- spatial dropout ----

TEST_CASE("spatial_dropout2d drops whole channels with dropout's mask of [N, C]") {
    const std::int64_t n = 8, c = 2000, h = 2, w = 3;
    Tensor<double> x(Shape{n, c, h, w});
    fill_uniform(x, RandomStream(21, Purpose::user), 0.5, 1.5);  // never 0, so a dropped value shows
    const RandomStream stream(42, Purpose::dropout, 3, 17);
    std::vector<std::int64_t> ids{5, 6, 7, 8, 9, 10, 11, 12};
    const Variable<double> y = spatial_dropout2d(Variable<double>(x), 0.3, stream, ids.data());
    const Variable<double> channel_mask =
        dropout(Variable<double>(Tensor<double>::full(Shape{n, c}, 1.0)), 0.3, stream, ids.data());
    std::int64_t kept = 0;
    for (std::int64_t p = 0; p < n * c; ++p) {
        const double m = channel_mask.value()[p];
        REQUIRE((m == 0.0 || m == doctest::Approx(1 / 0.7)));
        kept += m != 0.0;
        for (std::int64_t i = 0; i < h * w; ++i) REQUIRE(y.value()[p * h * w + i] == x[p * h * w + i] * m);
    }
    CHECK(static_cast<double>(kept) / static_cast<double>(n * c) == doctest::Approx(0.7).epsilon(0.02));
    // A sample's mask does not depend on its position in the batch; another step draws anew.
    std::vector<std::int64_t> one{9};
    Tensor<double> sample =
        Tensor<double>::from(Shape{1, c, h, w}, x.data() + 4 * c * h * w, static_cast<std::size_t>(c * h * w));
    const auto alone = spatial_dropout2d(Variable<double>(sample), 0.3, stream, one.data()).value().to_vector();
    for (std::int64_t i = 0; i < c * h * w; ++i) REQUIRE(alone[static_cast<std::size_t>(i)] == y.value()[4 * c * h * w + i]);
    CHECK(spatial_dropout2d(Variable<double>(sample), 0.3, RandomStream(42, Purpose::dropout, 3, 18), one.data())
              .value()
              .to_vector() != alone);
    // Rate 0 is the identity.
    CHECK(spatial_dropout2d(Variable<double>(x), 0.0, stream, ids.data()).value().to_vector() == x.to_vector());
}

TEST_CASE("spatial_dropout2d: gradient through the kept channels, thread-count independence, bad arguments") {
    const RandomStream stream(1, Purpose::dropout, 0, 0);
    std::vector<std::int64_t> ids{4, 9};
    Tensor<double> x(Shape{2, 6, 2, 3});
    fill_uniform(x, RandomStream(5, Purpose::user), -1, 1);
    const auto r = gradcheck(
        [&](const std::vector<Variable<double>>& v) { return spatial_dropout2d(v[0], 0.4, stream, ids.data()); }, {x});
    CHECK_MESSAGE(r.ok, r.message);

    Tensor<float> big(Shape{64, 32, 8, 8});
    fill_uniform(big, RandomStream(6, Purpose::user), -1, 1);
    std::vector<std::int64_t> many;
    for (std::int64_t i = 0; i < 64; ++i) many.push_back(3 * i);
    const int before = num_threads();
    std::vector<std::vector<float>> results;
    for (int t : {1, 2}) {
        set_num_threads(t);
        Variable<float> v(big, true);
        Variable<float> y = spatial_dropout2d(v, 0.3, stream, many.data());
        sum(y).backward();
        results.push_back(y.value().to_vector());
        results.push_back(v.grad().to_vector());
    }
    set_num_threads(before);
    CHECK(results[0] == results[2]);
    CHECK(results[1] == results[3]);

    Variable<double> v(x);
    CHECK_THROWS_WITH_AS(spatial_dropout2d(v, 1.0, stream, ids.data()),
                         doctest::Contains("spatial_dropout2d: rate 1 outside [0, 1)"), Error);
    CHECK_THROWS_WITH_AS(spatial_dropout2d(v, 0.3, stream, static_cast<const std::int64_t*>(nullptr)),
                         doctest::Contains("sample indices"), Error);
    CHECK_THROWS_WITH_AS(spatial_dropout2d(Variable<double>(Tensor<double>(Shape{2, 6})), 0.3, stream, ids.data()),
                         doctest::Contains("spatial_dropout2d: input must be [N, C, H, W], got [2, 6]"), Error);
}

// ---- cross-entropy with label smoothing ----

TEST_CASE("label smoothing by hand: uniform logits, and smoothing 1 makes the labels irrelevant") {
    Variable<double> z(Tensor<double>(Shape{2, 4}), true);
    Variable<double> loss = softmax_cross_entropy(z, std::vector<std::int32_t>{1, 3}, 0.2);
    CHECK(loss.value()[0] == doctest::Approx(std::log(4.0)));
    loss.backward();
    // (p - t) / N with p = 1/4 and t = 0.8 + 0.05 on the label, 0.05 elsewhere.
    CHECK(z.grad()[1] == doctest::Approx((0.25 - 0.85) / 2));
    CHECK(z.grad()[0] == doctest::Approx((0.25 - 0.05) / 2));
    Variable<double> w(Tensor<double>::from({1, 3}, {1, 2, 3}));
    CHECK(softmax_cross_entropy(w, std::vector<std::int32_t>{0}, 1.0).value()[0] ==
          doctest::Approx(softmax_cross_entropy(w, std::vector<std::int32_t>{2}, 1.0).value()[0]));
    CHECK_THROWS_WITH_AS(softmax_cross_entropy(w, std::vector<std::int32_t>{0}, 1.5),
                         doctest::Contains("softmax_cross_entropy: label smoothing 1.5 outside [0, 1]"), Error);
}

TEST_CASE("categorical_cross_entropy of probabilities: rescaling and Keras' clipping by hand") {
    // Row [1, 1] rescales to [0.5, 0.5]: loss log 2; g = -1 / 0.5 on the label, then through the
    // rescaling dp = (g - sum g q) / sum p = (-2 + 1) / 2 and (0 + 1) / 2.
    Variable<double> p(Tensor<double>::from({1, 2}, {1, 1}), true);
    Variable<double> loss = categorical_cross_entropy(p, std::vector<std::int32_t>{0});
    CHECK(loss.value()[0] == doctest::Approx(std::log(2.0)));
    loss.backward();
    CHECK(p.grad().to_vector() == std::vector<double>{-0.5, 0.5});
    // A zero probability on the label costs -log(1e-7), finite, and clipped values pass no gradient.
    Variable<float> z(Tensor<float>::from({1, 2}, {0.f, 1.f}), true);
    Variable<float> clipped = categorical_cross_entropy(z, std::vector<std::int32_t>{0});
    CHECK(clipped.value()[0] == doctest::Approx(-std::log(1e-7)).epsilon(1e-6));
    clipped.backward();
    CHECK(z.grad().to_vector() == std::vector<float>{0.f, 0.f});
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(std::isnan(categorical_cross_entropy(Variable<double>(Tensor<double>::from({1, 2}, {nan, 1})),
                                               std::vector<std::int32_t>{1})
                         .value()[0]));
    Variable<double> q(Tensor<double>::full(Shape{2, 3}, 1.0));
    CHECK_THROWS_WITH_AS(categorical_cross_entropy(q, std::vector<std::int32_t>{0, 3}),
                         doctest::Contains("categorical_cross_entropy: label 3 of row 1 outside [0, 3)"), Error);
    CHECK_THROWS_WITH_AS(categorical_cross_entropy(q, std::vector<std::int32_t>{0}),
                         doctest::Contains("categorical_cross_entropy: 1 labels for 2 rows"), Error);
    CHECK_THROWS_WITH_AS(categorical_cross_entropy(q, Tensor<double>(Shape{2, 4})),
                         doctest::Contains("probabilities vs targets: shape mismatch [2, 3] vs [2, 4]"), Error);
    CHECK_THROWS_WITH_AS(categorical_cross_entropy(q, Tensor<double>(Shape{2, 3}), -1.0),
                         doctest::Contains("categorical_cross_entropy: epsilon -1 outside [0, 0.5)"), Error);
}

// ---- dilated and grouped convolution ----

TEST_CASE("conv2d with dilation 2 and a depthwise conv2d, by hand") {
    // x = 0..15 on a 4x4 plane; a 2x2 kernel with dilation 2 reads (r, c), (r, c+2), (r+2, c), (r+2, c+2).
    Tensor<double> xv(Shape{1, 1, 4, 4});
    for (std::int64_t i = 0; i < 16; ++i) xv[i] = static_cast<double>(i);
    Conv2dArgs a;
    a.dilation_h = a.dilation_w = 2;
    const Variable<double> w(Tensor<double>::from({1, 1, 2, 2}, {1, 10, 100, 1000}));
    const Variable<double> y = conv2d(Variable<double>(xv), w, Variable<double>(), a);
    REQUIRE(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.value()[0] == 0 + 10 * 2 + 100 * 8 + 1000 * 10);
    CHECK(y.value()[3] == 5 + 10 * 7 + 100 * 13 + 1000 * 15);
    // Depthwise: channel c only sees weight c.
    Variable<double> x2(Tensor<double>::from({1, 2, 1, 2}, {1, 2, 3, 4}), true);
    Variable<double> w2(Tensor<double>::from({2, 1, 1, 1}, {10, 100}), true);
    Conv2dArgs d;
    d.groups = 2;
    Variable<double> y2 = conv2d(x2, w2, Variable<double>(), d);
    CHECK(y2.value().to_vector() == std::vector<double>{10, 20, 300, 400});
    y2.backward(Tensor<double>::from({1, 2, 1, 2}, {1, 2, 3, 4}));
    CHECK(x2.grad().to_vector() == std::vector<double>{10, 20, 300, 400});
    CHECK(w2.grad().to_vector() == std::vector<double>{1 * 1 + 2 * 2, 3 * 3 + 4 * 4});
}

TEST_CASE("conv2d rejects groups and dilation that do not fit, and the fused op refuses them") {
    Variable<float> x(Tensor<float>(Shape{1, 4, 5, 5}));
    Conv2dArgs a;
    a.groups = 3;
    CHECK_THROWS_WITH_AS(conv2d(x, Variable<float>(Tensor<float>(Shape{3, 1, 3, 3})), Variable<float>(), a),
                         doctest::Contains("conv2d: input has 4 channels but weight [3, 1, 3, 3] with 3 group(s) expects 3"),
                         Error);
    a.groups = 2;
    CHECK_THROWS_WITH_AS(conv2d(x, Variable<float>(Tensor<float>(Shape{3, 2, 3, 3})), Variable<float>(), a),
                         doctest::Contains("conv2d: 3 output channels of weight [3, 2, 3, 3] do not split into 2 groups"),
                         Error);
    a.groups = 0;
    CHECK_THROWS_WITH_AS(conv2d(x, Variable<float>(Tensor<float>(Shape{4, 4, 3, 3})), Variable<float>(), a),
                         doctest::Contains("conv2d: groups 0 must be positive"), Error);
    Conv2dArgs b;
    b.dilation_h = 3;
    CHECK_THROWS_WITH_AS(conv2d(x, Variable<float>(Tensor<float>(Shape{2, 4, 3, 3})), Variable<float>(), b),
                         doctest::Contains("conv2d: kernel 7x3 larger than the padded input 5x5"), Error);
    b.dilation_h = 0;
    CHECK_THROWS_WITH_AS(conv2d(x, Variable<float>(Tensor<float>(Shape{2, 4, 3, 3})), Variable<float>(), b),
                         doctest::Contains("conv2d: dilation 0x1 must be positive"), Error);
    Conv2dArgs c;
    c.dilation_w = 2;
    c.relu = true;
    CHECK_THROWS_WITH_AS(conv2d_relu_max_pool2d(x, Variable<float>(Tensor<float>(Shape{2, 4, 2, 2})), Variable<float>(), c,
                                                2, 2, 2, 2),
                         doctest::Contains("conv2d_relu_max_pool2d: dilation 1x2 and groups 1 are not fused"), Error);
}

}  // namespace test_ops
