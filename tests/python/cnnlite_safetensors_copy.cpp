// cnnlite_safetensors_copy: reads a safetensors file with cnnlite's reader and writes every
// tensor, in its own dtype, and the metadata again with cnnlite's writer, so that
// tests/python/test_safetensors_parity.py can check both directions against the `safetensors`
// package: what safetensors.torch.save_file writes must come back from cnnlite unchanged, bit
// for bit. Uses only the public headers.
//
// Usage: cnnlite_safetensors_copy IN.safetensors OUT.safetensors [SUMMARY.json]
// SUMMARY.json records what the reader saw: {"metadata": {...}, "tensors": {name: {"dtype":
// "F32", "shape": [...]}}}.
// Exit status: 0 copied, 1 the reader (or writer) refused the file (the message, on stderr,
// names the file and the tensor), 2 bad command line.
#include <cnnlite/cnnlite.hpp>

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
    using namespace cnnlite;
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: cnnlite_safetensors_copy IN.safetensors OUT.safetensors [SUMMARY.json]\n");
        return 2;
    }
    try {
        const SafetensorsFile in = load_safetensors(argv[1]);
        SafetensorsWriter out;
        nlohmann::json summary = {{"metadata", in.metadata()}, {"tensors", nlohmann::json::object()}};
        for (const auto& item : in.entries()) {
            const std::string& name = item.first;
            const SafetensorsEntry& e = item.second;
            switch (e.dtype) {
                case SafetensorsDtype::F32: out.add(name, in.tensor<float>(name)); break;
                case SafetensorsDtype::F64: out.add(name, in.tensor<double>(name)); break;
                case SafetensorsDtype::I64: out.add(name, in.tensor<std::int64_t>(name)); break;
            }
            summary["tensors"][name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape.to_vector()}};
        }
        for (const auto& [key, value] : in.metadata()) out.set_metadata(key, value);
        out.save(argv[2]);
        if (argc == 4) write_file_atomically(argv[3], summary.dump(1) + "\n");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cnnlite_safetensors_copy: %s\n", e.what());
        return 1;
    }
}
