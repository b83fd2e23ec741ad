// The three matrix products of a fully connected layer, y = x W^T, dx = g W and dW = g^T x,
// split into independent blocks so that the only synchronisation is the end of the parallel
// region (Eigen's own parallel GEMM synchronises its threads after every packed block, which at
// these shapes costs more than it saves and stalls completely when another process takes one
// of the cores).
//
// Where register_gemm is built (float, AVX2 + FMA or AVX-512F) the products run on it: dx and
// dW read g, W and x where they lie (g through its strides, W's and x's rows as B's contiguous
// rows), so nothing is packed; the forward needs x's rows as B's columns, so each block of
// dense_forward_rows images is transposed into a thread's scratch, multiplied as
// y^T = W x^T and transposed back. Eigen packs both operands at every product; on the paper's
// Dense(3136 -> 256) at batch 64 the register products ran at 1.1-1.7x Eigen's speed on one
// core of an AVX2 machine (benchmarks/README.md). Every output is then one in-order chain of
// fused multiply-adds over k (from the old value when accumulating), whatever the blocks, so
// the bits do not depend on the thread count or the batch size.
//
// Elsewhere (double, or a target without those instructions) each thread takes whole blocks of
// output columns and calls Eigen single-threaded on each (Eigen does not spawn threads inside
// a parallel region). The blocks' width depends on the layer's size, not on the thread count:
// Eigen's blocking, and with it the order in which an output's sum is rounded, depends on the
// width of the product, so equal widths give the same bits at any thread count.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cnnlite/kernels/parallel.hpp"
#include "cnnlite/kernels/register_gemm.hpp"
#include "cnnlite/kernels/transpose.hpp"

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

/// Columns [j0, j1) of y[rows, out]: y + bias[j] (bias may be null), then max(., 0) when
/// `relu` (NaN stays NaN, -0 becomes +0).
template <class T>
void add_bias_relu(T* y, std::int64_t rows, std::int64_t out, std::int64_t j0, std::int64_t j1, const T* bias, bool relu) {
    for (std::int64_t i = 0; i < rows; ++i) {
        T* row = y + i * out;
        for (std::int64_t j = j0; j < j1; ++j) {
            const T v = row[j] + (bias ? bias[j] : T(0));
            row[j] = relu && v <= T(0) ? T(0) : v;
        }
    }
}

/// Whether the products of T run on register_gemm (see the file's comment).
template <class T>
constexpr bool dense_on_register_gemm = std::is_same_v<T, float> && register_gemm_available;

}  // namespace detail

/// Images per block of the register forward: two vectors of register_gemm (32 with AVX-512, 16
/// with AVX2), so that each weight broadcast feeds two multiply-adds and the whole weight matrix
/// is read once per two vectors of images. With one vector per block (12 x 16 tiles with
/// AVX-512) every multiply-add needed its own broadcast load, and the paper's Dense(3136 -> 256)
/// forward at batch 64 ran 1.35x slower on one core of an AVX-512 Xeon (benchmarks/README.md).
constexpr std::int64_t dense_forward_rows = register_gemm_available ? 2 * register_gemm_width : 16;

/// Workspace (elements of T) dense_forward needs: per thread one block's x^T [in, 16] and
/// y^T [out, 16] when the products run on register_gemm, otherwise none.
template <class T>
std::int64_t dense_forward_workspace(std::int64_t in, std::int64_t out) {
    if constexpr (detail::dense_on_register_gemm<T>)
        return static_cast<std::int64_t>(num_threads()) * dense_forward_rows * (in + out);
    else
        return 0;
}

/// y[batch, out] = x[batch, in] * w[out, in]^T (+ bias[out]), then max(y, 0) when `relu`
/// (NaN stays NaN). `bias` may be null. `workspace` holds dense_forward_workspace<T>(in, out)
/// elements (may be null when that is 0). Threads share the blocks of images (register
/// products) or of output columns (Eigen).
template <class T>
void dense_forward(const T* x, const T* w, const T* bias, T* y, std::int64_t batch, std::int64_t in, std::int64_t out,
                   bool relu, T* workspace) {
    const int threads = detail::dense_threads(batch * in * out);
    (void)threads;  // read by the pragma only
    if constexpr (detail::dense_on_register_gemm<T>) {
        const std::int64_t per_thread = dense_forward_rows * (in + out);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
        for (std::int64_t i0 = 0; i0 < batch; i0 += dense_forward_rows) {
            const std::int64_t rows = std::min(dense_forward_rows, batch - i0);
            float* xT = workspace + thread_index() * per_thread;  // [in, rows]
            float* yT = xT + dense_forward_rows * in;             // [out, rows]
            transpose_plane(x + i0 * in, rows, in, xT);
            register_gemm({out, rows, in, w, in, 1, xT, rows, yT, rows}, false);  // y^T = W x^T
            float* yi = y + i0 * out;
            transpose_plane(yT, out, rows, yi);
            if (bias || relu) detail::add_bias_relu(yi, rows, out, 0, out, bias, relu);
        }
    } else {
        (void)workspace;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
        for (std::int64_t block = 0; block < detail::dense_blocks(out); ++block) {
            const std::int64_t j0 = block * detail::dense_block_columns(out);
            const std::int64_t j1 = std::min(out, j0 + detail::dense_block_columns(out));
            detail::DenseMap<T> Y(y + j0, batch, j1 - j0, Eigen::OuterStride<>(out));
            Y.noalias() = detail::ConstDenseMap<T>(x, batch, in, Eigen::OuterStride<>(in)) *
                          detail::ConstDenseMap<T>(w + j0 * in, j1 - j0, in, Eigen::OuterStride<>(in)).transpose();
            detail::add_bias_relu(y, batch, out, j0, j1, bias, relu);
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
        if constexpr (detail::dense_on_register_gemm<T>) {
            // dx[:, j0:j1] (+)= G[batch, out] W[:, j0:j1]; dW[:, j0:j1] (+)= G^T[out, batch] x[:, j0:j1]
            if (dx) register_gemm({batch, j1 - j0, out, g, out, 1, w + j0, in, dx + j0, in}, add_dx);
            if (dw) register_gemm({out, j1 - j0, batch, g, 1, out, x + j0, in, dw + j0, in}, add_dw);
            continue;
        }
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
