// InferenceModel against Model::predict, shared by the portable test binary (where no filters
// are packed) and the AVX2 and AVX-512 binaries (where the convolutions read packed filters).
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cnnlite/core/random.hpp"
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

/// `packable`: whether this build's convolutions read packed filters (register_gemm).
inline void check_inference_model(bool packable) {
    const int threads_before = num_threads();
    Model<float> model = train_threads_cases::residual_model();
    randomise(model, 7);
    const InferenceModel<float> prepared(model);
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
        const InferenceModel<float> kept(m);
        CHECK(kept.folded_batch_norms() == 0);
        CHECK(kept.fused_relus() == 0);
        CHECK(kept.size() == m.size());
        CHECK(kept.packed_convolutions() == (packable ? 2u : 0u));
        Tensor<float> xs(Shape{3, 2, 6, 6});
        const RandomStream stream(9, Purpose::user);
        for (std::int64_t i = 0; i < xs.numel(); ++i) xs[i] = static_cast<float>(stream.normal(i));
        CHECK(same_bits(kept.predict(xs), m.predict(xs)));
    }

    // The paper's network (no batch norm; its convolution fused with ReLU and pooling).
    {
        Model<float> paper = fashion_mnist_cnn<float>(3);
        const InferenceModel<float> copy(paper);
        CHECK(copy.folded_batch_norms() == 0);
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

}  // namespace inference_model_cases
