// tiny-dnn side of the side-by-side comparison: the paper's network written with tiny-dnn's
// public API (Debian's header-only tiny-dnn 1.0.0a3, its default std::thread parallel_for, which
// runs std::thread::hardware_concurrency() = 2 workers here; the tinydnn_driver_1thread build
// defines tiny-dnn's CNN_SINGLE_THREAD for one thread), trained with its Adam and
// multi-class cross-entropy on a softmax output, or run with predict(). Prints one JSON line
// like the other drivers.
//
//   tinydnn_driver --data DIR --mode train|infer --batch 64 [--seconds 3]
// train: network::train() over the prepared training images, one epoch of batches per call
// (8 batches of 64), timed over whole calls after one warm-up call. infer: predict() on a
// vector of `batch` samples, repeated until `seconds` have passed.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tiny_dnn/tiny_dnn.h"

namespace {

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<unsigned char> slurp(const std::string& path) {
    std::vector<unsigned char> bytes;
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
        unsigned char buffer[65536];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) bytes.insert(bytes.end(), buffer, buffer + n);
        std::fclose(f);
    }
    if (bytes.empty()) {
        std::fprintf(stderr, "cannot read %s (run benchmarks/compare/run.sh, which writes it)\n", path.c_str());
        std::exit(2);
    }
    return bytes;
}

void read_raw(const std::string& dir, const std::string& split, std::vector<tiny_dnn::vec_t>& images,
              std::vector<tiny_dnn::label_t>& labels) {
    const std::vector<unsigned char> pixels = slurp(dir + "/" + split + "_images.u8");
    const std::vector<unsigned char> l = slurp(dir + "/" + split + "_labels.u8");
    for (std::size_t i = 0; i < l.size(); ++i) {
        tiny_dnn::vec_t v(784);
        for (std::size_t j = 0; j < 784; ++j) v[j] = static_cast<tiny_dnn::float_t>(pixels[i * 784 + j]) / 255.0f;
        images.push_back(std::move(v));
        labels.push_back(l[i]);
    }
}

}  // namespace

int main(int argc, char** argv) {
    using namespace tiny_dnn;
    std::string mode = "train", data_dir;
    std::size_t batch = 64;
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i], value = argv[i + 1];
        if (key == "--mode") mode = value;
        else if (key == "--batch") batch = static_cast<std::size_t>(std::atol(value.c_str()));
        else if (key == "--seconds") seconds = std::atof(value.c_str());
        else if (key == "--data") data_dir = value;
        else if (key == "--threads") continue;  // tiny-dnn decides: hardware_concurrency()
        else {
            std::fprintf(stderr, "unknown option %s\n", key.c_str());
            return 2;
        }
    }
    std::vector<vec_t> train_x, test_x;
    std::vector<label_t> train_y, test_y;
    read_raw(data_dir, "train", train_x, train_y);
    read_raw(data_dir, "test", test_x, test_y);
    const double rss_loaded = peak_rss_mb();

    // The paper's Figure 4 ('same' padding with the 2x2 kernel keeps 28x28).
    network<sequential> net;
    net << convolutional_layer<activation::relu>(28, 28, 2, 1, 64, padding::same)
        << max_pooling_layer<activation::identity>(28, 28, 64, 2)
        << dropout_layer(14 * 14 * 64, 0.3f)
        << max_pooling_layer<activation::identity>(14, 14, 64, 2)
        << dropout_layer(7 * 7 * 64, 0.3f)
        << fully_connected_layer<activation::relu>(3136, 256)
        << dropout_layer(256, 0.5f)
        << fully_connected_layer<activation::softmax>(256, 10);

    long images = 0;
    double elapsed = 0, check = 0;
    if (mode == "train") {
        adam optimizer;  // lr 0.001, beta1 0.9, beta2 0.999
        auto nop = [] {};
        net.train<cross_entropy_multiclass>(optimizer, train_x, train_y, batch, 1, nop, nop);  // warm-up
        const double start = now();
        long calls = 0;
        do {
            net.train<cross_entropy_multiclass>(optimizer, train_x, train_y, batch, 1, nop, nop);
            ++calls;
        } while (calls < 2 || now() - start < seconds);
        elapsed = now() - start;
        images = calls * static_cast<long>(train_x.size() / batch * batch);
        check = net.predict(test_x[0])[0];
    } else if (mode == "infer") {
        net.init_weight();  // train() would do it; predict() alone does not
        net.set_netphase(net_phase::test);
        std::vector<tensor_t> x;
        for (std::size_t i = 0; i < batch; ++i) x.push_back(tensor_t{test_x[i]});
        std::vector<tensor_t> y = net.predict(x);  // warm-up
        const double start = now();
        long calls = 0;
        do {
            y = net.predict(x);
            ++calls;
        } while (calls < 2 || now() - start < seconds);
        elapsed = now() - start;
        images = calls * static_cast<long>(batch);
        check = y[0][0][0];
    } else {
        std::fprintf(stderr, "mode must be train or infer\n");
        return 2;
    }
#ifdef CNN_SINGLE_THREAD
    const unsigned threads_used = 1;  // the tinydnn_driver_1thread build: parallel_for runs serially
#else
    const unsigned threads_used = std::thread::hardware_concurrency();
#endif
    std::printf("{\"framework\": \"tiny-dnn\", \"mode\": \"%s\", \"batch\": %zu, \"threads\": %u, "
                "\"images_per_second\": %.1f, \"seconds\": %.3f, \"peak_rss_mb\": %.1f, \"rss_after_data_mb\": %.1f, "
                "\"check\": %.6g}\n",
                mode.c_str(), batch, threads_used, static_cast<double>(images) / elapsed, elapsed,
                peak_rss_mb(), rss_loaded, check);
    return 0;
}
