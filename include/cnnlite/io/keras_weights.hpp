// Keras weights: load_keras_weights() reads the weights a Keras model saved into a cnnlite model
// of the same architecture (same layer names, as Keras gives them: conv2d, dense, dense_1, ...),
// and save_keras_weights() writes a cnnlite model's weights for Keras' model.load_weights().
//
// Read: Keras 3's `.weights.h5` (model.save_weights; each layer's variables are the datasets
// layers/<name>/vars/0, 1, ...), the same format as tf.keras 2.13-2.15 write it (under
// _layer_checkpoint_dependencies/<name>/vars), the legacy HDF5 weights of Keras 2 (`.h5`: groups
// <name>/<name>/kernel:0, listed by the attributes layer_names and weight_names), and Keras 3's
// `.keras` archives (a zip whose model.weights.h5 is read). Written: the Keras 3 layout. Keras
// convolution kernels are HWIO (cnnlite: OIHW), Dense kernels [in, out] (cnnlite: [out, in]),
// and Keras flattens feature maps in H, W, C order (cnnlite: C, H, W), so the rows of a Dense
// kernel fed by a Flatten of [C, H, W] maps are permuted. docs/model_format.md ("Keras
// weights") has the table.
//
// Optional, like io/onnx_export.hpp: usable only when cnnlite is built with its Keras component
// (CMake -DCNNLITE_WITH_KERAS=ON, Meson -Dkeras=enabled: Debian's libhdf5-dev and libzip-dev),
// which defines CNNLITE_WITH_KERAS; otherwise calling these functions stops the compilation
// with a message.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/files.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/nn/model.hpp"

#if defined(CNNLITE_WITH_KERAS) && CNNLITE_WITH_KERAS

#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include <cerrno>
#include <cstdio>

namespace cnnlite {

namespace detail {

/// An HDF5 identifier closed on scope exit (files, groups, datasets, spaces, types, attributes,
/// property lists each have their own close function).
class H5Handle {
public:
    using Closer = herr_t (*)(hid_t);
    H5Handle() = default;
    H5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
    H5Handle(const H5Handle&) = delete;
    H5Handle& operator=(const H5Handle&) = delete;
    H5Handle(H5Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
    H5Handle& operator=(H5Handle&& o) noexcept {
        std::swap(id_, o.id_);
        std::swap(close_, o.close_);
        return *this;
    }
    ~H5Handle() {
        if (id_ >= 0 && close_) close_(id_);
    }
    hid_t get() const { return id_; }
    bool valid() const { return id_ >= 0; }

private:
    hid_t id_ = -1;
    Closer close_ = nullptr;
};

/// Debian's HDF5 is built without thread safety: cnnlite's calls into it take turns.
inline std::mutex& hdf5_mutex() {
    static std::mutex m;
    return m;
}

/// Holds the HDF5 lock and silences HDF5's own printing of its error stack while alive:
/// failures become cnnlite::Error messages instead.
class H5Quiet {
public:
    H5Quiet() : lock_(hdf5_mutex()) {
        H5Eget_auto2(H5E_DEFAULT, &function_, &data_);
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    }
    H5Quiet(const H5Quiet&) = delete;
    H5Quiet& operator=(const H5Quiet&) = delete;
    ~H5Quiet() { H5Eset_auto2(H5E_DEFAULT, function_, data_); }

private:
    std::lock_guard<std::mutex> lock_;
    H5E_auto2_t function_ = nullptr;
    void* data_ = nullptr;
};

/// Whether `path` (absolute within the file, e.g. "layers/conv2d/vars/0") names an object:
/// each prefix is checked first, as H5Lexists asks.
inline bool h5_exists(hid_t file, const std::string& path) {
    for (std::size_t at = path.find('/'); ; at = path.find('/', at + 1)) {
        const std::string prefix = path.substr(0, at);
        if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
        if (at == std::string::npos) return true;
    }
}

/// Reads the floating-point dataset at `path` into a row-major buffer after checking that its
/// shape is `expected` (in Keras' layout); the error names the file, the dataset and both shapes.
template <class T>
std::vector<T> h5_read_floats(hid_t file, const std::string& path, const std::vector<std::int64_t>& expected,
                              const std::string& file_name, const std::string& what) {
    check(h5_exists(file, path), "Keras weights '", file_name, "': ", what, ": no dataset ", path);
    H5Handle set(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
    check(set.valid(), "Keras weights '", file_name, "': ", what, ": ", path, " is not a dataset");
    H5Handle type(H5Dget_type(set.get()), H5Tclose);
    H5Handle space(H5Dget_space(set.get()), H5Sclose);
    check(type.valid() && space.valid(), "Keras weights '", file_name, "': ", what, ": cannot read ", path);
    check(H5Tget_class(type.get()) == H5T_FLOAT && (H5Tget_size(type.get()) == 4 || H5Tget_size(type.get()) == 8),
          "Keras weights '", file_name, "': ", what, ": ", path, " is not float32 or float64");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    check(rank >= 0 && rank <= 8, "Keras weights '", file_name, "': ", what, ": ", path, " has rank ", rank);
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    std::vector<std::int64_t> shape(dims.begin(), dims.end());
    auto text = [](const std::vector<std::int64_t>& s) {
        std::string t = "[";
        for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
        return t + "]";
    };
    check(shape == expected, "Keras weights '", file_name, "': ", what, ": ", path, " has shape ", text(shape),
          ", the model needs ", text(expected));
    std::size_t count = 1;
    for (std::int64_t d : expected) count *= static_cast<std::size_t>(d);
    std::vector<T> values(count);
    const hid_t memtype = std::is_same<T, float>::value ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
    check(H5Dread(set.get(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0, "Keras weights '",
          file_name, "': ", what, ": cannot read the values of ", path);
    return values;
}

/// Writes a float32 dataset of the given shape (the row-major `values`) at `path` in `group`.
template <class T>
void h5_write_floats(hid_t group, const std::string& name, const std::vector<T>& values,
                     const std::vector<std::int64_t>& shape, const std::string& file_name) {
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    H5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    H5Handle set(H5Dcreate2(group, name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Dclose);
    check(space.valid() && set.valid(), "Keras weights '", file_name, "': cannot create the dataset ", name);
    const hid_t memtype = std::is_same<T, float>::value ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
    check(H5Dwrite(set.get(), memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0, "Keras weights '",
          file_name, "': cannot write the dataset ", name);
}

/// A string attribute (Keras 3 names each vars group after its layer).
inline void h5_write_string_attribute(hid_t object, const char* name, const std::string& value) {
    H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    H5Handle attr(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* text = value.c_str();
    check(attr.valid() && H5Awrite(attr.get(), type.get(), &text) >= 0, "Keras weights: cannot write the attribute ",
          name);
}

/// One variable of a layer as Keras stores it: its Keras name (Keras 2's "kernel:0"), its
/// shape in Keras' layout, and the cnnlite tensor it fills.
template <class T>
struct KerasVariable {
    std::string keras_name;
    std::vector<std::int64_t> keras_shape;
    Tensor<T> tensor;
    /// For a Dense kernel fed by a Flatten of [C, H, W] maps: {C, H, W}, else empty.
    std::vector<std::int64_t> flattened_maps;
};

/// The per-sample shape of the value called `name` in `model` ("input" is the model's input).
template <class T>
Shape value_shape_of(const Model<T>& model, const std::string& name) {
    return name == model_input_name() ? model.input_shape() : model.layer(name).output_shape();
}

/// For the Dense layer number `index`: the [C, H, W] shape that a Flatten turned into its input,
/// looking back through layers that keep a vector's order (dropout, activations), or {}.
template <class T>
std::vector<std::int64_t> flattened_maps_before(const Model<T>& model, std::size_t index) {
    std::vector<std::string> inbound = model.inbound(index);
    while (inbound.size() == 1 && inbound[0] != model_input_name()) {
        const std::size_t producer = model.index_of(inbound[0]);
        const std::string type = model.layer(producer).type();
        if (type == "Flatten") {
            const std::vector<std::string> source = model.inbound(producer);
            const Shape maps = value_shape_of(model, source.at(0));
            if (maps.rank() == 3 && maps[1] * maps[2] > 1) return {maps[0], maps[1], maps[2]};
            return {};
        }
        if (type != "Dropout" && type != "ReLU" && type != "LeakyReLU" && type != "ELU" && type != "Activation")
            return {};
        inbound = model.inbound(producer);
    }
    return {};
}

/// The variables of layer number `index` in Keras' order, or an error for a layer with weights
/// that Keras stores otherwise.
template <class T>
std::vector<KerasVariable<T>> keras_variables(const Model<T>& model, std::size_t index) {
    const Layer<T>& layer = model.layer(index);
    const std::string type = layer.type();
    std::vector<KerasVariable<T>> vars;
    auto find = [&](const std::vector<NamedParameter<T>>& list, const char* name) -> Tensor<T> {
        for (const auto& p : list)
            if (p.name == name) return p.variable.value();
        return {};
    };
    const auto params = layer.parameters();
    if (type == "Conv2D") {
        const Tensor<T> w = find(params, "weight");  // [out, in / groups, kh, kw]
        vars.push_back({"kernel:0", {w.dim(2), w.dim(3), w.dim(1), w.dim(0)}, w, {}});
        if (const Tensor<T> b = find(params, "bias"); b.numel() > 0) vars.push_back({"bias:0", {b.dim(0)}, b, {}});
    } else if (type == "Dense") {
        const Tensor<T> w = find(params, "weight");  // [units, in]
        vars.push_back({"kernel:0", {w.dim(1), w.dim(0)}, w, flattened_maps_before(model, index)});
        if (const Tensor<T> b = find(params, "bias"); b.numel() > 0) vars.push_back({"bias:0", {b.dim(0)}, b, {}});
    } else if (type == "BatchNormalization") {
        if (const Tensor<T> g = find(params, "weight"); g.numel() > 0) vars.push_back({"gamma:0", {g.dim(0)}, g, {}});
        if (const Tensor<T> b = find(params, "bias"); b.numel() > 0) vars.push_back({"beta:0", {b.dim(0)}, b, {}});
        const auto buffers = layer.buffers();
        const Tensor<T> mean = find(buffers, "running_mean"), var = find(buffers, "running_var");
        vars.push_back({"moving_mean:0", {mean.dim(0)}, mean, {}});
        vars.push_back({"moving_variance:0", {var.dim(0)}, var, {}});
    } else {
        check(params.empty() && layer.buffers().empty(), "Keras weights: layer '", layer.name(), "' (", type,
              ") has weights that cnnlite does not map to Keras' (Conv2D, Dense and BatchNormalization do)");
    }
    return vars;
}

/// Where each element of the variable's cnnlite tensor (row-major) sits in Keras' row-major
/// layout; empty when the layouts agree. One map serves loading and saving.
template <class T>
std::vector<std::size_t> keras_positions(const KerasVariable<T>& v) {
    const auto& k = v.keras_shape;
    if (v.keras_name != "kernel:0") return {};
    std::vector<std::size_t> at(static_cast<std::size_t>(v.tensor.numel()));
    if (k.size() == 4) {  // cnnlite OIHW, Keras HWIO
        const std::int64_t kh = k[0], kw = k[1], in = k[2], o = k[3];
        for (std::int64_t a = 0; a < o; ++a)
            for (std::int64_t c = 0; c < in; ++c)
                for (std::int64_t y = 0; y < kh; ++y)
                    for (std::int64_t x = 0; x < kw; ++x)
                        at[static_cast<std::size_t>(((a * in + c) * kh + y) * kw + x)] =
                            static_cast<std::size_t>(((y * kw + x) * in + c) * o + a);
        return at;
    }
    // cnnlite [units, in], Keras [in, units]; after a Flatten of [C, H, W] maps cnnlite's column
    // j = (c, h, w) is Keras' row (h, w, c).
    const std::int64_t in = k[0], units = k[1];
    const auto& m = v.flattened_maps;
    for (std::int64_t j = 0; j < in; ++j) {
        const std::int64_t row = m.empty() ? j : (j % (m[1] * m[2])) * m[0] + j / (m[1] * m[2]);
        for (std::int64_t u = 0; u < units; ++u)
            at[static_cast<std::size_t>(u * in + j)] = static_cast<std::size_t>(row * units + u);
    }
    return at;
}

/// Copies Keras' row-major values of `v` into its cnnlite tensor, changing the layout.
template <class T>
void keras_to_cnnlite(const KerasVariable<T>& v, const std::vector<T>& keras) {
    Tensor<T> target = v.tensor;  // shares the layer's storage
    T* out = target.data();
    const std::vector<std::size_t> at = keras_positions(v);
    if (at.empty()) {
        std::memcpy(out, keras.data(), keras.size() * sizeof(T));
        return;
    }
    for (std::size_t i = 0; i < at.size(); ++i) out[i] = keras[at[i]];
}

/// The inverse of keras_to_cnnlite: the variable's values in Keras' layout.
template <class T>
std::vector<T> cnnlite_to_keras(const KerasVariable<T>& v) {
    const T* values = v.tensor.data();
    const std::vector<std::size_t> at = keras_positions(v);
    std::vector<T> keras(static_cast<std::size_t>(v.tensor.numel()));
    if (at.empty()) {
        std::memcpy(keras.data(), values, keras.size() * sizeof(T));
        return keras;
    }
    for (std::size_t i = 0; i < at.size(); ++i) keras[at[i]] = values[i];
    return keras;
}

/// The first bytes of an HDF5 file, and of a zip archive (a .keras file).
inline const std::string& hdf5_signature() {
    static const std::string signature("\x89HDF\r\n\x1a\n", 8);
    return signature;
}
inline const std::string& zip_signature() {
    static const std::string signature("PK\x03\x04", 4);
    return signature;
}

/// Opens HDF5 bytes held in memory (HDF5's core driver over a copy of them); `name` is what
/// errors call the file.
inline H5Handle open_keras_image(const void* data, std::size_t size, const std::string& name) {
    check(size >= 8 && std::memcmp(data, hdf5_signature().data(), 8) == 0, "Keras weights '", name,
          "' is not an HDF5 file");
    const H5Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    check(access.valid() && H5Pset_fapl_core(access.get(), 1 << 20, 0) >= 0 &&
              H5Pset_file_image(access.get(), const_cast<void*>(data), size) >= 0,
          "Keras weights '", name, "': HDF5's in-memory driver is unavailable");
    static std::atomic<unsigned> counter{0};
    const std::string unique = "cnnlite-keras-image-" + std::to_string(counter.fetch_add(1));
    H5Handle file(H5Fopen(unique.c_str(), H5F_ACC_RDONLY, access.get()), H5Fclose);
    check(file.valid(), "Keras weights '", name, "': HDF5 cannot open it (truncated or damaged)");
    return file;
}

/// The bytes of a .keras archive's model.weights.h5, read with libzip; at most `max_bytes`.
inline std::vector<std::uint8_t> keras_archive_weights(const std::string& path, std::uint64_t max_bytes) {
    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (!archive) {
        zip_error_t z;
        zip_error_init_with_code(&z, error);
        const std::string why = zip_error_strerror(&z);
        zip_error_fini(&z);
        fail("Keras archive '", path, "' is not a readable zip file: ", why);
    }
    struct Closer {
        zip_t* a;
        ~Closer() { zip_discard(a); }
    } closer{archive};
    zip_stat_t entry;
    zip_stat_init(&entry);
    check(zip_stat(archive, "model.weights.h5", 0, &entry) == 0 && (entry.valid & ZIP_STAT_SIZE), "Keras archive '",
          path, "' has no model.weights.h5 (a .keras file of Keras 3 holds one)");
    check(entry.size <= max_bytes, "Keras archive '", path, "': model.weights.h5 would be ", entry.size,
          " bytes uncompressed, more than the limit of ", max_bytes);
    // Deflate expands at most about 1032-fold: a size beyond that is a lie of the archive, and
    // believing it would let a tiny file demand gigabytes.
    check((entry.valid & ZIP_STAT_COMP_SIZE) && entry.size <= entry.comp_size * 1100 + 65536, "Keras archive '", path,
          "': model.weights.h5 claims ", entry.size, " bytes from ", entry.comp_size, " compressed ones");
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(entry.size));
    zip_file_t* file = zip_fopen(archive, "model.weights.h5", 0);
    check(file != nullptr, "Keras archive '", path, "': cannot open model.weights.h5: ", zip_strerror(archive));
    const zip_int64_t got = zip_fread(file, bytes.data(), bytes.size());
    const bool complete = got >= 0 && static_cast<zip_uint64_t>(got) == entry.size;
    zip_fclose(file);  // verifies the CRC of what was read
    check(complete, "Keras archive '", path, "': model.weights.h5 is damaged (", got, " of ", entry.size,
          " bytes read)");
    return bytes;
}

template <class T>
void load_keras_weights_from(const Model<T>& model, const H5Handle& file, const std::string& path);

/// Longest a damaged file may keep HDF5 busy in the trial read (seconds).
constexpr int hdf5_trial_seconds = 120;

/// Runs `read` first in a child process (fork) and throws unless the child finished normally;
/// returns when the same read may run here. Debian's HDF5 1.10.8 crashes on some damaged files
/// (a failed allocation it does not check, found by tests/fuzz/fuzz_keras.cpp): in the child
/// such a crash becomes a cnnlite::Error naming the file instead of ending the program. A
/// cnnlite::Error in the child is left for the read here to raise. Without fork() the read
/// simply runs here.
template <class Read>
void read_in_trial_process(Read&& read, const std::string& name) {
    std::fflush(nullptr);  // nothing buffered is written twice
    const pid_t child = ::fork();
    if (child < 0) return;
    if (child == 0) {
        // The child dies quietly on a crash: the program's own crash handlers (crash reporters,
        // sanitizers, fuzzers) are for the parent, which reports the failure as an error.
        for (const int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) ::signal(sig, SIG_DFL);
        try {
            read();
        } catch (...) {
        }
        ::_exit(0);
    }
    int status = 0;
    for (int waited_ms = 0;; ++waited_ms) {
        const pid_t done = ::waitpid(child, &status, WNOHANG);
        if (done == child) break;
        if (done < 0 && errno != EINTR) return;  // reaped elsewhere: nothing learnt
        if (waited_ms >= hdf5_trial_seconds * 1000) {
            ::kill(child, SIGKILL);
            ::waitpid(child, &status, 0);
            fail("Keras weights '", name, "': HDF5 did not finish reading it within ", hdf5_trial_seconds,
                 " s (a damaged file)");
        }
        ::usleep(1000);
    }
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "Keras weights '", name, "': HDF5 failed reading it (",
          WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                              : "exit status " + std::to_string(WEXITSTATUS(status)),
          "): the file is damaged");
}

}  // namespace detail

namespace detail {

/// Reads the weights of every layer of `model` from the open HDF5 file (Keras 3, tf.keras
/// 2.13-2.15 or Keras 2 layout) and, once all are read and checked, copies them into the model.
template <class T>
void load_keras_weights_from(const Model<T>& model, const H5Handle& file, const std::string& path) {
    // Keras 3 keeps each layer's variables under layers/<name>/vars; the same format written by
    // tf.keras 2.13-2.15 (a .weights.h5 name) under _layer_checkpoint_dependencies/<name>/vars.
    const std::string vars_root = detail::h5_exists(file.get(), "layers") ? "layers"
                                  : detail::h5_exists(file.get(), "_layer_checkpoint_dependencies")
                                      ? "_layer_checkpoint_dependencies"
                                      : "";
    const bool keras3 = !vars_root.empty();
    const bool keras2 = !keras3 && H5Aexists(file.get(), "layer_names") > 0;
    check(keras3 || keras2, "Keras weights '", path,
          "': neither Keras 3's layout (a group 'layers') nor Keras 2's (an attribute 'layer_names')");
    // All values are read and checked before any is copied: a bad file leaves the model as it was.
    std::vector<std::pair<detail::KerasVariable<T>, std::vector<T>>> values;
    for (std::size_t i = 0; i < model.size(); ++i) {
        const std::string& name = model.layer(i).name();
        const std::vector<detail::KerasVariable<T>> vars = detail::keras_variables(model, i);
        if (vars.empty()) continue;
        std::vector<std::string> sources;
        if (keras3) {
            const std::string group = vars_root + "/" + name + "/vars";
            check(detail::h5_exists(file.get(), group), "Keras weights '", path, "': no weights for layer '", name,
                  "' (", model.layer(i).type(), "): the file has no group ", group);
            for (std::size_t v = 0; v < vars.size(); ++v) sources.push_back(group + "/" + std::to_string(v));
            check(!detail::h5_exists(file.get(), group + "/" + std::to_string(vars.size())), "Keras weights '", path,
                  "': layer '", name, "' has more variables in the file than the model's ", vars.size());
        } else {
            // Keras 2 stores <name>/<name>/<variable>:0 and lists the names in an attribute
            // (weight_names); the names are known per layer type, so the datasets are opened
            // directly: reading variable-length strings of a damaged file can hang HDF5 1.10.
            const std::string group = name + "/" + name;
            check(detail::h5_exists(file.get(), group), "Keras weights '", path, "': no weights for layer '", name,
                  "' (", model.layer(i).type(), "): the file has no group ", group);
            const detail::H5Handle opened(H5Gopen2(file.get(), group.c_str(), H5P_DEFAULT), H5Gclose);
            H5G_info_t info{};
            check(opened.valid() && H5Gget_info(opened.get(), &info) >= 0, "Keras weights '", path, "': ", group,
                  " is not a group");
            check(info.nlinks == vars.size(), "Keras weights '", path, "': layer '", name, "' has ", info.nlinks,
                  " weights in the file and ", vars.size(), " in the model");
            for (const auto& v : vars) sources.push_back(group + "/" + v.keras_name);
        }
        for (std::size_t v = 0; v < vars.size(); ++v)
            values.emplace_back(vars[v], detail::h5_read_floats<T>(file.get(), sources[v], vars[v].keras_shape, path,
                                                                     "layer '" + name + "' " + vars[v].keras_name));
    }
    for (const auto& [var, keras] : values) detail::keras_to_cnnlite(var, keras);
}

}  // namespace detail

/// Largest model.weights.h5 that load_keras_weights() unpacks from a .keras archive (16 GiB).
constexpr std::uint64_t keras_archive_max_bytes = std::uint64_t(16) << 30;

/// Loads the Keras weights in `path` into `model`, whose layers must carry the Keras model's
/// layer names and shapes: an HDF5 weights file (Keras 3's .weights.h5, tf.keras 2's .h5) or a
/// Keras 3 .keras archive (its model.weights.h5), recognised by content. Every Conv2D, Dense and
/// BatchNormalization layer of the model must find its variables in the file (an error names
/// the layer, dataset and shapes); layers of the file that the model lacks are ignored (Keras'
/// InputLayer, ...). BatchNormalization's num_batches_tracked, which Keras does not keep, is
/// left as it is. A refused file leaves the model unchanged.
template <class T>
void load_keras_weights(const Model<T>& model, const std::string& path) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "load_keras_weights: T must be float or double");
    const detail::H5Quiet quiet;
    std::string head;
    {
        const InputFile file(path, "Keras weights file");
        head = file.read_string(static_cast<std::size_t>(std::min<std::uint64_t>(file.size(), 8)), 0);
    }
    if (head.compare(0, 4, detail::zip_signature()) == 0) {
        const std::vector<std::uint8_t> bytes = detail::keras_archive_weights(path, keras_archive_max_bytes);
        const std::string name = path + ":model.weights.h5";
        const auto read = [&] {
            detail::load_keras_weights_from(model, detail::open_keras_image(bytes.data(), bytes.size(), name), name);
        };
        detail::read_in_trial_process(read, name);
        read();
        return;
    }
    check(head == detail::hdf5_signature(), "Keras weights '", path,
          "' is neither an HDF5 file (.weights.h5, .h5) nor a .keras archive");
    const auto read = [&] {
        const detail::H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
        check(file.valid(), "Keras weights '", path, "': HDF5 cannot open it (truncated or damaged)");
        detail::load_keras_weights_from(model, file, path);
    };
    detail::read_in_trial_process(read, path);
    read();
}

/// load_keras_weights() from the bytes of an HDF5 weights file held in memory; `name` is what
/// errors call it.
template <class T>
void load_keras_weights(const Model<T>& model, const void* data, std::size_t size, const std::string& name) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "load_keras_weights: T must be float or double");
    const detail::H5Quiet quiet;
    const auto read = [&] { detail::load_keras_weights_from(model, detail::open_keras_image(data, size, name), name); };
    detail::read_in_trial_process(read, name);
    read();
}

/// Writes the weights of `model` to `path` in Keras 3's `.weights.h5` layout (float32), for
/// `model.load_weights(path)` in Keras 3 on a Keras model of the same architecture and layer
/// names. Written atomically: the file is built in memory and renamed into place.
template <class T>
void save_keras_weights(const Model<T>& model, const std::string& path) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "save_keras_weights: T must be float or double");
    const detail::H5Quiet quiet;
    std::vector<std::uint8_t> image;
    {
        // An in-memory file (the core driver without a backing store), copied out as bytes.
        const detail::H5Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
        check(access.valid() && H5Pset_fapl_core(access.get(), 1 << 20, 0) >= 0,
              "Keras weights: HDF5's in-memory driver is unavailable");
        const std::string name = "cnnlite-keras-weights-" + std::to_string(reinterpret_cast<std::uintptr_t>(&image));
        detail::H5Handle file(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose);
        check(file.valid(), "Keras weights: cannot create an HDF5 file in memory");
        const detail::H5Handle top_vars(H5Gcreate2(file.get(), "vars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        const detail::H5Handle layers(H5Gcreate2(file.get(), "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        check(top_vars.valid() && layers.valid(), "Keras weights: cannot create the groups of '", path, "'");
        for (std::size_t i = 0; i < model.size(); ++i) {
            const std::string& layer_name = model.layer(i).name();
            const std::vector<detail::KerasVariable<T>> vars = detail::keras_variables(model, i);
            const detail::H5Handle group(
                H5Gcreate2(layers.get(), layer_name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
            check(group.valid(), "Keras weights '", path, "': cannot create the group of layer '", layer_name, "'");
            const detail::H5Handle vars_group(H5Gcreate2(group.get(), "vars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                              H5Gclose);
            check(vars_group.valid(), "Keras weights '", path, "': cannot create layers/", layer_name, "/vars");
            detail::h5_write_string_attribute(vars_group.get(), "name", layer_name);
            for (std::size_t v = 0; v < vars.size(); ++v)
                detail::h5_write_floats(vars_group.get(), std::to_string(v), detail::cnnlite_to_keras(vars[v]),
                                        vars[v].keras_shape, path);
        }
        check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0, "Keras weights: cannot finish '", path, "' in memory");
        const ssize_t size = H5Fget_file_image(file.get(), nullptr, 0);
        check(size > 0, "Keras weights: cannot take the image of '", path, "'");
        image.resize(static_cast<std::size_t>(size));
        check(H5Fget_file_image(file.get(), image.data(), image.size()) == size, "Keras weights: cannot copy the image of '",
              path, "'");
    }
    write_file_atomically(path, image.data(), image.size());
}

}  // namespace cnnlite

#else  // without CNNLITE_WITH_KERAS

namespace cnnlite {

namespace detail {
template <class T>
constexpr bool keras_component_enabled = false;
}  // namespace detail

/// Needs cnnlite's Keras component: configure with -DCNNLITE_WITH_KERAS=ON (Meson: -Dkeras=enabled).
template <class T>
void load_keras_weights(const Model<T>&, const std::string&) {
    static_assert(detail::keras_component_enabled<T>,
                  "cnnlite::load_keras_weights needs the Keras component: configure cnnlite with "
                  "-DCNNLITE_WITH_KERAS=ON (Meson: -Dkeras=enabled), which links Debian's libhdf5-dev");
}

/// Needs cnnlite's Keras component: configure with -DCNNLITE_WITH_KERAS=ON (Meson: -Dkeras=enabled).
template <class T>
void save_keras_weights(const Model<T>&, const std::string&) {
    static_assert(detail::keras_component_enabled<T>,
                  "cnnlite::save_keras_weights needs the Keras component: configure cnnlite with "
                  "-DCNNLITE_WITH_KERAS=ON (Meson: -Dkeras=enabled), which links Debian's libhdf5-dev");
}

}  // namespace cnnlite

#endif  // CNNLITE_WITH_KERAS
