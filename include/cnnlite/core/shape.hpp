// Shape: the extents of a tensor, held inline (no heap) so that building shapes in a hot
// training step never allocates.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

#include "cnnlite/core/error.hpp"

namespace cnnlite {

/// Extents of a row-major tensor, rank 0 to Shape::max_rank.
class Shape {
public:
    /// Largest supported rank.
    static constexpr int max_rank = 8;

    Shape() = default;
    /// A shape with these extents, e.g. Shape{64, 1, 28, 28}.
    Shape(std::initializer_list<std::int64_t> dims) { assign(dims.begin(), dims.end()); }
    /// A shape with these extents.
    explicit Shape(const std::vector<std::int64_t>& dims) { assign(dims.begin(), dims.end()); }

    /// Number of axes.
    int rank() const { return rank_; }
    /// Extent of axis `axis`; negative axes count from the end, as in NumPy.
    std::int64_t operator[](int axis) const { return dims_[static_cast<std::size_t>(normalise(axis))]; }
    /// Mutable extent of axis `axis` (negative axes count from the end).
    std::int64_t& operator[](int axis) { return dims_[static_cast<std::size_t>(normalise(axis))]; }

    /// Number of elements (1 for rank 0, 0 when any extent is 0). Throws cnnlite::Error when
    /// the count does not fit in 64 bits, as shapes read from hostile files may ask.
    std::int64_t numel() const {
        for (int i = 0; i < rank_; ++i)
            if (dims_[static_cast<std::size_t>(i)] == 0) return 0;  // before any product can overflow
        std::int64_t n = 1;
        for (int i = 0; i < rank_; ++i)
            if (__builtin_mul_overflow(n, dims_[static_cast<std::size_t>(i)], &n))
                fail("Shape ", str(), " has more elements than a 64-bit count holds");
        return n;
    }

    /// First extent (for range-for over the axes).
    const std::int64_t* begin() const { return dims_.data(); }
    /// One past the last extent.
    const std::int64_t* end() const { return dims_.data() + rank_; }
    /// The extents as a vector.
    std::vector<std::int64_t> to_vector() const { return {begin(), end()}; }

    /// Whether every extent is non-negative (no reshape placeholder).
    bool concrete() const {
        for (int i = 0; i < rank_; ++i)
            if (dims_[static_cast<std::size_t>(i)] < 0) return false;
        return true;
    }

    /// Same rank and extents.
    bool operator==(const Shape& other) const {
        if (rank_ != other.rank_) return false;
        for (int i = 0; i < rank_; ++i)
            if (dims_[static_cast<std::size_t>(i)] != other.dims_[static_cast<std::size_t>(i)]) return false;
        return true;
    }
    /// Different rank or extents.
    bool operator!=(const Shape& other) const { return !(*this == other); }

    /// "[64, 1, 28, 28]"
    std::string str() const {
        std::string s = "[";
        for (int i = 0; i < rank_; ++i) {
            if (i) s += ", ";
            s += std::to_string(dims_[static_cast<std::size_t>(i)]);
        }
        return s + "]";
    }

private:
    template <class It>
    void assign(It first, It last) {
        for (; first != last; ++first) {
            check(rank_ < max_rank, "Shape: rank above ", max_rank, " is not supported");
            // -1 is allowed as reshape's "infer this extent" marker; tensors reject it.
            check(*first >= -1, "Shape: negative extent ", *first);
            dims_[static_cast<std::size_t>(rank_++)] = *first;
        }
    }
    int normalise(int axis) const {
        const int a = axis < 0 ? axis + rank_ : axis;
        check(a >= 0 && a < rank_, "Shape: axis ", axis, " out of range for rank ", rank_);
        return a;
    }

    std::array<std::int64_t, max_rank> dims_{};
    int rank_ = 0;
};

/// Writes shape.str(), e.g. "[64, 1, 28, 28]".
inline std::ostream& operator<<(std::ostream& out, const Shape& shape) { return out << shape.str(); }

}  // namespace cnnlite
