// cnnlite side of the side-by-side comparison: the paper's network (fashion_mnist_cnn), trained
// with TrainStep + Adam or run with predict(), on real Fashion-MNIST images; or, with --model,
// the network of a cnnlite model file (e.g. ResNet-8 from `fashion_mnist train --arch resnet8`),
// trained with SGD (Nesterov momentum 0.9, learning rate 0.01) as torch_driver.py trains it.
// Prints one JSON line: images/s over the timed part and the process's peak resident memory.
//
//   cnnlite_driver --data DIR --mode train|infer --batch 64 --threads 2 [--seconds 3] [--model FILE]
//                  [--adapt-threads on|off] [--prepared on|direct|planes|off] [--winograd on|off]
// DIR holds the raw uint8 files that prepare_data.py writes (the first 8 x 64 training images
// and the first 1,000 test images, with labels), so that every framework reads the same few
// images and peak memory is the framework's, not the data set's.
// train: steps on the shuffled batches in a ring (8 of 64 images, 4 of 128; warm-up 5 steps,
// then steps until `seconds` have passed, at least 10). As fit() does, training runs each step on
// the team or on one thread, whichever the thread governor times faster (core/thread_governor.hpp;
// --adapt-threads off: the team throughout); the warm-up lasts until its first probe has decided,
// so that the timed steps are those of a run minutes long, in which that probe is negligible.
// infer: predict() over the first `batch` test images (its default chunking), repeated until
// `seconds` have passed, on an InferenceModel made from the model once before the timing (its
// batch norms folded, its filters packed, its convolutions channels-last, each chunk on the team
// or on one thread as its thread governor chooses: nn/inference_model.hpp), as a deployed
// classifier runs, timed after the governor's first probe (--adapt-threads off: on the team
// throughout); --prepared direct: without Winograd's transforms (every convolution a direct
// product); --prepared planes: without channels-last activations; --prepared off:
// Model::predict, which forms those at every call. --winograd off: the model file's
// convolutions without Winograd's transforms (Conv2D::winograd) in training and Model::predict.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cnnlite/core/denormals.hpp"
#include "cnnlite/core/thread_governor.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/data/batching.hpp"
#include "cnnlite/data/dataset.hpp"
#include "cnnlite/io/model_file.hpp"
#include "cnnlite/nn/inference_model.hpp"
#include "cnnlite/nn/paper_model.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/optim/sgd.hpp"
#include "cnnlite/train/fit.hpp"

#ifndef CNNLITE_DRIVER_NAME
#define CNNLITE_DRIVER_NAME "cnnlite"
#endif

namespace {

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

// `count` images of 1x28x28 bytes and their labels from DIR/<name>_images.u8 and _labels.u8.
cnnlite::Dataset read_raw(const std::string& dir, const std::string& name) {
    auto slurp = [](const std::string& path) {
        std::vector<unsigned char> bytes;
        if (FILE* f = std::fopen(path.c_str(), "rb")) {
            unsigned char buffer[65536];
            for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) bytes.insert(bytes.end(), buffer, buffer + n);
            std::fclose(f);
        }
        cnnlite::check(!bytes.empty(), "cannot read ", path, " (run benchmarks/compare/run.sh, which writes it)");
        return bytes;
    };
    const std::vector<unsigned char> pixels = slurp(dir + "/" + name + "_images.u8"), labels = slurp(dir + "/" + name + "_labels.u8");
    const std::int64_t n = static_cast<std::int64_t>(labels.size());
    cnnlite::check(static_cast<std::int64_t>(pixels.size()) == n * 784, "image and label files of ", name, " disagree");
    cnnlite::Tensor<std::uint8_t> t = cnnlite::Tensor<std::uint8_t>::uninitialized(cnnlite::Shape{n, 1, 28, 28});
    std::copy(pixels.begin(), pixels.end(), t.data());
    std::vector<std::string> classes;
    for (int c = 0; c < 10; ++c) classes.push_back(std::to_string(c));
    return cnnlite::Dataset::from_pixels(std::move(t), std::vector<int>(labels.begin(), labels.end()), classes);
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Measured {
    long images = 0;
    double elapsed = 0, check = 0;
    double one_thread_share = 0;  // of the timed training steps or predicted chunks, those the governor ran on one thread
};

// One mode's measurement, as the file's comment says.
Measured measure(cnnlite::Model<float>& model, cnnlite::Optimizer<float>* optimizer, const cnnlite::Dataset& train,
                 const cnnlite::Dataset& test, const std::string& mode, long batch, double seconds, bool adapt,
                 const std::string& prepared) {
    Measured m;
    if (mode == "train") {
        const cnnlite::FlushDenormals flush;  // as fit() trains
        cnnlite::TrainStep<float> step(model, *optimizer);
        cnnlite::Batcher batcher(train, cnnlite::BatchOptions{batch, true, true, 0});
        batcher.start_epoch(0);
        const std::int64_t batches = std::max<std::int64_t>(1, std::min<std::int64_t>(8, train.size() / batch));
        std::vector<cnnlite::Batch> ring(static_cast<std::size_t>(batches));
        for (std::size_t b = 0; b < ring.size(); ++b) batcher.fill(static_cast<std::int64_t>(b), ring[b]);
        long s = 0;
        cnnlite::ThreadGovernor governor(adapt ? cnnlite::num_threads() : 1);
        auto train_once = [&] {
            if (governor.team() > 1) cnnlite::set_num_threads(governor.next_threads());
            const double step_start = now();
            const cnnlite::Batch& b = ring[static_cast<std::size_t>(s) % ring.size()];
            const cnnlite::ForwardContext ctx{true, 0, s, b.indices.data()};
            m.check = step(b, ctx, 1, s + 1).loss();
            governor.record(now() - step_start);
            ++s;
        };
        for (int i = 0; i < 5 || (governor.team() > 1 && governor.probes() == 0); ++i) train_once();
        const double start = now();
        const std::int64_t one_before = governor.steps_one_thread();
        long steps = 0;
        do {
            train_once();
            ++steps;
        } while (steps < 10 || now() - start < seconds);
        m.elapsed = now() - start;
        m.images = steps * batch;
        if (governor.team() > 1)
            m.one_thread_share = static_cast<double>(governor.steps_one_thread() - one_before) / static_cast<double>(steps);
    } else {
        const cnnlite::Tensor<float> x = test.images().rows(0, batch);
        cnnlite::InferenceOptions options;
        options.channels_last = prepared == "on" || prepared == "direct";
        options.winograd = prepared == "on";
        options.adapt_threads = adapt;
        cnnlite::InferenceModel<float> inference(model, options);
        auto predict = [&] { return prepared != "off" ? inference.predict(x) : model.predict(x); };
        cnnlite::Tensor<float> y = predict();  // warm-up, until the first probe of the threads has decided
        while (adapt && prepared != "off" && cnnlite::num_threads() > 1 && inference.thread_probes() == 0) y = predict();
        const double start = now();
        const std::int64_t one_before = inference.chunks_on_one_thread();
        long calls = 0;
        do {
            y = predict();
            ++calls;
        } while (calls < 5 || now() - start < seconds);
        m.elapsed = now() - start;
        m.images = calls * batch;
        const long chunks = calls * ((batch + 255) / 256);  // predict()'s default chunks
        if (adapt && prepared != "off" && cnnlite::num_threads() > 1)
            m.one_thread_share = static_cast<double>(inference.chunks_on_one_thread() - one_before) / static_cast<double>(chunks);
        m.check = static_cast<double>(y[0]);
    }
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = "train", data_dir, model_file;
    long batch = 64, threads = 2;
    std::string prepared = "on";
    bool adapt = true, winograd = true;
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--mode") mode = value;
        else if (key == "--batch") batch = std::atol(value.c_str());
        else if (key == "--threads") threads = std::atol(value.c_str());
        else if (key == "--seconds") seconds = std::atof(value.c_str());
        else if (key == "--data") data_dir = value;
        else if (key == "--model") model_file = value;
        else if (key == "--adapt-threads" && (value == "on" || value == "off")) adapt = value == "on";
        else if (key == "--prepared" && (value == "on" || value == "direct" || value == "planes" || value == "off")) prepared = value;
        else if (key == "--winograd" && (value == "on" || value == "off")) winograd = value == "on";
        else {
            std::fprintf(stderr, "unknown option %s\n", key.c_str());
            return 2;
        }
    }
    if (mode != "train" && mode != "infer") {
        std::fprintf(stderr, "mode must be train or infer\n");
        return 2;
    }
    cnnlite::set_num_threads(static_cast<int>(threads));
    cnnlite::check(!data_dir.empty(), "--data DIR is required");
    cnnlite::check(batch >= 1, "--batch must be at least 1, got ", batch);
    const cnnlite::Dataset train = read_raw(data_dir, "train"), test = read_raw(data_dir, "test");
    const double rss_loaded = peak_rss_mb();
    Measured m;
    if (model_file.empty()) {
        cnnlite::Sequential<float> model = cnnlite::fashion_mnist_cnn<float>(0);
        cnnlite::Adam<float> adam(model.trainable_variables());
        m = measure(model, &adam, train, test, mode, batch, seconds, adapt, prepared);
    } else {
        cnnlite::Model<float> model = cnnlite::load_model<float>(model_file);
        for (std::size_t i = 0; i < model.size(); ++i)
            if (auto* conv = dynamic_cast<cnnlite::Conv2D<float>*>(&model.layer(i))) conv->winograd(winograd);
        cnnlite::SGDOptions options;
        options.learning_rate = 0.01;
        options.momentum = 0.9;
        options.nesterov = true;
        cnnlite::SGD<float> sgd(model.trainable_variables(), options);
        m = measure(model, &sgd, train, test, mode, batch, seconds, adapt, prepared);
    }
    std::printf("{\"framework\": \"" CNNLITE_DRIVER_NAME "\", \"mode\": \"%s\", \"batch\": %ld, \"threads\": %ld, "
                "\"images_per_second\": %.1f, \"seconds\": %.3f, \"peak_rss_mb\": %.1f, \"rss_after_data_mb\": %.1f, "
                "\"one_thread_share\": %.3f, \"check\": %.6g}\n",
                mode.c_str(), batch, threads, static_cast<double>(m.images) / m.elapsed, m.elapsed, peak_rss_mb(),
                rss_loaded, m.one_thread_share, m.check);
    return 0;
}
