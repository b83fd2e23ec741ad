// Named tensors and string metadata in the safetensors format (8-byte little-endian header
// length N, N bytes of JSON header padded with spaces, then the raw little-endian data): the
// format of cnnlite's model and checkpoint files, readable by PyTorch tooling. Reading validates
// the whole file before anything is returned; writing is deterministic and atomic.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/shape.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/files.hpp"

// Tensor data is copied to and from the file as is; the format is little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "cnnlite's safetensors I/O needs a little-endian host");

namespace cnnlite {

/// Element types cnnlite reads and writes in safetensors files.
enum class SafetensorsDtype { F32, F64, I64 };

/// The dtype's name in a safetensors header: "F32", "F64" or "I64".
inline const char* dtype_name(SafetensorsDtype dtype) {
    switch (dtype) {
        case SafetensorsDtype::F32: return "F32";
        case SafetensorsDtype::F64: return "F64";
        case SafetensorsDtype::I64: return "I64";
    }
    return "?";
}

/// Bytes per element of `dtype`.
inline std::size_t dtype_size(SafetensorsDtype dtype) { return dtype == SafetensorsDtype::F32 ? 4 : 8; }

/// What a safetensors reader accepts.
struct SafetensorsReadOptions {
    /// Accept NaN and +-Inf in F32/F64 data; off because trained weights never hold them.
    bool allow_non_finite = false;
    /// Longest JSON header accepted (the reference implementation's limit).
    std::uint64_t max_header_bytes = 100'000'000;
};

/// One tensor as a safetensors header describes it.
struct SafetensorsEntry {
    /// Element type.
    SafetensorsDtype dtype = SafetensorsDtype::F32;
    /// Extents.
    Shape shape;
    std::uint64_t begin = 0;  ///< data_offsets[0], relative to the start of the data area
    std::uint64_t end = 0;    ///< data_offsets[1], one past the last byte
};

namespace detail {

template <class T>
struct SafetensorsDtypeOf;
template <>
struct SafetensorsDtypeOf<float> {
    static constexpr SafetensorsDtype value = SafetensorsDtype::F32;
};
template <>
struct SafetensorsDtypeOf<double> {
    static constexpr SafetensorsDtype value = SafetensorsDtype::F64;
};
template <>
struct SafetensorsDtypeOf<std::int64_t> {
    static constexpr SafetensorsDtype value = SafetensorsDtype::I64;
};

/// Throws unless `text` is valid UTF-8, which the JSON header requires of names and metadata.
inline void check_utf8(const std::string& text, const char* what) {
    try {
        (void)nlohmann::json(text).dump();
    } catch (const nlohmann::json::exception&) {
        fail("safetensors: ", what, " is not valid UTF-8");
    }
}

/// Reads the header JSON event by event and keeps only what the format allows, so that memory
/// stays proportional to the number of tensors and a hostile header (deep nesting, huge arrays,
/// duplicate keys, which a DOM parser would silently merge) is rejected at its first bad token.
class SafetensorsHeaderReader : public nlohmann::json_sax<nlohmann::json> {
public:
    explicit SafetensorsHeaderReader(std::uint64_t data_size) : data_size_(data_size) {}

    std::map<std::string, SafetensorsEntry> entries;
    std::map<std::string, std::string> metadata;
    std::string error;  ///< why reading stopped, when it did

    bool null() override { return unexpected("null"); }
    bool boolean(bool) override { return unexpected("a boolean"); }
    bool number_integer(number_integer_t value) override {
        if (value < 0) return unexpected("the negative number " + std::to_string(value));
        return number(static_cast<std::uint64_t>(value));
    }
    bool number_unsigned(number_unsigned_t value) override { return number(value); }
    bool number_float(number_float_t, const string_t& text) override { return unexpected("the number " + text); }
    bool binary(binary_t&) override { return unexpected("binary data"); }

    bool string(string_t& value) override {
        if (state_ == State::Metadata) {
            metadata[field_] = value;
            return true;
        }
        if (state_ == State::Entry && field_ == "dtype") {
            if (value == "F32") entry_.dtype = SafetensorsDtype::F32;
            else if (value == "F64") entry_.dtype = SafetensorsDtype::F64;
            else if (value == "I64") entry_.dtype = SafetensorsDtype::I64;
            else return stop(tensor() + "unsupported dtype '" + value + "' (supported: F32, F64, I64)");
            return true;
        }
        return unexpected("a string");
    }

    bool start_object(std::size_t) override {
        if (state_ == State::Start) {
            state_ = State::Root;
            return true;
        }
        if (state_ != State::Root) return unexpected("an object");
        if (key_ == "__metadata__") {
            state_ = State::Metadata;
        } else {
            state_ = State::Entry;
            entry_ = SafetensorsEntry();
            dims_.clear();
            offsets_.clear();
            seen_ = 0;
        }
        return true;
    }

    bool key(string_t& name) override {
        if (state_ == State::Root) {
            if (!root_keys_.insert(name).second)
                return stop(name == "__metadata__" ? "duplicate key '__metadata__'"
                                                   : "duplicate tensor name '" + name + "'");
            key_ = name;
        } else if (state_ == State::Metadata) {
            if (metadata.count(name)) return stop("__metadata__: duplicate key '" + name + "'");
            field_ = name;
        } else {  // State::Entry: the only other state in which keys occur
            const int bit = name == "dtype" ? 1 : name == "shape" ? 2 : name == "data_offsets" ? 4 : 0;
            if (!bit) return stop(tensor() + "unknown field '" + name + "' (expected dtype, shape, data_offsets)");
            if (seen_ & bit) return stop(tensor() + "duplicate field '" + name + "'");
            seen_ |= bit;
            field_ = name;
        }
        return true;
    }

    bool end_object() override {
        if (state_ == State::Metadata) {
            state_ = State::Root;
            return true;
        }
        if (state_ == State::Entry) {
            state_ = State::Root;
            return finish_entry();
        }
        state_ = State::Done;
        return true;
    }

    bool start_array(std::size_t) override {
        if (state_ == State::Entry && field_ == "shape") {
            state_ = State::Shape;
            return true;
        }
        if (state_ == State::Entry && field_ == "data_offsets") {
            state_ = State::Offsets;
            return true;
        }
        return unexpected("an array");
    }

    bool end_array() override {
        if (state_ == State::Offsets && offsets_.size() != 2)
            return stop(tensor() + "data_offsets needs exactly two numbers [begin, end], got " +
                        std::to_string(offsets_.size()));
        state_ = State::Entry;
        return true;
    }

    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& problem) override {
        std::string text = problem.what();
        const std::size_t bracket = text.find("] ");  // drop nlohmann's "[json.exception.parse_error.101] "
        if (text.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) text.erase(0, bracket + 2);
        return stop("the header is not valid JSON: " + text);
    }

private:
    enum class State { Start, Root, Metadata, Entry, Shape, Offsets, Done };

    std::string tensor() const { return "tensor '" + key_ + "': "; }

    bool stop(std::string message) {
        if (error.empty()) error = std::move(message);
        return false;
    }

    // A value that the format does not allow where it appears; `what` describes it.
    bool unexpected(const std::string& what) {
        switch (state_) {
            case State::Start: return stop("the header is " + what + ", not a JSON object");
            case State::Root:
                if (key_ == "__metadata__") return stop("__metadata__ is " + what + ", not an object");
                return stop(tensor() + "the entry is " + what + ", not an object");
            case State::Metadata:
                return stop("__metadata__: the value of '" + field_ + "' is " + what + ", not a string");
            case State::Entry:
                return stop(tensor() + field_ + " is " + what + (field_ == "dtype" ? ", not a string" : ", not an array"));
            case State::Shape: return stop(tensor() + "shape holds " + what + ", not a non-negative integer");
            case State::Offsets: return stop(tensor() + "data_offsets holds " + what + ", not a non-negative integer");
            case State::Done: break;
        }
        return stop("unexpected " + what + " after the header object");
    }

    bool number(std::uint64_t value) {
        if (state_ == State::Shape) {
            if (dims_.size() == static_cast<std::size_t>(Shape::max_rank))
                return stop(tensor() + "shape has more than " + std::to_string(Shape::max_rank) +
                            " dimensions (cnnlite's limit)");
            if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return stop(tensor() + "shape extent " + std::to_string(value) + " is too large");
            dims_.push_back(static_cast<std::int64_t>(value));
            return true;
        }
        if (state_ == State::Offsets) {
            if (offsets_.size() == 2)
                return stop(tensor() + "data_offsets needs exactly two numbers [begin, end], got more");
            offsets_.push_back(value);
            return true;
        }
        return unexpected("the number " + std::to_string(value));
    }

    // Everything one entry alone can be checked for; order and coverage are checked afterwards.
    bool finish_entry() {
        const std::pair<int, const char*> fields[] = {{1, "dtype"}, {2, "shape"}, {4, "data_offsets"}};
        for (const auto& [bit, field] : fields)
            if (!(seen_ & bit)) return stop(tensor() + "missing field '" + field + "'");
        entry_.shape = Shape(dims_);
        entry_.begin = offsets_[0];
        entry_.end = offsets_[1];
        const std::string offsets = "data_offsets [" + std::to_string(entry_.begin) + ", " + std::to_string(entry_.end) + "]";
        if (entry_.begin > entry_.end) return stop(tensor() + offsets + " are reversed (begin > end)");
        if (entry_.end > data_size_)
            return stop(tensor() + offsets + " run past the end of the data area (" + std::to_string(data_size_) +
                        " bytes)");
        // Element count, guarding the multiplication: the header may lie about anything.
        std::uint64_t count = 1;
        bool overflow = false;
        if (std::find(dims_.begin(), dims_.end(), 0) != dims_.end()) {
            count = 0;
        } else {
            const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / 8;
            for (std::int64_t d : dims_) {
                if (count > limit / static_cast<std::uint64_t>(d)) {
                    overflow = true;
                    break;
                }
                count *= static_cast<std::uint64_t>(d);
            }
        }
        const std::string shape_text = entry_.shape.str() + " of " + dtype_name(entry_.dtype);
        if (overflow) return stop(tensor() + "shape " + shape_text + " has too many elements");
        const std::uint64_t needed = count * dtype_size(entry_.dtype);
        if (needed != entry_.end - entry_.begin)
            return stop(tensor() + offsets + " hold " + std::to_string(entry_.end - entry_.begin) +
                        " bytes but shape " + shape_text + " needs " + std::to_string(needed));
        entries[key_] = entry_;
        return true;
    }

    std::uint64_t data_size_;
    State state_ = State::Start;
    std::string key_;    // the top-level key being read: a tensor name or "__metadata__"
    std::string field_;  // the key being read inside an entry or inside __metadata__
    std::set<std::string> root_keys_;
    SafetensorsEntry entry_;
    std::vector<std::int64_t> dims_;
    std::vector<std::uint64_t> offsets_;
    int seen_ = 0;  // bits: 1 dtype, 2 shape, 4 data_offsets
};

}  // namespace detail

/// A validated safetensors file in memory: its metadata, tensor descriptions and data.
/// Every check (structure, offsets, sizes, finite values) has passed once this exists.
class SafetensorsFile {
public:
    /// Reads and validates `path`; throws cnnlite::Error naming the file and the tensor or
    /// header field at fault. Sizes in the header are checked against the real file size
    /// before anything is allocated from them.
    static SafetensorsFile load(const std::string& path, const SafetensorsReadOptions& options = {}) {
        InputFile file(path, "safetensors file");
        SafetensorsFile result("safetensors file '" + path + "'");
        const std::uint64_t header_bytes = result.header_length(
            file.size() >= 8 ? file.read_string(8, 0) : std::string(), file.size(), options);
        const std::uint64_t data_size = file.size() - 8 - header_bytes;
        result.read_header(file.read_string(static_cast<std::size_t>(header_bytes), 8), data_size);
        result.bytes_ = file.read_string(static_cast<std::size_t>(data_size), 8 + header_bytes);
        result.data_start_ = 0;
        result.check_values(options);
        return result;
    }

    /// Validates a whole file already in memory; `source` names it in error messages.
    static SafetensorsFile parse(std::string bytes, const std::string& source, const SafetensorsReadOptions& options = {}) {
        SafetensorsFile result("safetensors data '" + source + "'");
        const std::uint64_t header_bytes = result.header_length(bytes.substr(0, 8), bytes.size(), options);
        result.read_header(bytes.substr(8, static_cast<std::size_t>(header_bytes)), bytes.size() - 8 - header_bytes);
        result.bytes_ = std::move(bytes);
        result.data_start_ = 8 + header_bytes;
        result.check_values(options);
        return result;
    }

    /// "safetensors file '<path>'": how error messages name this file.
    const std::string& description() const { return what_; }

    /// The header's __metadata__ (empty when there is none).
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    /// The metadata value of `key`; throws cnnlite::Error naming the file and key if absent.
    const std::string& require_metadata(const std::string& key) const {
        const auto it = metadata_.find(key);
        check(it != metadata_.end(), what_, ": __metadata__ has no key '", key, "'");
        return it->second;
    }

    /// Every tensor's description, by name.
    const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }

    /// Whether the file holds a tensor called `name`.
    bool contains(const std::string& name) const { return entries_.count(name) != 0; }

    /// The description of tensor `name`; throws cnnlite::Error listing the names present if absent.
    const SafetensorsEntry& entry(const std::string& name) const {
        const auto it = entries_.find(name);
        if (it == entries_.end()) {
            std::string names;
            int listed = 0;
            for (const auto& e : entries_) {
                if (listed++ == 10) {
                    names += ", ...";
                    break;
                }
                names += (listed > 1 ? ", '" : "'") + e.first + "'";
            }
            fail(what_, ": no tensor '", name, "' (it holds ", entries_.size(), " tensors", entries_.empty() ? "" : ": ",
                 names, ")");
        }
        return it->second;
    }

    /// A new tensor with the values of `name`, converted to T. float and double read F32 and F64
    /// (an F64 value outside float's range read as float is an error); std::int64_t reads I64.
    template <class T>
    Tensor<T> tensor(const std::string& name) const {
        static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value ||
                          std::is_same<T, std::int64_t>::value,
                      "SafetensorsFile::tensor<T>: T must be float, double or std::int64_t");
        const SafetensorsEntry& e = entry(name);
        Tensor<T> out = Tensor<T>::uninitialized(e.shape);
        const char* source = bytes_.data() + data_start_ + e.begin;
        const std::size_t count = static_cast<std::size_t>(e.shape.numel());
        if constexpr (std::is_floating_point<T>::value) {
            if (e.dtype == SafetensorsDtype::F32) return convert<float>(source, std::move(out), count, name);
            if (e.dtype == SafetensorsDtype::F64) return convert<double>(source, std::move(out), count, name);
            fail(what_, ": tensor '", name, "' has dtype ", dtype_name(e.dtype), "; read it as Tensor<std::int64_t>");
        } else {
            if (e.dtype == SafetensorsDtype::I64) return convert<std::int64_t>(source, std::move(out), count, name);
            fail(what_, ": tensor '", name, "' has dtype ", dtype_name(e.dtype), "; read it as Tensor<float> or Tensor<double>");
        }
    }

    /// Tensor `name` as T after checking that it exists with shape `expected`; the error names
    /// the file, the tensor and both shapes.
    template <class T = float>
    Tensor<T> require(const std::string& name, const Shape& expected) const {
        const auto it = entries_.find(name);
        check(it != entries_.end(), what_, ": missing tensor '", name, "' (expected shape ", expected.str(), ")");
        check(it->second.shape == expected, what_, ": tensor '", name, "' has shape ", it->second.shape.str(),
              ", expected ", expected.str());
        return tensor<T>(name);
    }

    /// Checks that every expected tensor is present with its shape and, unless
    /// `allow_unexpected`, that no other tensor is; one error lists every difference.
    void check_tensors(const std::vector<std::pair<std::string, Shape>>& expected, bool allow_unexpected = false) const {
        std::string problems;
        auto add = [&](const std::string& text) { problems += (problems.empty() ? "" : "; ") + text; };
        std::map<std::string, bool> wanted;
        for (const auto& [name, shape] : expected) {
            wanted[name] = true;
            const auto it = entries_.find(name);
            if (it == entries_.end())
                add("missing tensor '" + name + "' (expected shape " + shape.str() + ")");
            else if (it->second.shape != shape)
                add("tensor '" + name + "' has shape " + it->second.shape.str() + ", expected " + shape.str());
        }
        if (!allow_unexpected)
            for (const auto& e : entries_)
                if (!wanted.count(e.first)) add("unexpected tensor '" + e.first + "'");
        check(problems.empty(), what_, ": ", problems);
    }

private:
    explicit SafetensorsFile(std::string what) : what_(std::move(what)) {}

    // Validates the 8-byte length prefix against the limit and the real size; returns N.
    std::uint64_t header_length(const std::string& prefix, std::uint64_t total_size,
                                const SafetensorsReadOptions& options) const {
        check(total_size >= 8, what_, ": ", total_size,
              " bytes is too short for the 8-byte header length (truncated or not safetensors)");
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(prefix[static_cast<std::size_t>(i)]);
        check(n <= options.max_header_bytes, what_, ": header length ", n, " exceeds the limit of ",
              options.max_header_bytes, " bytes");
        check(n <= total_size - 8, what_, ": header length ", n, " runs past the end of the file (",
              total_size - 8, " bytes after the length)");
        return n;
    }

    void read_header(const std::string& header, std::uint64_t data_size) {
        detail::SafetensorsHeaderReader reader(data_size);
        const bool ok = nlohmann::json::sax_parse(header.begin(), header.end(), &reader);
        if (!ok || !reader.error.empty())
            fail(what_, ": ", reader.error.empty() ? std::string("the header is not valid JSON") : reader.error);
        // The tensors must tile the data area: sorted by offset, each starts where the last ended.
        std::vector<std::pair<const std::string*, const SafetensorsEntry*>> order;
        for (const auto& e : reader.entries) order.emplace_back(&e.first, &e.second);
        std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
            return std::make_pair(a.second->begin, a.second->end) < std::make_pair(b.second->begin, b.second->end);
        });
        std::uint64_t covered = 0;
        const std::string* previous = nullptr;
        for (const auto& [name, e] : order) {
            if (e->begin < covered)
                fail(what_, ": tensor '", *name, "' (data_offsets [", e->begin, ", ", e->end, "]) overlaps tensor '",
                     *previous, "' (which ends at ", covered, ")");
            if (e->begin > covered)
                fail(what_, ": tensor '", *name, "' (data_offsets [", e->begin, ", ", e->end, "]) leaves a gap of ",
                     e->begin - covered, " bytes after offset ", covered);
            covered = e->end;
            previous = name;
        }
        check(covered == data_size, what_, ": the data area holds ", data_size, " bytes but the tensors cover only ",
              covered, " (", data_size - covered, " bytes of trailing data)");
        entries_ = std::move(reader.entries);
        metadata_ = std::move(reader.metadata);
    }

    void check_values(const SafetensorsReadOptions& options) const {
        if (options.allow_non_finite) return;
        for (const auto& [name, e] : entries_) {
            if (e.dtype == SafetensorsDtype::F32) check_finite<float>(name, e);
            if (e.dtype == SafetensorsDtype::F64) check_finite<double>(name, e);
        }
    }

    template <class F>
    void check_finite(const std::string& name, const SafetensorsEntry& e) const {
        const char* p = bytes_.data() + data_start_ + e.begin;
        const std::size_t count = static_cast<std::size_t>(e.shape.numel());
        for (std::size_t i = 0; i < count; ++i) {
            F v;
            std::memcpy(&v, p + i * sizeof(F), sizeof(F));
            if (!std::isfinite(v))
                fail(what_, ": tensor '", name, "' element ", i, " (row-major, shape ", e.shape.str(), ") is ",
                     std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf",
                     " (SafetensorsReadOptions::allow_non_finite accepts non-finite values)");
        }
    }

    // Copies `count` elements stored as From into `out`, converting to its type.
    template <class From, class To>
    Tensor<To> convert(const char* source, Tensor<To> out, std::size_t count, const std::string& name) const {
        if constexpr (std::is_same<From, To>::value) {
            if (count) std::memcpy(out.data(), source, count * sizeof(To));
        } else {
            for (std::size_t i = 0; i < count; ++i) {
                From v;
                std::memcpy(&v, source + i * sizeof(From), sizeof(From));
                // Narrowing a finite double beyond float's range is undefined behaviour: refuse it.
                if (std::is_same<To, float>::value && std::isfinite(v) &&
                    std::fabs(v) > static_cast<From>(std::numeric_limits<float>::max()))
                    fail(what_, ": tensor '", name, "' element ", i, " = ", v,
                         " does not fit in float; read it as Tensor<double>");
                out.data()[i] = static_cast<To>(v);
            }
        }
        return out;
    }

    std::string what_;
    std::map<std::string, SafetensorsEntry> entries_;
    std::map<std::string, std::string> metadata_;
    std::string bytes_;            // the data area, or the whole file when parsed from memory
    std::uint64_t data_start_ = 0;  // where the data area starts in bytes_
};

/// Collects named tensors (F32, F64, I64) and string metadata and writes them as one
/// safetensors file. The output is deterministic: tensors in name order, contiguous, header
/// padded with spaces to a multiple of 8 bytes as the reference implementation does.
/// Tensors are held by reference (shared storage); their values are read at save().
class SafetensorsWriter {
public:
    /// Adds an F32 tensor; names must be unique, non-empty UTF-8 and not "__metadata__".
    SafetensorsWriter& add(const std::string& name, const Tensor<float>& tensor) { return add_any(name, tensor); }
    /// Adds an F64 tensor.
    SafetensorsWriter& add(const std::string& name, const Tensor<double>& tensor) { return add_any(name, tensor); }
    /// Adds an I64 tensor.
    SafetensorsWriter& add(const std::string& name, const Tensor<std::int64_t>& tensor) { return add_any(name, tensor); }

    /// Sets a metadata entry (the format allows string values only).
    SafetensorsWriter& set_metadata(const std::string& key, const std::string& value) {
        detail::check_utf8(key, "metadata key");
        detail::check_utf8(value, ("metadata value of '" + key + "'").c_str());
        metadata_[key] = value;
        return *this;
    }

    /// The whole file as bytes.
    std::string serialize() const {
        std::string out;
        emit([&](const void* data, std::size_t size) { out.append(static_cast<const char*>(data), size); });
        return out;
    }

    /// Writes the file to `path` atomically (its folder must exist).
    void save(const std::string& path) const {
        AtomicFileWriter file(path);
        emit([&](const void* data, std::size_t size) { file.write(data, size); });
        file.commit();
    }

private:
    using AnyTensor = std::variant<Tensor<float>, Tensor<double>, Tensor<std::int64_t>>;

    template <class T>
    SafetensorsWriter& add_any(const std::string& name, const Tensor<T>& tensor) {
        check(!name.empty(), "safetensors: empty tensor name");
        check(name != "__metadata__", "safetensors: '__metadata__' is reserved and cannot name a tensor");
        detail::check_utf8(name, ("tensor name '" + name + "'").c_str());
        check(tensor.defined(), "safetensors: tensor '", name, "' is undefined (no storage)");
        check(!tensors_.count(name), "safetensors: tensor '", name, "' added twice");
        tensors_.emplace(name, AnyTensor(tensor));
        return *this;
    }

    template <class Sink>
    void emit(Sink&& sink) const {
        // ordered_json keeps insertion order: __metadata__ first, then tensors by name.
        nlohmann::ordered_json header = nlohmann::ordered_json::object();
        if (!metadata_.empty()) {
            nlohmann::ordered_json meta = nlohmann::ordered_json::object();
            for (const auto& [key, value] : metadata_) meta[key] = value;
            header["__metadata__"] = std::move(meta);
        }
        std::uint64_t offset = 0;
        for (const auto& item : tensors_) {
            const std::string& name = item.first;  // a structured binding cannot be captured in C++17
            std::visit(
                [&](const auto& t) {
                    using T = typename std::decay_t<decltype(t)>::value_type;
                    nlohmann::ordered_json e = nlohmann::ordered_json::object();
                    e["dtype"] = dtype_name(detail::SafetensorsDtypeOf<T>::value);
                    e["shape"] = nlohmann::ordered_json::array();
                    for (std::int64_t d : t.shape()) e["shape"].push_back(d);
                    e["data_offsets"] = nlohmann::ordered_json::array();
                    e["data_offsets"].push_back(offset);
                    offset += t.bytes();
                    e["data_offsets"].push_back(offset);
                    header[name] = std::move(e);
                },
                item.second);
        }
        std::string text = header.dump();
        text.append((8 - text.size() % 8) % 8, ' ');
        unsigned char length[8];
        for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
        sink(length, 8);
        sink(text.data(), text.size());
        for (const auto& entry : tensors_)
            std::visit([&](const auto& t) { sink(t.data(), t.bytes()); }, entry.second);
    }

    std::map<std::string, AnyTensor> tensors_;
    std::map<std::string, std::string> metadata_;
};

/// Saves float tensors by name, plus string metadata, as one safetensors file (atomically).
inline void save_safetensors(const std::string& path, const std::map<std::string, Tensor<float>>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
    SafetensorsWriter writer;
    for (const auto& [name, tensor] : tensors) writer.add(name, tensor);
    for (const auto& [key, value] : metadata) writer.set_metadata(key, value);
    writer.save(path);
}

/// Reads and validates a safetensors file (see SafetensorsFile::load).
inline SafetensorsFile load_safetensors(const std::string& path, const SafetensorsReadOptions& options = {}) {
    return SafetensorsFile::load(path, options);
}

}  // namespace cnnlite
