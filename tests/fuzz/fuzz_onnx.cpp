// Fuzz target: the ONNX importer (io/onnx_import.hpp), built only with the ONNX component.
// Every input must either load or throw cnnlite::Error. A model that loads must be complete,
// export again (to_onnx) and re-import with the same parameters and output shape; when it is
// small it must also run: a sample of zeros and one of ones give outputs of the model's shape,
// and the re-imported model predicts the same bits.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cnnlite/io/onnx_export.hpp"
#include "cnnlite/io/onnx_import.hpp"
#include "fuzz_support.hpp"

namespace {

// Small enough to run under the sanitizers many times a second. Every layer counts, since a
// padded convolution of a tiny input may still be huge; a layer's output size times its
// weights bounds its multiply-adds.
bool small(const cnnlite::Model<float>& model) {
    std::int64_t values = model.input_shape().numel(), work = 0;
    for (std::size_t i = 0; i < model.size(); ++i) {
        const std::int64_t out = model.layer(i).output_shape().numel();
        std::int64_t weights = 1;
        for (const auto& p : model.layer(i).parameters()) weights += p.variable.value().numel();
        values += out;
        if (out > 100000 || weights > 100000) return false;
        work += out * weights;
    }
    return values <= 100000 && work <= 20000000;
}

bool same_bits(const cnnlite::Tensor<float>& a, const cnnlite::Tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        const cnnlite::Model<float> model = cnnlite::load_onnx_bytes<float>(bytes, "fuzz input");
        model.check_complete();
        const cnnlite::Model<float> again = cnnlite::from_onnx<float>(cnnlite::to_onnx(model), "re-export");
        // (Dropout layers are not exported, so only the parameters must be the same.)
        if (again.parameter_count() != model.parameter_count() || again.output_shape() != model.output_shape())
            fuzz::violated("export and re-import changed the network");
        if (!small(model)) return 0;
        std::vector<std::int64_t> dims{2};
        for (std::int64_t d : model.input_shape()) dims.push_back(d);
        cnnlite::Tensor<float> x{cnnlite::Shape(dims)};
        for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = i < x.numel() / 2 ? 0.0f : 1.0f;
        const cnnlite::Tensor<float> y = model.predict(x);
        std::vector<std::int64_t> out{2};
        for (std::int64_t d : model.output_shape()) out.push_back(d);
        if (y.shape() != cnnlite::Shape(out)) fuzz::violated("predict's output is not the model's output shape");
        if (!same_bits(y, again.predict(x))) fuzz::violated("the re-imported model predicts differently");
    } catch (const cnnlite::Error&) {
    }
    return 0;
}
