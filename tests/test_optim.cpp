// Optimisers: one step of each against values worked out by hand, several steps against
// torch.optim trajectories (tests/fixtures/optim), state round trips that continue bit for bit,
// hostile load_state input, skipped parameters, schedules, and thread-count independence; the
// training-recipe pieces (no-decay parameters, warm-up, one-cycle and piecewise schedules, the
// moving average of weights, gradient clipping) by hand and against PyTorch 2.x.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <nlohmann/json.hpp>

#include "cnnlite/kernels/optimizer.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/optim/clip.hpp"
#include "cnnlite/optim/ema.hpp"
#include "cnnlite/optim/optimizer.hpp"
#include "cnnlite/optim/schedule.hpp"
#include "cnnlite/optim/sgd.hpp"
#include "cnnlite/optim/weight_decay.hpp"
#include "source_dir.hpp"

namespace test_optim {

using cnnlite::Adam;
using cnnlite::AdamEpsilon;
using cnnlite::AdamOptions;
using cnnlite::AdamW;
using cnnlite::AdamWOptions;
using cnnlite::AveragedWeights;
using cnnlite::EmaOptions;
using cnnlite::Error;
using cnnlite::ExponentialMovingAverage;
using cnnlite::LearningRateSchedule;
using cnnlite::Optimizer;
using cnnlite::ScheduleUnit;
using cnnlite::SGD;
using cnnlite::SGDOptions;
using cnnlite::Shape;
using cnnlite::Tensor;
using cnnlite::Variable;

namespace {

template <class T>
Variable<T> parameter(const Shape& shape, const std::vector<T>& values) {
    return Variable<T>(Tensor<T>::from(shape, values), true);
}

template <class T>
void set_grad(Variable<T>& p, const std::vector<T>& values) {
    p.grad() = Tensor<T>::from(p.shape(), values);
}

// p = [1, -2, 0.5] with gradients g1 = [0.5, -1, 2], then g2 = [-0.5, 1, 1]: the hand cases.
template <class T>
Variable<T> hand_parameter() {
    return parameter<T>(Shape{3}, {T(1), T(-2), T(0.5)});
}
template <class T>
const std::vector<T> g1 = {T(0.5), T(-1), T(2)};
template <class T>
const std::vector<T> g2 = {T(-0.5), T(1), T(1)};

// Relative tolerance of the hand cases: a few roundings of the type.
template <class T>
double hand_eps() {
    return sizeof(T) == 4 ? 1e-6 : 1e-13;
}

template <class T>
void check_values(const Tensor<T>& t, const std::vector<double>& expected) {
    REQUIRE(t.numel() == static_cast<std::int64_t>(expected.size()));
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("element ", i);
        CHECK(static_cast<double>(t[static_cast<std::int64_t>(i)]) == doctest::Approx(expected[i]).epsilon(hand_eps<T>()));
    }
}

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One or two steps against hand arithmetic.

TEST_CASE_TEMPLATE("Adam with PyTorch's epsilon placement, one step by hand", T, float, double) {
    // lr 0.1, beta1 0.9, beta2 0.999, eps 1e-8, t = 1:
    //   m = 0.1 g, v = 0.001 g^2; 1 - beta1 = 0.1, 1 - beta2 = 0.001
    //   step = lr / 0.1 = 1;  denom = sqrt(v) / sqrt(0.001) + eps = |g| + 1e-8
    //   p -= 1 * 0.1 g / (|g| + 1e-8)
    //   p0 = 1    - 0.1 * 0.5 / 0.50000001 = 1 - 0.099999998    = 0.900000002
    //   p1 = -2   + 0.1 * 1   / 1.00000001 = -2 + 0.099999999   = -1.900000001
    //   p2 = 0.5  - 0.1 * 2   / 2.00000001 = 0.5 - 0.0999999995 = 0.4000000005
    auto p = hand_parameter<T>();
    AdamOptions o;
    o.learning_rate = 0.1;
    o.epsilon = 1e-8;
    o.epsilon_placement = AdamEpsilon::pytorch;
    Adam<T> adam({p}, o);
    set_grad(p, g1<T>);
    adam.step();
    check_values(p.value(), {0.900000002, -1.900000001, 0.4000000005});
    CHECK(adam.steps() == 1);
    CHECK(adam.parameter_steps(0) == 1);
}

TEST_CASE_TEMPLATE("Adam with Keras' epsilon placement (the default), two steps by hand", T, float, double) {
    // lr 0.1, beta1 0.9, beta2 0.999, eps 1e-7 (Keras' default).
    // t = 1: alpha = lr sqrt(1 - 0.999) / (1 - 0.9) = 0.1 * 0.0316227766 / 0.1 = 0.0316227766
    //   m = 0.1 g = [0.05, -0.1, 0.2];  v = 0.001 g^2 = [0.00025, 0.001, 0.004]
    //   sqrt(v) = [0.0158113883, 0.0316227766, 0.0632455532]
    //   p0 = 1 - 0.0316227766 * 0.05 / (0.0158113883 + 1e-7) = 1 - 0.0999993675 = 0.9000006325
    //   p1 = -2 + 0.0316227766 * 0.1 / (0.0316227766 + 1e-7) = -1.9000003162
    //   p2 = 0.5 - 0.0316227766 * 0.2 / (0.0632455532 + 1e-7) = 0.4000001581
    // (With PyTorch's placement and eps 1e-7 p0 would be 0.90000002: the placements differ.)
    // t = 2, g2 = [-0.5, 1, 1]: alpha = 0.1 sqrt(1 - 0.999^2) / (1 - 0.9^2) = 0.1 * 0.0447101778 / 0.19
    //   = 0.0235316725
    //   m = 0.9 m + 0.1 g2 = [-0.005, 0.01, 0.28];  v = 0.999 v + 0.001 g2^2 = [0.00049975, 0.001999, 0.004996]
    //   sqrt(v) = [0.0223550889, 0.0447101778, 0.0706823882]
    //   p0 = 0.9000006325 + 0.0235316725 * 0.005 / 0.0223551889 = 0.9052637668
    //   p1 = -1.9000003162 - 0.0235316725 * 0.01 / 0.0447102778 = -1.9052634623
    //   p2 = 0.4000001581 - 0.0235316725 * 0.28 / 0.0706824882 = 0.3067823261
    auto p = hand_parameter<T>();
    AdamOptions o;
    o.learning_rate = 0.1;
    Adam<T> adam({p}, o);
    CHECK(adam.epsilon() == 1e-7);
    CHECK(adam.epsilon_placement() == AdamEpsilon::keras);
    set_grad(p, g1<T>);
    adam.step();
    check_values(p.value(), {0.9000006324515321, -1.900000316226766, 0.400000158113633});
    set_grad(p, g2<T>);
    adam.step();
    check_values(p.value(), {0.90526376680293, -1.905263462349807, 0.30678232611517864});
}

TEST_CASE("Adam's defaults are Keras'") {
    auto p = hand_parameter<float>();
    Adam<float> adam({p});
    CHECK(adam.learning_rate() == 1e-3);
    CHECK(adam.beta1() == 0.9);
    CHECK(adam.beta2() == 0.999);
    CHECK(adam.epsilon() == 1e-7);
    CHECK(adam.epsilon_placement() == AdamEpsilon::keras);
    AdamW<float> adamw({p});
    CHECK(adamw.epsilon() == 1e-8);
    CHECK(adamw.weight_decay() == 1e-2);
    CHECK(adamw.epsilon_placement() == AdamEpsilon::pytorch);
}

TEST_CASE_TEMPLATE("AdamW decays the parameter directly, one step by hand", T, float, double) {
    // lr 0.1, weight decay 0.5, eps 1e-8, PyTorch placement: p = p (1 - 0.1 * 0.5) - 0.1 g / (|g| + 1e-8)
    //   p0 = 0.95   - 0.099999998   = 0.850000002
    //   p1 = -1.9   + 0.099999999   = -1.800000001
    //   p2 = 0.475  - 0.0999999995  = 0.3750000005
    auto p = hand_parameter<T>();
    AdamWOptions o;
    o.learning_rate = 0.1;
    o.weight_decay = 0.5;
    AdamW<T> adamw({p}, o);
    set_grad(p, g1<T>);
    adamw.step();
    check_values(p.value(), {0.850000002, -1.800000001, 0.3750000005});
    CHECK(adamw.name() == "adamw");
}

TEST_CASE_TEMPLATE("SGD with momentum, two steps by hand", T, float, double) {
    // lr 0.1, momentum 0.9. Step 1: buf = g1; p -= 0.1 g1 -> [0.95, -1.9, 0.3]
    // Step 2: buf = 0.9 g1 + g2 = [-0.05, 0.1, 2.8]; p -= 0.1 buf -> [0.955, -1.91, 0.02]
    auto p = hand_parameter<T>();
    SGDOptions o;
    o.learning_rate = 0.1;
    o.momentum = 0.9;
    SGD<T> sgd({p}, o);
    set_grad(p, g1<T>);
    sgd.step();
    check_values(p.value(), {0.95, -1.9, 0.3});
    set_grad(p, g2<T>);
    sgd.step();
    check_values(p.value(), {0.955, -1.91, 0.02});
}

TEST_CASE_TEMPLATE("SGD with Nesterov momentum, two steps by hand", T, float, double) {
    // lr 0.1, momentum 0.9. Step 1: buf = g1; d = g1 + 0.9 buf = 1.9 g1 = [0.95, -1.9, 3.8]
    //   p -= 0.1 d -> [0.905, -1.81, 0.12]
    // Step 2: buf = 0.9 g1 + g2 = [-0.05, 0.1, 2.8]; d = g2 + 0.9 buf = [-0.545, 1.09, 3.52]
    //   p -= 0.1 d -> [0.9595, -1.919, -0.232]
    auto p = hand_parameter<T>();
    SGDOptions o;
    o.learning_rate = 0.1;
    o.momentum = 0.9;
    o.nesterov = true;
    SGD<T> sgd({p}, o);
    set_grad(p, g1<T>);
    sgd.step();
    check_values(p.value(), {0.905, -1.81, 0.12});
    set_grad(p, g2<T>);
    sgd.step();
    check_values(p.value(), {0.9595, -1.919, -0.232});
}

TEST_CASE_TEMPLATE("SGD dampening spares the first step; plain SGD with weight decay", T, float, double) {
    SUBCASE("momentum 0.9, dampening 0.5") {
        // Step 1: buf = g1 (no dampening on the first step) -> p = [0.95, -1.9, 0.3]
        // Step 2: buf = 0.9 g1 + 0.5 g2 = [0.2, -0.4, 2.3] -> p = [0.93, -1.86, 0.07]
        auto p = hand_parameter<T>();
        SGDOptions o;
        o.learning_rate = 0.1;
        o.momentum = 0.9;
        o.dampening = 0.5;
        SGD<T> sgd({p}, o);
        set_grad(p, g1<T>);
        sgd.step();
        check_values(p.value(), {0.95, -1.9, 0.3});
        set_grad(p, g2<T>);
        sgd.step();
        check_values(p.value(), {0.93, -1.86, 0.07});
    }
    SUBCASE("no momentum, weight decay 0.1") {
        // d = g1 + 0.1 p = [0.6, -1.2, 2.05]; p -= 0.1 d -> [0.94, -1.88, 0.295]
        auto p = hand_parameter<T>();
        SGDOptions o;
        o.learning_rate = 0.1;
        o.weight_decay = 0.1;
        SGD<T> sgd({p}, o);
        set_grad(p, g1<T>);
        sgd.step();
        check_values(p.value(), {0.94, -1.88, 0.295});
        CHECK(sgd.state().size() == 2);  // steps and param_steps only: no momentum buffer
    }
}

TEST_CASE("adam_coefficients: bias corrections by hand") {
    // t = 2, lr 0.1: 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
    const double bias1 = 1 - 0.9 * 0.9, bias2 = 1 - 0.999 * 0.999;
    const auto k = cnnlite::kernels::adam_coefficients<double>(0.1, 0.9, 0.999, 1e-7, 2, AdamEpsilon::keras);
    CHECK(k.step_size == doctest::Approx(0.1 * std::sqrt(0.001999) / 0.19).epsilon(1e-12));
    CHECK(k.step_size == doctest::Approx(0.1 * std::sqrt(bias2) / bias1).epsilon(1e-15));
    CHECK(k.one_minus_beta1 == doctest::Approx(0.1).epsilon(1e-15));
    const auto t = cnnlite::kernels::adam_coefficients<double>(0.1, 0.9, 0.999, 1e-8, 2, AdamEpsilon::pytorch, 0, 0.5);
    CHECK(t.step_size == doctest::Approx(0.1 / 0.19).epsilon(1e-15));
    CHECK(t.inv_sqrt_bias2 == doctest::Approx(1 / std::sqrt(0.001999)).epsilon(1e-12));
    CHECK(t.param_scale == doctest::Approx(0.95).epsilon(1e-15));
}

namespace {

// A scalar transcription of the formulas in double, to check the kernels on arrays long enough
// for several parallel blocks, SIMD lanes and a ragged end.
struct LongArrays {
    std::vector<float> p, g, m, v;
    explicit LongArrays(std::size_t n) : p(n), g(n), m(n), v(n) {
        std::mt19937 gen(99);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (std::size_t i = 0; i < n; ++i) {
            p[i] = 2 * u(gen);
            g[i] = u(gen) * (i % 5 == 0 ? 1e-5f : 1.0f);  // some tiny gradients, where epsilon matters
            m[i] = 0.1f * u(gen);
            v[i] = 0.01f * std::abs(u(gen));
        }
    }
};

void check_close(const std::vector<float>& got, const std::vector<double>& expected, const char* what) {
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO(what, "[", i, "] = ", got[i], ", expected ", expected[i]);
        CHECK(std::abs(got[i] - expected[i]) <= 4e-7 * std::max(1.0, std::abs(expected[i])));
    }
}

}  // namespace

TEST_CASE("fused kernels match a scalar transcription of the formulas on long arrays") {
    const std::size_t n = 2 * 1024 + 1000 + 3;  // parallel-sized blocks, lanes, a remainder
    for (const bool keras : {true, false}) {
        for (const double l2 : {0.0, 0.05}) {
            CAPTURE(keras);
            CAPTURE(l2);
            LongArrays a(n);
            std::vector<double> p(n), m(n), v(n);
            const double lr = 0.01, b1 = 0.8, b2 = 0.99, eps = 1e-6, decoupled = keras ? 0.0 : 0.1;
            const int t = 3;
            const double bias1 = 1 - std::pow(b1, t), bias2 = 1 - std::pow(b2, t);
            for (std::size_t i = 0; i < n; ++i) {
                const double g = a.g[i] + l2 * a.p[i];
                m[i] = b1 * a.m[i] + (1 - b1) * g;
                v[i] = b2 * a.v[i] + (1 - b2) * g * g;
                const double update = keras ? lr * std::sqrt(bias2) / bias1 * m[i] / (std::sqrt(v[i]) + eps)
                                            : lr / bias1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bias2) + eps);
                p[i] = a.p[i] * (1 - lr * decoupled) - update;
            }
            const auto c = cnnlite::kernels::adam_coefficients<float>(
                lr, b1, b2, eps, t, keras ? AdamEpsilon::keras : AdamEpsilon::pytorch, l2, decoupled);
            cnnlite::kernels::adam_update(a.p.data(), a.g.data(), a.m.data(), a.v.data(),
                                          static_cast<std::int64_t>(n), c);
            check_close(a.p, p, "p");
            check_close(a.m, m, "m");
            check_close(a.v, v, "v");
        }
    }
    for (const bool nesterov : {true, false}) {
        for (const bool first : {true, false}) {
            CAPTURE(nesterov);
            CAPTURE(first);
            LongArrays a(n);
            const double lr = 0.05, mu = 0.9, damp = nesterov ? 0.0 : 0.3, wd = 0.01;
            std::vector<double> p(n), buf(n);
            for (std::size_t i = 0; i < n; ++i) {
                const double d = a.g[i] + wd * a.p[i];
                buf[i] = first ? d : mu * a.m[i] + (1 - damp) * d;
                p[i] = a.p[i] - lr * (nesterov ? d + mu * buf[i] : buf[i]);
            }
            cnnlite::kernels::SgdCoefficients<float> c;
            c.learning_rate = static_cast<float>(lr);
            c.momentum = static_cast<float>(mu);
            c.one_minus_dampening = static_cast<float>(1 - damp);
            c.weight_decay = static_cast<float>(wd);
            c.nesterov = nesterov;
            c.first_step = first;
            cnnlite::kernels::sgd_update(a.p.data(), a.g.data(), a.m.data(), static_cast<std::int64_t>(n), c);
            check_close(a.p, p, "p");
            check_close(a.m, buf, "buf");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Several steps against torch.optim (tests/fixtures/optim/make_optim_fixture.py).

namespace {

struct ReferenceCase {
    std::string name, kind;
    std::map<std::string, double> options;
    std::vector<std::vector<float>> init;                          // [param]
    std::map<std::pair<int, int>, std::vector<float>> grads;       // (step, param)
    std::map<std::pair<int, int>, std::vector<float>> after;       // (step, param)
    int steps = 0;
};

std::vector<float> read_floats(std::istringstream& in) {
    std::vector<float> out;
    std::string token;
    while (in >> token) out.push_back(std::strtof(token.c_str(), nullptr));
    return out;
}

std::vector<ReferenceCase> load_reference() {
    const std::string path = test_support::source_dir().string() + "/tests/fixtures/optim/optim_reference.txt";
    std::ifstream file(path);
    REQUIRE_MESSAGE(file.good(), "cannot open ", path);
    std::vector<ReferenceCase> cases;
    std::string line;
    while (std::getline(file, line)) {
        std::istringstream in(line);
        std::string tag;
        if (!(in >> tag) || tag[0] == '#') continue;
        if (tag == "case") {
            cases.emplace_back();
            in >> cases.back().name >> cases.back().kind;
            std::string kv;
            while (in >> kv) {
                const auto eq = kv.find('=');
                const std::string value = kv.substr(eq + 1);
                cases.back().options[kv.substr(0, eq)] = value == "True" ? 1.0 : value == "False" ? 0.0 : std::stod(value);
            }
        } else if (tag == "init") {
            int i;
            in >> i;
            cases.back().init.push_back(read_floats(in));
        } else if (tag == "grad" || tag == "after") {
            int step, i;
            in >> step >> i;
            (tag == "grad" ? cases.back().grads : cases.back().after)[{step, i}] = read_floats(in);
            cases.back().steps = std::max(cases.back().steps, step);
        }
    }
    return cases;
}

template <class T>
std::unique_ptr<Optimizer<T>> make_reference_optimizer(const ReferenceCase& c, std::vector<Variable<T>> params) {
    auto opt = [&](const char* key, double fallback) {
        auto it = c.options.find(key);
        return it == c.options.end() ? fallback : it->second;
    };
    if (c.kind == "adam") {
        AdamOptions o;
        o.learning_rate = opt("lr", 1e-3);
        o.beta1 = opt("beta1", 0.9);
        o.beta2 = opt("beta2", 0.999);
        o.epsilon = opt("eps", 1e-8);
        o.weight_decay = opt("weight_decay", 0);
        o.epsilon_placement = AdamEpsilon::pytorch;
        return std::make_unique<Adam<T>>(std::move(params), o);
    }
    if (c.kind == "adamw") {
        AdamWOptions o;
        o.learning_rate = opt("lr", 1e-3);
        o.beta1 = opt("beta1", 0.9);
        o.beta2 = opt("beta2", 0.999);
        o.epsilon = opt("eps", 1e-8);
        o.weight_decay = opt("weight_decay", 1e-2);
        return std::make_unique<AdamW<T>>(std::move(params), o);
    }
    REQUIRE(c.kind == "sgd");
    SGDOptions o;
    o.learning_rate = opt("lr", 0);
    o.momentum = opt("momentum", 0);
    o.dampening = opt("dampening", 0);
    o.nesterov = opt("nesterov", 0) != 0;
    o.weight_decay = opt("weight_decay", 0);
    return std::make_unique<SGD<T>>(std::move(params), o);
}

template <class T>
void run_reference(double tolerance) {
    const auto cases = load_reference();
    REQUIRE(cases.size() == 7);
    // [5, 7] has 35 elements: the SIMD lanes and the scalar remainder of the kernels both run.
    const Shape shapes[3] = {Shape{2, 3}, Shape{4}, Shape{5, 7}};
    for (const ReferenceCase& c : cases) {
        INFO("case ", c.name);
        REQUIRE(c.init.size() == 3);
        std::vector<Variable<T>> params;
        for (int i = 0; i < 3; ++i)
            params.push_back(parameter<T>(shapes[i], std::vector<T>(c.init[i].begin(), c.init[i].end())));
        auto optimizer = make_reference_optimizer<T>(c, params);
        REQUIRE(c.steps == 5);
        int skipped = 0;
        for (int step = 1; step <= c.steps; ++step) {
            optimizer->zero_grad();
            for (int i = 0; i < 3; ++i) {
                auto g = c.grads.find({step, i});
                if (g == c.grads.end()) {
                    ++skipped;
                    continue;
                }
                set_grad(params[static_cast<std::size_t>(i)], std::vector<T>(g->second.begin(), g->second.end()));
            }
            optimizer->step();
            for (int i = 0; i < 3; ++i) {
                const auto& expected = c.after.at({step, i});
                const Tensor<T>& got = params[static_cast<std::size_t>(i)].value();
                for (std::size_t k = 0; k < expected.size(); ++k) {
                    INFO("step ", step, ", parameter ", i, ", element ", k);
                    CHECK(std::abs(static_cast<double>(got[static_cast<std::int64_t>(k)]) - expected[k]) <= tolerance);
                }
            }
        }
        CHECK(skipped == 1);  // the fixture really exercises a parameter without gradient
        CHECK(optimizer->parameter_steps(1) == 4);
    }
}

}  // namespace

TEST_CASE("float optimisers follow torch.optim over five steps (Adam, AdamW, SGD variants)") {
    // Parameters are O(1): 5e-7 is four float ulps at 1 (observed: one ulp, two or three when the
    // compiler contracts to FMA), far below any difference between formulas (a wrong epsilon
    // placement or momentum rule is off by more than 1e-5).
    run_reference<float>(5e-7);
}

TEST_CASE("double optimisers follow the float32 torch.optim trajectories to float accuracy") {
    // Here the reference carries float32 rounding of five steps and cnnlite does not.
    run_reference<double>(2e-6);
}

// ---------------------------------------------------------------------------------------------
// Skipping, state round trips and errors.

TEST_CASE("parameters without a gradient are skipped and keep their own step count") {
    auto a = hand_parameter<float>();
    auto b = parameter<float>(Shape{2}, {3.0f, -4.0f});
    AdamOptions o;
    o.learning_rate = 0.1;
    o.epsilon = 1e-8;
    o.epsilon_placement = AdamEpsilon::pytorch;
    Adam<float> adam({a, b}, o);
    for (int i = 0; i < 3; ++i) {
        set_grad(a, g1<float>);
        adam.step();
        adam.zero_grad();
    }
    CHECK_FALSE(a.has_grad());
    check_values(b.value(), {3.0, -4.0});  // untouched
    CHECK(adam.parameter_steps(0) == 3);
    CHECK(adam.parameter_steps(1) == 0);
    auto state = adam.state();
    CHECK(state[1].second.to_vector() == std::vector<float>{3.0f, 0.0f});
    // b's first update uses the bias correction of t = 1, as in PyTorch: p -= 0.1 g / (|g| + 1e-8).
    set_grad(b, {2.0f, -0.5f});
    adam.step();
    CHECK(adam.parameter_steps(1) == 1);
    CHECK(adam.steps() == 4);
    check_values(b.value(), {3.0 - 0.1 * 2 / (2 + 1e-8), -4.0 + 0.1 * 0.5 / (0.5 + 1e-8)});
}

namespace {

// Gradient for step `s` of parameter `i`: a fixed pseudo-random pattern; parameter 1 has none
// on step 2 so that the counts diverge.
bool fill_grad(Variable<float>& p, int s, int i) {
    if (i == 1 && s == 2) return false;
    std::vector<float> g(static_cast<std::size_t>(p.value().numel()));
    for (std::size_t k = 0; k < g.size(); ++k)
        g[k] = std::sin(0.7f * static_cast<float>(k + 1) + 1.3f * static_cast<float>(s) + static_cast<float>(i));
    set_grad(p, g);
    return true;
}

template <class MakeOptimizer>
void check_round_trip(MakeOptimizer make) {
    auto fresh = [] {
        // [3, 7]: 21 elements, through SIMD lanes and a scalar remainder.
        std::vector<float> big(21);
        for (std::size_t k = 0; k < big.size(); ++k) big[k] = 0.1f * static_cast<float>(k) - 1.0f;
        return std::vector<Variable<float>>{parameter<float>(Shape{3, 7}, big),
                                            parameter<float>(Shape{3}, {-1.0f, 0.0f, 0.75f})};
    };
    auto run = [](Optimizer<float>& opt, std::vector<Variable<float>>& ps, int from, int to) {
        for (int s = from; s < to; ++s) {
            opt.zero_grad();
            for (int i = 0; i < 2; ++i) fill_grad(ps[static_cast<std::size_t>(i)], s, i);
            opt.step();
        }
    };
    // Uninterrupted: six steps.
    auto straight = fresh();
    auto a = make(straight);
    run(*a, straight, 0, 6);

    // Interrupted after three: save parameters and state, rebuild everything, continue.
    auto first = fresh();
    auto b = make(first);
    run(*b, first, 0, 3);
    const auto saved = b->state();
    const std::vector<Tensor<float>> saved_values = {first[0].value().clone(), first[1].value().clone()};
    run(*b, first, 3, 5);  // keep going: the snapshot must not change under it
    std::vector<Variable<float>> second = {Variable<float>(saved_values[0].clone(), true),
                                           Variable<float>(saved_values[1].clone(), true)};
    auto d = make(second);
    d->load_state(saved);
    CHECK(d->steps() == 3);
    CHECK(d->parameter_steps(1) == 2);
    run(*d, second, 3, 6);
    for (std::size_t i = 0; i < 2; ++i) {
        INFO("parameter ", i);
        CHECK(same_bits(second[i].value(), straight[i].value()));
    }
    const auto end_a = a->state(), end_d = d->state();
    REQUIRE(end_a.size() == end_d.size());
    for (std::size_t k = 0; k < end_a.size(); ++k) {
        INFO("entry ", end_a[k].first);
        CHECK(end_a[k].first == end_d[k].first);
        CHECK(same_bits(end_a[k].second, end_d[k].second));
    }
}

}  // namespace

TEST_CASE("state() then load_state() continues bit for bit like an uninterrupted run") {
    SUBCASE("Adam (Keras)") {
        check_round_trip([](std::vector<Variable<float>>& ps) { return std::make_unique<Adam<float>>(ps); });
    }
    SUBCASE("AdamW") {
        check_round_trip([](std::vector<Variable<float>>& ps) { return std::make_unique<AdamW<float>>(ps); });
    }
    SUBCASE("SGD Nesterov") {
        SGDOptions o;
        o.momentum = 0.9;
        o.nesterov = true;
        check_round_trip([o](std::vector<Variable<float>>& ps) { return std::make_unique<SGD<float>>(ps, o); });
    }
}

TEST_CASE("state() names its entries and copies them") {
    auto a = hand_parameter<float>();
    auto b = parameter<float>(Shape{2, 1}, {1.0f, 2.0f});
    Adam<float> adam({a, b});
    set_grad(a, g1<float>);
    adam.step();
    const auto state = adam.state();
    std::vector<std::string> names;
    for (const auto& [name, t] : state) names.push_back(name);
    CHECK(names == std::vector<std::string>{"adam.steps", "adam.param_steps", "adam.m.0", "adam.m.1", "adam.v.0",
                                            "adam.v.1"});
    CHECK(state[2].second.shape() == Shape{3});
    CHECK(state[3].second.shape() == Shape{2, 1});
    // m = 0.1 g after one Keras step: 0.5 + (g - 0) * 0.1
    CHECK(state[2].second[0] == doctest::Approx(0.05f));
    const float before = state[2].second[0];
    set_grad(a, g2<float>);
    adam.step();
    CHECK(state[2].second[0] == before);  // a snapshot, not a view of the live buffer
}

TEST_CASE("load_state rejects missing, misshapen, foreign and corrupt entries without changing anything") {
    auto a = hand_parameter<float>();
    auto b = parameter<float>(Shape{2}, {1.0f, 2.0f});
    Adam<float> adam({a, b});
    set_grad(a, g1<float>);
    set_grad(b, {1.0f, 1.0f});
    adam.step();
    const auto good = adam.state();
    const auto m0_before = adam.state()[2].second.to_vector();

    auto without = [&](const std::string& name) {
        auto s = good;
        for (auto it = s.begin(); it != s.end(); ++it)
            if (it->first == name) {
                s.erase(it);
                break;
            }
        return s;
    };
    auto replaced = [&](const std::string& name, Tensor<float> t) {
        auto s = good;
        for (auto& e : s)
            if (e.first == name) e.second = std::move(t);
        return s;
    };

    CHECK_THROWS_WITH_AS(adam.load_state(without("adam.v.1")),
                         doctest::Contains("adam.load_state: missing entry 'adam.v.1'"), Error);
    CHECK_THROWS_WITH_AS(adam.load_state(replaced("adam.m.0", Tensor<float>(Shape{4}))),
                         doctest::Contains("entry 'adam.m.0' has shape [4] but the m buffer of parameter 0 needs shape [3]"),
                         Error);
    CHECK_THROWS_WITH_AS(adam.load_state(replaced("adam.param_steps", Tensor<float>(Shape{3}))),
                         doctest::Contains("'adam.param_steps' has shape [3]"), Error);
    CHECK_THROWS_WITH_AS(adam.load_state(replaced("adam.steps", Tensor<float>::full(Shape{1}, 1.5f))),
                         doctest::Contains("adam.steps = 1.5 is not a valid count"), Error);
    CHECK_THROWS_WITH_AS(adam.load_state(replaced("adam.steps", Tensor<float>::full(Shape{1}, -1.0f))),
                         doctest::Contains("is not a valid count"), Error);
    CHECK_THROWS_WITH_AS(adam.load_state(replaced("adam.steps", Tensor<float>::full(Shape{1}, NAN))),
                         doctest::Contains("is not a valid count"), Error);
    CHECK_THROWS_WITH_AS(adam.load_state(replaced("adam.param_steps", Tensor<float>::from(Shape{2}, {1.0f, 2.0f}))),
                         doctest::Contains("adam.param_steps[1] = 2 exceeds the step count 1"), Error);
    CHECK_THROWS_WITH_AS(adam.load_state(replaced("adam.m.1", Tensor<float>())),
                         doctest::Contains("entry 'adam.m.1' is an undefined tensor"), Error);
    {
        auto s = good;
        s.emplace_back("adam.m.2", Tensor<float>(Shape{1}));
        CHECK_THROWS_WITH_AS(adam.load_state(s), doctest::Contains("unexpected entry 'adam.m.2'"), Error);
        s = good;
        s.push_back(good[0]);
        CHECK_THROWS_WITH_AS(adam.load_state(s), doctest::Contains("entry 'adam.steps' appears twice"), Error);
    }
    {
        // The state of another optimiser over the same parameters.
        auto x = hand_parameter<float>();
        auto y = parameter<float>(Shape{2}, {1.0f, 2.0f});
        SGDOptions o;
        o.momentum = 0.9;
        SGD<float> sgd({x, y}, o);
        CHECK_THROWS_WITH_AS(adam.load_state(sgd.state()), doctest::Contains("missing entry 'adam.steps'"), Error);
        CHECK_THROWS_WITH_AS(sgd.load_state(good), doctest::Contains("sgd.load_state: missing entry 'sgd.steps'"),
                             Error);
        AdamW<float> adamw({x, y});
        CHECK_THROWS_WITH_AS(adamw.load_state(good), doctest::Contains("missing entry 'adamw.steps'"), Error);
    }
    // Nothing changed through all of this.
    CHECK(adam.steps() == 1);
    CHECK(adam.state()[2].second.to_vector() == m0_before);
    // And the good state still loads.
    adam.load_state(good);
    CHECK(adam.steps() == 1);
}

TEST_CASE("misuse gives clear errors") {
    auto p = hand_parameter<float>();
    CHECK_THROWS_WITH_AS(Adam<float>(std::vector<Variable<float>>{}), "adam: got an empty parameter list", Error);
    CHECK_THROWS_WITH_AS(Adam<float>({p, p}), doctest::Contains("parameter 1 is listed twice"), Error);
    CHECK_THROWS_WITH_AS(SGD<float>({Variable<float>()}), doctest::Contains("sgd: parameter 0 is an undefined variable"),
                         Error);
    AdamOptions bad_beta;
    bad_beta.beta2 = 1.0;
    CHECK_THROWS_WITH_AS(Adam<float>({p}, bad_beta), "adam: beta2 must be in [0, 1), got 1", Error);
    AdamOptions bad_lr;
    bad_lr.learning_rate = -1;
    CHECK_THROWS_WITH_AS(Adam<float>({p}, bad_lr),
                         "adam.set_learning_rate: learning rate must be finite and >= 0, got -1", Error);
    SGDOptions nesterov;
    nesterov.nesterov = true;
    CHECK_THROWS_WITH_AS(SGD<float>({p}, nesterov), doctest::Contains("sgd: nesterov needs momentum > 0"), Error);

    // A gradient of the wrong shape is reported before any parameter moves.
    auto q = parameter<float>(Shape{2}, {1.0f, 2.0f});
    Adam<float> adam({p, q});
    set_grad(p, g1<float>);
    q.grad() = Tensor<float>(Shape{3});
    CHECK_THROWS_WITH_AS(adam.step(),
                         "adam.step: gradient of parameter 1 has shape [3] but the parameter has shape [2]", Error);
    check_values(p.value(), {1.0, -2.0, 0.5});
    CHECK(adam.steps() == 0);
    CHECK(adam.parameter_steps(0) == 0);
    CHECK_THROWS_WITH_AS(adam.parameter_steps(2), doctest::Contains("index 2 out of range for 2 parameters"), Error);
}

// ---------------------------------------------------------------------------------------------
// Schedules.

TEST_CASE("learning-rate schedules give the values worked out by hand") {
    const double base = 0.1;
    const auto constant = LearningRateSchedule::constant();
    CHECK(constant.rate(0, base) == base);
    CHECK(constant.rate(1000, base) == base);

    // initial * 0.5^floor(index / 3): indices 0-2 -> 0.1, 3-5 -> 0.05, 6 -> 0.025
    const auto step = LearningRateSchedule::step_decay(3, 0.5);
    CHECK(step.rate(2, base) == doctest::Approx(0.1));
    CHECK(step.rate(3, base) == doctest::Approx(0.05));
    CHECK(step.rate(6, base) == doctest::Approx(0.025));

    // min + (init - min) (1 + cos(pi i / 4)) / 2 with min 0.02, init 0.1:
    //   i = 0 -> 0.1; i = 1 -> 0.02 + 0.08 * (1 + 0.7071067812) / 2 = 0.0882842712;
    //   i = 2 -> 0.06; i = 4 -> 0.02; beyond the period it stays at 0.02
    const auto cosine = LearningRateSchedule::cosine(4, 0.02);
    CHECK(cosine.rate(0, base) == doctest::Approx(0.1));
    CHECK(cosine.rate(1, base) == doctest::Approx(0.0882842712474619));
    CHECK(cosine.rate(2, base) == doctest::Approx(0.06));
    CHECK(cosine.rate(4, base) == doctest::Approx(0.02));
    CHECK(cosine.rate(9, base) == doctest::Approx(0.02));

    const LearningRateSchedule custom([](std::int64_t i, double init) { return init / static_cast<double>(1 + i); },
                                      ScheduleUnit::step, "inverse");
    CHECK(custom.rate(4, base) == doctest::Approx(0.02));
    CHECK(custom.description() == "inverse");

    const LearningRateSchedule broken([](std::int64_t i, double) { return i == 2 ? -1.0 : 1.0; }, ScheduleUnit::epoch,
                                      "broken");
    CHECK_THROWS_WITH_AS(broken.rate(2, base), "broken: learning rate -1 at epoch 2 is not finite and >= 0", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::step_decay(0, 0.5), doctest::Contains("'every' must be > 0"), Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::cosine(0), doctest::Contains("period must be > 0"), Error);
}

TEST_CASE("schedules set the optimiser's rate per epoch or per step, from its initial rate") {
    auto p = hand_parameter<float>();
    SGDOptions o;
    o.learning_rate = 0.1;
    SGD<float> sgd({p}, o);

    const auto per_epoch = LearningRateSchedule::step_decay(1, 0.5, ScheduleUnit::epoch);
    per_epoch.on_step_begin(sgd);  // not its unit: nothing happens
    CHECK(sgd.learning_rate() == 0.1);
    per_epoch.on_epoch_begin(sgd, 2);
    CHECK(sgd.learning_rate() == doctest::Approx(0.025));
    CHECK(sgd.initial_learning_rate() == 0.1);

    const auto per_step = LearningRateSchedule::step_decay(2, 0.1, ScheduleUnit::step);
    per_step.on_epoch_begin(sgd, 0);  // not its unit
    CHECK(sgd.learning_rate() == doctest::Approx(0.025));
    // Steps 0, 1 at 0.1, steps 2, 3 at 0.01: p0 = 1 - 2 * 0.1 * 0.5 - 2 * 0.01 * 0.5 = 0.89
    for (int s = 0; s < 4; ++s) {
        per_step.on_step_begin(sgd);
        set_grad(p, g1<float>);
        sgd.step();
    }
    CHECK(sgd.learning_rate() == doctest::Approx(0.01));
    CHECK(p.value()[0] == doctest::Approx(0.89f));
}

// ---------------------------------------------------------------------------------------------
// Thread-count independence of the fused kernels on a parameter large enough to run in parallel.

#ifdef _OPENMP
namespace {

template <class MakeOptimizer>
std::vector<float> run_threads(int threads, MakeOptimizer make) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    // 200,003 elements: 195 full blocks split among the threads and a ragged remainder.
    const std::int64_t n = 200003;
    std::mt19937 gen(1234);
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    std::vector<float> init(static_cast<std::size_t>(n));
    for (float& x : init) x = uniform(gen);
    auto p = parameter<float>(Shape{n}, init);
    auto opt = make(p);
    for (int s = 0; s < 3; ++s) {
        std::vector<float> g(static_cast<std::size_t>(n));
        for (float& x : g) x = uniform(gen);
        set_grad(p, g);
        opt->step();
    }
    omp_set_num_threads(saved);
    return p.value().to_vector();
}

template <class MakeOptimizer>
void check_thread_independence(MakeOptimizer make) {
    const auto one = run_threads(1, make);
    const auto two = run_threads(2, make);
    REQUIRE(one.size() == two.size());
    CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
    // And the steps did move the parameter (the comparison is not of two untouched arrays).
    const auto untouched = run_threads(1, [](Variable<float>& p) {
        SGDOptions o;
        o.learning_rate = 0;
        return std::make_unique<SGD<float>>(std::vector<Variable<float>>{p}, o);
    });
    CHECK(std::memcmp(one.data(), untouched.data(), one.size() * sizeof(float)) != 0);
}

}  // namespace

TEST_CASE("fused updates are bitwise identical with 1 and 2 threads") {
    SUBCASE("Adam, Keras placement") {
        check_thread_independence([](Variable<float>& p) { return std::make_unique<Adam<float>>(std::vector{p}); });
    }
    SUBCASE("Adam, PyTorch placement with L2 weight decay") {
        AdamOptions o;
        o.epsilon_placement = AdamEpsilon::pytorch;
        o.weight_decay = 0.01;
        check_thread_independence([o](Variable<float>& p) { return std::make_unique<Adam<float>>(std::vector{p}, o); });
    }
    SUBCASE("AdamW") {
        check_thread_independence([](Variable<float>& p) { return std::make_unique<AdamW<float>>(std::vector{p}); });
    }
    SUBCASE("SGD Nesterov with weight decay") {
        SGDOptions o;
        o.momentum = 0.9;
        o.nesterov = true;
        o.weight_decay = 1e-3;
        check_thread_independence([o](Variable<float>& p) { return std::make_unique<SGD<float>>(std::vector{p}, o); });
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// Training recipes against PyTorch 2.x (tests/fixtures/optim/make_recipe_fixture.py).

namespace {

const nlohmann::json& recipe_reference() {
    static const nlohmann::json reference = [] {
        const std::string path = test_support::source_dir().string() + "/tests/fixtures/optim/recipe_reference.json";
        std::ifstream in(path);
        REQUIRE_MESSAGE(in.good(), "cannot open ", path);
        return nlohmann::json::parse(in);
    }();
    return reference;
}

// The fixture writes non-finite numbers as strings.
double number(const nlohmann::json& j) {
    if (j.is_string()) {
        const std::string s = j.get<std::string>();
        if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
        REQUIRE((s == "inf" || s == "-inf"));
        return s == "inf" ? HUGE_VAL : -HUGE_VAL;
    }
    return j.get<double>();
}

template <class T>
std::vector<T> numbers(const nlohmann::json& array) {
    std::vector<T> out;
    for (const auto& x : array) out.push_back(static_cast<T>(number(x)));
    return out;
}

// Same number, NaN matching NaN.
bool same_or_both_nan(double a, double b, double tolerance) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::abs(a - b) <= tolerance;
}

// Runs one optimiser case of the fixture in T and returns the largest deviation from torch over
// all steps and elements; also returns the final parameter values.
template <class T>
double run_recipe_case(const nlohmann::json& c, std::vector<std::vector<double>>* final_values = nullptr) {
    std::vector<Variable<T>> params;
    std::vector<std::string> names;
    for (const auto& p : c["params"]) {
        std::vector<std::int64_t> dims = p["shape"].get<std::vector<std::int64_t>>();
        params.push_back(parameter<T>(Shape(dims), numbers<T>(p["init"])));
        names.push_back(p["name"].get<std::string>());
    }
    // The fixture's no-decay group is the biases and normalisation parameters.
    std::vector<std::size_t> no_decay = c["no_decay"].get<std::vector<std::size_t>>();
    if (!no_decay.empty()) CHECK(cnnlite::no_decay_indices(names) == no_decay);

    const auto& o = c["options"];
    std::unique_ptr<Optimizer<T>> optimizer;
    if (c["kind"] == "sgd") {
        SGDOptions s;
        s.learning_rate = o["lr"].get<double>();
        s.momentum = o["momentum"].get<double>();
        s.nesterov = o["nesterov"].get<bool>();
        s.weight_decay = o["weight_decay"].get<double>();
        s.no_decay = no_decay;
        optimizer = std::make_unique<SGD<T>>(params, s);
    } else {
        REQUIRE(c["kind"] == "adamw");
        AdamWOptions a;
        a.learning_rate = o["lr"].get<double>();
        a.beta1 = o["beta1"].get<double>();
        a.beta2 = o["beta2"].get<double>();
        a.epsilon = o["eps"].get<double>();
        a.weight_decay = o["weight_decay"].get<double>();
        a.no_decay = no_decay;
        optimizer = std::make_unique<AdamW<T>>(params, a);
    }
    double worst = 0;
    int skipped = 0;
    for (const auto& step : c["steps"]) {
        optimizer->zero_grad();
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (step["grads"][i].is_null()) {
                ++skipped;
                continue;
            }
            set_grad(params[i], numbers<T>(step["grads"][i]));
        }
        optimizer->step();
        for (std::size_t i = 0; i < params.size(); ++i) {
            const auto expected = numbers<double>(step["after"][i]);
            const Tensor<T>& got = params[i].value();
            REQUIRE(got.numel() == static_cast<std::int64_t>(expected.size()));
            for (std::size_t k = 0; k < expected.size(); ++k)
                worst = std::max(worst, std::abs(static_cast<double>(got[static_cast<std::int64_t>(k)]) - expected[k]));
        }
    }
    CHECK(skipped == 1);  // a parameter without gradient on one step, as torch skips it
    if (final_values)
        for (const auto& p : params) {
            const auto v = p.value().to_vector();
            final_values->emplace_back(v.begin(), v.end());
        }
    return worst;
}

}  // namespace

TEST_CASE("SGD (Nesterov, weight decay 5e-4) and AdamW follow torch 2.x, with and without a no-decay group") {
    const auto& reference = recipe_reference();
    REQUIRE(reference["optimizers"].size() == 8);
    std::map<std::string, std::vector<std::vector<double>>> finals;
    for (const auto& c : reference["optimizers"]) {
        const std::string name = c["name"].get<std::string>() + "/" + c["dtype"].get<std::string>();
        INFO("case ", name);
        REQUIRE(c["steps"].size() == 5);
        if (c["dtype"] == "float32") {
            // Parameters are O(1): 5e-7 is a few float ulps, far below any difference between
            // formulas (a wrong decay or momentum rule is off by 1e-5 or more).
            CHECK(run_recipe_case<float>(c, &finals[name]) <= 5e-7);
        } else {
            // torch computes in double as well here: only the order of roundings differs.
            CHECK(run_recipe_case<double>(c, &finals[name]) <= 1e-14);
        }
    }
    // The no-decay group changes the excluded parameters (1, 2) and nothing else, by far more
    // than the tolerance: the comparison above would notice a mask that is ignored.
    for (const char* kind : {"sgd_nesterov", "adamw"}) {
        const auto& all = finals[std::string(kind) + "/float64"];
        const auto& grouped = finals[std::string(kind) + "_no_decay_group/float64"];
        REQUIRE(all.size() == 4);
        REQUIRE(grouped.size() == 4);
        for (std::size_t i = 0; i < 4; ++i) {
            double diff = 0;
            for (std::size_t k = 0; k < all[i].size(); ++k) diff = std::max(diff, std::abs(all[i][k] - grouped[i][k]));
            INFO(kind, ", parameter ", i);
            if (i == 1 || i == 2) CHECK(diff > 1e-5);
            else CHECK(diff == 0);
        }
    }
}

TEST_CASE_TEMPLATE("no_decay spares the listed parameters, by hand", T, float, double) {
    // SGD lr 0.1, weight decay 0.1, g1 for both: the decayed one moves by 0.1 (g + 0.1 p), the
    // other by 0.1 g: p = [1, -2, 0.5] -> [0.94, -1.88, 0.295] and [0.95, -1.9, 0.3].
    auto a = hand_parameter<T>(), b = hand_parameter<T>();
    SGDOptions o;
    o.learning_rate = 0.1;
    o.weight_decay = 0.1;
    o.no_decay = {1};
    SGD<T> sgd({a, b}, o);
    CHECK(sgd.decays(0));
    CHECK_FALSE(sgd.decays(1));
    set_grad(a, g1<T>);
    set_grad(b, g1<T>);
    sgd.step();
    check_values(a.value(), {0.94, -1.88, 0.295});
    check_values(b.value(), {0.95, -1.9, 0.3});

    // AdamW, lr 0.1, decay 0.5: the excluded parameter takes the plain Adam step
    // p - 0.1 g / (|g| + 1e-8) = [0.900000002, -1.900000001, 0.4000000005]; the other is scaled by 0.95 first.
    auto c = hand_parameter<T>(), d = hand_parameter<T>();
    AdamWOptions w;
    w.learning_rate = 0.1;
    w.weight_decay = 0.5;
    w.no_decay = {0};
    AdamW<T> adamw({c, d}, w);
    set_grad(c, g1<T>);
    set_grad(d, g1<T>);
    adamw.step();
    check_values(c.value(), {0.900000002, -1.900000001, 0.4000000005});
    check_values(d.value(), {0.850000002, -1.800000001, 0.3750000005});

    // Adam's coupled L2 decay follows the mask too: with the only parameter excluded, weight
    // decay 0.1 changes nothing against weight decay 0.
    auto e = hand_parameter<T>(), f = hand_parameter<T>();
    AdamOptions with, without;
    with.weight_decay = 0.1;
    with.no_decay = {0};
    Adam<T> adam_with({e}, with), adam_without({f}, without);
    set_grad(e, g1<T>);
    set_grad(f, g1<T>);
    adam_with.step();
    adam_without.step();
    CHECK(e.value().to_vector() == f.value().to_vector());
}

TEST_CASE("no_decay_indices picks biases and normalisation parameters by name; bad indices are named") {
    const std::vector<std::string> names = {"conv2d.weight", "conv2d.bias", "batch_normalization.weight",
                                            "batch_normalization.bias", "dense.weight", "dense.bias",
                                            "layer_normalization_1.weight", "norm.gamma", "norm.beta"};
    CHECK(cnnlite::no_decay_indices(names) == std::vector<std::size_t>{1, 2, 3, 5, 6, 7, 8});
    CHECK(cnnlite::is_bias_or_norm_parameter("bias"));
    CHECK_FALSE(cnnlite::is_bias_or_norm_parameter("conv2d.weight"));
    CHECK_FALSE(cnnlite::is_bias_or_norm_parameter("biased.weight"));
    // A predicate of one's own, e.g. only the dense layer's parameters.
    const auto dense = cnnlite::no_decay_indices(names, [](const std::string& n) { return n.rfind("dense.", 0) == 0; });
    CHECK(dense == std::vector<std::size_t>{4, 5});

    auto p = hand_parameter<float>(), q = hand_parameter<float>();
    SGDOptions o;
    o.no_decay = {2};
    CHECK_THROWS_WITH_AS(SGD<float>({p, q}, o), "sgd: no_decay index 2 is out of range for 2 parameters", Error);
    o.no_decay = {1, 1};
    CHECK_THROWS_WITH_AS(SGD<float>({p, q}, o), "sgd: no_decay lists parameter 1 twice", Error);
    AdamWOptions w;
    w.no_decay = {5};
    CHECK_THROWS_WITH_AS(AdamW<float>({p}, w), doctest::Contains("adamw: no_decay index 5"), Error);
    SGD<float> plain({p, q});
    CHECK(plain.decays(1));
    CHECK_THROWS_WITH_AS(plain.decays(2), doctest::Contains("sgd.decays: index 2 out of range"), Error);
}

// ---------------------------------------------------------------------------------------------
// Schedules of the recipes.

TEST_CASE("one_cycle gives torch's OneCycleLR rates at every step") {
    const auto& reference = recipe_reference();
    REQUIRE(reference["one_cycle"].size() == 3);
    for (const auto& c : reference["one_cycle"]) {
        const auto total = c["total_steps"].get<std::int64_t>();
        const double max_lr = c["max_lr"].get<double>();
        INFO("total_steps ", total, ", pct_start ", c["pct_start"].get<double>());
        const auto schedule = LearningRateSchedule::one_cycle(total, c["pct_start"].get<double>());
        CHECK(schedule.unit() == ScheduleUnit::step);
        const auto rates = c["rates"].get<std::vector<double>>();
        REQUIRE(static_cast<std::int64_t>(rates.size()) == total);
        for (std::int64_t i = 0; i < total; ++i) {
            INFO("step ", i);
            CHECK(schedule.rate(i, max_lr) == doctest::Approx(rates[static_cast<std::size_t>(i)]).epsilon(1e-12));
        }
        // Past the cycle the rate stays at its last value.
        CHECK(schedule.rate(total, max_lr) == schedule.rate(total - 1, max_lr));
        CHECK(schedule.rate(total + 50, max_lr) == doctest::Approx(max_lr / 25 / 1e4));
    }
}

TEST_CASE("one_cycle, warm-up and piecewise constant by hand") {
    // one_cycle(10), max 1: start 0.04, peak 1 at step 2 (0.3 * 10 - 1), end 4e-6 at step 9.
    //   step 1: 1 + (0.04 - 1) / 2 (cos(pi / 2) + 1) = 0.52
    //   step 2: 1; step 9: 4e-6 + (1 - 4e-6) / 2 (cos(pi) + 1) = 4e-6
    const auto cycle = LearningRateSchedule::one_cycle(10);
    CHECK(cycle.rate(0, 1.0) == doctest::Approx(0.04));
    CHECK(cycle.rate(1, 1.0) == doctest::Approx(0.52));
    CHECK(cycle.rate(2, 1.0) == doctest::Approx(1.0));
    CHECK(cycle.rate(9, 1.0) == doctest::Approx(4e-6));
    // pct_start * total_steps = 1: a warm-up of length 0 starts at the peak (torch divides by 0).
    CHECK(LearningRateSchedule::one_cycle(10, 0.1).rate(0, 1.0) == doctest::Approx(1.0));

    // Warm-up over 4 steps into cosine(4, min 0.02) from 0.1: 0, 0.025, 0.05, 0.075, then the
    // cosine from its own index 0: 0.1, 0.0882842712, 0.06, 0.0317157288, 0.02, 0.02.
    const auto warm = LearningRateSchedule::linear_warmup(4, LearningRateSchedule::cosine(4, 0.02, ScheduleUnit::step));
    CHECK(warm.unit() == ScheduleUnit::step);
    CHECK(warm.description() == "linear_warmup(steps=4, start_factor=0)+cosine(period=4, minimum=0.02)");
    CHECK(LearningRateSchedule::one_cycle(10, 0.25).description() ==
          "one_cycle(total_steps=10, pct_start=0.25, div_factor=25, final_div_factor=1e+04)");
    CHECK(LearningRateSchedule::piecewise_constant({2, 5}, {0.1, 0.01, 0.001}).description() ==
          "piecewise_constant(boundaries=[2,5], values=[0.1,0.01,0.001])");
    CHECK(LearningRateSchedule::step_decay(3, 0.5).description() == "step_decay(every=3, factor=0.5)");
    const std::vector<double> expected = {0, 0.025, 0.05, 0.075, 0.1, 0.0882842712474619, 0.06, 0.0317157287525381,
                                          0.02, 0.02};
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("index ", i);
        CHECK(warm.rate(static_cast<std::int64_t>(i), 0.1) == doctest::Approx(expected[i]).epsilon(1e-12));
    }
    // start_factor 0.5 (PyTorch LinearLR's factor): 0.05, 0.0625, 0.075, 0.0875, then 0.1.
    const auto half = LearningRateSchedule::linear_warmup(4, LearningRateSchedule::constant(), 0.5);
    CHECK(half.unit() == ScheduleUnit::epoch);
    CHECK(half.rate(0, 0.1) == doctest::Approx(0.05));
    CHECK(half.rate(3, 0.1) == doctest::Approx(0.0875));
    CHECK(half.rate(4, 0.1) == doctest::Approx(0.1));
    // Warm-up into step decay: the decay counts from the end of the warm-up.
    const auto into_steps = LearningRateSchedule::linear_warmup(2, LearningRateSchedule::step_decay(3, 0.5));
    CHECK(into_steps.rate(1, 0.1) == doctest::Approx(0.05));
    CHECK(into_steps.rate(4, 0.1) == doctest::Approx(0.1));
    CHECK(into_steps.rate(5, 0.1) == doctest::Approx(0.05));

    // Keras' example: boundaries [100000, 110000], values [1.0, 0.5, 0.1]; the boundary belongs
    // to the segment before it.
    const auto piecewise = LearningRateSchedule::piecewise_constant({100000, 110000}, {1.0, 0.5, 0.1});
    CHECK(piecewise.rate(0, 123.0) == 1.0);  // the optimiser's initial rate is not used
    CHECK(piecewise.rate(100000, 0.1) == 1.0);
    CHECK(piecewise.rate(100001, 0.1) == 0.5);
    CHECK(piecewise.rate(110000, 0.1) == 0.5);
    CHECK(piecewise.rate(110001, 0.1) == 0.1);
    CHECK(LearningRateSchedule::piecewise_constant({}, {0.3}).rate(7, 0.1) == 0.3);

    // Pure functions of the index: asking out of order changes nothing.
    CHECK(cycle.rate(5, 1.0) == cycle.rate(5, 1.0));
    const double at7 = warm.rate(7, 0.1);
    (void)warm.rate(2, 0.1);
    CHECK(warm.rate(7, 0.1) == at7);

    // Per step through an optimiser: on_step_begin reads optimizer.steps().
    auto p = hand_parameter<float>();
    SGDOptions o;
    o.learning_rate = 1.0;
    SGD<float> sgd({p}, o);
    for (int s = 0; s < 2; ++s) {
        cycle.on_step_begin(sgd);
        set_grad(p, g1<float>);
        sgd.step();
    }
    cycle.on_step_begin(sgd);
    CHECK(sgd.learning_rate() == doctest::Approx(1.0));  // step 2 is the peak
}

TEST_CASE("schedule validation errors name the bad value") {
    const auto c = LearningRateSchedule::constant();
    CHECK_THROWS_WITH_AS(LearningRateSchedule::linear_warmup(0, c), "linear_warmup: steps must be > 0, got 0", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::linear_warmup(3, c, 1.5),
                         "linear_warmup: start_factor must be in [0, 1], got 1.5", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::one_cycle(0), "one_cycle: total_steps must be > 0, got 0", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::one_cycle(10, 1.25), "one_cycle: pct_start must be in [0, 1], got 1.25",
                         Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::one_cycle(10, NAN), doctest::Contains("pct_start must be in [0, 1], got nan"),
                         Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::one_cycle(10, 0.3, -2),
                         "one_cycle: div_factor must be finite and > 0, got -2", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::one_cycle(10, 0.3, 25, 0),
                         "one_cycle: final_div_factor must be finite and > 0, got 0", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::piecewise_constant({10}, {1.0}),
                         "piecewise_constant: needs one more value than boundaries, got 1 values for 1 boundaries",
                         Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::piecewise_constant({10, 10}, {1.0, 0.5, 0.1}),
                         "piecewise_constant: boundaries must increase, but boundary 1 is 10 after 10", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::piecewise_constant({-1}, {1.0, 0.5}),
                         "piecewise_constant: boundary 0 is -1, must be >= 0", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::piecewise_constant({5}, {1.0, -0.5}),
                         "piecewise_constant: value 1 is -0.5, must be finite and >= 0", Error);
    CHECK_THROWS_WITH_AS(LearningRateSchedule::one_cycle(10).rate(-1, 0.1),
                         "one_cycle(total_steps=10, pct_start=0.3, div_factor=25, final_div_factor=1e+04): index must "
                         "be >= 0, got -1",
                         Error);
}

// ---------------------------------------------------------------------------------------------
// Moving average of weights.

TEST_CASE_TEMPLATE("ExponentialMovingAverage by hand: decay, warm-up, swap, copy_to", T, float, double) {
    // decay 0.5, p starts [1, -2, 0.5]. After p = [3, 0, 0.5]: avg = 0.5 avg + 0.5 p = [2, -1, 0.5];
    // after p = [3, 2, 0.5]: avg = [2.5, 0.5, 0.5] (a constant element stays exactly).
    auto p = hand_parameter<T>();
    EmaOptions o;
    o.decay = 0.5;
    ExponentialMovingAverage<T> ema({p}, o);
    CHECK(ema.next_decay() == 0.5);
    p.value() = Tensor<T>::from(Shape{3}, {T(3), T(0), T(0.5)});
    ema.update();
    check_values(ema.average(0), {2, -1, 0.5});
    p.value().copy_from(Tensor<T>::from(Shape{3}, {T(3), T(2), T(0.5)}));
    ema.update();
    check_values(ema.average(0), {2.5, 0.5, 0.5});
    CHECK(ema.average(0)[2] == T(0.5));
    CHECK(ema.updates() == 2);

    // Swapped in: the variable holds the average, and back.
    {
        AveragedWeights<T> averaged(ema);
        CHECK(ema.swapped());
        check_values(p.value(), {2.5, 0.5, 0.5});
        check_values(ema.average(0), {2.5, 0.5, 0.5});  // wherever it lives
        CHECK_THROWS_WITH_AS(ema.update(), doctest::Contains("ema.update: the averages are swapped"), Error);
        CHECK_THROWS_WITH_AS(AveragedWeights<T>{ema}, doctest::Contains("already swapped in"), Error);
    }
    CHECK_FALSE(ema.swapped());
    check_values(p.value(), {3, 2, 0.5});

    // copy_to writes the averages into other variables (a model to save) and checks shapes.
    auto target = parameter<T>(Shape{3}, {T(0), T(0), T(0)});
    ema.copy_to({target});
    check_values(target.value(), {2.5, 0.5, 0.5});
    check_values(p.value(), {3, 2, 0.5});
    auto wrong = parameter<T>(Shape{2}, {T(0), T(0)});
    CHECK_THROWS_WITH_AS(ema.copy_to({wrong}),
                         "ema.copy_to: variable 0 has shape [2] but its average has shape [3]", Error);

    // TensorFlow's warm-up: updates 0, 1, 2 use min(0.99, 1/10, 2/11, 3/12).
    auto q = hand_parameter<T>();
    EmaOptions w;
    w.decay = 0.99;
    w.warmup = true;
    ExponentialMovingAverage<T> warm({q}, w);
    CHECK(warm.next_decay() == doctest::Approx(0.1));
    q.value().copy_from(Tensor<T>::from(Shape{3}, {T(11), T(-2), T(0.5)}));
    warm.update();  // 0.1 * 1 + 0.9 * 11 = 10
    check_values(warm.average(0), {10, -2, 0.5});
    CHECK(warm.next_decay() == doctest::Approx(2.0 / 11));
    for (int k = 0; k < 1000; ++k) warm.update();
    CHECK(warm.next_decay() == 0.99);
}

TEST_CASE("ema_update matches the formula on long arrays and is thread-count independent") {
    const std::size_t n = 70000 + 13;  // parallel-sized, with a ragged end
    std::vector<float> avg(n), val(n);
    std::mt19937 gen(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (std::size_t i = 0; i < n; ++i) {
        avg[i] = u(gen);
        val[i] = u(gen);
    }
    auto run = [&](int threads) {
        std::vector<float> a = avg;
#ifdef _OPENMP
        const int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
#else
        (void)threads;
#endif
        cnnlite::kernels::ema_update(a.data(), val.data(), static_cast<std::int64_t>(n), 0.001f);
#ifdef _OPENMP
        omp_set_num_threads(saved);
#endif
        return a;
    };
    const auto one = run(1), two = run(2);
    CHECK(std::memcmp(one.data(), two.data(), n * sizeof(float)) == 0);
    for (std::size_t i = 0; i < n; i += 997) {
        const double expected = 0.999 * avg[i] + 0.001 * val[i];
        INFO("element ", i);
        CHECK(std::abs(one[i] - expected) <= 2e-7);
    }
}

TEST_CASE("ExponentialMovingAverage state() then load_state() continues bit for bit; bad state is refused") {
    auto make_params = [] {
        return std::vector<Variable<float>>{parameter<float>(Shape{2, 3}, {1, 2, 3, 4, 5, 6}),
                                            parameter<float>(Shape{2}, {-1, 1})};
    };
    auto drift = [](std::vector<Variable<float>>& ps, int s) {
        for (std::size_t i = 0; i < ps.size(); ++i) {
            Tensor<float>& v = ps[i].value();
            for (std::int64_t k = 0; k < v.numel(); ++k)
                v[k] += std::sin(0.3f * static_cast<float>(s) + static_cast<float>(k + i));
        }
    };
    EmaOptions o;
    o.decay = 0.9;
    o.warmup = true;
    auto straight = make_params();
    ExponentialMovingAverage<float> a(straight, o);
    for (int s = 0; s < 6; ++s) {
        drift(straight, s);
        a.update();
    }
    auto first = make_params();
    ExponentialMovingAverage<float> b(first, o);
    for (int s = 0; s < 3; ++s) {
        drift(first, s);
        b.update();
    }
    const auto saved = b.state();
    std::vector<std::string> names;
    for (const auto& [name, t] : saved) names.push_back(name);
    CHECK(names == std::vector<std::string>{"ema.updates", "ema.average.0", "ema.average.1"});
    {
        AveragedWeights<float> averaged(b);  // state() while swapped is the same state
        const auto during = b.state();
        for (std::size_t k = 0; k < saved.size(); ++k) CHECK(same_bits(during[k].second, saved[k].second));
    }
    // A fresh average over other variables with the same values, loaded, continues the same way.
    std::vector<Variable<float>> second = {Variable<float>(first[0].value().clone(), true),
                                           Variable<float>(first[1].value().clone(), true)};
    ExponentialMovingAverage<float> d(second, o);
    d.load_state(saved);
    CHECK(d.updates() == 3);
    for (int s = 3; s < 6; ++s) {
        drift(second, s);
        d.update();
    }
    for (std::size_t i = 0; i < 2; ++i) CHECK(same_bits(d.average(i), a.average(i)));

    auto replaced = [&](const std::string& key, Tensor<float> t) {
        auto s = saved;
        for (auto& e : s)
            if (e.first == key) e.second = std::move(t);
        return s;
    };
    const auto before = d.average(0).to_vector();
    CHECK_THROWS_WITH_AS(d.load_state({saved[0], saved[1]}), doctest::Contains("missing entry 'ema.average.1'"), Error);
    CHECK_THROWS_WITH_AS(d.load_state(replaced("ema.average.1", Tensor<float>(Shape{3}))),
                         "ema.load_state: entry 'ema.average.1' has shape [3] but needs shape [2]", Error);
    CHECK_THROWS_WITH_AS(d.load_state(replaced("ema.updates", Tensor<float>::full(Shape{1}, 2.5f))),
                         doctest::Contains("ema.updates = 2.5 is not a valid count"), Error);
    {
        auto s = saved;
        s.emplace_back("ema.average.2", Tensor<float>(Shape{1}));
        CHECK_THROWS_WITH_AS(d.load_state(s), doctest::Contains("unexpected entry 'ema.average.2'"), Error);
        s = saved;
        s.push_back(saved[1]);
        CHECK_THROWS_WITH_AS(d.load_state(s), doctest::Contains("entry 'ema.average.0' appears twice"), Error);
    }
    CHECK(d.average(0).to_vector() == before);
    CHECK(d.updates() == 6);
    CHECK_THROWS_WITH_AS(ExponentialMovingAverage<float>(make_params(), EmaOptions{1.5, false}),
                         "ema: decay must be in [0, 1], got 1.5", Error);
    auto p = hand_parameter<float>();
    CHECK_THROWS_WITH_AS(ExponentialMovingAverage<float>({p, p}), "ema: variable 1 is listed twice", Error);
    CHECK_THROWS_WITH_AS(ExponentialMovingAverage<float>(std::vector<Variable<float>>{}),
                         "ema: got an empty variable list", Error);
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping.

TEST_CASE_TEMPLATE("clip_grad_norm by hand", T, float, double) {
    // Gradients [3, 4] and [12]: norm 13. max_norm 6.5: scale 6.5 / (13 + 1e-6).
    auto a = parameter<T>(Shape{2}, {T(0), T(0)});
    auto b = parameter<T>(Shape{1}, {T(0)});
    auto none = parameter<T>(Shape{2}, {T(0), T(0)});  // no gradient: counts as none
    set_grad(a, {T(3), T(4)});
    set_grad(b, {T(12)});
    const std::vector<Variable<T>> vars = {a, none, b};
    CHECK(cnnlite::grad_norm(vars) == 13.0);
    CHECK(cnnlite::clip_grad_norm(vars, 100.0) == 13.0);  // below the limit: untouched
    CHECK(a.grad().to_vector() == std::vector<T>{T(3), T(4)});
    const double scale = 6.5 / (13 + 1e-6);
    CHECK(cnnlite::clip_grad_norm(vars, 6.5) == 13.0);
    check_values(a.grad(), {3 * scale, 4 * scale});
    check_values(b.grad(), {12 * scale});
    CHECK_FALSE(none.has_grad());
    CHECK(cnnlite::grad_norm(vars) == doctest::Approx(6.5).epsilon(1e-6));
    // Infinity only measures.
    CHECK(cnnlite::clip_grad_norm(vars, HUGE_VAL) == doctest::Approx(6.5).epsilon(1e-6));
    CHECK(cnnlite::clip_grad_norm(std::vector<Variable<T>>{none}, 1.0) == 0.0);
    CHECK_THROWS_WITH_AS(cnnlite::clip_grad_norm(vars, 0.0), "clip_grad_norm: max_norm must be > 0, got 0", Error);
    CHECK_THROWS_WITH_AS(cnnlite::clip_grad_norm(vars, -1.0), "clip_grad_norm: max_norm must be > 0, got -1", Error);
    CHECK_THROWS_WITH_AS(cnnlite::clip_grad_norm(vars, NAN), doctest::Contains("max_norm must be > 0, got nan"), Error);
}

TEST_CASE("clip_grad_norm follows torch.nn.utils.clip_grad_norm_, non-finite gradients included") {
    const auto& reference = recipe_reference();
    REQUIRE(reference["clip"].size() == 5);
    for (const auto& c : reference["clip"]) {
        INFO("case ", c["name"].get<std::string>());
        std::vector<Variable<float>> vars;
        for (std::size_t i = 0; i < c["shapes"].size(); ++i) {
            const Shape shape(c["shapes"][i].get<std::vector<std::int64_t>>());
            vars.push_back(Variable<float>(Tensor<float>::zeros(shape), true));
            set_grad(vars.back(), numbers<float>(c["grads"][i]));
        }
        const double norm = cnnlite::clip_grad_norm(vars, c["max_norm"].get<double>());
        // torch sums in float32 per tensor; here in double.
        CHECK(same_or_both_nan(norm, number(c["norm"]), 2e-6 * 12.3));
        for (std::size_t i = 0; i < vars.size(); ++i) {
            const auto expected = numbers<double>(c["after"][i]);
            const auto got = vars[i].grad().to_vector();
            for (std::size_t k = 0; k < expected.size(); ++k) {
                INFO("gradient ", i, ", element ", k, ": ", got[k], " vs ", expected[k]);
                CHECK(same_or_both_nan(got[k], expected[k], 4e-7 * std::max(1.0, std::abs(expected[k]))));
            }
        }
    }
}

}  // namespace test_optim
