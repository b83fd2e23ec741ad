// NumPy .npy files of float32/float64 arrays in C order (e.g. the pipeline's Grad-CAM maps,
// read in Python with numpy.load). Writing uses format version 1.0 and is atomic; reading takes
// versions 1.0 and 2.0 and checks magic, version, header dict and sizes against the real file
// before allocating anything.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/shape.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/files.hpp"

// Tensor data is copied to and from the file as is; '<f4' and '<f8' are little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "cnnlite's .npy I/O needs a little-endian host");

namespace cnnlite {

namespace detail {

/// What an .npy header dict says.
struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::int64_t> shape;
};

/// Parses the Python literal numpy writes as the header, e.g.
/// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 28, 28), }
/// accepting exactly that grammar (no eval): a dict with the three keys, each once.
class NpyHeaderParser {
public:
    NpyHeaderParser(std::string_view text, const std::string& what) : text_(text), what_(what) {}

    NpyHeader parse() {
        NpyHeader header;
        int seen = 0;  // bits: 1 descr, 2 fortran_order, 4 shape
        skip_space();
        expect('{');
        skip_space();
        while (!consume('}')) {
            const std::string key = parse_string();
            const int bit = key == "descr" ? 1 : key == "fortran_order" ? 2 : key == "shape" ? 4 : 0;
            if (!bit) error("has the unknown key '" + key + "' (expected descr, fortran_order, shape)");
            if (seen & bit) error("has the key '" + key + "' twice");
            seen |= bit;
            skip_space();
            expect(':');
            skip_space();
            if (bit == 1) header.descr = parse_string();
            if (bit == 2) header.fortran_order = parse_bool();
            if (bit == 4) header.shape = parse_shape();
            skip_space();
            if (consume(',')) {
                skip_space();
            } else if (peek() != '}') {
                error("expects ',' or '}'");
            }
        }
        skip_space();
        if (pos_ != text_.size()) error("has text after the closing '}'");
        if (!(seen & 1)) error("lacks the key 'descr'");
        if (!(seen & 2)) error("lacks the key 'fortran_order'");
        if (!(seen & 4)) error("lacks the key 'shape'");
        return header;
    }

private:
    [[noreturn]] void error(const std::string& problem) const {
        std::string shown(text_.substr(0, 200));
        std::replace(shown.begin(), shown.end(), '\n', ' ');
        fail(what_, ": the header dict ", problem, " (at character ", pos_, " of \"", shown, "\")");
    }
    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
    bool consume(char c) {
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!consume(c)) error(std::string("expects '") + c + "'");
    }
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\t')) ++pos_;
    }
    std::string parse_string() {
        const char quote = peek();
        if (quote != '\'' && quote != '"') error("expects a quoted string");
        ++pos_;
        const std::size_t start = pos_;
        while (pos_ < text_.size() && text_[pos_] != quote) {
            if (text_[pos_] == '\\') error("has an escape sequence in a string");
            ++pos_;
        }
        if (pos_ == text_.size()) error("has an unterminated string");
        return std::string(text_.substr(start, pos_++ - start));
    }
    bool parse_bool() {
        if (text_.substr(pos_, 4) == "True") {
            pos_ += 4;
            return true;
        }
        if (text_.substr(pos_, 5) == "False") {
            pos_ += 5;
            return false;
        }
        error("expects True or False for 'fortran_order'");
    }
    std::vector<std::int64_t> parse_shape() {
        std::vector<std::int64_t> dims;
        expect('(');
        skip_space();
        bool trailing_comma = false;
        while (!consume(')')) {
            if (!dims.empty() && !trailing_comma) error("expects ',' between shape extents");
            if (peek() == '-') error("has a negative shape extent");
            if (peek() < '0' || peek() > '9') error("expects an integer shape extent");
            std::int64_t value = 0;
            while (peek() >= '0' && peek() <= '9') {
                const int digit = peek() - '0';
                if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) error("has a shape extent too large");
                value = value * 10 + digit;
                ++pos_;
            }
            if (dims.size() == static_cast<std::size_t>(Shape::max_rank))
                error("has more than " + std::to_string(Shape::max_rank) + " shape extents (cnnlite's limit)");
            dims.push_back(value);
            skip_space();
            trailing_comma = consume(',');
            skip_space();
        }
        // Python reads "(5)" as the integer 5, not a tuple; numpy would refuse it too.
        if (dims.size() == 1 && !trailing_comma) error("has '(n)' for the shape; a 1-tuple is written '(n,)'");
        return dims;
    }

    std::string_view text_;
    std::string what_;
    std::size_t pos_ = 0;
};

/// "(3, 28, 28)", "(5,)", "()" as Python writes a shape tuple.
inline std::string npy_shape_text(const Shape& shape) {
    std::string text = "(";
    for (int i = 0; i < shape.rank(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + (shape.rank() == 1 ? ",)" : ")");
}

}  // namespace detail

/// Writes `tensor` (float or double) to `path` as an .npy file, format 1.0, C order, atomically.
template <class T>
void save_npy(const std::string& path, const Tensor<T>& tensor) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "save_npy: T must be float or double");
    check(tensor.defined(), "npy file '", path, "': the tensor to save is undefined (no storage)");
    std::string header = std::string("{'descr': '") + (sizeof(T) == 4 ? "<f4" : "<f8") +
                         "', 'fortran_order': False, 'shape': " + detail::npy_shape_text(tensor.shape()) + ", }";
    // Spaces, then '\n', so that the data starts 64-byte aligned, as numpy pads it.
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    const std::size_t length = header.size();  // < 65536 since the rank is at most 8
    const char prefix[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<char>(length & 0xff),
                             static_cast<char>(length >> 8)};
    AtomicFileWriter file(path);
    file.write(prefix, sizeof prefix);
    file.write(header);
    file.write(tensor.data(), tensor.bytes());
    file.commit();
}

/// Reads an .npy file of '<f4' or '<f8' values in C order into a Tensor<T> (float or double,
/// converting; a float64 value beyond float's range read as float is an error). Errors name
/// the file and what is wrong with it.
template <class T = float>
Tensor<T> load_npy(const std::string& path) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "load_npy: T must be float or double");
    const std::string what = "npy file '" + path + "'";
    InputFile file(path, "npy file");
    const std::uint64_t size = file.size();
    check(size >= 10, what, ": ", size, " bytes is too short for an .npy header (truncated or not .npy)");
    const std::string prefix = file.read_string(static_cast<std::size_t>(std::min<std::uint64_t>(size, 12)), 0);
    check(prefix.compare(0, 6, "\x93NUMPY") == 0, what, ": not an .npy file (the magic string \\x93NUMPY is missing)");
    const int major = static_cast<unsigned char>(prefix[6]);
    const int minor = static_cast<unsigned char>(prefix[7]);
    check((major == 1 || major == 2) && minor == 0, what, ": format version ", major, ".", minor,
          " is not supported (1.0 and 2.0 are)");
    std::uint64_t header_length = static_cast<unsigned char>(prefix[8]) | static_cast<unsigned char>(prefix[9]) << 8;
    std::uint64_t header_start = 10;
    if (major == 2) {
        check(size >= 12, what, ": ", size, " bytes is too short for a version 2.0 header");
        header_length |= std::uint64_t(static_cast<unsigned char>(prefix[10])) << 16 |
                         std::uint64_t(static_cast<unsigned char>(prefix[11])) << 24;
        header_start = 12;
    }
    check(header_length <= size - header_start, what, ": header length ", header_length,
          " runs past the end of the file (", size - header_start, " bytes after the length)");
    check(header_length <= (1u << 20), what, ": header length ", header_length, " exceeds the limit of 1 MiB");
    const std::string text = file.read_string(static_cast<std::size_t>(header_length), header_start);
    const detail::NpyHeader header = detail::NpyHeaderParser(text, what).parse();

    std::size_t item = 0;
    if (header.descr == "<f4") item = 4;
    if (header.descr == "<f8") item = 8;
    if (!item && (header.descr == ">f4" || header.descr == ">f8"))
        fail(what, ": big-endian data ('", header.descr, "') is not supported; save it as '<", header.descr.substr(1),
             "'");
    check(item != 0, what, ": unsupported descr '", header.descr, "' (supported: '<f4' float32, '<f8' float64)");
    check(!header.fortran_order, what, ": Fortran-order data is not supported (save a C-contiguous array)");

    const Shape shape(header.shape);
    std::uint64_t count = 1;
    if (std::find(header.shape.begin(), header.shape.end(), 0) != header.shape.end()) {
        count = 0;
    } else {
        for (std::int64_t d : header.shape) {
            check(count <= (std::numeric_limits<std::uint64_t>::max() / 8) / static_cast<std::uint64_t>(d), what,
                  ": shape ", detail::npy_shape_text(shape), " has too many elements");
            count *= static_cast<std::uint64_t>(d);
        }
    }
    const std::uint64_t data_start = header_start + header_length;
    check(count * item == size - data_start, what, ": holds ", size - data_start, " data bytes but shape ",
          detail::npy_shape_text(shape), " of '", header.descr, "' needs ", count * item);

    Tensor<T> out = Tensor<T>::uninitialized(shape);
    if (item == sizeof(T)) {
        if (count) file.read(out.data(), static_cast<std::size_t>(count * item), data_start);
        return out;
    }
    const std::string data = file.read_string(static_cast<std::size_t>(count * item), data_start);
    if (item == 4) {
        for (std::size_t i = 0; i < count; ++i) {
            float v;
            std::memcpy(&v, data.data() + 4 * i, 4);
            out.data()[i] = static_cast<T>(v);
        }
    } else {
        for (std::size_t i = 0; i < count; ++i) {
            double v;
            std::memcpy(&v, data.data() + 8 * i, 8);
            // Narrowing a finite double beyond float's range is undefined behaviour: refuse it.
            check(!std::isfinite(v) || std::fabs(v) <= static_cast<double>(std::numeric_limits<float>::max()), what,
                  ": element ", i, " = ", v, " does not fit in float; read it as Tensor<double>");
            out.data()[i] = static_cast<T>(v);
        }
    }
    return out;
}

}  // namespace cnnlite
