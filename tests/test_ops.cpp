// Every differentiable op, run the same way: forward and gradients against PyTorch fixtures
// (double and float), and a finite-difference gradcheck in double. Plus hand-computed cases.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cnnlite/autograd/gradcheck.hpp"
#include "cnnlite/core/init.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/ops/dropout.hpp"
#include "cnnlite/ops/dropout_max_pool2d.hpp"
#include "op_cases.hpp"

namespace test_ops {

using namespace cnnlite;
using cnnlite::testing::op_cases;

namespace {

nlohmann::json load_fixtures() {
    const std::string path = std::string(CNNLITE_SOURCE_DIR) + "/tests/fixtures/ops/op_fixtures.json";
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

template <class T>
double max_abs_diff(const Tensor<T>& got, const std::vector<double>& want) {
    REQUIRE(static_cast<std::int64_t>(want.size()) == got.numel());
    double worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(got[static_cast<std::int64_t>(i)]) - want[i]));
    return worst;
}

// Forward and backward of one case in scalar type T against the fixture.
template <class T>
void check_against_fixture(const cnnlite::testing::OpCase<T>& op, const nlohmann::json& fx, double tol) {
    std::vector<Variable<T>> inputs;
    for (const auto& in : fx["inputs"]) inputs.emplace_back(to_tensor<T>(in["shape"], in["data"]), true);
    Variable<T> out = op.run(inputs);
    CHECK(out.shape().to_vector() == fx["output"]["shape"].get<std::vector<std::int64_t>>());
    CHECK_MESSAGE(max_abs_diff(out.value(), fx["output"]["data"].get<std::vector<double>>()) <= tol,
                  op.name, ": forward differs from PyTorch");
    out.backward(to_tensor<T>(fx["output"]["shape"], fx["grad_output"]));
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const auto& want = fx["grads"][i];
        if (want.is_null()) continue;
        REQUIRE_MESSAGE(inputs[i].has_grad(), op.name, ": no gradient for input ", i);
        CHECK_MESSAGE(max_abs_diff(inputs[i].grad(), want.get<std::vector<double>>()) <= tol, op.name,
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

}  // namespace test_ops
