// Dropout layer: inverted dropout in training, identity otherwise. Each mask element is a pure
// function of (seed, layer index, step, the sample's global index, element), so runs are
// reproducible whatever the thread or process count. Followed by a MaxPool2D, it runs fused
// with it in training.
#pragma once

#include <cstdio>
#include <memory>
#include <vector>
#include <string>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/ops/dropout.hpp"
#include "cnnlite/ops/dropout_max_pool2d.hpp"

namespace cnnlite {

/// Dropout layer: inverted dropout of `rate` in training, the identity otherwise.
template <class T = float>
class Dropout : public Layer<T> {
public:
    /// Dropout of `rate` in [0, 1).
    explicit Dropout(double rate) : rate_(rate) {
        check(rate >= 0.0 && rate < 1.0, "Dropout: rate ", rate, " outside [0, 1)");
    }
    /// Sets the layer's name (default: dropout, dropout_1, ...).
    Dropout& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "Dropout"; }
    const char* default_name() const override { return "dropout"; }

    Shape build(const Shape& in, const LayerInit& init) override {
        layer_index_ = init.layer_index;
        return in;
    }
    /// In training (ctx.training), drops elements with masks keyed by ctx; otherwise returns x.
    Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx) const override {
        this->check_input(x);
        if (!ctx.training || rate_ == 0.0) return x;
        return dropout(x, rate_, stream(ctx), ctx.sample_ids ? ctx.sample_ids : default_ids(x.shape()[0]));
    }
    /// In training, a following MaxPool2D with non-overlapping windows runs fused with the
    /// dropout (the same values and gradients, without storing the dropout's output and mask).
    Variable<T> forward_fused(const Variable<T>& x, const Layer<T>& next, const ForwardContext& ctx) const override {
        const auto* pool = dynamic_cast<const MaxPool2D<T>*>(&next);
        if (pool == nullptr || !ctx.training || rate_ == 0.0 || x.value().rank() != 4 ||
            pool->stride_h() < pool->pool_h() || pool->stride_w() < pool->pool_w())
            return Variable<T>();
        this->check_input(x);
        const RandomStream stream = this->stream(ctx);
        const std::int64_t* ids = ctx.sample_ids ? ctx.sample_ids : default_ids(x.shape()[0]);
        return dropout_max_pool2d(x, rate_, stream, ids, pool->pool_h(), pool->pool_w(), pool->stride_h(),
                                  pool->stride_w());
    }
    LayerConfig config() const override { return {type(), this->name_, {{"rate", format_rate()}}}; }
    std::unique_ptr<Layer<T>> clone_config() const override {
        auto copy = std::make_unique<Dropout>(rate_);
        copy->set_name(this->name_);
        return copy;
    }
    /// The drop probability.
    double rate() const { return rate_; }

private:
    RandomStream stream(const ForwardContext& ctx) const {
        return RandomStream(ctx.seed, Purpose::dropout, static_cast<std::uint64_t>(layer_index_),
                            static_cast<std::uint64_t>(ctx.step));
    }
    // Without explicit ids, rows are samples 0..N-1 of this call.
    static const std::int64_t* default_ids(std::int64_t rows) {
        thread_local std::vector<std::int64_t> ids;
        ids.resize(static_cast<std::size_t>(rows));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
        return ids.data();
    }
    std::string format_rate() const {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.17g", rate_);
        return buffer;
    }

    double rate_;
    std::int64_t layer_index_ = 0;
};

}  // namespace cnnlite
