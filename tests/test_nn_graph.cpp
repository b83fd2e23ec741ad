// Graph models (Keras' functional API): a chain built functionally equals the Sequential,
// residual and fan-out graphs pass gradchecks, values flow to the right layers, fusion stays
// out of branches, the architecture round-trips through make_model and model files, summary's
// "Connected to" column, and the errors of malformed graphs.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "cnnlite/core/init.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/nn/add.hpp"
#include "cnnlite/nn/layer_registry.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/summary.hpp"
#include "cnnlite/ops/elementwise.hpp"
#include "cnnlite/ops/softmax_cross_entropy.hpp"
#include "inference_model_cases.hpp"
#include "model_gradients.hpp"

namespace test_nn_graph {

using namespace cnnlite;
using cnnlite::testing::check_model_gradients;

template <class T>
Tensor<T> random_batch(const Shape& shape, std::uint64_t seed) {
    Tensor<T> x(shape);
    fill_uniform(x, RandomStream(seed, Purpose::user), -1, 1);
    return x;
}

template <class T>
bool same_values(const Tensor<T>& a, const Tensor<T>& b) {
    if (a.shape() != b.shape()) return false;
    for (std::int64_t i = 0; i < a.numel(); ++i)
        if (a[i] != b[i]) return false;
    return true;
}

// A small residual network: conv -> (conv -> conv) + skip -> pool -> dense.
template <class T>
Model<T> residual_model(std::uint64_t seed) {
    auto x = Input<T>({2, 6, 6});
    auto stem = Conv2D<T>(3, 3).padding("same").activation("relu")(x);
    auto branch = Conv2D<T>(3, 3).padding("same").activation("relu")(stem);
    branch = Conv2D<T>(3, 3).padding("same")(branch);
    auto joined = Add<T>()({branch, stem});
    auto pooled = MaxPool2D<T>(2, 2)(ReLU<T>()(joined));
    auto y = Dense<T>(4).activation("softmax")(Flatten<T>()(pooled));
    return Model<T>(x, y, seed);
}

TEST_CASE("a chain built with the functional API equals the same Sequential: names, weights, outputs") {
    auto x = Input({1, 28, 28});
    auto h = Conv2D<>(64, 2).padding("same").activation("relu")(x);
    h = MaxPool2D<>(2, 2)(h);
    h = Dropout<>(0.3)(h);
    h = MaxPool2D<>(2, 2)(h);
    h = Dropout<>(0.3)(h);
    h = Flatten<>()(h);
    h = Dense<>(256).activation("relu")(h);
    h = Dropout<>(0.5)(h);
    const Model<> functional(x, Dense<>(10).activation("softmax")(h), /*seed=*/3);
    const Sequential<> sequential = fashion_mnist_cnn<float>(3);
    CHECK(functional.is_chain());
    REQUIRE(functional.size() == sequential.size());
    for (std::size_t i = 0; i < functional.size(); ++i) CHECK(functional.layer(i).name() == sequential.layer(i).name());
    const auto a = functional.parameters(), b = sequential.parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(same_values(a[i].variable.value(), b[i].variable.value()));
    const Tensor<float> images = random_batch<float>({5, 1, 28, 28}, 1);
    CHECK(same_values(functional.predict(images), sequential.predict(images)));
    CHECK(summary(functional) == summary(sequential));
}

TEST_CASE("a residual graph computes the layers' ops wired as called") {
    const Model<double> model = residual_model<double>(5);
    CHECK_FALSE(model.is_chain());
    REQUIRE(model.size() == 8);
    CHECK(model.inbound(3) == std::vector<std::string>{"conv2d_2", "conv2d"});
    const Tensor<double> images = random_batch<double>({3, 2, 6, 6}, 2);
    // The same network spelled out with the layers one by one.
    const Variable<double> x(images);
    const ForwardContext ctx;
    const auto& L = [&](const char* name) -> const Layer<double>& { return model.layer(name); };
    const Variable<double> stem = L("conv2d").forward(x, ctx);
    const Variable<double> branch = L("conv2d_2").forward(L("conv2d_1").forward(stem, ctx), ctx);
    Variable<double> h = add(branch, stem);
    h = L("max_pooling2d").forward(L("re_lu").forward(h, ctx), ctx);
    h = L("dense").forward(L("flatten").forward(h, ctx), ctx);
    CHECK(same_values(model.predict(images), h.value()));
}

TEST_CASE("graph models pass gradchecks: residual joins and a value read by three layers") {
    SUBCASE("residual") {
        Model<double> model = residual_model<double>(7);
        check_model_gradients(model, Shape{2, 2, 6, 6}, false);
    }
    SUBCASE("fan-out: one layer's output feeds a Dense, a Dropout and the Add") {
        auto x = Input<double>({5});
        auto h = Dense<double>(4).activation("relu")(x);
        auto a = Dense<double>(4)(h);
        auto b = Dropout<double>(0.5)(h);
        auto y = Dense<double>(3)(Add<double>()({a, b, h}));
        Model<double> model(x, y, 11);
        check_model_gradients(model, Shape{6, 5}, true);
    }
}

TEST_CASE("fusion applies inside a chain of a graph but never across a branch, and never changes values") {
    // conv(relu) -> pool is fusable on the main path; the second conv's output also feeds the
    // Add, so it must not be fused with the pool after it.
    auto x = Input<double>({1, 8, 8});
    auto c1 = Conv2D<double>(2, 3).padding("same").activation("relu")(x);
    auto p1 = MaxPool2D<double>(2, 2)(c1);
    auto c2 = Conv2D<double>(2, 3).padding("same").activation("relu")(p1);
    auto p2 = MaxPool2D<double>(1, 1)(c2);
    auto y = Flatten<double>()(Add<double>()({p2, c2}));
    Model<double> model(x, y, 4);
    const Tensor<double> images = random_batch<double>({2, 1, 8, 8}, 3);
    const Tensor<double> fused = model.predict(images);
    model.set_fusion(false);
    const Tensor<double> plain = model.predict(images);
    CHECK(same_values(fused, plain));
    // A tap sees every layer, fused or not.
    int seen = 0;
    model.set_fusion(true);
    model.forward(Variable<double>(images), {}, [&](const Layer<double>&, Variable<double>&) { ++seen; });
    CHECK(seen == static_cast<int>(model.size()));
}

TEST_CASE("a graph's architecture rebuilds with make_model and round-trips through a model file") {
    const Model<float> model = residual_model<float>(9);
    const Model<float> rebuilt = make_model<float>(model.input_shape(), model.architecture(), 9);
    const Tensor<float> images = random_batch<float>({4, 2, 6, 6}, 4);
    CHECK(same_values(model.predict(images), rebuilt.predict(images)));

    const auto path = (std::filesystem::temp_directory_path() / "cnnlite_test_graph.safetensors").string();
    save_model(model, path);
    const SafetensorsFile file = SafetensorsFile::load(path);
    CHECK(file.metadata().at("format_version") == "2");
    CHECK(file.metadata().at("architecture").find("\"inputs\":[\"conv2d_2\",\"conv2d\"]") != std::string::npos);
    const Model<float> loaded = load_model<float>(path);
    CHECK(loaded.inbound(3) == model.inbound(3));
    CHECK(same_values(model.predict(images), loaded.predict(images)));
    // A chain's file keeps the first format version: older readers load it.
    save_model(fashion_mnist_cnn<float>(0), path);
    CHECK(SafetensorsFile::load(path).metadata().at("format_version") == "1");
    std::filesystem::remove(path);
}

TEST_CASE("summary of a graph: Keras' Connected to column, one line per inbound layer") {
    const std::string table = summary(residual_model<float>(1));
    CHECK(table.find("Model: \"functional\"") != std::string::npos);
    CHECK(table.find("Connected to") != std::string::npos);
    CHECK(table.find(" input (InputLayer)") != std::string::npos);
    CHECK(table.find(" add (Add)") != std::string::npos);
    const auto add_row = table.find(" add (Add)");
    const auto next_line = table.find('\n', add_row);
    CHECK(table.substr(add_row, next_line - add_row).find("conv2d_2") != std::string::npos);
    CHECK(table.find("conv2d\n", next_line) == next_line + 1 + 32 + 26 + 12);
}

TEST_CASE("frozen layers: out of trainable_variables, counted as non-trainable, still saved") {
    Model<float> model = residual_model<float>(2);
    const std::int64_t all = model.parameter_count();
    const std::size_t trainable = model.trainable_variables().size();
    model.layer("conv2d").set_trainable(false);
    CHECK(model.trainable_variables().size() == trainable - 2);
    CHECK(model.non_trainable_count() == model.layer("conv2d").parameter_count());
    CHECK(model.trainable_count() + model.non_trainable_count() == all);
    CHECK(summary(model).find("Non-trainable params: " + std::to_string(model.layer("conv2d").parameter_count())) !=
          std::string::npos);
    CHECK(model.trainable_names().front() == "conv2d_1.weight");
    // A layer frozen before it is called stays frozen in the model.
    auto x = Input({3});
    Dense<> frozen(2);
    frozen.set_trainable(false);
    const Model<> m(x, Dense<>(1)(frozen(x)));
    CHECK_FALSE(m.layer("dense").trainable());
    CHECK(m.trainable_variables().size() == 2);
}

TEST_CASE("malformed graphs are refused with the layer and the problem named") {
    auto x = Input({4});
    auto other = Input({4});
    CHECK_THROWS_WITH_AS(Model<>(x, Dense<>(2)(other)), doctest::Contains("an Input that is not the model's input"), Error);
    CHECK_THROWS_WITH_AS(Model<>(x, Add<>()({Dense<>(2)(x), Dense<>(2)(other)})),
                         doctest::Contains("an Input that is not the model's input"), Error);
    CHECK_THROWS_WITH_AS(Model<>(x, x), doctest::Contains("the output is the input itself"), Error);
    CHECK_THROWS_WITH_AS(Model<>(Dense<>(2)(x), Dense<>(2)(x)), doctest::Contains("must be made by Input"), Error);
    CHECK_THROWS_WITH_AS(Add<>()(x), doctest::Contains("takes two or more inputs"), Error);
    CHECK_THROWS_WITH_AS(Dense<>(2)({x, x}), doctest::Contains("takes one input"), Error);
    CHECK_THROWS_WITH_AS(Model<>(x, Add<>()({Dense<>(2)(x), Dense<>(3)(x)})),
                         doctest::Contains("input 1 has shape [3], input 0 has [2]"), Error);
    CHECK_THROWS_WITH_AS(Model<>(x, Dense<>(2).name("input")(x)), doctest::Contains("may not be named 'input'"), Error);
    CHECK_THROWS_WITH_AS(Model<>(x, Add<>()({Dense<>(2).name("d")(x), Dense<>(2).name("d")(x)})),
                         doctest::Contains("a layer named 'd' exists already"), Error);

    Model<> by_name(Shape{4});
    by_name.connect(std::make_unique<Dense<>>(3), {"input"});
    CHECK_THROWS_WITH_AS(by_name.connect(std::make_unique<Dense<>>(3), {"nowhere"}),
                         doctest::Contains("takes the output of 'nowhere', which is not an earlier layer"), Error);
    by_name.connect(std::make_unique<Dense<>>(3), {"input"});  // 'dense' now feeds nothing
    CHECK_THROWS_WITH_AS(by_name.predict(Tensor<float>(Shape{1, 4})),
                         doctest::Contains("the output of layer 'dense' feeds no other layer"), Error);

    // A model file whose graph names a layer that does not exist.
    Model<float> model = residual_model<float>(1);
    auto arch = model.architecture();
    arch[3].inputs = {"conv2d_2", "ghost"};
    CHECK_THROWS_WITH_AS(make_model<float>(model.input_shape(), arch), doctest::Contains("'ghost'"), Error);
    CHECK_THROWS_WITH_AS(make_sequential<float>(model.input_shape(), model.architecture()),
                         doctest::Contains("use make_model"), Error);
}

}  // namespace test_nn_graph

TEST_CASE("InferenceModel folds the batch norms into the convolutions, is a snapshot, and predicts Model::predict's bits") {
    inference_model_cases::check_inference_model(cnnlite::kernels::register_gemm_available);
}
TEST_CASE("InferenceModel runs the convolutions channels-last: Model::predict's outputs, the same bits at any batch and thread count") {
    inference_model_cases::check_channels_last(cnnlite::kernels::register_gemm_available);
}
TEST_CASE("InferenceModel runs each chunk on the team or one thread, as its thread governor chooses, with the same outputs") {
    inference_model_cases::check_adaptive_threads();
}
