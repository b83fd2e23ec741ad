// Seeded initialisers: each element i of the tensor is drawn as element i of a RandomStream,
// so the same (seed, layer, tensor) always gives the same weights.
#pragma once

#include <cmath>
#include <cstdint>

#include "cnnlite/core/random.hpp"
#include "cnnlite/core/tensor.hpp"

namespace cnnlite {

/// Fills `t` with values uniform in [low, high).
template <class T>
void fill_uniform(Tensor<T>& t, const RandomStream& stream, double low, double high) {
    check(low <= high, "fill_uniform: low ", low, " above high ", high);
    T* p = t.data();
    for (std::int64_t i = 0; i < t.numel(); ++i)
        p[i] = static_cast<T>(low + (high - low) * stream.uniform(static_cast<std::uint64_t>(i)));
}

/// Fills `t` with normal draws of the given mean and standard deviation.
template <class T>
void fill_normal(Tensor<T>& t, const RandomStream& stream, double mean, double stddev) {
    check(stddev >= 0, "fill_normal: negative standard deviation ", stddev);
    T* p = t.data();
    for (std::int64_t i = 0; i < t.numel(); ++i)
        p[i] = static_cast<T>(mean + stddev * stream.normal(static_cast<std::uint64_t>(i)));
}

/// Glorot (Xavier) uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); Keras' default.
template <class T>
void fill_glorot_uniform(Tensor<T>& t, const RandomStream& stream, std::int64_t fan_in, std::int64_t fan_out) {
    check(fan_in + fan_out > 0, "fill_glorot_uniform: fan_in + fan_out must be positive");
    const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    fill_uniform(t, stream, -limit, limit);
}

/// Kaiming (He) uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)); PyTorch's default
/// for Conv2d/Linear weights and (with the same bound) their biases.
template <class T>
void fill_torch_default(Tensor<T>& t, const RandomStream& stream, std::int64_t fan_in) {
    check(fan_in > 0, "fill_torch_default: fan_in must be positive");
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    fill_uniform(t, stream, -bound, bound);
}

}  // namespace cnnlite
