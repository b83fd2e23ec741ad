// SpatialDropout2D layer (Keras' SpatialDropout2D, PyTorch's Dropout2d): in training, drops
// whole feature maps (one decision per sample and channel), which regularises convolutional
// layers whose neighbouring pixels are strongly correlated; the identity otherwise. Decisions
// are keyed as Dropout's masks: (seed, layer index, step, the sample's global index, channel).
#pragma once

#include <memory>
#include <string>

#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/layer_options.hpp"
#include "cnnlite/ops/spatial_dropout2d.hpp"

namespace cnnlite {

/// The options of a SpatialDropout2D layer.
struct SpatialDropout2dOptions {
    double rate = 0.5;  ///< probability of dropping each feature map, in [0, 1)

    /// The fields, for configurations and model files (nn/layer_options.hpp).
    template <class Visitor>
    void visit(Visitor& v) {
        v("rate", rate);
    }
};

/// Spatial dropout: in training, each (sample, channel) plane of [N, C, H, W] is zeroed with
/// probability `rate` and the kept ones scaled by 1 / (1 - rate); the identity otherwise.
template <class T = float>
class SpatialDropout2D : public LayerWithOptions<T, SpatialDropout2D<T>, SpatialDropout2dOptions> {
public:
    /// The layer's options type.
    using Options = SpatialDropout2dOptions;

    /// Spatial dropout with its options.
    explicit SpatialDropout2D(SpatialDropout2dOptions options)
        : LayerWithOptions<T, SpatialDropout2D<T>, SpatialDropout2dOptions>(options) {
        check(options.rate >= 0.0 && options.rate < 1.0, "SpatialDropout2D: rate ", options.rate, " outside [0, 1)");
    }
    /// Spatial dropout of `rate` in [0, 1).
    explicit SpatialDropout2D(double rate) : SpatialDropout2D(SpatialDropout2dOptions{rate}) {}
    /// Sets the layer's name (default: spatial_dropout2d, spatial_dropout2d_1, ...).
    SpatialDropout2D& name(std::string n) { this->set_name(std::move(n)); return *this; }

    const char* type() const override { return "SpatialDropout2D"; }
    const char* default_name() const override { return "spatial_dropout2d"; }

    Shape build(const Shape& in, const LayerInit& init) override {
        check(in.rank() == 3, "SpatialDropout2D '", this->name_, "': input must be [C, H, W], got ", in);
        layer_index_ = init.layer_index;
        return in;
    }
    /// In training (ctx.training), drops feature maps keyed by ctx; otherwise returns x.
    Variable<T> forward(const Variable<T>& x, const ForwardContext& ctx) const override {
        this->check_input(x);
        if (!ctx.training || rate() == 0.0) return x;
        const RandomStream stream(ctx.seed, Purpose::dropout, static_cast<std::uint64_t>(layer_index_),
                                  static_cast<std::uint64_t>(ctx.step));
        return spatial_dropout2d(x, rate(), stream, Dropout<T>::sample_ids(ctx, x.shape()[0]));
    }
    /// The drop probability.
    double rate() const { return this->options_.rate; }

private:
    std::int64_t layer_index_ = 0;
};

}  // namespace cnnlite
