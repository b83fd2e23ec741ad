// Stage `export --to FILE`: writes the folder's trained model (or --model) in another format
// for other runtimes. ONNX (--format onnx, the default): an inference graph, opset 17, that
// onnxruntime runs with the same probabilities (docs/model_format.md, "ONNX export"); Keras
// (--format keras): Keras 3 weights for a Keras model of the same architecture ("Keras
// weights"). The output folder is not touched: FILE is written atomically wherever it is named.
#include <string>
#include <system_error>

#include "cnnlite/io/keras_weights.hpp"
#include "cnnlite/io/onnx_export.hpp"

#include "pipeline.hpp"

namespace fm {

void run_export(const Settings& s) {
    cnnlite::check(!s.export_to.empty(), "export: name the file to write with --to FILE");
    const fs::path to(s.export_to);
    const fs::path model_path(s.model_path());
    std::error_code ec;
    cnnlite::check(!fs::is_directory(to, ec), "export: --to '", to.string(), "' is a folder; name the file to write");
    cnnlite::check(!fs::exists(to, ec) || !fs::equivalent(to, model_path, ec), "export: --to '", to.string(),
                   "' is the model file being exported");
    const cnnlite::Model<float> model = load_trained_model(s, model_path, "export");
    if (s.export_format == "keras") {
#if defined(CNNLITE_WITH_KERAS) && CNNLITE_WITH_KERAS
        cnnlite::save_keras_weights(model, to.string());
        say(s, "export", "wrote " + to.string() + " (Keras 3 weights, for model.load_weights)");
#else
        cnnlite::fail("export: this fashion_mnist was built without the Keras component; configure cnnlite with "
                      "-DCNNLITE_WITH_KERAS=ON (Meson: -Dkeras=enabled; Debian: apt-get install libhdf5-dev "
                      "libzip-dev) and build it again");
#endif
        return;
    }
    cnnlite::check(s.export_format == "onnx", "export: unknown --format '", s.export_format, "' (known: onnx, keras)");
#if defined(CNNLITE_WITH_ONNX) && CNNLITE_WITH_ONNX
    cnnlite::save_onnx(model, to.string());
    say(s, "export", "wrote " + to.string() + " (ONNX opset " + std::to_string(cnnlite::onnx_opset_version) + ")");
#else
    cnnlite::fail("export: this fashion_mnist was built without ONNX; configure cnnlite with -DCNNLITE_WITH_ONNX=ON "
                  "(Meson: -Donnx=enabled; Debian: apt-get install libonnx-dev libprotobuf-dev) and build it again");
#endif
}

}  // namespace fm
