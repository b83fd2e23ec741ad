// Optimiser step benchmarks: the fused Adam kernel over the paper network's 805,962 float
// parameters at 1 and 2 threads, next to naive Eigen array versions (one pass per statement) and
// a bandwidth ceiling that moves the same bytes with trivial arithmetic.
//
// The bandwidth counter (GB/s) counts the bytes a single fused pass must move: Adam reads p, g, m, v and writes p, m, v
// (7 x 4 bytes per parameter); SGD with momentum reads p, g, buf and writes p, buf (5 x 4). The
// naive versions move more than that, so their figure is an effective rate, comparable with the
// fused one. Run:  bench_optim --benchmark_min_time=0.3 --benchmark_repetitions=9
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/optimizer.hpp"
#include "cnnlite/optim/adam.hpp"

namespace {

constexpr std::int64_t paper_parameters = 805962;  // conv 256 + 64, dense 802,816 + 256, dense_1 2,560 + 10

using Array = Eigen::Array<float, Eigen::Dynamic, 1>;

// Parameters, gradients and moments with realistic magnitudes (Adam state after some steps).
struct AdamArrays {
    Array p, g, m, v;
    explicit AdamArrays(std::int64_t n)
        : p(Array::Random(n) * 0.05f), g(Array::Random(n) * 1e-3f), m(Array::Random(n) * 1e-4f),
          v(Array::Random(n).abs() * 1e-7f) {}
};

void set_counters(benchmark::State& state, double bytes_per_step) {
    // Printed as e.g. "bandwidth=21.3G/s" (bytes per second, SI prefix).
    state.counters["bandwidth"] = benchmark::Counter(bytes_per_step * static_cast<double>(state.iterations()),
                                                     benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
    state.counters["threads"] = static_cast<double>(cnnlite::num_threads());
}

// Keras-placement Adam constants at step 10 with the default hyperparameters.
cnnlite::kernels::AdamCoefficients<float> keras_coefficients() {
    return cnnlite::kernels::adam_coefficients<float>(1e-3, 0.9, 0.999, 1e-7, 10, cnnlite::kernels::AdamEpsilon::keras);
}

void BM_adam_fused(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    AdamArrays a(paper_parameters);
    const auto c = keras_coefficients();
    for (auto _ : state) {
        cnnlite::kernels::adam_update(a.p.data(), a.g.data(), a.m.data(), a.v.data(), paper_parameters, c);
        benchmark::ClobberMemory();
    }
    set_counters(state, 7.0 * 4.0 * static_cast<double>(paper_parameters));
}

// The same update written as three Eigen array statements: three passes over memory. Eigen does
// not thread array expressions, so the thread count does not change it.
void BM_adam_eigen_three_passes(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    AdamArrays a(paper_parameters);
    const auto c = keras_coefficients();
    for (auto _ : state) {
        a.m += (a.g - a.m) * c.one_minus_beta1;
        a.v += (a.g.square() - a.v) * c.one_minus_beta2;
        a.p -= (a.m * c.step_size) / (a.v.sqrt() + c.epsilon);
        benchmark::ClobberMemory();
    }
    set_counters(state, 7.0 * 4.0 * static_cast<double>(paper_parameters));
}

// Adam as in the paper's pseudo-code: bias-corrected moments in temporaries, then the update
// (five passes, two temporary arrays per step).
void BM_adam_eigen_textbook(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    AdamArrays a(paper_parameters);
    const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-7f;
    const float bias1 = 1 - 0.34867844f, bias2 = 1 - 0.99004488f;  // 1 - beta^10
    Array m_hat = Array::Zero(paper_parameters), v_hat = Array::Zero(paper_parameters);  // sized once, as a real loop would
    for (auto _ : state) {
        a.m = beta1 * a.m + (1 - beta1) * a.g;
        a.v = beta2 * a.v + (1 - beta2) * a.g.square();
        m_hat = a.m / bias1;
        v_hat = a.v / bias2;
        a.p -= lr * m_hat / (v_hat.sqrt() + eps);
        benchmark::ClobberMemory();
    }
    set_counters(state, 7.0 * 4.0 * static_cast<double>(paper_parameters));
}

// Ceiling: the same reads and writes as fused Adam (p, g, m, v in; p, m, v out) with one add
// each, blocked and threaded exactly like the kernels.
template <class Length>
void same_traffic_block(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                        Length length) {
    for (std::int64_t i = 0; i < length; ++i) {
        const float gi = g[i];
        m[i] += gi;
        v[i] += gi;
        p[i] += gi;
    }
}

void BM_bandwidth_same_traffic(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    AdamArrays a(paper_parameters);
    for (auto _ : state) {
        cnnlite::kernels::detail::for_each_block(paper_parameters, [&](std::int64_t o, auto length) {
            same_traffic_block(a.p.data() + o, a.g.data() + o, a.m.data() + o, a.v.data() + o, length);
        });
        benchmark::ClobberMemory();
    }
    set_counters(state, 7.0 * 4.0 * static_cast<double>(paper_parameters));
}

void BM_sgd_momentum_fused(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    AdamArrays a(paper_parameters);
    cnnlite::kernels::SgdCoefficients<float> c;
    c.learning_rate = 0.01f;
    c.momentum = 0.9f;
    for (auto _ : state) {
        cnnlite::kernels::sgd_update(a.p.data(), a.g.data(), a.m.data(), paper_parameters, c);
        benchmark::ClobberMemory();
    }
    set_counters(state, 5.0 * 4.0 * static_cast<double>(paper_parameters));
}

// A whole Adam::step() over the paper network's six parameter tensors (the small ones run
// serially), including the per-step bookkeeping.
void BM_adam_step_paper_network(benchmark::State& state) {
    cnnlite::set_num_threads(static_cast<int>(state.range(0)));
    const std::vector<cnnlite::Shape> shapes = {{64, 1, 2, 2}, {64}, {256, 3136}, {256}, {10, 256}, {10}};
    std::vector<cnnlite::Variable<float>> params;
    std::int64_t total = 0;
    for (const auto& s : shapes) {
        cnnlite::Variable<float> p(cnnlite::Tensor<float>::full(s, 0.01f), true);
        p.grad() = cnnlite::Tensor<float>::full(s, 1e-3f);
        params.push_back(p);
        total += s.numel();
    }
    cnnlite::Adam<float> adam(params);
    for (auto _ : state) {
        adam.step();
        benchmark::ClobberMemory();
    }
    state.counters["parameters"] = static_cast<double>(total);
    set_counters(state, 7.0 * 4.0 * static_cast<double>(total));
}

// On a shared machine the fastest repetition is the best estimate of the unloaded time: run with
// --benchmark_repetitions=N to get "_min" rows next to the mean and median.
double fastest(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

#define CNNLITE_OPTIM_BENCHMARK(fn) \
    BENCHMARK(fn)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime()->ComputeStatistics("min", fastest)

CNNLITE_OPTIM_BENCHMARK(BM_adam_fused);
CNNLITE_OPTIM_BENCHMARK(BM_adam_eigen_three_passes);
CNNLITE_OPTIM_BENCHMARK(BM_adam_eigen_textbook);
CNNLITE_OPTIM_BENCHMARK(BM_bandwidth_same_traffic);
CNNLITE_OPTIM_BENCHMARK(BM_sgd_momentum_fused);
CNNLITE_OPTIM_BENCHMARK(BM_adam_step_paper_network);

}  // namespace

BENCHMARK_MAIN();
