// Fuzz target: the .npy reader and writer (io/npy.hpp). Every input must either load or throw
// cnnlite::Error. What loads must survive a round trip: save_npy, load_npy again, same shape
// and the same bits.
#include <cstring>
#include <string>

#include "cnnlite/io/npy.hpp"
#include "fuzz_support.hpp"

namespace {

template <class T>
void round_trip(const std::string& path) {
    cnnlite::Tensor<T> loaded;
    try {
        loaded = cnnlite::load_npy<T>(path);
    } catch (const cnnlite::Error&) {
        return;
    }
    const std::string copy = (fuzz::scratch_folder() / "copy.npy").string();
    cnnlite::save_npy(copy, loaded);
    const cnnlite::Tensor<T> again = cnnlite::load_npy<T>(copy);
    if (again.shape() != loaded.shape()) fuzz::violated("round trip changed the shape");
    if (loaded.numel() && std::memcmp(again.data(), loaded.data(), loaded.bytes()) != 0)
        fuzz::violated("round trip changed the values");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz::write_scratch("input.npy", data, size);
    round_trip<float>(path);
    round_trip<double>(path);
    return 0;
}
