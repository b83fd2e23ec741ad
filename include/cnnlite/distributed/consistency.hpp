// Consistency across ranks. Before training, every rank describes its run in a Fingerprint
// (architecture, parameter count, data sizes and contents, seed, batch size, epochs,
// optimiser) and check_consistency() gathers them all: a mismatch throws the same
// CollectiveError, naming the setting and each rank's value, on every rank, instead of a
// collective that hangs or a run that silently trains something else. After every epoch,
// check_replicas() verifies that the replicas still hold the same bits.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "cnnlite/data/dataset.hpp"
#include "cnnlite/distributed/communicator.hpp"
#include "cnnlite/nn/sequential.hpp"
#include "cnnlite/optim/optimizer.hpp"
#include "cnnlite/train/fit.hpp"

namespace cnnlite::distributed {

/// A 64-bit FNV-1a style hash, fed in words for speed (hashing the Fashion-MNIST training
/// images, 188 MB, takes tens of milliseconds). Not cryptographic: it catches accidents.
class Hasher {
public:
    /// Mixes in `bytes` bytes at `data`.
    Hasher& bytes(const void* data, std::size_t bytes) {
        const auto* p = static_cast<const unsigned char*>(data);
        std::size_t i = 0;
        for (; i + 8 <= bytes; i += 8) {
            std::uint64_t word;
            std::memcpy(&word, p + i, 8);
            mix(word);
        }
        std::uint64_t tail = 0;
        if (bytes > i) std::memcpy(&tail, p + i, bytes - i);
        mix(tail ^ (static_cast<std::uint64_t>(bytes) << 56));
        return *this;
    }
    /// Mixes in a string (its length too, so that "ab"+"c" differs from "a"+"bc").
    Hasher& text(const std::string& s) { return bytes(s.data(), s.size()); }
    /// Mixes in one integer.
    Hasher& value(std::uint64_t v) {
        mix(v);
        return *this;
    }
    /// The hash so far.
    std::uint64_t digest() const { return h_ ^ (h_ >> 29); }

private:
    void mix(std::uint64_t word) {
        h_ ^= word;
        h_ *= 0x100000001b3ULL;
        h_ ^= h_ >> 32;
    }
    std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

/// What a rank knows about its run, as named 64-bit values (hashes are shown in hex).
struct Fingerprint {
    /// One compared setting.
    struct Entry {
        std::string name;        ///< e.g. "seed"
        std::uint64_t value = 0;  ///< the value (or hash) this rank has
        bool is_hash = false;    ///< shown in hex
    };
    std::vector<Entry> entries;  ///< the compared settings, in a fixed order

    /// Adds a setting compared as a number.
    Fingerprint& add(std::string name, std::uint64_t value) {
        entries.push_back({std::move(name), value, false});
        return *this;
    }
    /// Adds a hash of something large (architecture, data).
    Fingerprint& add_hash(std::string name, std::uint64_t hash) {
        entries.push_back({std::move(name), hash, true});
        return *this;
    }
};

/// Hash of the network: every layer's type, name and hyper-parameters, the input shape, the
/// element type and every parameter's and buffer's shape.
template <class T>
std::uint64_t architecture_hash(const Model<T>& model) {
    Hasher h;
    h.value(sizeof(T));
    for (int i = 0; i < model.input_shape().rank(); ++i) h.value(static_cast<std::uint64_t>(model.input_shape()[i]));
    for (const LayerConfig& c : model.architecture()) {
        h.text(c.type).text(c.name);
        for (const auto& [key, value] : c.args) h.text(key).text(value);
    }
    for (const auto& p : model.state()) {
        h.text(p.name);
        for (int i = 0; i < p.variable.value().rank(); ++i) h.value(static_cast<std::uint64_t>(p.variable.value().dim(i)));
    }
    return h.digest();
}

/// Hash of the model's current weights, buffers and counters (their exact bits).
template <class T>
std::uint64_t parameter_hash(const Model<T>& model) {
    Hasher h;
    for (const auto& p : model.state())
        h.bytes(p.variable.value().data(), static_cast<std::size_t>(p.variable.value().numel()) * sizeof(T));
    for (const auto& c : model.counters())
        h.bytes(c.value.data(), static_cast<std::size_t>(c.value.numel()) * sizeof(std::int64_t));
    return h.digest();
}

/// Hash of a data set's images, labels and global indices.
inline std::uint64_t data_hash(const Dataset& data) {
    Hasher h;
    h.value(static_cast<std::uint64_t>(data.size()));
    if (data.empty()) return h.digest();
    h.bytes(data.images().data(), static_cast<std::size_t>(data.images().numel()) * sizeof(float));
    h.bytes(data.labels().data(), data.labels().size() * sizeof(int));
    h.value(static_cast<std::uint64_t>(data.global_index(0)));
    return h.digest();
}

/// The fingerprint of a data-parallel fit(): everything the ranks must agree on.
template <class T>
Fingerprint fit_fingerprint(const Model<T>& model, const Optimizer<T>& optimizer, const Dataset& train,
                            const Dataset* validation, const FitOptions& options) {
    std::uint64_t lr_bits = 0;
    const double lr = optimizer.learning_rate();
    std::memcpy(&lr_bits, &lr, sizeof lr_bits);
    Fingerprint f;
    f.add_hash("architecture", architecture_hash(model))
        .add("parameter count", static_cast<std::uint64_t>(model.parameter_count()))
        .add("training samples", static_cast<std::uint64_t>(train.size()))
        .add_hash("training data", data_hash(train))
        .add("validation samples", validation ? static_cast<std::uint64_t>(validation->size()) : 0)
        .add_hash("validation data", validation ? data_hash(*validation) : 0)
        .add("seed", options.seed)
        .add("batch size", static_cast<std::uint64_t>(options.batch_size))
        .add("epochs", static_cast<std::uint64_t>(options.epochs))
        .add("initial epoch", static_cast<std::uint64_t>(options.initial_epoch))
        .add("shuffle", options.shuffle ? 1 : 0)
        .add("non-finite policy", static_cast<std::uint64_t>(options.on_non_finite))
        .add("flush denormals", options.flush_denormals ? 1 : 0)
        .add_hash("optimiser", Hasher().text(optimizer.name()).digest())
        .add_hash("learning rate", lr_bits);
    // The recipe options, by their exact text (fit_recipe).
    const auto recipe = fit_recipe(options);
    const auto text_hash = [&recipe](std::initializer_list<const char*> keys) {
        Hasher h;
        for (const char* key : keys) h.text(key).text(recipe.at(key));
        return h.digest();
    };
    f.add_hash("augmentation", text_hash({"augmentation"}))
        .add_hash("label smoothing", text_hash({"label_smoothing"}))
        .add_hash("gradient clipping", text_hash({"clip_grad_norm"}))
        .add_hash("learning-rate schedule", text_hash({"schedule", "learning_rate_schedule"}))
        .add_hash("weight average", text_hash({"ema_decay", "ema_warmup"}) ^
                                        (options.ema_overwrite_at_end ? 1u : 0u));
    return f;
}

namespace detail {
inline std::string show(const Fingerprint::Entry& e, std::uint64_t value) {
    char buffer[32];
    if (e.is_hash) std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
    else std::snprintf(buffer, sizeof buffer, "%llu", static_cast<unsigned long long>(value));
    return buffer;
}
}  // namespace detail

/// Gathers every rank's fingerprint and throws a CollectiveError on every rank when any entry
/// differs from rank 0's, naming the entry and the ranks' values. Collective.
inline void check_consistency(const Communicator& comm, const Fingerprint& mine) {
    const int p = comm.size();
    const auto n = static_cast<std::int64_t>(mine.entries.size());
    std::vector<std::int64_t> counts(static_cast<std::size_t>(p));
    check_mpi(MPI_Allgather(&n, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, comm.handle()),
              "MPI_Allgather (consistency check)");
    for (int r = 1; r < p; ++r)
        if (counts[static_cast<std::size_t>(r)] != counts[0])
            throw CollectiveError(cnnlite::message(
                "distributed: rank ", r, " describes its run with ", counts[static_cast<std::size_t>(r)],
                " settings and rank 0 with ", counts[0], " (different cnnlite builds on the ranks?)"));

    std::vector<std::uint64_t> values;
    for (const auto& e : mine.entries) values.push_back(e.value);
    std::vector<std::uint64_t> all(static_cast<std::size_t>(p * n));
    check_mpi(MPI_Allgather(values.data(), static_cast<int>(n), MPI_UINT64_T, all.data(), static_cast<int>(n),
                            MPI_UINT64_T, comm.handle()),
              "MPI_Allgather (consistency check)");
    std::string problems;
    for (std::int64_t k = 0; k < n; ++k) {
        const Fingerprint::Entry& e = mine.entries[static_cast<std::size_t>(k)];
        const std::uint64_t root = all[static_cast<std::size_t>(k)];
        std::string ranks;
        int shown = 0;
        for (int r = 1; r < p; ++r) {
            const std::uint64_t v = all[static_cast<std::size_t>(r * n + k)];
            if (v == root) continue;
            if (shown++ < 8) ranks += ", rank " + std::to_string(r) + " has " + detail::show(e, v);
            else if (shown == 9) ranks += ", ...";
        }
        if (!ranks.empty())
            problems += (problems.empty() ? "" : "; ") + e.name + " (rank 0 has " + detail::show(e, root) + ranks + ")";
    }
    if (!problems.empty())
        throw CollectiveError("distributed: the ranks disagree on " + problems +
                              ". Every rank must run the same model, data and settings.");
}

/// Throws a CollectiveError on every rank when the replicas' weights are not bitwise equal
/// (`when` names the moment, e.g. "after epoch 3"). Collective.
template <class T>
void check_replicas(const Communicator& comm, const Model<T>& model, const std::string& when) {
    const std::uint64_t mine = parameter_hash(model);
    std::vector<std::uint64_t> all(static_cast<std::size_t>(comm.size()));
    check_mpi(MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm.handle()),
              "MPI_Allgather (replica check)");
    std::string differing;
    for (int r = 1; r < comm.size(); ++r)
        if (all[static_cast<std::size_t>(r)] != all[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
    if (!differing.empty())
        throw CollectiveError("distributed: the weights of rank(s) " + differing + " differ from rank 0's " + when +
                              " (the replicas diverged; the reduction must give every rank the same bits)");
}

}  // namespace cnnlite::distributed
