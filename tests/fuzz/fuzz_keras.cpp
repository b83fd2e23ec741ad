// Fuzz target: the Keras weights readers (io/keras_weights.hpp): the input as an HDF5 file in
// memory, and as a file on disk (HDF5, or a .keras zip read through libzip), loaded into the
// network of tests/fixtures/keras/make_keras_fixture.py. Every input must either load or throw
// cnnlite::Error, with no sanitizer finding, and leave no HDF5 object open (every identifier
// cnnlite opened is closed on every path). Built only with the Keras component (CNNLITE_WITH_KERAS).
//
// Leak checking is off for allocations made inside the loader: Debian's HDF5 1.10.8 keeps a few
// hundred bytes on some error paths of malformed files (found by this target; with no HDF5
// object left open, the loss is inside the library), and LeakSanitizer would stop every run
// there. The open-object check above is what holds cnnlite's side to account. Likewise a damaged
// file can make HDF5 ask malloc for a terabyte for its metadata cache; glibc refuses such a
// request and HDF5 reports the failure, which is what happens outside the fuzzer, so ASan is
// told to return null as glibc would (allocator_may_return_null) instead of stopping the run.
#include <sanitizer/lsan_interface.h>

#include <cstdint>
#include <string>

#include "cnnlite/io/keras_weights.hpp"
#include "cnnlite/nn/batch_normalization.hpp"
#include "cnnlite/nn/conv2d.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "fuzz_support.hpp"

namespace {

cnnlite::Sequential<float> network() {
    cnnlite::Sequential<float> model({1, 28, 28}, 5);
    model.add(cnnlite::Conv2D<float>(4, 3).padding("same").activation("relu"));
    model.add(cnnlite::BatchNormalization<float>());
    model.add(cnnlite::MaxPool2D<float>(2));
    model.add(cnnlite::Dropout<float>(0.25));
    model.add(cnnlite::Flatten<float>());
    model.add(cnnlite::Dense<float>(10).activation("softmax"));
    return model;
}

}  // namespace

extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static cnnlite::Sequential<float> model = network();
    const std::string path = fuzz::write_scratch("input.weights", data, size);
    {
        const __lsan::ScopedDisabler inside_hdf5;
        try {
            cnnlite::load_keras_weights(model, data, size, "fuzz input");
        } catch (const cnnlite::Error&) {
        }
        try {
            cnnlite::load_keras_weights(model, path);
        } catch (const cnnlite::Error&) {
        }
    }
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) fuzz::violated("an HDF5 object was left open");
    return 0;
}
