// InferenceModel against Model::predict, shared by the portable test binary (where no filters
// are packed and nothing runs channels-last) and the AVX2 and AVX-512 binaries (where the
// convolutions read packed filters, and run channels-last unless told not to).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "cnnlite/core/random.hpp"
#include "cnnlite/nn/avg_pool2d.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/spatial_dropout2d.hpp"
#include "cnnlite/nn/inference_model.hpp"
#include "error_message.hpp"
#include "train_threads_cases.hpp"

namespace inference_model_cases {

using namespace cnnlite;

inline bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

// Every parameter and buffer drawn anew (variances positive), so that folding has work to do.
inline void randomise(const Model<float>& model, std::uint64_t key) {
    const RandomStream stream(key, Purpose::user);
    std::int64_t index = 0;
    for (const auto& named : {model.parameters(), model.buffers()})
        for (const auto& p : named) {
            Tensor<float> v = p.variable.value();
            const bool variance = p.name.find("running_var") != std::string::npos;
            for (std::int64_t i = 0; i < v.numel(); ++i) {
                const float u = static_cast<float>(stream.uniform(index++));
                v[i] = variance ? 0.5f + u : 2 * u - 1;
            }
        }
}

inline Tensor<float> images(std::int64_t count) { return train_threads_cases::fixtures().test.images().rows(0, count); }

// Largest |a - b| over two tensors of one shape.
inline float largest_difference(const Tensor<float>& a, const Tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    float most = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) most = std::max(most, std::abs(a[i] - b[i]));
    return most;
}

// Whether a and b have NaN in the same places and differ elsewhere by at most `relative` of b's
// largest magnitude (or of 1).
inline bool close(const Tensor<float>& a, const Tensor<float>& b, float relative) {
    REQUIRE(a.shape() == b.shape());
    float scale = 1, most = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) {
        if (std::isnan(a[i]) != std::isnan(b[i])) return false;
        if (std::isnan(b[i])) continue;
        scale = std::max(scale, std::abs(b[i]));
        most = std::max(most, std::abs(a[i] - b[i]));
    }
    return most <= relative * scale;
}

inline Tensor<float> normal_images(const Shape& shape, std::uint64_t key) {
    Tensor<float> xs(shape);
    const RandomStream stream(key, Purpose::user);
    for (std::int64_t i = 0; i < xs.numel(); ++i) xs[i] = static_cast<float>(stream.normal(i));
    return xs;
}

// Every chunk on num_threads() threads, so that "at 2 threads" means two (the thread governor
// would run some chunks on one): channels-last where the plan takes the layers, or on planes,
// layer after layer as Model::predict runs them; channels-last with every convolution a direct
// product (no Winograd transforms).
constexpr InferenceOptions on_team{true, false};
constexpr InferenceOptions planes{false, false};
/// Sets Conv2D::winograd on every convolution of `m`.
inline void set_winograd(Model<float>& m, bool on) {
    for (std::size_t i = 0; i < m.size(); ++i)
        if (auto* conv = dynamic_cast<Conv2D<float>*>(&m.layer(i))) conv->winograd(on);
}

inline InferenceOptions on_team_direct() {
    InferenceOptions o = on_team;
    o.winograd = false;
    return o;
}

/// `packable`: whether this build's convolutions read packed filters (register_gemm).
inline void check_inference_model(bool packable) {
    const int threads_before = num_threads();
    Model<float> model = train_threads_cases::residual_model();
    randomise(model, 7);
    const InferenceModel<float> prepared(model, planes);
    CHECK(prepared.folded_batch_norms() == 4);  // every Conv2D is followed by its own batch norm
    CHECK(prepared.fused_relus() == 2);  // the stem's and the block's first; the others follow an Add
    CHECK(prepared.size() == model.size() - 6);
    // The two 3x3 convolutions after the stem; the stem (9 taps) and the 1x1 shortcut (16)
    // take the direct loop, which reads the filters as they are.
    CHECK(prepared.packed_convolutions() == (packable ? 2u : 0u));
    CHECK(prepared.input_shape() == model.input_shape());
    CHECK(prepared.output_shape() == model.output_shape());

    // The same pairs folded the same way, the same packing: the same bits as Model::predict, at
    // one image and at a batch, at 1 and 2 threads.
    const Tensor<float> x = images(37);
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        set_num_threads(threads);
        const Tensor<float> want = model.predict(x, 16);
        CHECK(same_bits(prepared.predict(x, 16), want));
        CHECK(same_bits(prepared.predict(x.rows(5, 1), 1), model.predict(x.rows(5, 1), 1)));
    }

    // A snapshot: changing the source afterwards changes its predictions, not the copy's.
    const Tensor<float> before = prepared.predict(x);
    for (const auto& p : model.parameters())
        if (p.name.find("conv2d") == 0) {
            Tensor<float> w = p.variable.value();
            for (float& v : w) v *= 2;
        }
    CHECK(!same_bits(model.predict(x), before));
    CHECK(same_bits(prepared.predict(x), before));

    // A batch norm whose convolution is also read elsewhere, or has an activation, stays a layer.
    {
        auto in = Input<float>({2, 6, 6});
        Conv2dOptions o;
        o.filters = 20;
        o.kernel_size = {3, 3};
        o.padding = Padding::same();
        const Symbolic<float> c = Conv2D<float>(o)(in);
        const Symbolic<float> shared = Add<float>()({BatchNormalization<float>()(c), c});
        o.activation = Activation::relu;
        const Symbolic<float> activated = BatchNormalization<float>()(Conv2D<float>(o)(shared));
        Model<float> m(in, Dense<float>(3)(GlobalAveragePooling2D<float>()(activated)));
        randomise(m, 8);
        const InferenceModel<float> kept(m, planes);
        CHECK(kept.folded_batch_norms() == 0);
        CHECK(kept.fused_relus() == 0);
        CHECK(kept.size() == m.size());
        CHECK(kept.packed_convolutions() == (packable ? 2u : 0u));
        const Tensor<float> xs = normal_images(Shape{3, 2, 6, 6}, 9);
        CHECK(same_bits(kept.predict(xs), m.predict(xs)));
    }

    // The paper's network (no batch norm; its convolution fused with ReLU and pooling).
    {
        Model<float> paper = fashion_mnist_cnn<float>(3);
        const InferenceModel<float> copy(paper);  // nothing channels-last: pooling reads the convolution
        CHECK(copy.folded_batch_norms() == 0);
        CHECK(copy.channels_last_convolutions() == 0);
        CHECK(same_bits(copy.predict(x), paper.predict(x)));
    }

    // conv2d given packed filters of the wrong size refuses them (where it would read them).
    if (packable) {
        const Variable<float> xv(Tensor<float>(Shape{1, 16, 6, 6})), wv(Tensor<float>(Shape{8, 16, 3, 3}));
        const Tensor<float> wrong(Shape{5});
        CHECK(test_support::error_of([&] { conv2d(xv, wv, Variable<float>(), Conv2dArgs{}, &wrong); }) ==
              "conv2d: packed filters of 5 values for a weight of shape [8, 16, 3, 3]");
    }

    // A negative running variance is refused by name, as Model::predict refuses it.
    {
        Model<float> broken = train_threads_cases::residual_model();
        for (const auto& b : broken.buffers())
            if (b.name == "batch_normalization_2.running_var") {
                Tensor<float> v = b.variable.value();
                v[3] = -1;
            }
        CHECK(test_support::error_of([&] { InferenceModel<float>{broken}; }) ==
              "BatchNormalization 'batch_normalization_2': running variance -1 of channel 3 is negative");
        CHECK(test_support::error_of([&] { broken.predict(images(1)); }).find("running variance -1 of channel 3") !=
              std::string::npos);
    }
    set_num_threads(threads_before);
}

/// The channels-last plan (nn/channels_last_plan.hpp). `available`: whether this build has it
/// (float on register_gemm).
inline void check_channels_last(bool available) {
    const int threads_before = num_threads();
    Model<float> model = train_threads_cases::residual_model();
    randomise(model, 7);
    const InferenceModel<float> prepared(model, on_team);
    const InferenceModel<float> on_planes(model, planes);
    // The stem, the shortcut and the block's two convolutions; the second adds the shortcut and
    // applies the ReLU after the Add as it stores its output.
    CHECK(prepared.channels_last_convolutions() == (available ? 4u : 0u));
    CHECK(prepared.fused_additions() == (available ? 1u : 0u));
    CHECK(on_planes.channels_last_convolutions() == 0);
    // The block's second convolution (3x3, stride 1, 32 channels) runs by Winograd's transforms;
    // the stem (one input channel), the strided one and the 1x1 shortcut by direct products.
    CHECK(prepared.winograd_convolutions() == (available ? 1u : 0u));
    const InferenceModel<float> direct(model, on_team_direct());
    CHECK(direct.winograd_convolutions() == 0);
    CHECK(direct.channels_last_convolutions() == (available ? 4u : 0u));

    // Model::predict's outputs to rounding (the stem and the 1x1 shortcut sum in another order
    // there), and the same bits at 1 and 2 threads, in chunks that end in part of a group.
    const Tensor<float> x = images(37);
    set_num_threads(1);
    const Tensor<float> one_thread = prepared.predict(x, 16);
    CHECK(largest_difference(one_thread, model.predict(x, 16)) < 2e-6f);
    CHECK(largest_difference(direct.predict(x, 16), model.predict(x, 16)) < 2e-6f);
    set_num_threads(2);
    CHECK(same_bits(prepared.predict(x, 16), one_thread));
    // What the plan hands to the Dense layer (whose product rounds differently at another batch
    // size) has the same bits for an image whatever batch and group position it comes in.
    {
        std::vector<LayerConfig> pooled_layers = model.architecture();
        pooled_layers.pop_back();
        Model<float> pooled = make_model<float>(model.input_shape(), pooled_layers);
        for (std::size_t i = 0; i < pooled.state().size(); ++i)
            pooled.state()[i].variable.value().copy_from(model.state()[i].variable.value());
        const InferenceModel<float> features(pooled, on_team);
        const Tensor<float> batch = features.predict(x, 16);
        CHECK(largest_difference(batch, pooled.predict(x, 16)) < 2e-5f);
        for (std::int64_t i : {0, 5, 34, 36}) {
            CAPTURE(i);
            for (int threads : {1, 2}) {
                set_num_threads(threads);
                CHECK(same_bits(features.predict(x.rows(i, 1), 1), batch.rows(i, 1)));
                CHECK(same_bits(features.predict(x.rows(i / 2, 19), 7).rows(i - i / 2, 1), batch.rows(i, 1)));
            }
        }
    }

    // A NaN or an infinity in one image makes that image's outputs NaN, as in Model::predict,
    // and reaches no other image of its group (the padding's taps of every image read the same
    // run of zeros).
    {
        Tensor<float> poisoned = x.clone();
        poisoned[5 * 784 + 0] = std::numeric_limits<float>::quiet_NaN();     // image 5, a corner (padding next to it)
        poisoned[6 * 784 + 403] = std::numeric_limits<float>::infinity();    // image 6, the middle
        const Tensor<float> got = prepared.predict(poisoned, 16), want = model.predict(poisoned, 16);
        for (std::int64_t image = 0; image < 37; ++image) {
            CAPTURE(image);
            bool all_nan = true, none_nan = true;
            for (std::int64_t k = 0; k < 10; ++k) {
                all_nan = all_nan && std::isnan(got[image * 10 + k]) && std::isnan(want[image * 10 + k]);
                none_nan = none_nan && !std::isnan(got[image * 10 + k]);
            }
            if (image == 5 || image == 6)
                CHECK(all_nan);
            else
                CHECK((none_nan && largest_difference(got.rows(image, 1), one_thread.rows(image, 1)) < 1e-6f));
        }
    }

    // Filters that transform to a non-finite value keep the direct product (and IEEE's rules
    // for the infinity: the outputs it reaches are NaN, as in Model::predict).
    {
        Model<float> broken = train_threads_cases::residual_model();
        randomise(broken, 7);
        for (const auto& p : broken.parameters())
            if (p.variable.value().shape() == Shape{32, 32, 3, 3}) {
                Tensor<float> w = p.variable.value();  // shares the parameter's storage
                w[100] = std::numeric_limits<float>::infinity();
            }
        const InferenceModel<float> kept(broken, on_team);
        CHECK(kept.winograd_convolutions() == 0);
        CHECK(kept.channels_last_convolutions() == (available ? 4u : 0u));
        const Tensor<float> got = kept.predict(x.rows(0, 3)), want = broken.predict(x.rows(0, 3));
        for (std::int64_t i = 0; i < got.numel(); ++i) CHECK(std::isnan(got[i]) == std::isnan(want[i]));
    }

    // Where Model::predict runs every convolution as an indirect product too (32 channels and
    // more per tap, or a stride), the same bits without Winograd's transforms; with them (the
    // stem), the same to rounding.
    {
        auto in = Input<float>({32, 9, 9});
        Conv2dOptions o;
        o.filters = 32;
        o.kernel_size = {3, 3};
        o.padding = Padding::same();
        o.use_bias = false;
        const Symbolic<float> stem = ReLU<float>()(BatchNormalization<float>()(Conv2D<float>(o)(in)));
        o.strides = {2, 2};
        o.filters = 48;
        const Symbolic<float> main = Conv2D<float>(o)(stem);
        o.kernel_size = {1, 1};
        const Symbolic<float> shortcut = Conv2D<float>(o)(stem);
        const Symbolic<float> sum = ReLU<float>()(Add<float>()({main, shortcut}));
        Model<float> m(in, Dense<float>(5).activation("softmax")(GlobalAveragePooling2D<float>()(sum)));
        randomise(m, 10);
        const InferenceModel<float> transformed(m, on_team);
        CHECK(transformed.winograd_convolutions() == (available ? 1u : 0u));
        const Tensor<float> xs = normal_images(Shape{9, 32, 9, 9}, 11);
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            CHECK(close(transformed.predict(xs, 5), m.predict(xs, 5), 1e-5f));
        }
        // Turned off in the model's own layers (Model::predict runs the stem by the transforms
        // too), Winograd stays off in the prepared copy as well: the direct products' bits.
        set_winograd(m, false);
        const InferenceModel<float> fast(m, on_team);
        CHECK(fast.channels_last_convolutions() == (available ? 3u : 0u));
        CHECK(fast.winograd_convolutions() == 0);
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            CHECK(same_bits(fast.predict(xs, 5), m.predict(xs, 5)));
        }
    }

    // Values that layers outside the plan read go back to planes: a ReLU and an Add of a
    // convolution read twice, then Flatten and Dense; and a model that ends in a convolution,
    // which stays with the model, and so does the convolution only it reads.
    {
        auto in = Input<float>({3, 7, 5});
        Conv2dOptions o;
        o.filters = 40;
        o.kernel_size = {3, 2};
        o.padding = Padding::same();
        const Symbolic<float> c = Conv2D<float>(o)(in);
        const Symbolic<float> r = ReLU<float>()(c);
        Model<float> m(in, Dense<float>(4)(Flatten<float>()(Add<float>()({r, c}))));
        randomise(m, 12);
        const InferenceModel<float> exported(m, on_team);
        CHECK(exported.channels_last_convolutions() == (available ? 1u : 0u));
        CHECK(exported.fused_additions() == 0);
        const Tensor<float> xs = normal_images(Shape{6, 3, 7, 5}, 13);
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            CHECK(largest_difference(exported.predict(xs, 4), m.predict(xs)) < 1e-4f);
        }

        Model<float> ends(in, Conv2D<float>(o)(ReLU<float>()(Conv2D<float>(o)(in))));
        randomise(ends, 14);
        const InferenceModel<float> kept(ends, on_team);  // the ReLU becomes the first one's activation
        CHECK(kept.channels_last_convolutions() == 0);
        CHECK(same_bits(kept.predict(xs), ends.predict(xs)));
    }

    // Pooling and dropout between the convolutions (a small VGG): max pooling valid and 'same'
    // with overlapping windows, average pooling 'same' with a stride, a dropout before a
    // convolution and one before the Flatten that leaves the plan. Model::predict runs the first
    // convolution fused with its ReLU and pooling, in another order: equal to rounding.
    {
        auto in = Input<float>({3, 15, 13});
        Conv2dOptions o;
        o.kernel_size = {3, 3};
        o.padding = Padding::same();
        o.filters = 32;
        o.activation = Activation::relu;
        Symbolic<float> h = MaxPool2D<float>(2, 2)(Conv2D<float>(o)(in));  // 7x6
        o.filters = 48;
        o.activation = Activation::none;
        h = ReLU<float>()(Conv2D<float>(o)(h));
        h = Dropout<float>(0.5)(AvgPool2D<float>(3, 3).strides(2, 2).padding("same")(h));  // 4x3
        o.filters = 40;
        h = Conv2D<float>(o)(h);
        h = SpatialDropout2D<float>(0.3)(MaxPool2D<float>(3, 3).strides(1, 1).padding("same")(h));
        Model<float> vgg(in, Dense<float>(6)(Flatten<float>()(h)));  // logits: a softmax would saturate here
        randomise(vgg, 15);
        const InferenceModel<float> pooled(vgg, on_team);
        CHECK(pooled.channels_last_convolutions() == (available ? 3u : 0u));
        Tensor<float> xs = normal_images(Shape{11, 3, 15, 13}, 16);
        xs[2 * 585 + 40] = std::numeric_limits<float>::quiet_NaN();  // image 2: NaN wins every pooling it reaches
        set_num_threads(1);
        const Tensor<float> one = pooled.predict(xs, 6);
        CHECK(close(one, vgg.predict(xs, 6), 1e-5f));
        for (std::int64_t k = 0; k < 6; ++k) CHECK((std::isnan(one[2 * 6 + k]) && !std::isnan(one[3 * 6 + k])));
        set_num_threads(2);
        CHECK(same_bits(pooled.predict(xs, 6), one));
    }

    // A wrong input is refused as Model::predict refuses it; an empty batch gives what it gives.
    {
        const Tensor<float> wrong(Shape{2, 1, 27, 28});
        CHECK(test_support::error_of([&] { prepared.predict(wrong); }) == test_support::error_of([&] { model.predict(wrong); }));
        CHECK(test_support::error_of([&] { prepared.predict(x, 0); }) == "predict: batch size must be positive, got 0");
        const Tensor<float> none = x.rows(0, 0);
        const std::string refused = test_support::error_of([&] { model.predict(none); });
        CHECK(test_support::error_of([&] { prepared.predict(none); }) == refused);
        if (refused.empty()) CHECK(prepared.predict(none).shape() == model.predict(none).shape());
    }

    // Images so large that a group's activations would take more than 64 MiB stay with the
    // model (no activation is allocated to find out).
    {
        auto in = Input<float>({1, 2048, 2048});
        Model<float> huge(in, Dense<float>(2)(GlobalAveragePooling2D<float>()(Conv2D<float>(32, 3)(in))));
        CHECK(InferenceModel<float>(huge).channels_last_convolutions() == 0);
        auto small = Input<float>({1, 256, 256});
        Model<float> fits(small, Dense<float>(2)(GlobalAveragePooling2D<float>()(Conv2D<float>(8, 5)(small))));
        CHECK(InferenceModel<float>(fits).channels_last_convolutions() == (available ? 1u : 0u));
    }
    set_num_threads(threads_before);
}

/// InferenceModel's thread governor (InferenceOptions::adapt_threads): probes on the team and
/// on one thread and keeps the winner, governs chunks of a few images and of many apart, starts
/// again when the caller's thread count changes, and leaves every output's bits as they are.
/// Which count wins is forced with the margin; the policy itself is tested with made-up times
/// in tests/test_train_thread_governor.cpp.
inline void check_adaptive_threads() {
    const int threads_before = num_threads();
    Model<float> model = train_threads_cases::residual_model();
    randomise(model, 7);
    set_num_threads(2);
    const Tensor<float> x = images(9), one_image = x.rows(4, 1);
    const InferenceModel<float> fixed(model, on_team);
    const Tensor<float> want = fixed.predict(x), want_one = fixed.predict(one_image);
    CHECK(fixed.chunks_on_one_thread() == 0);
    CHECK(fixed.thread_probes() == 0);

    InferenceOptions forced;
    forced.thread_governor.warmup_steps = 0;
    forced.thread_governor.probe_steps = 1;
    forced.thread_governor.first_interval = forced.thread_governor.max_interval = 1e9;  // no probe after the first
    forced.thread_governor.one_thread_margin = 1e9;  // one thread wins every probe
    forced.governor_step_seconds = 0;                // every chunk a step
    const InferenceModel<float> one_wins(model, forced);
    for (int call = 0; call < 5; ++call) CHECK(same_bits(one_wins.predict(one_image), want_one));
    if (!has_openmp()) {  // one thread: nothing to choose
        CHECK(one_wins.thread_probes() == 0);
        CHECK(one_wins.chunks_on_one_thread() == 0);
        set_num_threads(threads_before);
        return;
    }
    CHECK(one_wins.thread_probes() == 1);
    CHECK(one_wins.chunks_on_one_thread() == 4);  // the probe's second chunk and the three after it
    // Nine images are three groups, more than the threads: governed apart, with a probe of their own.
    CHECK(same_bits(one_wins.predict(x), want));
    CHECK(same_bits(one_wins.predict(x), want));
    CHECK(one_wins.thread_probes() == 2);
    CHECK(one_wins.chunks_on_one_thread() == 5);
    // In chunks of 2 images (one group each, fewer than the threads): the few-image governor's.
    CHECK(same_bits(one_wins.predict(x, 2), fixed.predict(x, 2)));  // (a dense product rounds by batch size)
    CHECK(one_wins.chunks_on_one_thread() == 10);

    forced.thread_governor.one_thread_margin = 1e-9;  // the team wins every probe
    const InferenceModel<float> team_wins(model, forced);
    for (int call = 0; call < 4; ++call) CHECK(same_bits(team_wins.predict(one_image), want_one));
    CHECK(team_wins.thread_probes() == 1);
    CHECK(team_wins.chunks_on_one_thread() == 1);  // the probe's
    // Another thread count: a probe of its own, the counts kept.
    set_num_threads(3);
    for (int call = 0; call < 3; ++call) CHECK(same_bits(team_wins.predict(one_image), want_one));
    CHECK(team_wins.thread_probes() == 2);
    CHECK(team_wins.chunks_on_one_thread() == 2);
    set_num_threads(2);

    // Called inside a parallel region of the caller's, each chunk runs on its thread: nothing to govern.
    {
        const InferenceModel<float> inside(model, forced);
        std::vector<Tensor<float>> got(2);
#pragma omp parallel for num_threads(2)
        for (int i = 0; i < 2; ++i) got[static_cast<std::size_t>(i)] = inside.predict(one_image);
        for (const Tensor<float>& y : got) CHECK(same_bits(y, want_one));
        CHECK(inside.thread_probes() == 0);
    }

    // Several callers at once, with the default governor but every chunk a step (so that 60
    // chunks of each size make a probe on any machine): the same outputs.
    {
        InferenceOptions every_chunk;
        every_chunk.governor_step_seconds = 0;
        const InferenceModel<float> shared(model, every_chunk);
        std::vector<int> wrong(3, 0);
        std::vector<std::thread> callers;
        for (std::size_t t = 0; t < wrong.size(); ++t)
            callers.emplace_back([&, t] {
                set_num_threads(2);
                for (int call = 0; call < 20; ++call) {
                    wrong[t] += same_bits(shared.predict(one_image), want_one) ? 0 : 1;
                    wrong[t] += same_bits(shared.predict(x), want) ? 0 : 1;
                }
            });
        for (std::thread& c : callers) c.join();
        for (int w : wrong) CHECK(w == 0);
        CHECK(shared.thread_probes() >= 1);
    }

    // Steps of several chunks: one thread wins, each probe's half is three steps of at least
    // a second, so ten calls of 9 images (well under a second together) are one step on the team.
    {
        InferenceOptions long_steps = forced;
        long_steps.thread_governor.one_thread_margin = 1e9;
        long_steps.governor_step_seconds = 1.0;
        const InferenceModel<float> stepped(model, long_steps);
        for (int call = 0; call < 10; ++call) CHECK(same_bits(stepped.predict(x), want));
        CHECK(stepped.thread_probes() == 0);
        CHECK(stepped.chunks_on_one_thread() == 0);
    }

    // Settings the governor refuses are refused when the model is prepared.
    {
        InferenceOptions negative;
        negative.governor_step_seconds = -1;
        CHECK(test_support::error_of([&] { InferenceModel<float>(model, negative); }) ==
              "InferenceModel: governor_step_seconds must be >= 0, got -1");
    }
    forced.thread_governor.probe_steps = 0;
    CHECK(test_support::error_of([&] { InferenceModel<float>(model, forced); }) ==
          "ThreadGovernor: warm-up steps 0 and probe steps 0 must be >= 0 and >= 1");
    set_num_threads(threads_before);
}

}  // namespace inference_model_cases
