// cnnlite_onnx_export: writes a cnnlite model file's ONNX graph (save_onnx) and cnnlite's own
// predictions for a batch of images, so that tests/python/test_onnx_export.py can run the file
// with onnxruntime and compare. Also makes the model files it checks: a fashion_mnist
// architecture (examples/fashion_mnist/architectures.cpp, compiled in) or a network with every
// layer the exporter writes, seeded, with BatchNormalization's running statistics taken from
// the images and non-trivial gamma and beta. Needs the ONNX component (CNNLITE_WITH_ONNX).
//
// Usage:
//   cnnlite_onnx_export make ARCH OUT.safetensors IMAGES.npy [--seed S]
//     ARCH: paper | resnet8 (fashion_mnist --arch) | layers (every layer and activation of
//     io/onnx_export.hpp on [1, 28, 28] inputs)
//   cnnlite_onnx_export export MODEL.safetensors OUT.onnx IMAGES.npy PROBS.npy [--dtype float|double]
//     writes OUT.onnx and PROBS.npy, Model::predict of the images ([N, classes], float32 or
//     float64 as --dtype), after load_model<float or double>(MODEL).
// IMAGES.npy holds [N, 1, 28, 28] float32 values (pixel / 255).
// Exit status: 0 done, 1 error (message on stderr), 2 bad command line.
// First, so that this program also checks that the header compiles on its own with the ONNX
// component (the header-alone check builds it without, where it is a stub).
#include <cnnlite/io/onnx_export.hpp>

#include <cnnlite/autograd/grad_mode.hpp>
#include <cnnlite/core/random.hpp>
#include <cnnlite/io/model_file.hpp>
#include <cnnlite/io/npy.hpp>
#include <cnnlite/nn/symbolic.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "architectures.hpp"

namespace {

using namespace cnnlite;

const char* const usage =
    "usage: cnnlite_onnx_export make paper|resnet8|layers OUT.safetensors IMAGES.npy [--seed S]\n"
    "       cnnlite_onnx_export export MODEL.safetensors OUT.onnx IMAGES.npy PROBS.npy [--dtype float|double]\n";

struct UsageError {
    std::string message;
};

// Every layer and activation the exporter writes, on 1x28x28 images, ending in probabilities.
Model<float> every_layer(std::uint64_t seed) {
    auto x = Input<float>({1, 28, 28});
    Symbolic<float> h = Conv2D<float>(6, 3).padding("same").activation("silu")(x);
    h = BatchNormalization<float>().momentum(0.5)(h);                              // Keras' convention, epsilon 1e-3
    h = LeakyReLU<float>(0.1)(h);
    h = Conv2D<float>(6, 3).groups(6).dilation_rate(2, 2).padding("same")(h);      // depthwise, dilated
    Symbolic<float> s =
        Conv2D<float>(6, 2).strides(2, 2).padding("1,0,0,1").groups(2).activation("elu")(h);  // [6, 14, 14]
    h = AvgPool2D<float>(3, 3).strides(2, 2).padding("same")(h);                  // [6, 14, 14]
    h = Add<float>()({h, s});
    h = SpatialDropout2D<float>(0.2)(h);
    h = ELU<float>(0.7)(h);
    Symbolic<float> a = ActivationLayer<float>("gelu")(h);
    Symbolic<float> b = ActivationLayer<float>("gelu_tanh")(h);
    Symbolic<float> c = Conv2D<float>(4, 3).padding("same").activation("tanh")(h);
    h = Concatenate<float>()({a, b, c});                                          // [16, 14, 14]
    h = BatchNormalization<float>(BatchNormConvention::torch).momentum(0.5).center(false)(h);
    h = Conv2D<float>(8, 3).activation("softplus")(h);                            // [8, 12, 12]
    Symbolic<float> g1 = GlobalMaxPooling2D<float>()(h);
    Symbolic<float> g2 = GlobalAveragePooling2D<float>()(h);
    Symbolic<float> f = Flatten<float>()(MaxPool2D<float>(3, 3).strides(2, 2).padding("1,1,1,1")(h));  // [8*6*6]
    h = Concatenate<float>(-1)({g1, g2, f});
    // BatchNorm on the features after each dense layer keeps the images' differences at O(1)
    // to the end, so that the probabilities depend on every layer before them.
    h = BatchNormalization<float>().momentum(0.5)(h);
    h = Dense<float>(32).activation("gelu")(h);
    h = Dropout<float>(0.3)(h);
    h = BatchNormalization<float>(BatchNormConvention::torch).momentum(0.5)(h);
    h = Dense<float>(16).activation("sigmoid")(h);
    h = BatchNormalization<float>().momentum(0.5).scale(false)(h);
    h = ActivationLayer<float>("silu")(Dense<float>(16).activation("leaky_relu")(h));
    h = BatchNormalization<float>().momentum(0.5)(h);
    h = ReLU<float>()(Dense<float>(12).activation("softplus")(h));
    h = BatchNormalization<float>().momentum(0.5)(h);
    h = Softmax<float>()(Dense<float>(10).use_bias(false)(h));
    return Model<float>(x, h, seed, InitScheme::torch);
}

// BatchNorm's running statistics from training-mode forward passes over the images (batches of
// 64, at most 16), and gamma and beta drawn from the seed: none of them the trivial 1 and 0.
void fill_batch_norm(Model<float>& model, const Tensor<float>& images, std::uint64_t seed) {
    bool any = false;
    for (std::size_t i = 0; i < model.size(); ++i)
        any = any || std::string(model.layer(i).type()) == "BatchNormalization";
    if (!any) return;
    NoGrad no_grad;
    const std::int64_t n = images.dim(0), per = images.numel() / std::max<std::int64_t>(n, 1);
    ForwardContext ctx;
    ctx.training = true;
    ctx.seed = seed;
    for (std::int64_t first = 0, step = 0; first + 64 <= n && step < 16; first += 64, ++step) {
        Tensor<float> batch(Shape{64, 1, 28, 28});
        std::copy(images.data() + first * per, images.data() + (first + 64) * per, batch.data());
        ctx.step = step;
        model.forward(Variable<float>(batch, false), ctx);
    }
    const RandomStream stream(seed, Purpose::user);
    std::uint64_t index = 0;
    for (auto& p : model.parameters()) {
        const Layer<float>& layer = model.layer(p.name.substr(0, p.name.rfind('.')));
        if (std::string(layer.type()) != "BatchNormalization") continue;
        Tensor<float>& v = p.variable.value();
        const bool gamma = p.name.substr(p.name.rfind('.') + 1) == "weight";
        for (std::int64_t i = 0; i < v.numel(); ++i) {
            const double u = stream.uniform(index++);
            v[i] = static_cast<float>(gamma ? 0.5 + u : 0.4 * (u - 0.5));
        }
    }
}

int make(const std::vector<std::string>& args, std::uint64_t seed) {
    if (args.size() != 3) throw UsageError{"make takes ARCH OUT.safetensors IMAGES.npy"};
    const std::string& arch = args[0];
    Model<float> model = arch == "layers" ? every_layer(seed) : fm::architecture(arch).build(seed);
    const Tensor<float> images = load_npy<float>(args[2]);
    check(images.rank() == 4 && images.dim(1) == 1 && images.dim(2) == 28 && images.dim(3) == 28, "'", args[2],
          "': expected images [N, 1, 28, 28], got ", images.shape());
    fill_batch_norm(model, images, seed);
    save_model(model, args[1]);
    std::printf("%s: %s, %lld parameters, %lld buffer values\n", args[1].c_str(), arch.c_str(),
                static_cast<long long>(model.parameter_count()), static_cast<long long>(model.non_trainable_count()));
    return 0;
}

template <class T>
int export_and_predict(const std::vector<std::string>& args) {
    const Model<T> model = load_model<T>(args[0]);
    save_onnx(model, args[1]);
    const Tensor<T> images = load_npy<T>(args[2]);
    save_npy(args[3], model.predict(images));
    std::printf("%s: %zu layers -> %s; %lld images predicted in %s\n", args[0].c_str(), model.size(),
                args[1].c_str(), static_cast<long long>(images.dim(0)), sizeof(T) == 4 ? "float" : "double");
    return 0;
}

int run(int argc, char** argv) {
    if (argc < 2) throw UsageError{"no command"};
    const std::string command = argv[1];
    std::vector<std::string> args;
    std::uint64_t seed = 0;
    std::string dtype = "float";
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--seed" || arg == "--dtype") {
            if (i + 1 >= argc) throw UsageError{arg + " needs a value"};
            const std::string value = argv[++i];
            if (arg == "--dtype") {
                dtype = value;
            } else {
                std::size_t used = 0;
                try {
                    seed = std::stoull(value, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used == 0 || used != value.size()) throw UsageError{"--seed must be a whole number"};
            }
        } else if (arg.rfind("--", 0) == 0) {
            throw UsageError{"unknown option " + arg};
        } else {
            args.push_back(arg);
        }
    }
    if (command == "make") return make(args, seed);
    if (command != "export") throw UsageError{"unknown command '" + command + "'"};
    if (args.size() != 4) throw UsageError{"export takes MODEL.safetensors OUT.onnx IMAGES.npy PROBS.npy"};
    if (dtype == "float") return export_and_predict<float>(args);
    if (dtype == "double") return export_and_predict<double>(args);
    throw UsageError{"--dtype must be float or double"};
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "cnnlite_onnx_export: %s\n%s", e.message.c_str(), usage);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cnnlite_onnx_export: error: %s\n", e.what());
        return 1;
    }
}
