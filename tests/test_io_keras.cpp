// Keras weights (io/keras_weights.hpp): files written by Keras 3 and Keras 2 predict in cnnlite
// what they predicted in Keras; the layouts (HWIO kernels, [in, out] Dense kernels, the rows
// of a Dense after Flatten) against hand-built files; round trips; refusals of bad files. Its
// own executable, built with the Keras component (CNNLITE_WITH_KERAS), like test_io_onnx.
//
// With CNNLITE_KERAS_CHECK_DIR=DIR set, the reverse direction is prepared for Keras itself:
// DIR/cnnlite.weights.h5 and DIR/cnnlite_probabilities.npy, which
// `tests/fixtures/keras/make_keras_fixture.py check DIR` loads into Keras.
// Needs the Keras component (CMake -DCNNLITE_WITH_KERAS=ON: its own executable, test_io_keras);
// without it the file compiles to nothing.
#include <doctest/doctest.h>

#if defined(CNNLITE_WITH_KERAS) && CNNLITE_WITH_KERAS

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cnnlite/data/idx.hpp"
#include "cnnlite/io/keras_weights.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/npy.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/nn/symbolic.hpp"
#include "program_runner.hpp"
#include "error_message.hpp"
#include "source_dir.hpp"

namespace test_io_keras {

using test_support::error_of;
using test_support::contains;

using namespace cnnlite;
namespace fs = std::filesystem;
using test_support::TempDir;

namespace {

const fs::path source_dir = test_support::source_dir();
const fs::path keras_fixtures = source_dir / "tests" / "fixtures" / "keras";

/// The network of tests/fixtures/keras/make_keras_fixture.py, with Keras' layer names.
template <class T = float>
Sequential<T> fixture_network(std::uint64_t seed = 5) {
    Sequential<T> model({1, 28, 28}, seed);
    model.add(Conv2D<T>(4, 3).padding("same").activation("relu"));
    model.add(BatchNormalization<T>());
    model.add(MaxPool2D<T>(2));
    model.add(Dropout<T>(0.25));
    model.add(Flatten<T>());
    model.add(Dense<T>(10).activation("softmax"));
    return model;
}

/// The first `count` fixture test images, [count, 1, 28, 28], pixel / 255.
Tensor<float> fixture_images(std::int64_t count) {
    const Tensor<std::uint8_t> raw = read_idx_images(source_dir / "data" / "fixtures" / "t10k-images-idx3-ubyte.gz",
                                                     idx_default_max_bytes, count);
    Tensor<float> images = Tensor<float>::uninitialized(Shape{count, 1, 28, 28});
    for (std::int64_t i = 0; i < count * 784; ++i) images[i] = static_cast<float>(raw.data()[i]) / 255.0f;
    return images;
}

float max_difference(const Tensor<float>& a, const Tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    float worst = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
    return worst;
}



/// Writes a Keras-3-layout file by hand with the HDF5 library: each entry is a dataset path, a
/// shape and its values (float32).
struct HandDataset {
    std::string path;
    std::vector<hsize_t> shape;
    std::vector<float> values;
};
void write_hand_file(const fs::path& file, const std::vector<HandDataset>& sets) {
    const hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t links = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(links, 1);
    for (const HandDataset& d : sets) {
        const hid_t space = H5Screate_simple(static_cast<int>(d.shape.size()), d.shape.data(), nullptr);
        const hid_t set = H5Dcreate2(f, d.path.c_str(), H5T_IEEE_F32LE, space, links, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(set >= 0);
        REQUIRE(H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.values.data()) >= 0);
        H5Dclose(set);
        H5Sclose(space);
    }
    H5Pclose(links);
    H5Fclose(f);
}

std::vector<float> counting(std::size_t n) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) + 1.0f;
    return v;
}

}  // namespace

TEST_CASE("weights saved by Keras 3 (.weights.h5, .keras) and by Keras 2 predict in cnnlite what they predicted in Keras") {
    const Tensor<float> images = fixture_images(100);
    const Tensor<float> expected = load_npy<float>((keras_fixtures / "probabilities.npy").string());
    REQUIRE(expected.shape() == Shape{100, 10});
    for (const char* file : {"keras3.weights.h5", "keras2.h5", "keras3.keras"}) {
        CAPTURE(file);
        Sequential<float> model = fixture_network();
        const Tensor<float> before = model.predict(images);
        load_keras_weights(model, (keras_fixtures / file).string());
        const Tensor<float> ours = model.predict(images);
        CHECK(max_difference(ours, expected) <= 1e-5f);
        CHECK(max_difference(before, expected) > 1e-2f);  // the check can fail: untrained weights differ
        // The same file into a double model: the same predictions to double's rounding of float32 weights.
        Sequential<double> twin = fixture_network<double>();
        load_keras_weights(twin, (keras_fixtures / file).string());
        const Tensor<double> ours_double = twin.predict(images.cast<double>());
        CHECK(max_difference(ours_double.cast<float>(), expected) <= 1e-5f);
    }
}

TEST_CASE("Keras layouts: HWIO kernels, [in, out] Dense kernels, Flatten rows in H, W, C order") {
    TempDir dir;
    // conv: 2 filters over 3 channels, 2x2 kernel; dense: after flatten of [2, 2, 2] maps.
    Sequential<float> model({3, 3, 3}, 1);
    model.add(Conv2D<float>(2, 2));         // [2, 2, 2]
    model.add(Flatten<float>());            // 8
    model.add(Dense<float>(3));
    const fs::path file = dir.path / "hand.weights.h5";
    write_hand_file(file, {{"layers/conv2d/vars/0", {2, 2, 3, 2}, counting(24)},
                           {"layers/conv2d/vars/1", {2}, {0.5f, -0.5f}},
                           {"layers/dense/vars/0", {8, 3}, counting(24)},
                           {"layers/dense/vars/1", {3}, {1, 2, 3}}});
    load_keras_weights(model, file.string());
    const auto conv = model.layer("conv2d").parameters();
    const Tensor<float>& w = conv[0].variable.value();  // [out 2, in 3, kh 2, kw 2]
    for (int o = 0; o < 2; ++o)
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 2; ++y)
                for (int x = 0; x < 2; ++x)  // Keras [y][x][c][o] = ((y * 2 + x) * 3 + c) * 2 + o + 1
                    CHECK(w[((o * 3 + c) * 2 + y) * 2 + x] == static_cast<float>(((y * 2 + x) * 3 + c) * 2 + o + 1));
    CHECK(conv[1].variable.value()[1] == -0.5f);
    const Tensor<float>& d = model.layer("dense").parameters()[0].variable.value();  // [3, 8]
    for (int u = 0; u < 3; ++u)
        for (int c = 0; c < 2; ++c)
            for (int hw = 0; hw < 4; ++hw)  // cnnlite column c * 4 + hw is Keras row hw * 2 + c
                CHECK(d[u * 8 + c * 4 + hw] == static_cast<float>((hw * 2 + c) * 3 + u + 1));

    // A grouped kernel (Keras' Conv2D(groups=2)) is [kh, kw, in / groups, filters] there and
    // [filters, in / groups, kh, kw] here.
    Sequential<float> grouped({4, 3, 3}, 3);
    grouped.add(Conv2D<float>(2, 2).groups(2).use_bias(false));
    const fs::path grouped_file = dir.path / "grouped.weights.h5";
    write_hand_file(grouped_file, {{"layers/conv2d/vars/0", {2, 2, 2, 2}, counting(16)}});
    load_keras_weights(grouped, grouped_file.string());
    const Tensor<float>& gw = grouped.layer("conv2d").parameters()[0].variable.value();
    REQUIRE(gw.shape() == Shape{2, 2, 2, 2});
    for (int o = 0; o < 2; ++o)
        for (int c = 0; c < 2; ++c)
            for (int y = 0; y < 2; ++y)
                for (int x = 0; x < 2; ++x)
                    CHECK(gw[((o * 2 + c) * 2 + y) * 2 + x] == static_cast<float>(((y * 2 + x) * 2 + c) * 2 + o + 1));

    // tf.keras 2.13-2.15 write the same format under _layer_checkpoint_dependencies/.
    Sequential<float> twin({3, 3, 3}, 2);
    twin.add(Conv2D<float>(2, 2));
    twin.add(Flatten<float>());
    twin.add(Dense<float>(3));
    const fs::path keras215 = dir.path / "keras215.weights.h5";
    write_hand_file(keras215, {{"_layer_checkpoint_dependencies/conv2d/vars/0", {2, 2, 3, 2}, counting(24)},
                               {"_layer_checkpoint_dependencies/conv2d/vars/1", {2}, {0.5f, -0.5f}},
                               {"_layer_checkpoint_dependencies/dense/vars/0", {8, 3}, counting(24)},
                               {"_layer_checkpoint_dependencies/dense/vars/1", {3}, {1, 2, 3}}});
    load_keras_weights(twin, keras215.string());
    for (std::size_t i = 0; i < model.parameters().size(); ++i)
        CHECK(max_difference(model.parameters()[i].variable.value(), twin.parameters()[i].variable.value()) == 0.0f);

    // Saving writes the same layout back: the file cnnlite writes, read by hand.
    const fs::path saved = dir.path / "saved.weights.h5";
    save_keras_weights(model, saved.string());
    const hid_t f = H5Fopen(saved.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t set = H5Dopen2(f, "layers/dense/vars/0", H5P_DEFAULT);
    REQUIRE(set >= 0);
    std::vector<float> dense(24);
    REQUIRE(H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dense.data()) >= 0);
    CHECK(dense == counting(24));
    H5Dclose(set);
    H5Fclose(f);
}

TEST_CASE("save_keras_weights then load_keras_weights restores every weight and statistic exactly") {
    TempDir dir;
    Sequential<float> source = fixture_network(11);
    for (auto& b : source.buffers()) {  // BatchNorm statistics that a swap or a miss would show
        Tensor<float>& v = b.variable.value();
        for (std::int64_t c = 0; c < v.numel(); ++c) v[c] = b.name.find("mean") != std::string::npos ? 0.1f * c : 1.0f + c;
    }
    const fs::path file = dir.path / "model.weights.h5";
    save_keras_weights(source, file.string());
    Sequential<float> target = fixture_network(12);
    load_keras_weights(target, file.string());
    const auto a = source.state(), b = target.state();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CAPTURE(a[i].name);
        CHECK(max_difference(a[i].variable.value(), b[i].variable.value()) == 0.0f);
    }
    // The paper's network, Keras' names (conv2d, dense, dense_1), and a double model.
    Model<double> paper = fashion_mnist_cnn<double>(3);
    save_keras_weights(paper, (dir.path / "paper.weights.h5").string());
    Model<double> paper_again = fashion_mnist_cnn<double>(4);
    load_keras_weights(paper_again, (dir.path / "paper.weights.h5").string());
    const Tensor<double> x = fixture_images(8).cast<double>();
    CHECK(max_difference(paper.predict(x).cast<float>(), paper_again.predict(x).cast<float>()) <= 1e-6f);

    if (const char* check_dir = std::getenv("CNNLITE_KERAS_CHECK_DIR"); check_dir && *check_dir) {
        fs::create_directories(check_dir);
        save_keras_weights(source, (fs::path(check_dir) / "cnnlite.weights.h5").string());
        save_npy((fs::path(check_dir) / "cnnlite_probabilities.npy").string(), source.predict(fixture_images(100)));
        MESSAGE("wrote ", std::string(check_dir), "/cnnlite.weights.h5 for make_keras_fixture.py check");
    }
}

TEST_CASE("bad Keras files are refused with a message naming the file, layer and what is wrong") {
    TempDir dir;
    Sequential<float> model = fixture_network();
    const Tensor<float> x = fixture_images(4);
    const Tensor<float> before = model.predict(x);
    auto refused = [&](const fs::path& file) { return error_of([&] { load_keras_weights(model, file.string()); }); };

    std::string m = refused(dir.path / "missing.weights.h5");
    CHECK(contains(m, "missing.weights.h5"));
    std::ofstream(dir.path / "text.h5") << "not an HDF5 file at all";
    CHECK(contains(refused(dir.path / "text.h5"), "is neither an HDF5 file"));
    {  // the first kilobyte of a real file: the signature is right, the rest is gone
        std::ifstream in(keras_fixtures / "keras3.weights.h5", std::ios::binary);
        std::string head(1024, '\0');
        in.read(&head[0], 1024);
        std::ofstream(dir.path / "truncated.weights.h5", std::ios::binary) << head;
    }
    m = refused(dir.path / "truncated.weights.h5");
    CHECK(contains(m, "truncated.weights.h5"));

    {  // a .keras archive cut short: libzip finds no central directory
        std::ifstream in(keras_fixtures / "keras3.keras", std::ios::binary);
        std::string head(20000, '\0');
        in.read(&head[0], 20000);
        std::ofstream(dir.path / "cut.keras", std::ios::binary) << head;
    }
    m = refused(dir.path / "cut.keras");
    CHECK(contains(m, "cut.keras"));
    CHECK(contains(m, "is not a readable zip file"));
    // An archive whose entry claims 4 GB from a few bytes (tests/fixtures/keras/lying_size.keras,
    // made by patching a zip's size fields) is refused before anything is allocated.
    m = refused(keras_fixtures / "lying_size.keras");
    CHECK(contains(m, "lying_size.keras"));
    CHECK(contains(m, "claims 4026531840 bytes from 18 compressed ones"));

    // The same bytes from memory: what a reader of archives or network streams hands over.
    {
        std::ifstream in(keras_fixtures / "keras3.weights.h5", std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        Sequential<float> from_memory = fixture_network();
        load_keras_weights(from_memory, bytes.data(), bytes.size(), "in memory");
        Sequential<float> from_file = fixture_network();
        load_keras_weights(from_file, (keras_fixtures / "keras3.weights.h5").string());
        CHECK(max_difference(from_memory.predict(x), from_file.predict(x)) == 0.0f);
        m = error_of([&] { load_keras_weights(from_memory, bytes.data(), bytes.size() / 3, "a third"); });
        CHECK(contains(m, "'a third'"));
    }

    // A damaged file on which Debian's HDF5 1.10.8 crashes (an unchecked failed allocation; found
    // by fuzz_keras): the trial read in a child process turns the crash into an error.
    m = refused(keras_fixtures / "damaged_null_allocation.h5");
    CHECK(contains(m, "damaged_null_allocation.h5"));
    CHECK(contains(m, "HDF5 failed reading it"));

    // A layer's weights missing, a shape that is not the model's, a variable too many.
    write_hand_file(dir.path / "no_dense.weights.h5", {{"layers/conv2d/vars/0", {3, 3, 1, 4}, counting(36)},
                                                       {"layers/conv2d/vars/1", {4}, counting(4)}});
    m = refused(dir.path / "no_dense.weights.h5");
    CHECK(contains(m, "'batch_normalization'"));
    CHECK(contains(m, "no group layers/batch_normalization/vars"));
    write_hand_file(dir.path / "wide.weights.h5", {{"layers/conv2d/vars/0", {3, 3, 1, 5}, counting(45)}});
    m = refused(dir.path / "wide.weights.h5");
    CHECK(contains(m, "layers/conv2d/vars/0 has shape [3, 3, 1, 5], the model needs [3, 3, 1, 4]"));
    write_hand_file(dir.path / "extra.weights.h5", {{"layers/conv2d/vars/0", {3, 3, 1, 4}, counting(36)},
                                                    {"layers/conv2d/vars/1", {4}, counting(4)},
                                                    {"layers/conv2d/vars/2", {4}, counting(4)}});
    CHECK(contains(refused(dir.path / "extra.weights.h5"), "more variables in the file than the model's 2"));
    write_hand_file(dir.path / "neither.h5", {{"weights/conv2d", {4}, counting(4)}});
    CHECK(contains(refused(dir.path / "neither.h5"), "neither Keras 3's layout"));

    // Nothing was changed by the refused files: they are checked before any weight is copied.
    CHECK(max_difference(model.predict(x), before) == 0.0f);

    // Saving: an unwritable place names the path; the old file is kept when the write fails.
    m = error_of([&] { save_keras_weights(model, (dir.path / "no such folder" / "w.weights.h5").string()); });
    CHECK(contains(m, "no such folder"));
}

TEST_CASE("fashion_mnist evaluate --model reads Keras weights by their content, into --arch's network") {
    TempDir dir;
    const fs::path fixtures = source_dir / "data" / "fixtures";
    const Model<float> paper = fashion_mnist_cnn<float>(7);
    save_model(paper, (dir.path / "model.safetensors").string());
    const fs::path weights = dir.path / "weights.bin";  // no telling extension: recognised by content
    save_keras_weights(paper, weights.string());
    test_support::RunResult r = test_support::run_program(
        {"evaluate", "--model", (dir.path / "model.safetensors").string(), "--data", fixtures.string(), "--out",
         (dir.path / "from_model_file").string(), "--quiet"},
        dir.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    r = test_support::run_program({"evaluate", "--model", weights.string(), "--data", fixtures.string(), "--out",
                                   (dir.path / "from_keras").string()},
                                  dir.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(contains(r.out, "Keras weights: loading them into the paper network"));
    const auto metrics = [&](const char* run) {
        return test_support::read_text(dir.path / run / "metrics.json");
    };
    const std::string a = metrics("from_model_file"), b = metrics("from_keras");
    const auto field = [](const std::string& json, const std::string& key) {
        const std::size_t at = json.find("\"" + key + "\"");
        REQUIRE(at != std::string::npos);
        return json.substr(at, json.find_first_of(",}", at) - at);
    };
    CHECK(field(a, "test_accuracy") == field(b, "test_accuracy"));
    CHECK(field(a, "test_loss") == field(b, "test_loss"));
    // export --format keras writes the same weights back for Keras.
    const fs::path exported = dir.path / "exported.weights.h5";
    r = test_support::run_program({"export", "--format", "keras", "--model", (dir.path / "model.safetensors").string(),
                                   "--to", exported.string(), "--quiet"},
                                  dir.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    Model<float> reread = fashion_mnist_cnn<float>(8);
    load_keras_weights(reread, exported.string());
    const Tensor<float> x = fixture_images(16);
    CHECK(max_difference(reread.predict(x), paper.predict(x)) == 0.0f);

    // A network whose layers the file does not have is refused with the layer named.
    r = test_support::run_program({"evaluate", "--model", weights.string(), "--arch", "resnet8", "--data",
                                   fixtures.string(), "--out", (dir.path / "wrong").string()},
                                  dir.path);
    CHECK(r.status != 0);
    CHECK(contains(r.err, "Keras weights '"));
    CHECK(contains(r.err, "layer '"));
}

}  // namespace test_io_keras

#endif  // CNNLITE_WITH_KERAS
