// cnnlite side of the explanation comparison: batched Grad-CAM (the paper's: softmax
// probability of the predicted class, the conv layer's output after its ReLU, channel-mean
// gradient weights, ReLU, divided by the max) and Integrated Gradients (midpoint rule, black
// baseline, probability of the predicted class) over the first N test images, with the
// library's defaults except the chunk size. Public headers only. Prints one JSON line:
// images/s over the timed part and the process's peak resident memory.
//
//   cnnlite_explain_driver --model M.safetensors --data DIR --method gradcam|ig [--images 1000]
//                          [--batch 256] [--steps 32] [--threads 2] [--seconds 3] [--maps OUT.npy]
//   cnnlite_explain_driver --train OUT.safetensors --data DIR [--train-images 60000] [--epochs 1]
// DIR holds Fashion-MNIST's IDX files. --batch is the chunk size (images per forward/backward
// pass; for IG each chunk takes `steps` passes). Timing: one warm-up call on the first `batch`
// images, then calls over all N images until `seconds` have passed (at least one). --maps
// writes the maps and predicted classes of the first 100 images (outside the timing) for
// compare.py's agreement check. --train writes the model file the drivers share: the paper's
// network, Adam, batch 64, the given epochs on the first --train-images training images.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/fashion_mnist.hpp"
#include "cnnlite/explain/gradcam.hpp"
#include "cnnlite/explain/integrated_gradients.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/npy.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/evaluate.hpp"
#include "cnnlite/train/fit.hpp"

namespace {

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) try {
    std::string method = "gradcam", data_dir = "/usr/share/datasets/fashion-mnist", model_path, train_out, maps_out;
    long images = 1000, batch = 256, steps = 32, threads = 2, train_images = 60000, epochs = 1;
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--method") method = value;
        else if (key == "--data") data_dir = value;
        else if (key == "--model") model_path = value;
        else if (key == "--train") train_out = value;
        else if (key == "--maps") maps_out = value;
        else if (key == "--images") images = std::atol(value.c_str());
        else if (key == "--batch") batch = std::atol(value.c_str());
        else if (key == "--steps") steps = std::atol(value.c_str());
        else if (key == "--threads") threads = std::atol(value.c_str());
        else if (key == "--train-images") train_images = std::atol(value.c_str());
        else if (key == "--epochs") epochs = std::atol(value.c_str());
        else if (key == "--seconds") seconds = std::atof(value.c_str());
        else {
            std::fprintf(stderr, "unknown option %s\n", key.c_str());
            return 2;
        }
    }
    cnnlite::set_num_threads(static_cast<int>(threads));

    if (!train_out.empty()) {
        const cnnlite::FashionMnist data = cnnlite::load_fashion_mnist(data_dir, {train_images, 1000});
        cnnlite::Sequential<float> model = cnnlite::fashion_mnist_cnn<float>(0);
        cnnlite::Adam<float> adam(model.trainable_variables());
        cnnlite::FitOptions options;
        options.epochs = epochs;
        options.verbosity = cnnlite::Verbosity::silent;
        const double start = now();
        cnnlite::fit(model, adam, data.train, nullptr, options);
        const cnnlite::Evaluation e = cnnlite::evaluate(model, data.test);
        cnnlite::save_model(model, train_out);
        std::printf("trained the paper's network on %lld images x %ld epoch(s) in %.1f s; accuracy on the first %lld "
                    "test images %.4f; wrote %s\n",
                    static_cast<long long>(data.train.size()), epochs, now() - start,
                    static_cast<long long>(data.test.size()), e.accuracy, train_out.c_str());
        return 0;
    }

    cnnlite::check(!model_path.empty(), "--model FILE is required (or --train OUT)");
    const cnnlite::FashionMnist data = cnnlite::load_fashion_mnist(data_dir, {0, images});
    const cnnlite::Tensor<float> x = data.test.images();
    const double rss_loaded = peak_rss_mb();
    const cnnlite::Model<float> model = cnnlite::load_model<float>(model_path);

    cnnlite::explain::CamOptions cam;
    cam.chunk_size = batch;
    cnnlite::explain::IntegratedGradientsOptions ig;
    ig.chunk_size = batch;
    ig.steps = static_cast<int>(steps);
    auto explain = [&](const cnnlite::Tensor<float>& t) {
        if (method == "gradcam") return cnnlite::explain::grad_cam(model, t, cam);
        if (method == "ig") return cnnlite::explain::integrated_gradients(model, t, ig);
        cnnlite::fail("--method must be gradcam or ig, got ", method);
    };

    explain(x.rows(0, std::min<std::int64_t>(batch, x.dim(0))));  // warm-up
    const double start = now();
    long calls = 0;
    cnnlite::explain::Explanation e;
    do {
        e = explain(x);
        ++calls;
    } while (now() - start < seconds);
    const double elapsed = now() - start;
    const double peak = peak_rss_mb();

    if (!maps_out.empty()) {
        const std::int64_t n = std::min<std::int64_t>(100, x.dim(0));
        const cnnlite::explain::Explanation m = explain(x.rows(0, n));
        cnnlite::save_npy(maps_out, m.maps);
        cnnlite::Tensor<float> predicted = cnnlite::Tensor<float>::uninitialized(cnnlite::Shape{n});
        for (std::int64_t i = 0; i < n; ++i) predicted[i] = static_cast<float>(m.predicted[static_cast<std::size_t>(i)]);
        cnnlite::save_npy(maps_out + ".predicted.npy", predicted);
    }
    std::printf("{\"framework\": \"cnnlite\", \"method\": \"%s\", \"images\": %lld, \"batch\": %ld, \"steps\": %ld, "
                "\"threads\": %d, \"images_per_second\": %.1f, \"seconds\": %.3f, \"calls\": %ld, \"peak_rss_mb\": %.1f, "
                "\"rss_after_data_mb\": %.1f, \"check\": %.6g}\n",
                method.c_str(), static_cast<long long>(x.dim(0)), batch, method == "ig" ? steps : 0L,
                cnnlite::num_threads(), static_cast<double>(calls * x.dim(0)) / elapsed, elapsed, calls, peak, rss_loaded,
                static_cast<double>(e.maps[0]));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "cnnlite_explain_driver: %s\n", e.what());
    return 1;
}
