// Fuzz target: the safetensors reader (io/safetensors.hpp) and the two readers built on it,
// load_model (io/model_file.hpp) and load_checkpoint (train/checkpoint.hpp). Every input must
// either load or throw cnnlite::Error. What parses must read back every tensor and survive a
// round trip through SafetensorsWriter with the same names, shapes, metadata and bits.
#include <cstring>
#include <string>

#include "cnnlite/io/model_file.hpp"
#include "cnnlite/io/safetensors.hpp"
#include "cnnlite/optim/adam.hpp"
#include "cnnlite/train/checkpoint.hpp"
#include "fuzz_support.hpp"
#include "seed_model.hpp"

namespace {

template <class T>
bool same_bits(const cnnlite::Tensor<T>& a, const cnnlite::Tensor<T>& b) {
    return a.shape() == b.shape() && (a.numel() == 0 || std::memcmp(a.data(), b.data(), a.bytes()) == 0);
}

// Reads every tensor as its own type and, for floats, as the other float type too.
void read_all(const cnnlite::SafetensorsFile& file, cnnlite::SafetensorsWriter& writer) {
    for (const auto& [name, entry] : file.entries()) {
        switch (entry.dtype) {
            case cnnlite::SafetensorsDtype::F32:
                writer.add(name, file.tensor<float>(name));
                (void)file.tensor<double>(name);
                break;
            case cnnlite::SafetensorsDtype::F64:
                writer.add(name, file.tensor<double>(name));
                try {
                    (void)file.tensor<float>(name);  // refuses values beyond float's range
                } catch (const cnnlite::Error&) {
                }
                break;
            case cnnlite::SafetensorsDtype::I64: writer.add(name, file.tensor<std::int64_t>(name)); break;
        }
    }
    for (const auto& [key, value] : file.metadata()) writer.set_metadata(key, value);
}

void check_round_trip(const cnnlite::SafetensorsFile& file, const std::string& bytes) {
    const auto again = cnnlite::SafetensorsFile::parse(bytes, "round trip", {true});
    if (again.metadata() != file.metadata()) fuzz::violated("round trip changed the metadata");
    if (again.entries().size() != file.entries().size()) fuzz::violated("round trip changed the tensor count");
    for (const auto& [name, entry] : file.entries()) {
        const auto& other = again.entry(name);
        if (other.dtype != entry.dtype || other.shape != entry.shape) fuzz::violated("round trip changed a tensor");
        const bool equal = entry.dtype == cnnlite::SafetensorsDtype::F32   ? same_bits(file.tensor<float>(name), again.tensor<float>(name))
                           : entry.dtype == cnnlite::SafetensorsDtype::F64 ? same_bits(file.tensor<double>(name), again.tensor<double>(name))
                                                                           : same_bits(file.tensor<std::int64_t>(name), again.tensor<std::int64_t>(name));
        if (!equal) fuzz::violated("round trip changed a tensor's values");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    for (bool allow_non_finite : {false, true}) {
        try {
            const auto file = cnnlite::SafetensorsFile::parse(bytes, "fuzz input", {allow_non_finite});
            cnnlite::SafetensorsWriter writer;
            try {
                read_all(file, writer);
            } catch (const cnnlite::Error&) {
                continue;  // e.g. an empty tensor name: readable, but not writable
            }
            check_round_trip(file, writer.serialize());
        } catch (const cnnlite::Error&) {
        }
    }

    // The model and checkpoint readers take files; most inputs fail in the safetensors layer,
    // so only those that get that far are worth the file write.
    if (bytes.find("architecture") == std::string::npos) return 0;
    const std::string path = fuzz::write_scratch("input.safetensors", data, size);
    try {
        const auto model = cnnlite::load_model<float>(path);
        (void)model.parameter_count();
    } catch (const cnnlite::Error&) {
    }
    try {
        const auto model = fuzz::seed_model();
        cnnlite::load_weights(model, path);
    } catch (const cnnlite::Error&) {
    }
    try {
        const auto model = fuzz::seed_model();
        cnnlite::Adam<float> adam(model.trainable_variables());
        cnnlite::KeepBest<float> best;
        cnnlite::EarlyStopping<float> stopping(2);
        const auto progress = cnnlite::load_checkpoint(path, model, adam, &best, &stopping);
        if (progress.epoch < 0 || static_cast<std::size_t>(progress.epoch) != progress.history.epochs.size())
            fuzz::violated("checkpoint epoch and history disagree");
        if (best.best_epoch() < 0 || best.best_epoch() > progress.epoch) fuzz::violated("best epoch out of range");
    } catch (const cnnlite::Error&) {
    }
    return 0;
}
