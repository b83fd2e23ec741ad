// cnnlite_graph_cam_maps: Grad-CAM, HiResCAM or LayerCAM of a batch of images at a named layer of a
// cnnlite model file (any layer whose output is feature maps [C, H, W], e.g. the last residual
// block's ReLU of resnet8), written as .npy files so that
// tests/python/test_explain_parity_graph.py can compare them with pytorch-grad-cam. Uses only the
// public headers.
//
// Usage:
//   cnnlite_graph_cam_maps MODEL.safetensors IMAGES.npy METHOD OUT_DIR [options]
//     METHOD          gradcam | hirescam | layercam
//     --layer NAME    layer explained (CamOptions::layer; default: the model's last Conv2D)
//     --targets T     predicted (default) | C (the same class for every image) | C1,C2,... (one per image)
//     --score S       probability (default) | logit
//     --dtype D       float (default) | double: the type the model is loaded and run in
//     --chunk N       images per forward/backward pass (default 256)
// IMAGES.npy holds [N, C, H, W] float32 or float64 values (pixel / 255 for Fashion-MNIST).
//
// Writes into OUT_DIR (created if missing), every array float32:
//   raw.npy            [N, h, w] PostProcess::raw(): the weighted sum at the layer's resolution,
//                      before the ReLU and the scaling (gradcam: sum_k alpha_k A_k; hirescam:
//                      sum_k g_k * A_k; layercam: sum_k relu(g_k) * A_k)
//   shown.npy          [N, h, w] ReLU, divided by the map's max, not resized (PostProcess with
//                      upsample = false)
//   maps.npy           [N, H, W] the library's default output: the same, resized bilinearly to
//                      the input when the layer is smaller
//   probabilities.npy  [N, classes] the model's softmax output
//   info.json          method, layer, layer_output, score, dtype, targets and predicted classes
// Exit status: 0 done, 1 error (message on stderr), 2 bad command line.
#include <cnnlite/cnnlite.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using namespace cnnlite;

struct Settings {
    std::string model, images, method, out, layer;
    std::string targets = "predicted";
    explain::Score score = explain::Score::probability;
    bool use_double = false;
    std::int64_t chunk = 256;
};

const char* const usage =
    "usage: cnnlite_graph_cam_maps MODEL.safetensors IMAGES.npy gradcam|hirescam|layercam OUT_DIR\n"
    "       [--layer NAME] [--targets predicted|C|C1,C2,...] [--score probability|logit]\n"
    "       [--dtype float|double] [--chunk N]\n";

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
        if (i + 1 >= argc) throw UsageError{arg + " needs a value"};
        const std::string value = argv[++i];
        if (arg == "--layer") {
            s.layer = value;
        } else if (arg == "--targets") {
            s.targets = value;
        } else if (arg == "--score") {
            if (value != "probability" && value != "logit") throw UsageError{"--score is probability or logit"};
            s.score = value == "logit" ? explain::Score::logit : explain::Score::probability;
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
    if (s.method != "gradcam" && s.method != "hirescam" && s.method != "layercam")
        throw UsageError{"unknown method '" + s.method + "' (gradcam, hirescam or layercam)"};
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
int run(const Settings& s) {
    const Model<T> model = load_model<T>(s.model);
    const Tensor<T> images = load_npy<double>(s.images).template cast<T>();
    create_directories(s.out);
    const std::string dir = s.out + "/";

    explain::CamOptions o;
    o.layer = s.layer;
    o.target = parse_targets(s.targets, images.rank() > 0 ? images.dim(0) : 0);
    o.score = s.score;
    o.chunk_size = s.chunk;
    const auto method = s.method == "gradcam"    ? &explain::grad_cam<T>
                        : s.method == "hirescam" ? &explain::hires_cam<T>
                                                 : &explain::layer_cam<T>;
    const explain::Explanation maps = method(model, images, o);  // the defaults: ReLU, max, resize
    o.post.upsample = false;
    const explain::Explanation shown = method(model, images, o);
    o.post = explain::PostProcess::raw();
    const explain::Explanation raw = method(model, images, o);
    save_npy(dir + "raw.npy", raw.maps);
    save_npy(dir + "shown.npy", shown.maps);
    save_npy(dir + "maps.npy", maps.maps);
    save_npy(dir + "probabilities.npy", maps.probabilities);

    const nlohmann::json info = {
        {"method", s.method},
        {"layer", raw.layer},
        {"layer_type", model.layer(raw.layer).type()},
        {"layer_output", model.layer(raw.layer).output_shape().str()},
        {"score", explain::to_string(s.score)},
        {"dtype", s.use_double ? "double" : "float"},
        {"targets", raw.targets},
        {"predicted", raw.predicted},
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
        std::fprintf(stderr, "cnnlite_graph_cam_maps: %s\n%s", e.message.c_str(), usage);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cnnlite_graph_cam_maps: %s\n", e.what());
        return 1;
    }
}
