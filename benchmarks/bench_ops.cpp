// The op harness in perf mode: every case of tests/op_cases.hpp (the same cases the tests
// check against PyTorch) timed forward and forward+backward in float, on the fixture's shapes.
// Small shapes: this measures per-op overhead (graph recording, buffer pool), not kernel
// throughput — bench_kernels.cpp and bench_model.cpp do that.
#include <benchmark/benchmark.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../tests/op_cases.hpp"
#include "../tests/source_dir.hpp"
#include "cnnlite/core/init.hpp"

using namespace cnnlite;

namespace {

std::vector<Tensor<float>> fixture_inputs(const std::string& name) {
    static const nlohmann::json cases = [] {
        std::ifstream in(test_support::source_dir().string() + "/tests/fixtures/ops/op_fixtures.json");
        return nlohmann::json::parse(in)["cases"];
    }();
    std::vector<Tensor<float>> inputs;
    for (const auto& in : cases.at(name)["inputs"]) {
        const Shape shape(in["shape"].get<std::vector<std::int64_t>>());
        const auto values = in["data"].get<std::vector<float>>();
        inputs.push_back(Tensor<float>::from(shape, values));
    }
    return inputs;
}

void run_case(benchmark::State& state, const testing::OpCase<float>& op, bool backward) {
    const auto values = fixture_inputs(op.name);
    for (auto _ : state) {
        std::vector<Variable<float>> inputs;
        for (const auto& v : values) inputs.emplace_back(v, backward);
        Variable<float> out = op.run(inputs);
        if (backward) out.backward(Tensor<float>::full(out.shape(), 1.0f));
        benchmark::DoNotOptimize(out.value().data());
    }
}

const bool registered = [] {
    for (const auto& op : testing::op_cases<float>()) {
        benchmark::RegisterBenchmark(("op/" + op.name + "/forward").c_str(),
                                     [op](benchmark::State& s) { run_case(s, op, false); });
        benchmark::RegisterBenchmark(("op/" + op.name + "/forward_backward").c_str(),
                                     [op](benchmark::State& s) { run_case(s, op, true); });
    }
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
