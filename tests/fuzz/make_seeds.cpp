// Writes the seed corpora of the fuzz targets: small valid files of every kind each reader
// takes, plus a few near misses, so that fuzzing starts from inputs that reach deep into the
// readers. Deterministic; the output is committed in tests/fuzz/corpus/. Run from the repo root:
//   <build>/tests/fuzz/make_seeds tests/fuzz/corpus
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/npy.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/checkpoint.hpp"
#include "../picture_bytes.hpp"
#include "seed_model.hpp"

#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX
#include "cnnlite/io/onnx_export.hpp"
#include "cnnlite/nn/symbolic.hpp"
#include "../onnx_graph_builder.hpp"
#endif

namespace fs = std::filesystem;

namespace {

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
    std::printf("%s (%zu bytes)\n", path.string().c_str(), bytes.size());
}

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims, std::size_t count, int modulo) {
    std::string out = be32(magic);
    for (auto d : dims) out += be32(d);
    for (std::size_t i = 0; i < count; ++i) out += static_cast<char>((i * 37 + 11) % static_cast<std::size_t>(modulo));
    return out;
}

std::string gzip(const std::string& bytes) {
    z_stream s{};
    deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&s, static_cast<uLong>(bytes.size())) + 32, '\0');
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    s.avail_in = static_cast<uInt>(bytes.size());
    s.next_out = reinterpret_cast<Bytef*>(&out[0]);
    s.avail_out = static_cast<uInt>(out.size());
    deflate(&s, Z_FINISH);
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void idx_seeds(const fs::path& dir) {
    const std::string images = idx(0x803, {3, 4, 4}, 48, 256);
    const std::string labels = idx(0x801, {5}, 5, 10);
    write_bytes(dir / "images.idx", images);
    write_bytes(dir / "images.idx.gz", gzip(images));
    write_bytes(dir / "labels.idx", labels);
    write_bytes(dir / "labels.idx.gz", gzip(labels));
    write_bytes(dir / "two_members.idx.gz", gzip(labels.substr(0, 6)) + gzip(labels.substr(6)));
    write_bytes(dir / "truncated.idx", images.substr(0, 30));
    write_bytes(dir / "wrong_rank.idx", idx(0x802, {2, 2}, 4, 256));
}

void npy_seeds(const fs::path& dir) {
    cnnlite::Tensor<float> f(cnnlite::Shape{3, 2});
    for (std::int64_t i = 0; i < f.numel(); ++i) f[i] = 0.25f * static_cast<float>(i) - 0.5f;
    cnnlite::Tensor<double> d(cnnlite::Shape{4});
    for (std::int64_t i = 0; i < d.numel(); ++i) d[i] = 1e300 * static_cast<double>(i % 2) - 3.0;
    const fs::path tmp = dir / "tmp.npy";
    cnnlite::save_npy(tmp.string(), f);
    const std::string f32 = read_bytes(tmp);
    write_bytes(dir / "f32_3x2.npy", f32);
    cnnlite::save_npy(tmp.string(), d);
    write_bytes(dir / "f64_4.npy", read_bytes(tmp));
    cnnlite::save_npy(tmp.string(), cnnlite::Tensor<float>(cnnlite::Shape{0, 3}));
    write_bytes(dir / "f32_0x3.npy", read_bytes(tmp));
    cnnlite::Tensor<double> scalar(cnnlite::Shape{});
    scalar[0] = 2.5;
    cnnlite::save_npy(tmp.string(), scalar);
    write_bytes(dir / "f64_scalar.npy", read_bytes(tmp));
    fs::remove(tmp);
    // Version 2.0: a 4-byte header length.
    const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    std::string v2 = std::string("\x93NUMPY\x02\x00", 8);
    std::string padded = header + std::string((64 - (12 + header.size() + 1) % 64) % 64, ' ') + "\n";
    for (int i = 0; i < 4; ++i) v2 += static_cast<char>(padded.size() >> (8 * i));
    write_bytes(dir / "f32_v2.npy", v2 + padded + std::string("\0\0\x80\x3f\0\0\0\x40", 8));
    write_bytes(dir / "big_endian.npy", std::string(f32).replace(f32.find("<f4"), 3, ">f4"));
}

void safetensors_seeds(const fs::path& dir) {
    cnnlite::SafetensorsWriter any;
    cnnlite::Tensor<float> f(cnnlite::Shape{2, 3});
    for (std::int64_t i = 0; i < f.numel(); ++i) f[i] = static_cast<float>(i) - 2.0f;
    cnnlite::Tensor<double> d(cnnlite::Shape{2});
    d[0] = 1e-300, d[1] = 4e38;
    cnnlite::Tensor<std::int64_t> n(cnnlite::Shape{3});
    for (std::int64_t i = 0; i < 3; ++i) n[i] = (i - 1) * 1000000007;
    any.add("f32", f).add("f64", d).add("i64", n).add("empty", cnnlite::Tensor<float>(cnnlite::Shape{0}));
    any.set_metadata("note", "seed");
    write_bytes(dir / "three_dtypes.safetensors", any.serialize());
    write_bytes(dir / "no_tensors.safetensors", cnnlite::SafetensorsWriter().serialize());

    const auto model = fuzz::seed_model();
    const fs::path tmp = dir / "tmp.safetensors";
    cnnlite::save_model(model, tmp.string());
    write_bytes(dir / "model.safetensors", read_bytes(tmp));

    cnnlite::Adam<float> adam(model.trainable_variables());
    cnnlite::KeepBest<float> best;
    std::vector<cnnlite::Tensor<float>> kept;
    for (const auto& p : model.parameters()) kept.push_back(p.variable.value().clone());
    best.set_state(1, 0.75, kept);
    cnnlite::EarlyStopping<float> stopping(2);
    stopping.set_state(true, 0.75, 1);
    cnnlite::TrainingState progress;
    progress.epoch = 2;
    for (int e = 1; e <= 2; ++e) {
        cnnlite::EpochRecord r;
        r.epoch = e, r.loss = 1.0 / e, r.accuracy = 0.5, r.val_loss = 0.75 + 0.1 * (e - 1), r.val_accuracy = 0.5;
        r.seconds = 0.5, r.images_per_second = 100;
        progress.history.epochs.push_back(r);
    }
    progress.metadata["run.seed"] = "1";
    cnnlite::save_checkpoint(tmp.string(), model, adam, progress, &best, &stopping);
    write_bytes(dir / "checkpoint.safetensors", read_bytes(tmp));
    fs::remove(tmp);
}

void picture_seeds(const fs::path& dir) {
    using test_support::as_string;
    const cnnlite::viz::Image grey = test_support::disc_picture(17, 11, 1), colour = test_support::disc_picture(13, 9, 3);
    write_bytes(dir / "grey.png", as_string(test_support::encode_png(grey)));
    write_bytes(dir / "colour.png", as_string(test_support::encode_png(colour)));
    write_bytes(dir / "grey.jpg", as_string(test_support::encode_jpeg(grey)));
    write_bytes(dir / "colour.jpg", as_string(test_support::encode_jpeg(colour)));
    write_bytes(dir / "progressive.jpg", as_string(test_support::encode_jpeg(colour, true)));
    write_bytes(dir / "claims_huge.png", as_string(test_support::png_claiming(test_support::encode_png(grey), 5000, 5000)));
    write_bytes(dir / "truncated.jpg", as_string(test_support::cut(test_support::encode_jpeg(colour), 0.6)));
    // A transparent PNG (RGBA), written by stb_image_write directly.
    const unsigned char rgba[] = {200, 0, 0, 0, 0, 200, 0, 255, 0, 0, 0, 128, 9, 9, 9, 9};
    std::string bytes;
    stbi_write_png_to_func(
        [](void* context, void* data, int size) { static_cast<std::string*>(context)->append(static_cast<char*>(data), static_cast<std::size_t>(size)); },
        &bytes, 2, 2, 4, rgba, 8);
    write_bytes(dir / "transparent.png", bytes);
}


#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX
// ONNX seeds: cnnlite's own exports of a chain and of a residual graph with every layer type the
// importer builds, and graphs written the way PyTorch's exporters write them (a Pad before a
// Conv, a Constant shape for a Reshape, MatMul + Add, Gemm without transB, Identity, Dropout).
using test_support::GraphBuilder;
using test_support::set_int;
using test_support::set_ints;

void onnx_seeds(const fs::path& dir) {
    using namespace cnnlite;
    write_bytes(dir / "chain.onnx", to_onnx(fuzz::seed_model()).SerializeAsString());

    auto x = Input<float>({2, 6, 6});
    Symbolic<float> h = ReLU<float>()(BatchNormalization<float>(BatchNormConvention::torch)(
        Conv2D<float>(4, 3).padding("same").use_bias(false)(x)));
    Symbolic<float> branch = Conv2D<float>(4, 2).padding("0,1,0,1").activation("relu")(h);
    h = Add<float>()({h, branch});
    Symbolic<float> side = AvgPool2D<float>(Pool2dOptions{{2, 2}, {1, 1}, Padding::same()})(x);
    h = Concatenate<float>()({h, side});
    h = MaxPool2D<float>(2, 2)(h);
    Symbolic<float> pooled = GlobalMaxPooling2D<float>()(LeakyReLU<float>(0.2)(h));
    Symbolic<float> flat = ELU<float>(0.5)(Flatten<float>()(GlobalAveragePooling2D<float>()(h)));
    h = Concatenate<float>()({pooled, flat});
    h = Dense<float>(3)(Dropout<float>(0.25)(ActivationLayer<float>("tanh")(h)));
    const Model<float> graph(x, Softmax<float>()(ActivationLayer<float>("sigmoid")(h)), /*seed=*/2, InitScheme::torch);
    write_bytes(dir / "graph.onnx", to_onnx(graph).SerializeAsString());

    GraphBuilder t({1, 6, 6}, 18);
    t.node("Pad", "/Pad", {"x", "pads", "zero"}, {"padded"});
    t.ints("pads", {0, 0, 0, 0, 0, 0, 1, 1});
    t.weights("zero", {}, {0.0f});
    auto& conv = t.node("Conv", "/conv/Conv", {"padded", "conv.weight", "conv.bias"}, {"c"});
    set_ints(conv, "kernel_shape", {2, 2});
    set_ints(conv, "strides", {1, 1});
    t.weights("conv.weight", {3, 1, 2, 2});
    t.weights("conv.bias", {3});
    t.node("Relu", "/Relu", {"c"}, {"r"});
    auto& pool = t.node("MaxPool", "/pool/MaxPool", {"r"}, {"p"});
    set_ints(pool, "kernel_shape", {2, 2});
    set_ints(pool, "strides", {2, 2});
    set_int(pool, "ceil_mode", 1);
    t.constant_ints("/Constant", "shape", {0, -1});
    t.node("Reshape", "/Reshape", {"p", "shape"}, {"flat"});
    t.node("MatMul", "/fc/MatMul", {"flat", "fc.weight"}, {"m"});
    t.weights("fc.weight", {27, 4});
    t.node("Add", "/fc/Add", {"m", "fc.bias"}, {"a"});
    t.weights("fc.bias", {4});
    t.node("Identity", "/Identity", {"a"}, {"i"});
    t.node("Dropout", "/Dropout", {"i", "ratio"}, {"d"});
    t.weights("ratio", {}, {0.3f});
    t.node("Gemm", "/out/Gemm", {"d", "out.weight", "out.bias"}, {"logits"});
    t.weights("out.weight", {4, 2});
    t.weights("out.bias", {2});
    auto& softmax = t.node("Softmax", "/Softmax", {"logits"}, {"probabilities"});
    set_int(softmax, "axis", 1);
    t.g->add_output()->set_name("probabilities");
    write_bytes(dir / "torch_style.onnx", t.proto.SerializeAsString());

    // What the torch.export-based exporter writes for softplus (with its threshold), SiLU and
    // adaptive pooling to 1 x 1, next to a whole-plane MaxPool.
    GraphBuilder e({2, 3, 3}, 18);
    e.node("Softplus", "n3", {"x"}, {"sp"});
    e.node("Greater", "n9", {"x", "threshold"}, {"big"});
    e.weights("threshold", {}, {20.0f});
    e.node("Where", "n10", {"big", "x", "sp"}, {"softplus"});
    e.node("Sigmoid", "node_sigmoid", {"softplus"}, {"s"});
    e.node("Mul", "node_mul", {"softplus", "s"}, {"silu"});
    e.node("ReduceMean", "node_mean", {"silu", "axes"}, {"mean"});
    e.ints("axes", {-1, -2});
    e.node("ReduceMax", "node_amax", {"silu", "axes"}, {"amax"});
    auto& plane = e.node("MaxPool", "node_max_pool2d", {"silu"}, {"plane"});
    set_ints(plane, "kernel_shape", {3, 3});
    auto& cat = e.node("Concat", "node_cat", {"mean", "amax", "plane"}, {"cat"});
    set_int(cat, "axis", 1);
    e.node("Flatten", "node_flatten", {"cat"}, {"flat"});
    e.node("Gemm", "node_linear", {"flat", "fc.weight", "fc.bias"}, {"linear"});
    e.weights("fc.weight", {6, 2});
    e.weights("fc.bias", {2});
    e.g->add_output()->set_name("linear");
    write_bytes(dir / "torch_export.onnx", e.proto.SerializeAsString());

    // What the TorchScript exporter writes for F.pad(x, (0, 1, 0, 1)) before a convolution:
    // the Pad's pads computed from constants.
    GraphBuilder p({1, 4, 4}, 17);
    test_support::add_torchscript_pad(p, "x", "padded");
    p.node("Conv", "/conv/Conv", {"padded", "conv.weight", "conv.bias"}, {"y"});
    p.weights("conv.weight", {2, 1, 2, 2});
    p.weights("conv.bias", {2});
    p.g->add_output()->set_name("y");
    write_bytes(dir / "torch_script_pad.onnx", p.proto.SerializeAsString());
}
#endif

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds <corpus folder>\n");
        return 2;
    }
    const fs::path root = argv[1];
    for (const char* name : {"idx", "npy", "safetensors", "picture"}) fs::create_directories(root / name);
    idx_seeds(root / "idx");
    npy_seeds(root / "npy");
    safetensors_seeds(root / "safetensors");
    picture_seeds(root / "picture");
#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX
    fs::create_directories(root / "onnx");
    onnx_seeds(root / "onnx");
#endif
    return 0;
}
