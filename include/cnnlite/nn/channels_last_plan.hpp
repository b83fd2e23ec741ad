// ChannelsLastPlan: how InferenceModel runs the convolutional part of a network with its
// activations channels-last (kernels/channels_last.hpp), a group of a few images at a time.
//
// The plan takes the longest stretch of the network it can, from the input on: Conv2D layers
// (one channel group, no dilation; linear or ReLU), ReLU and Add layers, max and average
// pooling, dropout (nothing at inference), and a GlobalAveragePooling2D that leaves it. A
// convolution read by an Add, and by nothing else, becomes one step with that addition (and
// with the ReLU after the Add, when only the ReLU reads it), at the Add's place: the product's
// tiles are stored with the bias, the residual and the ReLU applied. A 3x3 stride-1 convolution
// that kernels::winograd_tile_for chooses runs by Winograd's transforms (kernels/winograd.hpp,
// fewer multiplications; unless the plan is made without them). Whatever the plan does not
// take (Flatten, Dense, global max pooling, ...) runs afterwards as the model's layers, on the
// planes the plan hands over; a convolution whose output another such layer reads stays with
// the model (it would only gain a transpose back), and so does everything after it. Nor does
// the plan run a network whose convolutions all have a handful of taps (the paper's 2x2 over
// one channel): the model's direct kernels, fused with the ReLU and the pooling, are faster
// there.
//
// With more groups than threads each thread takes whole groups through every step (one
// parallel region per batch, the groups handed out as threads become free, so that a thread
// slowed by another process does not hold the others); with fewer (one image), the threads
// share each step of each group and meet at a barrier between steps. A group's activations
// take a few hundred kilobytes per value, and its steps run back to back, so they stay in the
// core's cache.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/channels_last.hpp"
#include "cnnlite/kernels/indirect_conv.hpp"
#include "cnnlite/kernels/parallel.hpp"
#include "cnnlite/kernels/winograd.hpp"
#include "cnnlite/nn/avg_pool2d.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/layer.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/model.hpp"

namespace cnnlite {

/// The channels-last steps of a prepared model (see the file's comment); inactive (predict
/// must not be called) where it takes no convolution, for element types other than float, and
/// in builds without the register-blocked product.
template <class T>
class ChannelsLastPlan {
public:
    /// The plan of `model`, whose layers are `configs` (its architecture(), in order). The plan
    /// copies what it needs of the weights; `model` must outlive it (the layers after the plan
    /// run from it). With `winograd`, the 3x3 stride-1 convolutions for which
    /// kernels::winograd_tile_for chooses it, and whose layer allows it (Conv2D::winograd), run
    /// by Winograd's transforms (kernels/winograd.hpp).
    ChannelsLastPlan(const Model<T>& model, const std::vector<LayerConfig>& configs, bool winograd = true)
        : model_(&model), winograd_(winograd) {
        if constexpr (std::is_same_v<T, float> && kernels::register_gemm_available) build(configs);
        else (void)configs;
    }

    /// Whether the plan takes at least one convolution (else Model::predict runs everything).
    bool active() const { return convolutions_ > 0; }
    /// Convolutions the plan runs.
    std::size_t convolutions() const { return convolutions_; }
    /// Convolutions that also add a residual as they store their output.
    std::size_t fused_additions() const { return fused_additions_; }
    /// Convolutions that run by Winograd's transforms.
    std::size_t winograd_convolutions() const {
        return static_cast<std::size_t>(std::count_if(steps_.begin(), steps_.end(), [](const Step& s) { return s.winograd_tile > 0; }));
    }

    /// Outputs for the images `x` ([n, input...]), a chunk that Model::predict_in_chunks has
    /// checked and hands over (so inference mode without a graph): the plan's steps, then the
    /// layers after it, at num_threads() threads.
    Tensor<T> predict_chunk(const Tensor<T>& x) const {
        check(active(), "ChannelsLastPlan: no convolution to run channels-last");
        return run_chunk(x);
    }

private:
    // The most floats a group's value, and entries a convolution's table of offsets, may take
    // (64 MiB): well within the offsets' 32 bits.
    static constexpr std::int64_t channels_last_most = std::int64_t(1) << 24;

    // A channels-last value: a layer's output (or the model's input) held group by group, in
    // one of the lane's slots.
    struct Value {
        std::int64_t pixels = 0, channels = 0;
        int slot = -1;
    };
    enum class Kind { stage, conv, sum, max_pool, avg_pool, global_average, to_planes };
    struct Step {
        Kind kind = Kind::conv;
        std::vector<int> inputs;  // values read (conv: the image, then the residual if any)
        int output = -1;          // value written (all but global_average and to_planes)
        int planes = -1;          // global_average, to_planes: index into planes_names_
        bool relu = false;
        // conv: its shape (batch 1), filters as the indirect product reads them, offsets for a
        // group, and the bias (zeros without one: the planes path adds +0 too).
        kernels::ConvShape shape;
        std::vector<float> filters, bias;
        std::vector<std::int32_t> offsets;
        // conv by Winograd's F(m x m, 3x3): m (0: the direct product) and the transformed filters.
        std::int64_t winograd_tile = 0;
        std::vector<float> winograd_filters;
        // max_pool, avg_pool: the window over the input.
        kernels::WindowGeometry window;
        bool count_include_pad = false;
    };

    void build(const std::vector<LayerConfig>& configs) {
        const Shape& input = model_->input_shape();
        std::map<std::string, int> readers;
        for (const LayerConfig& c : configs)
            for (const std::string& in : c.inputs) ++readers[in];
        const std::string output_name = configs.back().name;

        // The layers the plan takes, and the convolutions that stay with the model because a
        // layer outside the plan reads them; repeated until nothing changes.
        std::set<std::string> excluded, taken;
        for (bool changed = true; changed;) {
            taken = takeable(configs, input, excluded);
            changed = false;
            for (const LayerConfig& c : configs) {
                if (!taken.count(c.name) || c.type != "Conv2D") continue;
                bool outside = c.name == output_name;
                for (const LayerConfig& r : configs)
                    for (const std::string& in : r.inputs) outside = outside || (in == c.name && !taken.count(r.name));
                if (outside) changed = excluded.insert(c.name).second || changed;
            }
        }
        bool worth_it = false;  // a convolution on the register-blocked product
        for (const LayerConfig& c : configs)
            if (taken.count(c.name) && c.type == "Conv2D") {
                const Layer<T>& conv = model_->layer(c.name);
                worth_it = worth_it ||
                           shape_of(dynamic_cast<const Conv2D<T>&>(conv), conv.input_shape()).patch() > kernels::direct_conv_max_patch;
            }
        if (!worth_it) return;

        // Merges: a convolution read only by an Add (then the Add's ReLU, if only it reads the
        // Add) runs as one step at the Add's place.
        std::map<std::string, std::string> fused_conv_of_add;  // Add -> its convolution
        std::set<std::string> merged;                          // layers that became part of a step
        std::map<std::string, std::string> relu_of_add;         // Add -> its ReLU
        for (const LayerConfig& c : configs) {
            if (c.type != "Add" || !taken.count(c.name) || c.inputs.size() != 2) continue;
            for (const std::string& in : c.inputs) {
                const LayerConfig& producer = config_of(configs, in);
                const bool linear = producer.type == "Conv2D" && taken.count(in) &&
                                    dynamic_cast<const Conv2D<T>&>(model_->layer(in)).activation() == Activation::none;
                if (linear && readers[in] == 1 && !fused_conv_of_add.count(c.name) && c.inputs[0] != c.inputs[1]) {
                    fused_conv_of_add[c.name] = in;
                    merged.insert(in);
                }
            }
            if (!fused_conv_of_add.count(c.name) || readers[c.name] != 1 || c.name == output_name) continue;
            for (const LayerConfig& r : configs)
                if (r.type == "ReLU" && taken.count(r.name) && r.inputs.size() == 1 && r.inputs[0] == c.name) {
                    relu_of_add[c.name] = r.name;
                    merged.insert(r.name);
                }
        }

        // The steps, in the configurations' order, and where each value lives.
        std::map<std::string, int> value_of;  // layer name (or the input's) -> channels-last value
        auto new_value = [&](const std::string& name, std::int64_t pixels, std::int64_t channels) {
            values_.push_back(Value{pixels, channels, -1});
            value_of[name] = static_cast<int>(values_.size()) - 1;
            return value_of[name];
        };
        auto cl_value = [&](const std::string& name) {
            if (!value_of.count(name)) {  // the model's input, staged once
                Step stage;
                stage.kind = Kind::stage;
                stage.output = new_value(name, input[1] * input[2], input[0]);
                steps_.push_back(std::move(stage));
            }
            return value_of.at(name);
        };
        for (const LayerConfig& c : configs) {
            if (!taken.count(c.name) || merged.count(c.name)) continue;
            const Layer<T>& layer = model_->layer(c.name);
            Step step;
            std::string written = c.name;  // the name its output goes by
            if (c.type == "Conv2D" || fused_conv_of_add.count(c.name)) {
                const std::string conv_name = c.type == "Conv2D" ? c.name : fused_conv_of_add.at(c.name);
                const LayerConfig& conv_config = config_of(configs, conv_name);
                const auto& conv = dynamic_cast<const Conv2D<T>&>(model_->layer(conv_name));
                step = conv_step(conv);
                step.inputs.push_back(cl_value(conv_config.inputs[0]));
                if (c.type == "Add") {
                    const std::string& other = c.inputs[0] == conv_name ? c.inputs[1] : c.inputs[0];
                    step.inputs.push_back(cl_value(other));
                    ++fused_additions_;
                    if (relu_of_add.count(c.name)) {
                        step.relu = true;
                        written = relu_of_add.at(c.name);
                        value_of[c.name] = -1;  // read by nothing but the merged ReLU
                    }
                }
                ++convolutions_;
                step.output = new_value(written, step.shape.pixels(), step.shape.out_channels);
            } else if (is_dropout(c.type)) {  // nothing at inference: its input's value
                value_of[c.name] = cl_value(c.inputs[0]);
                export_if_read_outside(configs, taken, output_name, c.name, value_of[c.name]);
                continue;
            } else if (c.type == "MaxPooling2D" || c.type == "AveragePooling2D") {
                step.kind = c.type == "MaxPooling2D" ? Kind::max_pool : Kind::avg_pool;
                step.inputs.push_back(cl_value(c.inputs[0]));
                const Pool2dArgs& a = c.type == "MaxPooling2D" ? dynamic_cast<const MaxPool2D<T>&>(layer).pool2d_args()
                                                               : dynamic_cast<const AvgPool2D<T>&>(layer).pool2d_args();
                const Shape& in = layer.input_shape();
                step.window = kernels::WindowGeometry{in[1], in[2], a.pool_h, a.pool_w, a.stride_h, a.stride_w,
                                                      a.pad_top, a.pad_bottom, a.pad_left, a.pad_right};
                step.count_include_pad = a.count_include_pad;
                step.output = new_value(c.name, step.window.out_h() * step.window.out_w(), in[0]);
            } else if (c.type == "ReLU" || c.type == "Add") {
                step.kind = Kind::sum;
                step.relu = c.type == "ReLU";
                for (const std::string& in : c.inputs) step.inputs.push_back(cl_value(in));
                const Value& v = values_[static_cast<std::size_t>(step.inputs[0])];
                step.output = new_value(c.name, v.pixels, v.channels);
            } else {  // GlobalAveragePooling2D
                step.kind = Kind::global_average;
                step.inputs.push_back(cl_value(c.inputs[0]));
                step.planes = add_planes(c.name, layer.output_shape());
            }
            steps_.push_back(std::move(step));
            if (steps_.back().output >= 0) export_if_read_outside(configs, taken, output_name, written, steps_.back().output);
        }
        for (const LayerConfig& c : configs)
            if (!taken.count(c.name)) rest_.push_back(c);
        assign_slots();
    }

    static bool is_dropout(const std::string& type) { return type == "Dropout" || type == "SpatialDropout2D"; }

    // A value that layers outside the plan read (or the model's output, by the name `written`)
    // goes back to planes right after the step that writes it.
    void export_if_read_outside(const std::vector<LayerConfig>& configs, const std::set<std::string>& taken,
                                const std::string& output_name, const std::string& written, int value) {
        bool outside = written == output_name;
        for (const LayerConfig& r : configs)
            for (const std::string& in : r.inputs) outside = outside || (in == written && !taken.count(r.name));
        if (!outside) return;
        Step export_step;
        export_step.kind = Kind::to_planes;
        export_step.inputs.push_back(value);
        export_step.planes = add_planes(written, model_->layer(written).output_shape());
        steps_.push_back(std::move(export_step));
    }

    // The layers the plan can take when the convolutions in `excluded` stay with the model:
    // each reads the input (convolutions only) or channels-last values of layers it takes (all
    // but the global pooling, whose output is planes).
    std::set<std::string> takeable(const std::vector<LayerConfig>& configs, const Shape& input,
                                   const std::set<std::string>& excluded) const {
        std::set<std::string> taken, channels_last;
        auto inside = [&](const std::string& name, bool input_allowed) {
            return channels_last.count(name) || (input_allowed && name == model_input_name() && input.rank() == 3);
        };
        for (const LayerConfig& c : configs) {
            const Layer<T>& layer = model_->layer(c.name);
            bool ok = false;
            if (c.type == "Conv2D" && !excluded.count(c.name)) {
                const auto& conv = dynamic_cast<const Conv2D<T>&>(layer);
                ok = inside(c.inputs[0], true) && conv_fits(conv, layer.input_shape());
            } else if (c.type == "ReLU" || c.type == "Add") {
                ok = true;
                for (const std::string& in : c.inputs) ok = ok && inside(in, false);
            } else if (c.type == "MaxPooling2D" || c.type == "AveragePooling2D" || is_dropout(c.type) ||
                       c.type == "GlobalAveragePooling2D") {
                ok = inside(c.inputs[0], false);
            }
            if (!ok) continue;
            taken.insert(c.name);
            if (c.type != "GlobalAveragePooling2D") channels_last.insert(c.name);
        }
        return taken;
    }

    // A convolution the channels-last steps run: one group, no dilation, linear or ReLU, and
    // a group's input, output and table of offsets each within channels_last_most (for
    // larger images a group no longer stays in cache, and Model::predict's products of one
    // image need less memory).
    static bool conv_fits(const Conv2D<T>& conv, const Shape& in) {
        const kernels::ConvShape s = shape_of(conv, in);
        if (!s.plain() || (conv.activation() != Activation::none && conv.activation() != Activation::relu)) return false;
        const std::int64_t taps = s.window.kernel_h * s.window.kernel_w;
        return kernels::channels_last_group_floats(in[1] * in[2], in[0]) <= channels_last_most &&
               kernels::channels_last_group_floats(s.pixels(), s.out_channels) <= channels_last_most &&
               kernels::channels_last_group * s.pixels() <= channels_last_most / taps;
    }

    static kernels::ConvShape shape_of(const Conv2D<T>& conv, const Shape& in) {
        return detail::conv_shape(Shape{1, in[0], in[1], in[2]}, conv.weight().shape(), conv.conv2d_args());
    }

    Step conv_step(const Conv2D<T>& conv) const {
        Step step;
        step.kind = Kind::conv;
        const Shape& in = conv.input_shape();
        step.shape = shape_of(conv, in);
        const kernels::ConvShape& s = step.shape;
        step.relu = conv.activation() == Activation::relu;
        step.filters.resize(static_cast<std::size_t>(s.out_channels * s.patch()));
        kernels::forward_filters(s, conv.weight().value().data(), step.filters.data());
        step.bias.assign(static_cast<std::size_t>(s.out_channels), 0.0f);
        if (conv.bias().defined()) std::copy(conv.bias().value().begin(), conv.bias().value().end(), step.bias.begin());
        const std::int64_t in_pixels = in[1] * in[2];
        step.offsets.resize(static_cast<std::size_t>(kernels::channels_last_group * s.pixels() * s.window.kernel_h *
                                                     s.window.kernel_w));
        kernels::forward_run_offsets(s, kernels::channels_last_group,
                                     static_cast<std::int32_t>(kernels::channels_last_group * in_pixels * in[0]),
                                     step.offsets.data());
        const std::int64_t tile = winograd_ && s.winograd ? kernels::winograd_tile_for(s) : 0;
        if (tile > 0) {
            step.winograd_filters.resize(static_cast<std::size_t>(kernels::WinogradTiles(s, tile).points() * s.in_channels *
                                                                  s.out_channels));
            if (kernels::winograd_filters(s, tile, conv.weight().value().data(), step.winograd_filters.data())) {
                step.winograd_tile = tile;
            } else {
                step.winograd_filters = {};  // a non-finite or huge filter: the direct product keeps IEEE's rules
            }
        }
        return step;
    }

    int add_planes(const std::string& name, const Shape& shape) {
        planes_names_.push_back(name);
        planes_shapes_.push_back(shape);
        return static_cast<int>(planes_names_.size()) - 1;
    }

    // Slots for the values: a value's slot is free again after the last step that reads it
    // (never the step that writes into a slot: no step reads and writes the same memory).
    void assign_slots() {
        std::vector<std::size_t> last_read(values_.size(), 0);
        for (std::size_t i = 0; i < steps_.size(); ++i)
            for (int v : steps_[i].inputs) last_read[static_cast<std::size_t>(v)] = i;
        std::vector<int> free_slots;
        int slots = 0;
        for (std::size_t i = 0; i < steps_.size(); ++i) {
            Step& step = steps_[i];
            if (step.output >= 0) {
                Value& v = values_[static_cast<std::size_t>(step.output)];
                if (free_slots.empty()) {
                    v.slot = slots++;
                } else {
                    v.slot = free_slots.back();
                    free_slots.pop_back();
                }
                slot_floats_ = std::max(slot_floats_, kernels::channels_last_group_floats(v.pixels, v.channels));
                if (last_read[static_cast<std::size_t>(step.output)] <= i) free_slots.push_back(v.slot);  // never read
            }
            for (int in : step.inputs)
                if (last_read[static_cast<std::size_t>(in)] == i &&
                    std::find(free_slots.begin(), free_slots.end(), values_[static_cast<std::size_t>(in)].slot) ==
                        free_slots.end())
                    free_slots.push_back(values_[static_cast<std::size_t>(in)].slot);
        }
        slots_ = slots;
        for (const Step& step : steps_)
            if (step.winograd_tile > 0)
                scratch_floats_ = std::max(scratch_floats_, kernels::winograd_scratch_floats(step.shape, step.winograd_tile));
    }

    static const LayerConfig& config_of(const std::vector<LayerConfig>& configs, const std::string& name) {
        for (const LayerConfig& c : configs)
            if (c.name == name) return c;
        fail("ChannelsLastPlan: no layer '", name, "'");
    }

    // The plan's steps for the chunk `x`, then the layers after it.
    Tensor<T> run_chunk(const Tensor<T>& x) const {
        const std::int64_t n = x.shape()[0];
        std::vector<Tensor<T>> planes;
        for (const Shape& s : planes_shapes_) {
            std::vector<std::int64_t> dims{n};
            for (std::int64_t d : s) dims.push_back(d);
            planes.push_back(Tensor<T>::uninitialized(Shape(dims)));
        }
        run_groups(x, planes);
        std::map<std::string, Variable<T>> values;
        values[model_input_name()] = Variable<T>(x);
        for (std::size_t i = 0; i < planes.size(); ++i) values[planes_names_[i]] = Variable<T>(planes[i]);
        for (const LayerConfig& c : rest_) {
            const Layer<T>& layer = model_->layer(c.name);
            std::vector<Variable<T>> args;
            for (const std::string& in : c.inputs) args.push_back(values.at(in));
            values[c.name] = args.size() == 1 ? layer.forward(args[0], ForwardContext{}) : layer.forward_inputs(args, ForwardContext{});
        }
        return values.at(model_->layer(model_->size() - 1).name()).value();
    }

    void run_groups(const Tensor<T>& x, std::vector<Tensor<T>>& planes) const {
        const std::int64_t n = x.shape()[0], G = kernels::channels_last_group, groups = (n + G - 1) / G;
        const int threads = num_threads();
        const bool shared = groups < threads;
        const std::int64_t lanes = shared ? 1 : threads;
        Tensor<float> workspace = Tensor<float>::uninitialized(Shape{lanes * slots_ * slot_floats_});
        Tensor<float> scratch = Tensor<float>::uninitialized(Shape{threads * scratch_floats_});  // per thread
        std::vector<float*> outputs;
        for (Tensor<T>& p : planes) outputs.push_back(p.data());
        [[maybe_unused]] const bool parallel = n * work_per_image_() >= kernels::parallel_threshold;  // unused without OpenMP
        if (shared) {
#pragma omp parallel if (parallel)
            {
                const int parts = team_size(), part = thread_index();
                float* own = scratch.data() + part * scratch_floats_;
                for (std::int64_t g = 0; g < groups; ++g) run_group(x.data(), g, n, workspace.data(), own, outputs, part, parts);
            }
        } else {
#pragma omp parallel for schedule(dynamic) if (parallel)
            for (std::int64_t g = 0; g < groups; ++g)
                run_group(x.data(), g, n, workspace.data() + thread_index() * slots_ * slot_floats_,
                          scratch.data() + thread_index() * scratch_floats_, outputs, 0, 1);
        }
    }

    // Multiply-adds per image, roughly: whether waking the threads pays.
    std::int64_t work_per_image_() const {
        std::int64_t work = 0;
        for (const Step& s : steps_)
            if (s.kind == Kind::conv) work += s.shape.pixels() * s.shape.out_channels * s.shape.patch();
        return work;
    }

    // Every step for group `g` of the chunk; part `part` of `parts` of each when the team
    // shares the group (then the team meets after every step). `scratch`: this thread's.
    void run_group(const float* x, std::int64_t g, std::int64_t n, float* lane, float* scratch,
                   const std::vector<float*>& outputs, int part, int parts) const {
        const std::int64_t G = kernels::channels_last_group, n0 = g * G, count = std::min(G, n - n0);
        auto slot = [&](int value) { return lane + values_[static_cast<std::size_t>(value)].slot * slot_floats_; };
        std::vector<const float*> xs;  // a sum step's inputs, kept from step to step
        for (const Step& step : steps_) {
            const Value* out = step.output >= 0 ? &values_[static_cast<std::size_t>(step.output)] : nullptr;
            const Value& in = values_[static_cast<std::size_t>(step.kind == Kind::stage ? step.output : step.inputs[0])];
            switch (step.kind) {
                case Kind::stage: {
                    const auto [first, last] = kernels::IndirectForward::share(in.pixels, part, parts);
                    kernels::planes_to_channels_last(x + n0 * in.channels * in.pixels, count, in.channels, in.pixels,
                                                     slot(step.output), first, last);
                    break;
                }
                case Kind::conv: {
                    const float* residual = step.inputs.size() > 1 ? slot(step.inputs[1]) : nullptr;
                    if (step.winograd_tile > 0) {
                        kernels::channels_last_winograd(
                            step.shape, step.winograd_tile, count, slot(step.inputs[0]), step.winograd_filters.data(),
                            step.filters.data(), step.offsets.data(), step.bias.data(), residual, step.relu,
                            slot(step.output), kernels::winograd_share(step.shape, step.winograd_tile, count, part, parts),
                            scratch);
                        break;
                    }
                    const auto [begin, end] = kernels::IndirectForward::share(count * out->pixels, part, parts,
                                                                              kernels::IndirectForward::row_block);
                    kernels::channels_last_conv(step.shape, slot(step.inputs[0]), step.filters.data(), step.offsets.data(),
                                                step.bias.data(), residual, step.relu, slot(step.output), begin, end);
                    break;
                }
                case Kind::sum: {
                    xs.clear();
                    for (int v : step.inputs) xs.push_back(slot(v));
                    const auto [first, last] = kernels::IndirectForward::share(count * in.pixels * in.channels, part, parts);
                    kernels::channels_last_sum(xs.data(), static_cast<std::int64_t>(xs.size()), step.relu, slot(step.output),
                                               first, last);
                    break;
                }
                case Kind::max_pool:
                case Kind::avg_pool: {
                    const std::int64_t rows = count * out->pixels;
                    const auto [begin, end] = kernels::IndirectForward::share(rows, part, parts);
                    if (step.kind == Kind::max_pool)
                        kernels::channels_last_max_pool(slot(step.inputs[0]), step.window, out->channels, slot(step.output),
                                                        begin, end);
                    else
                        kernels::channels_last_avg_pool(slot(step.inputs[0]), step.window, step.count_include_pad,
                                                        out->channels, slot(step.output), begin, end);
                    break;
                }
                case Kind::global_average: {
                    const auto [first, last] = kernels::IndirectForward::share(in.channels, part, parts);
                    kernels::channels_last_global_average(slot(step.inputs[0]), count, in.pixels, in.channels,
                                                          outputs[static_cast<std::size_t>(step.planes)] + n0 * in.channels,
                                                          first, last);
                    break;
                }
                case Kind::to_planes: {
                    const auto [first, last] = kernels::IndirectForward::share(in.channels, part, parts);
                    kernels::channels_last_to_planes(slot(step.inputs[0]), count, in.pixels, in.channels,
                                                     outputs[static_cast<std::size_t>(step.planes)] + n0 * in.channels * in.pixels,
                                                     first, last);
                    break;
                }
            }
            if (out != nullptr && part == 0) kernels::channels_last_zeros(slot(step.output), out->pixels, out->channels);
            if (parts > 1) {
#pragma omp barrier
            }
        }
    }

    const Model<T>* model_;
    std::vector<Value> values_;
    std::vector<Step> steps_;
    std::vector<std::string> planes_names_;  // values handed to the layers after the plan
    std::vector<Shape> planes_shapes_;       // their per-sample shapes
    std::vector<LayerConfig> rest_;          // the layers after the plan, in order
    bool winograd_ = true;
    int slots_ = 0;
    std::int64_t slot_floats_ = 0;
    std::int64_t scratch_floats_ = 0;  // per thread, for the Winograd steps
    std::size_t convolutions_ = 0;
    std::size_t fused_additions_ = 0;
};

}  // namespace cnnlite
