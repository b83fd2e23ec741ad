// Dropout layer: inverted dropout in training, identity otherwise. Each mask element is a pure
// function of (seed, layer index, step, the sample's global index, element), so runs are
// reproducible whatever the thread or process count. Followed by a MaxPool2D, it runs fused
// with it in training.
#pragma once

#include <memory>
#include <vector>
#include <string>

#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/dropout.hpp"

namespace cnnlite {

/// The options of a Dropout layer.
struct DropoutOptions {
    double rate = 0.5;  ///< probability of dropping each element, in [0, 1)

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("rate", rate);
    }
};

/// Dropout layer: inverted dropout of `rate` in training, the identity otherwise.
template <class T = float>
class Dropout : public LayerWithOptions<T, Dropout<T>, DropoutOptions> {
public:
    /// The layer's options type.
    using Options = DropoutOptions;

    /// Dropout with its options.
    explicit Dropout(DropoutOptions options) : LayerWithOptions<T, Dropout<T>, DropoutOptions>(options) {
        check(options.rate >= 0.0 && options.rate < 1.0, "Dropout: rate ", options.rate, " outside [0, 1)");
    }
    /// Dropout of `rate` in [0, 1).
    explicit Dropout(double rate) : Dropout(DropoutOptions{rate}) {}
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
        if (!ctx.training || rate() == 0.0) return x;
        return dropout(x, rate(), random_stream(ctx), sample_ids(ctx, x.shape()[0]));
    }
    /// The drop probability.
    double rate() const { return this->options_.rate; }

    /// The random stream of this layer's masks in the step `ctx` describes.
    RandomStream random_stream(const ForwardContext& ctx) const {
        return RandomStream(ctx.seed, Purpose::dropout, static_cast<std::uint64_t>(layer_index_),
                            static_cast<std::uint64_t>(ctx.step));
    }
    /// The samples' indices that key each row's mask: ctx.sample_ids, or 0..rows-1 of this call.
    static const std::int64_t* sample_ids(const ForwardContext& ctx, std::int64_t rows) {
        return ctx.sample_ids ? ctx.sample_ids : default_ids(rows);
    }

private:
    static const std::int64_t* default_ids(std::int64_t rows) {
        thread_local std::vector<std::int64_t> ids;
        ids.resize(static_cast<std::size_t>(rows));
        for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
        return ids.data();
    }

    std::int64_t layer_index_ = 0;
};

}  // namespace cnnlite
