// A test-only layer with a buffer, for checking that training, checkpoints and data-parallel
// replicas carry buffers (as BatchNormalization's running statistics) besides parameters.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cnnlite/nn/layer.hpp"

namespace cnnlite::testing {

/// An identity layer with a buffer: the running mean of its input, updated in training as
/// BatchNormalization updates its running statistics (each rank's follows its own shard).
class RunningMean : public Layer<float> {
public:
    const char* type() const override { return "RunningMean"; }
    const char* default_name() const override { return "running_mean"; }
    Shape build(const Shape& input, const LayerInit&) override {
        mean_ = Variable<float>(Tensor<float>::zeros(input));
        return input;
    }
    Variable<float> forward(const Variable<float>& x, const ForwardContext& ctx) const override {
        if (ctx.training) {
            Tensor<float>& m = mean_.value();
            const std::int64_t n = x.shape()[0], f = m.numel();
            for (std::int64_t j = 0; j < f; ++j) {
                double sum = 0;
                for (std::int64_t i = 0; i < n; ++i) sum += x.value()[i * f + j];
                m[j] = 0.9f * m[j] + 0.1f * static_cast<float>(sum / static_cast<double>(n));
            }
        }
        return x;
    }
    std::vector<NamedParameter<float>> buffers() const override { return {{"running_mean", mean_}}; }
    std::unique_ptr<Layer<float>> clone_config() const override { return std::make_unique<RunningMean>(); }

private:
    mutable Variable<float> mean_;
};

}  // namespace cnnlite::testing
