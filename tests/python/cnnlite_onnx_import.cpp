// cnnlite_onnx_import: reads an ONNX file with load_onnx and writes cnnlite's predictions for a
// batch of inputs, so that tests/python/test_onnx_import.py can compare them with PyTorch's and
// onnxruntime's. Prints the imported layers, one "<type> <name>" line each. Needs the ONNX
// component (CNNLITE_WITH_ONNX).
//
// Usage:
//   cnnlite_onnx_import MODEL.onnx INPUTS.npy OUTPUTS.npy [--dtype float|double] [--save MODEL.safetensors]
//     INPUTS.npy: float32 [N, sample...]; OUTPUTS.npy: Model::predict of them ([N, ...], float32
//     or float64 as --dtype) after load_onnx<float or double>(MODEL); --save also writes the
//     imported model as a cnnlite model file (save_model).
// Exit status: 0 done, 1 error (message on stderr, e.g. what load_onnx refused), 2 bad command line.
#include <cnnlite/io/onnx_import.hpp>

#include <cnnlite/io/model_file.hpp>
#include <cnnlite/io/npy.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace cnnlite;

const char* const usage =
    "usage: cnnlite_onnx_import MODEL.onnx INPUTS.npy OUTPUTS.npy [--dtype float|double] [--save MODEL.safetensors]\n";

template <class T>
void import_and_predict(const std::string& model_path, const std::string& inputs, const std::string& outputs,
                        const std::string& save) {
    const Model<T> model = load_onnx<T>(model_path);
    for (std::size_t i = 0; i < model.size(); ++i)
        std::printf("%s %s\n", model.layer(i).type(), model.layer(i).name().c_str());
    save_npy(outputs, model.predict(load_npy<T>(inputs)));
    if (!save.empty()) save_model(model, save);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args;
    std::string dtype = "float", save;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if ((arg == "--dtype" || arg == "--save") && i + 1 < argc) {
            (arg == "--dtype" ? dtype : save) = argv[++i];
        } else {
            args.push_back(arg);
        }
    }
    if (args.size() != 3 || (dtype != "float" && dtype != "double")) {
        std::fputs(usage, stderr);
        return 2;
    }
    try {
        if (dtype == "float")
            import_and_predict<float>(args[0], args[1], args[2], save);
        else
            import_and_predict<double>(args[0], args[1], args[2], save);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cnnlite_onnx_import: %s\n", e.what());
        return 1;
    }
    return 0;
}
