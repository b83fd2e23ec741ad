// Tensor<T>: a contiguous, row-major (NCHW for images) array with shared, 64-byte-aligned,
// pooled storage. Copies are shallow (they share storage, like a PyTorch tensor); clone()
// copies the data. Views (reshape, rows) share storage without copying.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/core/buffer_pool.hpp"
#include "cnnlite/core/error.hpp"
#include "cnnlite/core/shape.hpp"

// Bounds checks in element accessors: on in debug builds, or on request.
#if !defined(CNNLITE_BOUNDS_CHECK) && !defined(NDEBUG)
#define CNNLITE_BOUNDS_CHECK 1
#endif

namespace cnnlite {

/// A dynamic-size row-major Eigen matrix of T.
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// A row-major matrix view of a tensor's storage (Tensor::matrix()).
template <class T>
using MatrixMap = Eigen::Map<RowMatrix<T>, Eigen::Unaligned>;
/// A read-only row-major matrix view.
template <class T>
using ConstMatrixMap = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned>;
/// An Eigen array view of all elements (Tensor::array()).
template <class T>
using VectorMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
/// A read-only array view.
template <class T>
using ConstVectorMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

/// A contiguous row-major array (NCHW for images) with shared, 64-byte-aligned, pooled storage; copies share storage, clone() copies the data.
template <class T = float>
class Tensor {
    static_assert(std::is_arithmetic<T>::value, "Tensor<T> needs an arithmetic scalar type");

public:
    /// The scalar type.
    using value_type = T;

    /// An empty tensor (rank 0, no storage); `defined()` is false.
    Tensor() = default;

    /// A zero-filled tensor of the given shape.
    explicit Tensor(const Shape& shape) : Tensor(uninitialized(shape)) { fill(T(0)); }

    /// A tensor of the given shape whose elements are not initialised (fast path for outputs
    /// that a kernel overwrites completely).
    static Tensor uninitialized(const Shape& shape) {
        check(shape.concrete(), "Tensor: shape ", shape, " has a negative extent");
        check(static_cast<std::uint64_t>(shape.numel()) <= std::numeric_limits<std::size_t>::max() / sizeof(T),
              "Tensor: shape ", shape, " needs more bytes than memory can address");
        Tensor t;
        t.shape_ = shape;
        t.block_ = detail::BufferPool::instance().acquire(static_cast<std::size_t>(shape.numel()) * sizeof(T));
        return t;
    }
    /// A zero-filled tensor of the given shape.
    static Tensor zeros(const Shape& shape) { return Tensor(shape); }
    /// A tensor of the given shape with every element `value`.
    static Tensor full(const Shape& shape, T value) {
        Tensor t = uninitialized(shape);
        t.fill(value);
        return t;
    }
    /// A tensor holding `values` (row-major) in the given shape.
    static Tensor from(const Shape& shape, std::initializer_list<T> values) {
        return from(shape, values.begin(), values.size());
    }
    /// A tensor holding `values` (row-major) in the given shape.
    static Tensor from(const Shape& shape, const std::vector<T>& values) {
        return from(shape, values.data(), values.size());
    }
    /// A tensor holding `count` values copied from `values` (row-major).
    static Tensor from(const Shape& shape, const T* values, std::size_t count) {
        check(static_cast<std::int64_t>(count) == shape.numel(), "Tensor::from: ", count,
              " values for shape ", shape, " (", shape.numel(), " elements)");
        Tensor t = uninitialized(shape);
        if (count) std::memcpy(t.data(), values, count * sizeof(T));
        return t;
    }

    /// A shallow copy: shares the storage of `other`.
    Tensor(const Tensor& other) : shape_(other.shape_), block_(other.block_), offset_(other.offset_) { retain(); }
    /// Takes over the storage of `other`, which becomes empty.
    Tensor(Tensor&& other) noexcept : shape_(other.shape_), block_(other.block_), offset_(other.offset_) {
        other.block_ = nullptr;
        other.shape_ = Shape();
        other.offset_ = 0;
    }
    /// Shares the storage of `other` (shallow).
    Tensor& operator=(const Tensor& other) {
        if (this != &other) {
            Tensor copy(other);
            swap(copy);
        }
        return *this;
    }
    /// Takes over the storage of `other`, which becomes empty.
    Tensor& operator=(Tensor&& other) noexcept {
        if (this != &other) {
            Tensor moved(std::move(other));
            swap(moved);
        }
        return *this;
    }
    ~Tensor() { release(); }

    /// Exchanges shape and storage with `other`.
    void swap(Tensor& other) noexcept {
        std::swap(shape_, other.shape_);
        std::swap(block_, other.block_);
        std::swap(offset_, other.offset_);
    }

    /// Whether the tensor has storage.
    bool defined() const { return block_ != nullptr; }
    /// The shape.
    const Shape& shape() const { return shape_; }
    /// Number of axes.
    int rank() const { return shape_.rank(); }
    /// Extent of axis `axis` (negative axes count from the end).
    std::int64_t dim(int axis) const { return shape_[axis]; }
    /// Number of elements (0 when undefined).
    std::int64_t numel() const { return defined() ? shape_.numel() : 0; }
    /// Size of the elements in bytes.
    std::size_t bytes() const { return static_cast<std::size_t>(numel()) * sizeof(T); }

    /// Pointer to the first element (null when undefined).
    T* data() { return block_ ? static_cast<T*>(block_->payload()) + offset_ : nullptr; }
    /// Read-only pointer to the first element.
    const T* data() const { return block_ ? static_cast<const T*>(block_->payload()) + offset_ : nullptr; }
    /// First element, for range-for and algorithms.
    T* begin() { return data(); }
    /// One past the last element.
    T* end() { return data() + numel(); }
    /// First element, read-only.
    const T* begin() const { return data(); }
    /// One past the last element, read-only.
    const T* end() const { return data() + numel(); }

    /// Flat (row-major) element access; bounds-checked when CNNLITE_BOUNDS_CHECK is on.
    T& operator[](std::int64_t i) { return data()[checked_flat(i)]; }
    /// Read-only flat element access.
    const T& operator[](std::int64_t i) const { return data()[checked_flat(i)]; }

    /// Multi-index element access, e.g. t(n, c, y, x); bounds-checked when CNNLITE_BOUNDS_CHECK is on.
    template <class... Index>
    T& operator()(Index... index) {
        return data()[flat_index({static_cast<std::int64_t>(index)...})];
    }
    /// Read-only multi-index element access.
    template <class... Index>
    const T& operator()(Index... index) const {
        return data()[flat_index({static_cast<std::int64_t>(index)...})];
    }
    /// Always bounds-checked multi-index access; throws cnnlite::Error when out of range.
    template <class... Index>
    T& at(Index... index) {
        return data()[checked_index({static_cast<std::int64_t>(index)...})];
    }
    /// Read-only, always bounds-checked multi-index access.
    template <class... Index>
    const T& at(Index... index) const {
        return data()[checked_index({static_cast<std::int64_t>(index)...})];
    }

    /// Sets every element to `value`.
    void fill(T value) { std::fill(begin(), end(), value); }

    /// A deep copy with its own storage.
    Tensor clone() const {
        if (!defined()) return Tensor();
        return from(shape_, data(), static_cast<std::size_t>(numel()));
    }
    /// Copies the values of `source` (same number of elements) into this tensor's storage.
    void copy_from(const Tensor& source) {
        check(source.numel() == numel(), "Tensor::copy_from: source shape ", source.shape(),
              " does not fit destination shape ", shape_);
        if (numel()) std::memmove(data(), source.data(), bytes());
    }

    /// The same storage seen with another shape (one extent may be -1 and is inferred).
    Tensor reshape(const Shape& new_shape) const {
        Shape resolved = new_shape;
        int inferred = -1;
        std::int64_t known = 1;
        for (int i = 0; i < resolved.rank(); ++i) {
            if (resolved[i] == -1) {
                check(inferred < 0, "reshape: more than one -1 in ", new_shape);
                inferred = i;
            } else {
                known *= resolved[i];
            }
        }
        if (inferred >= 0) {
            check(known > 0 && numel() % known == 0, "reshape: cannot infer -1 of ", new_shape,
                  " from shape ", shape_);
            resolved[inferred] = numel() / known;
        }
        check(resolved.numel() == numel(), "reshape: shape ", shape_, " (", numel(),
              " elements) cannot be viewed as ", resolved, " (", resolved.numel(), " elements)");
        Tensor view(*this);
        view.shape_ = resolved;
        return view;
    }
    /// The same storage seen with the extents `dims` (one may be -1).
    Tensor reshape(std::initializer_list<std::int64_t> dims) const { return reshape(Shape(dims)); }

    /// A view of `count` consecutive entries along the first axis, starting at `first`.
    Tensor rows(std::int64_t first, std::int64_t count) const {
        check(rank() >= 1, "Tensor::rows: tensor of shape ", shape_, " has no first axis");
        check(first >= 0 && count >= 0 && first + count <= shape_[0], "Tensor::rows: rows [", first, ", ",
              first + count, ") out of range for shape ", shape_);
        Tensor view(*this);
        view.shape_[0] = count;
        view.offset_ += static_cast<std::size_t>(first * (shape_[0] ? shape_.numel() / shape_[0] : 0));
        return view;
    }

    /// Whether this tensor and `other` view the same storage block.
    bool shares_storage_with(const Tensor& other) const { return block_ && block_ == other.block_; }
    /// Whether this handle is the only owner of its storage (safe to overwrite in place).
    bool unique() const { return block_ && block_->refs.load(std::memory_order_acquire) == 1; }

    /// Eigen view as a rows x cols row-major matrix (rows * cols must equal numel()).
    MatrixMap<T> matrix(std::int64_t rows, std::int64_t cols) {
        check(rows * cols == numel(), "Tensor::matrix: ", rows, "x", cols, " does not fit shape ", shape_);
        return MatrixMap<T>(data(), rows, cols);
    }
    /// Read-only Eigen view as a rows x cols row-major matrix.
    ConstMatrixMap<T> matrix(std::int64_t rows, std::int64_t cols) const {
        check(rows * cols == numel(), "Tensor::matrix: ", rows, "x", cols, " does not fit shape ", shape_);
        return ConstMatrixMap<T>(data(), rows, cols);
    }
    /// Rank-2 tensors as a matrix; higher ranks fold every axis after the first into columns.
    MatrixMap<T> matrix() { return matrix(rank() ? dim(0) : 1, rank() ? numel() / std::max<std::int64_t>(dim(0), 1) : 1); }
    /// Read-only matrix view (first axis = rows).
    ConstMatrixMap<T> matrix() const {
        return matrix(rank() ? dim(0) : 1, rank() ? numel() / std::max<std::int64_t>(dim(0), 1) : 1);
    }
    /// Eigen array view of all elements.
    VectorMap<T> array() { return VectorMap<T>(data(), numel()); }
    /// Read-only Eigen array view of all elements.
    ConstVectorMap<T> array() const { return ConstVectorMap<T>(data(), numel()); }

    /// A copy of the elements as a std::vector.
    std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

    /// A copy converted to another scalar type.
    template <class U>
    Tensor<U> cast() const {
        Tensor<U> out = Tensor<U>::uninitialized(shape_);
        std::transform(begin(), end(), out.begin(), [](T v) { return static_cast<U>(v); });
        return out;
    }

private:
    void retain() {
        if (block_) block_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    void release() {
        if (block_ && block_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            detail::BufferPool::instance().release(block_);
        block_ = nullptr;
    }

    std::int64_t checked_flat(std::int64_t i) const {
#if CNNLITE_BOUNDS_CHECK
        check(i >= 0 && i < numel(), "Tensor: flat index ", i, " out of range for shape ", shape_);
#endif
        return i;
    }
    std::int64_t flat_index(std::initializer_list<std::int64_t> index) const {
#if CNNLITE_BOUNDS_CHECK
        return checked_index(index);
#else
        std::int64_t flat = 0;
        int axis = 0;
        for (std::int64_t i : index) flat = flat * shape_[axis++] + i;
        return flat;
#endif
    }
    std::int64_t checked_index(std::initializer_list<std::int64_t> index) const {
        check(static_cast<int>(index.size()) == rank(), "Tensor: ", index.size(),
              " indices for a tensor of rank ", rank(), " (shape ", shape_, ")");
        std::int64_t flat = 0;
        int axis = 0;
        for (std::int64_t i : index) {
            check(i >= 0 && i < shape_[axis], "Tensor: index ", i, " out of range on axis ", axis, " of shape ",
                  shape_);
            flat = flat * shape_[axis++] + i;
        }
        return flat;
    }

    Shape shape_;
    detail::Block* block_ = nullptr;
    std::size_t offset_ = 0;  // in elements
};

/// Throws a cnnlite::Error naming `op` and both shapes when they differ.
template <class A, class B>
void check_same_shape(const char* op, const Tensor<A>& a, const Tensor<B>& b) {
    check(a.shape() == b.shape(), op, ": shape mismatch ", a.shape(), " vs ", b.shape());
}

}  // namespace cnnlite
