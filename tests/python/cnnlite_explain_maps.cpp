// cnnlite_explain_maps: explains a batch of images with a cnnlite model file and writes what the
// library computes as .npy files, so that tests/python/test_explain_parity.py (the paper's
// network) and test_explain_parity_graph.py (resnet8 at its last residual block) can compare
// them with pytorch-grad-cam and Captum. Uses only the public headers.
//
// Usage:
//   cnnlite_explain_maps MODEL.safetensors IMAGES.npy METHOD OUT_DIR [options]
//     METHOD          gradcam | hirescam | layercam | ig
//     --layer NAME    CAM methods: the layer explained, any whose output is feature maps [C, H, W]
//                     (CamOptions::layer; default: the model's last Conv2D)
//     --targets T     predicted (default) | C (the same class for every image) | C1,C2,... (one per image)
//     --score S       probability (default, the paper's) | logit
//     --steps N       ig: points on the path, midpoint rule (default 32)
//     --baseline B    ig: black (0, the default) or a number: every element of the baseline image
//     --dtype D       float (default) | double: the type the model is loaded and run in
//     --chunk N       images per forward/backward pass (default 256)
//     --keras-paper   MODEL is Keras weights (HDF5) of the paper's network, loaded into
//                     cnnlite's (builds with CNNLITE_WITH_KERAS; keras_paper_parity.py)
// IMAGES.npy holds [N, C, H, W] float32 or float64 values (pixel / 255 for Fashion-MNIST).
//
// Writes into OUT_DIR (created if missing), every array float32:
//   maps.npy           [N, H, W] the library's default output: ReLU, divided by the map's max
//                      |value|, resized bilinearly to the input when the layer is smaller
//   shown.npy          CAM methods only: [N, h, w] the same, not resized (PostProcess with
//                      upsample = false)
//   raw.npy            [N, h, w] the map before any post-processing (PostProcess::raw()):
//                      gradcam: sum_k alpha_k A_k at the layer's resolution, before the ReLU and
//                      the max scaling; hirescam: sum_k g_k * A_k, likewise; layercam:
//                      sum_k relu(g_k) * A_k, likewise; ig: the attributions summed over channels
//   attributions.npy   ig only: [N, C, H, W] per-element attributions
//                      (integrated_gradients_attributions)
//   probabilities.npy  [N, classes] the model's softmax output
//   info.json          method, layer (its type and output shape), score, dtype, steps, baseline,
//                      targets and predicted classes
// Exit status: 0 done, 1 error (message on stderr), 2 bad command line.
#include <cnnlite/cnnlite.hpp>
#include <cnnlite/io/keras_weights.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using namespace cnnlite;

struct Settings {
    std::string model, images, method, out, layer;
    std::string targets = "predicted";
    explain::Score score = explain::Score::probability;
    int steps = 32;
    double baseline = 0;
    bool use_double = false;
    bool keras_paper = false;
    std::int64_t chunk = 256;
};

const char* const usage =
    "usage: cnnlite_explain_maps MODEL.safetensors IMAGES.npy gradcam|hirescam|layercam|ig OUT_DIR\n"
    "       [--layer NAME] [--targets predicted|C|C1,C2,...] [--score probability|logit] [--steps N]\n"
    "       [--baseline black|VALUE] [--dtype float|double] [--chunk N] [--keras-paper]\n";

struct UsageError {
    std::string message;
};

long long whole_number(const std::string& text, const std::string& what) {
    std::size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size()) throw UsageError{what + " must be a whole number, got '" + text + "'"};
    return v;
}

Settings parse(int argc, char** argv) {
    Settings s;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0) {
            positional.push_back(arg);
            continue;
        }
        if (arg == "--keras-paper") {
            s.keras_paper = true;
            continue;
        }
        if (i + 1 >= argc) throw UsageError{arg + " needs a value"};
        const std::string value = argv[++i];
        if (arg == "--targets") {
            s.targets = value;
        } else if (arg == "--layer") {
            s.layer = value;
        } else if (arg == "--score") {
            if (value != "probability" && value != "logit") throw UsageError{"--score is probability or logit"};
            s.score = value == "logit" ? explain::Score::logit : explain::Score::probability;
        } else if (arg == "--steps") {
            s.steps = static_cast<int>(whole_number(value, "--steps"));
        } else if (arg == "--baseline") {
            if (value == "black") {
                s.baseline = 0;
            } else {
                std::size_t used = 0;
                try {
                    s.baseline = std::stod(value, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used == 0 || used != value.size()) throw UsageError{"--baseline is black or a number, got '" + value + "'"};
            }
        } else if (arg == "--dtype") {
            if (value != "float" && value != "double") throw UsageError{"--dtype is float or double"};
            s.use_double = value == "double";
        } else if (arg == "--chunk") {
            s.chunk = whole_number(value, "--chunk");
        } else {
            throw UsageError{"unknown option " + arg};
        }
    }
    if (positional.size() != 4) throw UsageError{"expected 4 arguments, got " + std::to_string(positional.size())};
    s.model = positional[0], s.images = positional[1], s.method = positional[2], s.out = positional[3];
    if (s.method != "gradcam" && s.method != "hirescam" && s.method != "layercam" && s.method != "ig")
        throw UsageError{"unknown method '" + s.method + "' (gradcam, hirescam, layercam or ig)"};
    if (s.method == "ig" && !s.layer.empty()) throw UsageError{"--layer is for the CAM methods, not ig"};
    return s;
}

/// "predicted", one class for all, or one class per image.
explain::Target parse_targets(const std::string& text, std::int64_t images) {
    if (text == "predicted") return explain::Target::predicted();
    std::vector<int> classes;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        classes.push_back(static_cast<int>(whole_number(text.substr(start, comma - start), "a target class")));
        start = comma + 1;
    }
    if (classes.size() == 1) return explain::Target::same_class(classes[0]);
    check(static_cast<std::int64_t>(classes.size()) == images, "--targets lists ", classes.size(), " classes for ",
          images, " images");
    return explain::Target::classes(classes);
}

template <class T>
Tensor<float> as_float(const Tensor<T>& t) {
    if constexpr (std::is_same<T, float>::value) return t;
    else return t.template cast<float>();
}

/// The model file, or with --keras-paper the paper's network with Keras' weights.
template <class T>
Model<T> load(const Settings& s) {
    if (!s.keras_paper) return load_model<T>(s.model);
#if defined(CNNLITE_WITH_KERAS) && CNNLITE_WITH_KERAS
    Model<T> model = fashion_mnist_cnn<T>(0);
    load_keras_weights(model, s.model);
    return model;
#else
    fail("--keras-paper needs cnnlite's Keras component: build with -DCNNLITE_WITH_KERAS=ON");
#endif
}

template <class T>
int run(const Settings& s) {
    const Model<T> model = load<T>(s);
    const Tensor<double> loaded = load_npy<double>(s.images);
    const Tensor<T> images = loaded.template cast<T>();
    const explain::Target target = parse_targets(s.targets, images.rank() > 0 ? images.dim(0) : 0);
    create_directories(s.out);
    const std::string dir = s.out + "/";

    explain::Explanation shown, raw;
    Tensor<float> attributions;
    if (s.method == "ig") {
        explain::IntegratedGradientsOptions o;
        o.target = target, o.score = s.score, o.chunk_size = s.chunk, o.steps = s.steps, o.baseline = s.baseline;
        o.post = explain::PostProcess::raw();
        raw = explain::integrated_gradients(model, images, o);
        // The default output is the raw map post-processed (integrated_gradients applies the same
        // function to the same maps): one pass over the path instead of two. A clone, because
        // postprocess_maps works in place and tensor copies share storage.
        shown = raw;
        shown.maps = explain::postprocess_maps(raw.maps.clone(), explain::PostProcess{}, images.dim(2), images.dim(3));
        attributions = as_float(explain::integrated_gradients_attributions(model, images, raw.targets, s.score, s.steps,
                                                                           s.baseline));
        save_npy(dir + "attributions.npy", attributions);
    } else {
        explain::CamOptions o;
        o.layer = s.layer, o.target = target, o.score = s.score, o.chunk_size = s.chunk;
        const auto method = s.method == "gradcam"    ? &explain::grad_cam<T>
                            : s.method == "hirescam" ? &explain::hires_cam<T>
                                                     : &explain::layer_cam<T>;
        shown = method(model, images, o);  // the defaults: ReLU, max, resize
        o.post.upsample = false;
        save_npy(dir + "shown.npy", method(model, images, o).maps);
        o.post = explain::PostProcess::raw();
        raw = method(model, images, o);
    }
    save_npy(dir + "maps.npy", shown.maps);
    save_npy(dir + "raw.npy", raw.maps);
    save_npy(dir + "probabilities.npy", shown.probabilities);

    const bool at_layer = !shown.layer.empty();  // ig explains the input, not a layer
    const nlohmann::json info = {
        {"method", s.method},
        {"layer", shown.layer},
        {"layer_type", at_layer ? model.layer(shown.layer).type() : ""},
        {"layer_output", at_layer ? model.layer(shown.layer).output_shape().str() : ""},
        {"score", explain::to_string(s.score)},
        {"dtype", s.use_double ? "double" : "float"},
        {"steps", s.steps},
        {"baseline", s.baseline},
        {"targets", shown.targets},
        {"predicted", shown.predicted},
        {"cnnlite_version", version()},
    };
    write_file_atomically(dir + "info.json", info.dump(1) + "\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Settings s = parse(argc, argv);
        return s.use_double ? run<double>(s) : run<float>(s);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "cnnlite_explain_maps: %s\n%s", e.message.c_str(), usage);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cnnlite_explain_maps: %s\n", e.what());
        return 1;
    }
}
