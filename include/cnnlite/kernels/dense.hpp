// The three matrix products of a fully connected layer, split into independent blocks of
// output columns. Eigen's own parallel GEMM synchronises its threads after every packed block,
// which at these shapes (batch 64, K = 64 in the weight gradient) costs more than it saves and
// stalls completely when another process takes one of the cores. Here each thread takes whole
// blocks and calls Eigen single-threaded on each (Eigen does not spawn threads inside a
// parallel region), so the only synchronisation is the end of the region. The blocks' width
// depends on the layer's size, not on the thread count: Eigen's blocking, and with it the order
// in which an output's sum is rounded, depends on the width of the product, so equal widths
// give the same bits at any thread count.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>

#include "cnnlite/kernels/parallel.hpp"

namespace cnnlite::kernels {

namespace detail {

template <class T>
using DenseRowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using DenseMap = Eigen::Map<DenseRowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using ConstDenseMap = Eigen::Map<const DenseRowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

/// Threads that split a product of `flops` multiply-adds (1 below the parallel threshold).
inline int dense_threads(std::int64_t flops) {
    return flops >= parallel_threshold ? num_threads() : 1;
}

/// Output columns per block of a product with `n` of them: an eighth of them (so that up to 8
/// threads share the work), rounded up to a multiple of 16 floats (whole cache lines, so that no two threads write the
/// same line), and at least 128, below which repacking the shared operand for every block costs
/// more than the split gains. It depends on `n` alone, never on the thread count.
inline std::int64_t dense_block_columns(std::int64_t n) {
    const std::int64_t eighth = ((n + 7) / 8 + 15) / 16 * 16;
    return eighth < 128 ? 128 : eighth;
}

/// Blocks of dense_block_columns(n) that cover `n` columns.
inline std::int64_t dense_blocks(std::int64_t n) {
    const std::int64_t width = dense_block_columns(n);
    return (n + width - 1) / width;
}

}  // namespace detail

/// y[batch, out] = x[batch, in] * w[out, in]^T (+ bias[out]), then max(y, 0) when `relu`
/// (NaN stays NaN). `bias` may be null. Threads share the blocks of output columns.
template <class T>
void dense_forward(const T* x, const T* w, const T* bias, T* y, std::int64_t batch, std::int64_t in, std::int64_t out,
                   bool relu) {
    const int threads = detail::dense_threads(batch * in * out);
    (void)threads;  // read by the pragma only
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (std::int64_t block = 0; block < detail::dense_blocks(out); ++block) {
        const std::int64_t j0 = block * detail::dense_block_columns(out);
        const std::int64_t j1 = std::min(out, j0 + detail::dense_block_columns(out));
        detail::DenseMap<T> Y(y + j0, batch, j1 - j0, Eigen::OuterStride<>(out));
        Y.noalias() = detail::ConstDenseMap<T>(x, batch, in, Eigen::OuterStride<>(in)) *
                      detail::ConstDenseMap<T>(w + j0 * in, j1 - j0, in, Eigen::OuterStride<>(in)).transpose();
        for (std::int64_t i = 0; i < batch; ++i) {
            T* row = y + i * out;
            for (std::int64_t j = j0; j < j1; ++j) {
                T v = row[j] + (bias ? bias[j] : T(0));
                row[j] = relu && v <= T(0) ? T(0) : v;
            }
        }
    }
}

/// Gradients of y = x w^T given g = dL/dy [batch, out]: dx[batch, in] = g w and
/// dw[out, in] = g^T x, each overwritten, or added to when its `add_*` flag is set; a null
/// dx or dw is skipped. Threads share the blocks of `in` columns and compute both products on
/// each block they take.
template <class T>
void dense_backward(const T* g, const T* x, const T* w, T* dx, bool add_dx, T* dw, bool add_dw, std::int64_t batch,
                    std::int64_t in, std::int64_t out) {
    const int threads = detail::dense_threads(batch * in * out * ((dx ? 1 : 0) + (dw ? 1 : 0)));
    (void)threads;  // read by the pragma only
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (std::int64_t block = 0; block < detail::dense_blocks(in); ++block) {
        const std::int64_t j0 = block * detail::dense_block_columns(in);
        const std::int64_t j1 = std::min(in, j0 + detail::dense_block_columns(in));
        const detail::ConstDenseMap<T> G(g, batch, out, Eigen::OuterStride<>(out));
        if (dx) {
            detail::DenseMap<T> DX(dx + j0, batch, j1 - j0, Eigen::OuterStride<>(in));
            const detail::ConstDenseMap<T> W(w + j0, out, j1 - j0, Eigen::OuterStride<>(in));
            if (add_dx) DX.noalias() += G * W;
            else DX.noalias() = G * W;
        }
        if (dw) {
            detail::DenseMap<T> DW(dw + j0, out, j1 - j0, Eigen::OuterStride<>(in));
            const detail::ConstDenseMap<T> X(x + j0, batch, j1 - j0, Eigen::OuterStride<>(in));
            if (add_dw) DW.noalias() += G.transpose() * X;
            else DW.noalias() = G.transpose() * X;
        }
    }
}

}  // namespace cnnlite::kernels
