// Kernel benchmarks for the paper's network (batch 64), each with a GFLOP/s or GB/s counter, and
// the machine's ceilings measured in the same run: SGEMM (Eigen, and OpenBLAS when its library
// can be loaded) for a large square product and for the model's own GEMM shapes, and a
// STREAM-style triad at three working-set sizes (L2, L3, DRAM). At the end a summary table gives
// each kernel's efficiency against the ceiling that binds it: the triad whose working set
// matches the kernel's for the memory-bound kernels (im2col, conv, pooling, dropout, Adam), the
// square SGEMM and the same-shape product for the dense layers.
//
// The roofline of the modern model (ResNet-8): its 3x3 convolutions forward, backward-data and
// backward-weights, each with its fraction of the FP32 FMA peak measured by this binary
// (counter peak_frac), its compulsory bytes and arithmetic intensity, and, when built with
// CNNLITE_BENCH_ONEDNN, oneDNN's convolution on the same shape and thread count.
// benchmarks/roofline.py turns a run into the Markdown table of benchmarks/README.md.
//
// Byte counts are the bytes a kernel must read and write once (no write-allocate traffic, as
// STREAM counts); FLOP counts are 2 per multiply-add of the mathematical product.
//
//   bench_kernels                                  # everything, 1 and 2 threads (~2 minutes)
//   bench_kernels --benchmark_filter='conv|triad'  # a subset (the summary shows what ran)
//   bench_kernels --benchmark_repetitions=5        # the summary then uses the medians
//   bench_kernels --benchmark_filter='ceiling/(fma|triad_DRAM|copy_DRAM)|conv3x3'   # the roofline
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include <dlfcn.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cnnlite/autograd/grad_mode.hpp"
#include "cnnlite/core/random.hpp"
#include "cnnlite/core/tensor.hpp"
#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/conv2d.hpp"
#include "cnnlite/kernels/conv_relu_pool.hpp"
#include "cnnlite/kernels/dropout.hpp"
#include "cnnlite/kernels/dropout_max_pool.hpp"
#include "cnnlite/kernels/im2col.hpp"
#include "cnnlite/kernels/optimizer.hpp"
#include "cnnlite/kernels/pooling.hpp"
#include "cnnlite/kernels/softmax.hpp"
#include "cnnlite/kernels/winograd.hpp"
#include "cnnlite/nn/dense.hpp"
#include "cnnlite/nn/dropout.hpp"
#include "cnnlite/nn/flatten.hpp"
#include "cnnlite/nn/inference_model.hpp"
#include "cnnlite/nn/max_pool2d.hpp"
#include "cnnlite/nn/symbolic.hpp"
#include "cnnlite/ops/activation.hpp"
#include "cnnlite/ops/batch_norm.hpp"
#include "cnnlite/ops/linear.hpp"

#ifdef CNNLITE_BENCH_ONEDNN
#ifndef _OPENMP
#error "CNNLITE_BENCH_ONEDNN needs OpenMP: oneDNN's thread count follows omp_set_num_threads"
#endif
#include "onednn_conv.hpp"
#endif

namespace {

using cnnlite::kernels::ConvShape;
using cnnlite::kernels::WindowGeometry;
using Buffer = std::vector<float, Eigen::aligned_allocator<float>>;
using Index = std::int64_t;

constexpr Index batch = 64;
constexpr Index paper_parameters = 805962;

Buffer random_buffer(Index n, float lo, float hi, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    Buffer b(static_cast<std::size_t>(n));
    for (auto& v : b) v = dist(gen);
    return b;
}

// ---------------------------------------------------------------------------------------------
// What binds each benchmark, recorded at registration and used by the summary.

enum class Bound { memory, gemm, ceiling, latency, fma };

struct Meta {
    Bound bound = Bound::latency;
    double footprint = 0;     // bytes touched per iteration (selects the triad level)
    std::string gemm_shape;   // for Bound::gemm: the same-shape Eigen ceiling's name
    std::string description;  // one line for the summary
};

std::vector<std::pair<std::string, Meta>>& registry() {
    static std::vector<std::pair<std::string, Meta>> r;
    return r;
}

template <class Fn>
benchmark::internal::Benchmark* add(const std::string& name, Fn fn, Meta meta) {
    registry().emplace_back(name, std::move(meta));
    return benchmark::RegisterBenchmark(name.c_str(), fn)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

void set_threads(benchmark::State& state) { cnnlite::set_num_threads(static_cast<int>(state.range(0))); }

void bandwidth(benchmark::State& state, double bytes_per_iteration) {
    state.counters["bandwidth"] = benchmark::Counter(bytes_per_iteration * static_cast<double>(state.iterations()),
                                                     benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}
void flops(benchmark::State& state, double flop_per_iteration) {
    state.counters["flops"] = benchmark::Counter(flop_per_iteration * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// ---------------------------------------------------------------------------------------------
// Shapes of the paper's network.

ConvShape paper_conv() {  // 1 -> 64 channels, 2x2 kernel, 'same' on 28x28, batch 64
    ConvShape s;
    s.batch = batch;
    s.in_channels = 1;
    s.out_channels = 64;
    s.window = WindowGeometry::same(28, 28, 2, 2);
    return s;
}
ConvShape deep_conv() {  // a 3x3 'same' conv on 64 x 14x14 (not in the paper; a GEMM-sized K)
    ConvShape s;
    s.batch = batch;
    s.in_channels = 64;
    s.out_channels = 64;
    s.window = WindowGeometry::same(14, 14, 3, 3);
    return s;
}

double in_bytes(const ConvShape& s) { return 4.0 * s.batch * s.in_channels * s.window.in_h * s.window.in_w; }
double conv_out_bytes(const ConvShape& s) { return 4.0 * s.batch * s.out_channels * s.pixels(); }
double conv_flop(const ConvShape& s) { return 2.0 * s.batch * s.out_channels * s.patch() * s.pixels(); }

// ---------------------------------------------------------------------------------------------
// im2col / col2im: per image into a per-thread column buffer, as the conv kernels use them.

template <bool Deep>
void BM_im2col(benchmark::State& state) {
    set_threads(state);
    const ConvShape s = Deep ? deep_conv() : paper_conv();
    const Index in_size = s.in_channels * s.window.in_h * s.window.in_w, col_size = s.patch() * s.pixels();
    const Buffer x = random_buffer(s.batch * in_size, 0, 1, 1);
    Buffer col(static_cast<std::size_t>(cnnlite::num_threads() * col_size));
    for (auto _ : state) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (Index n = 0; n < s.batch; ++n)
            cnnlite::kernels::im2col(x.data() + n * in_size, s.in_channels, s.window,
                                     col.data() + cnnlite::thread_index() * col_size);
        benchmark::DoNotOptimize(col.data());
        benchmark::ClobberMemory();
    }
    bandwidth(state, in_bytes(s) + 4.0 * s.batch * col_size);
}

template <bool Deep>
void BM_col2im(benchmark::State& state) {
    set_threads(state);
    const ConvShape s = Deep ? deep_conv() : paper_conv();
    const Index in_size = s.in_channels * s.window.in_h * s.window.in_w, col_size = s.patch() * s.pixels();
    const Buffer col = random_buffer(col_size, -1, 1, 2);  // one column matrix folded into every image
    Buffer x(static_cast<std::size_t>(s.batch * in_size));
    for (auto _ : state) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (Index n = 0; n < s.batch; ++n) {
            float* xn = x.data() + n * in_size;
            std::fill(xn, xn + in_size, 0.0f);
            cnnlite::kernels::col2im_add(col.data(), s.in_channels, s.window, xn);
        }
        benchmark::ClobberMemory();
    }
    bandwidth(state, 4.0 * s.batch * col_size + in_bytes(s));
}

// ---------------------------------------------------------------------------------------------
// Convolution: unfused (conv + bias + ReLU, full-resolution output) and fused with the 2x2 pool.

struct ConvData {
    ConvShape s;
    WindowGeometry pool;
    Buffer x, w, b, y, dy, workspace, pooled, dpooled, dw, db;
    std::vector<std::int32_t> argmax;
    explicit ConvData(const ConvShape& shape)
        : s(shape),
          pool(WindowGeometry::valid(shape.window.out_h(), shape.window.out_w(), 2, 2, 2, 2)),
          x(random_buffer(shape.batch * shape.in_channels * shape.window.in_h * shape.window.in_w, 0, 1, 3)),
          w(random_buffer(shape.out_channels * shape.patch(), -0.5f, 0.5f, 4)),
          b(random_buffer(shape.out_channels, -0.1f, 0.1f, 5)),
          y(static_cast<std::size_t>(shape.batch * shape.out_channels * shape.pixels())),
          dy(random_buffer(shape.batch * shape.out_channels * shape.pixels(), -1e-3f, 1e-3f, 6)),
          workspace(static_cast<std::size_t>(cnnlite::kernels::conv2d_workspace_size(shape))),
          pooled(static_cast<std::size_t>(shape.batch * shape.out_channels * pool.out_h() * pool.out_w())),
          dpooled(random_buffer(shape.batch * shape.out_channels * pool.out_h() * pool.out_w(), -1e-3f, 1e-3f, 7)),
          dw(w.size()),
          db(b.size()),
          argmax(pooled.size()) {}
    double pooled_bytes() const { return 4.0 * static_cast<double>(pooled.size()); }
};

void BM_conv_forward(benchmark::State& state) {
    set_threads(state);
    ConvData d(paper_conv());
    for (auto _ : state) {
        cnnlite::kernels::conv2d_forward(d.s, d.x.data(), d.w.data(), d.b.data(), true, d.y.data(), d.workspace.data());
        benchmark::ClobberMemory();
    }
    bandwidth(state, in_bytes(d.s) + conv_out_bytes(d.s));
    flops(state, conv_flop(d.s));
}

// First layer: no input gradient (dx = null), as in the network.
void BM_conv_backward(benchmark::State& state) {
    set_threads(state);
    ConvData d(paper_conv());
    cnnlite::kernels::conv2d_forward(d.s, d.x.data(), d.w.data(), d.b.data(), true, d.y.data(), d.workspace.data());
    for (auto _ : state) {
        cnnlite::kernels::conv2d_backward(d.s, d.x.data(), d.w.data(), d.y.data(), d.dy.data(), true, d.dw.data(),
                                          d.db.data(), static_cast<float*>(nullptr), d.workspace.data());
        benchmark::ClobberMemory();
    }
    bandwidth(state, in_bytes(d.s) + 2 * conv_out_bytes(d.s));  // reads x, y (ReLU mask), dy
    flops(state, conv_flop(d.s));                               // dW only
}

void BM_conv_relu_pool_forward(benchmark::State& state) {
    set_threads(state);
    ConvData d(paper_conv());
    for (auto _ : state) {
        cnnlite::kernels::conv_relu_pool_forward(d.s, d.pool, d.x.data(), d.w.data(), d.b.data(), d.pooled.data(),
                                                 d.argmax.data(), d.workspace.data());
        benchmark::ClobberMemory();
    }
    bandwidth(state, in_bytes(d.s) + 2 * d.pooled_bytes());  // x in; pooled values and argmax out
    flops(state, conv_flop(d.s));
}

void BM_conv_relu_pool_backward(benchmark::State& state) {
    set_threads(state);
    ConvData d(paper_conv());
    cnnlite::kernels::conv_relu_pool_forward(d.s, d.pool, d.x.data(), d.w.data(), d.b.data(), d.pooled.data(),
                                             d.argmax.data(), d.workspace.data());
    for (auto _ : state) {
        cnnlite::kernels::conv_relu_pool_backward(d.s, d.pool, d.x.data(), d.w.data(), d.pooled.data(), d.argmax.data(),
                                                  d.dpooled.data(), d.dw.data(), d.db.data(), static_cast<float*>(nullptr),
                                                  d.workspace.data());
        benchmark::ClobberMemory();
    }
    bandwidth(state, in_bytes(d.s) + 3 * d.pooled_bytes());  // x, pooled (ReLU mask), argmax, dy
    flops(state, conv_flop(d.s) / 4);                        // one conv output per 2x2 window gets gradient
}

// A GEMM-sized convolution (K = 576) for comparison: the same kernels, Eigen products inside.
void BM_conv_forward_deep(benchmark::State& state) {
    set_threads(state);
    ConvData d(deep_conv());
    for (auto _ : state) {
        cnnlite::kernels::conv2d_forward(d.s, d.x.data(), d.w.data(), d.b.data(), true, d.y.data(), d.workspace.data());
        benchmark::ClobberMemory();
    }
    flops(state, conv_flop(d.s));
}

// ---------------------------------------------------------------------------------------------
// Max pooling 2x2/2: the first pool of the unfused network (64 x 28x28 planes) and the second
// pool of the network (64 x 14x14).

template <Index H>
struct PoolData {
    Index planes = batch * 64;
    Buffer x = random_buffer(planes * H * H, -1, 1, 8);
    Buffer y = Buffer(static_cast<std::size_t>(planes * (H / 2) * (H / 2)));
    Buffer dy = random_buffer(planes * (H / 2) * (H / 2), -1, 1, 9);
    Buffer dx = Buffer(static_cast<std::size_t>(planes * H * H));
    std::vector<std::int32_t> argmax = std::vector<std::int32_t>(y.size());
    double in_bytes() const { return 4.0 * static_cast<double>(x.size()); }
    double out_bytes() const { return 4.0 * static_cast<double>(y.size()); }
};

template <Index H>
void BM_max_pool_forward(benchmark::State& state) {
    set_threads(state);
    PoolData<H> d;
    for (auto _ : state) {
        cnnlite::kernels::max_pool_2x2_forward(d.x.data(), d.planes, H, H, d.y.data(), d.argmax.data());
        benchmark::ClobberMemory();
    }
    bandwidth(state, d.in_bytes() + 2 * d.out_bytes());  // x in; values and argmax out
}

template <Index H>
void BM_max_pool_backward(benchmark::State& state) {
    set_threads(state);
    PoolData<H> d;
    cnnlite::kernels::max_pool_2x2_forward(d.x.data(), d.planes, H, H, d.y.data(), d.argmax.data());
    for (auto _ : state) {
        cnnlite::kernels::max_pool_backward(d.dy.data(), d.argmax.data(), d.planes, (H / 2) * (H / 2), H * H,
                                            d.dx.data(), true);
        benchmark::ClobberMemory();
    }
    bandwidth(state, 2 * d.out_bytes() + d.in_bytes());  // dy and argmax in; dx out
}

// ---------------------------------------------------------------------------------------------
// Dropout 0.3 on the first pool's output [64, 12544] (the largest dropout of the network).

void BM_dropout_forward(benchmark::State& state) {
    set_threads(state);
    const Index features = 64 * 14 * 14;
    const Buffer x = random_buffer(batch * features, 0, 1, 10);
    Buffer y(x.size()), mask(x.size());
    std::vector<std::int64_t> ids(static_cast<std::size_t>(batch));
    for (Index i = 0; i < batch; ++i) ids[static_cast<std::size_t>(i)] = 1000 + 7 * i;
    std::uint64_t step = 0;
    for (auto _ : state) {
        const cnnlite::RandomStream stream(0, cnnlite::Purpose::dropout, 2, step++);
        cnnlite::kernels::dropout_forward(x.data(), y.data(), mask.data(), batch, features, ids.data(), stream, 0.3);
        benchmark::ClobberMemory();
    }
    bandwidth(state, 3 * 4.0 * static_cast<double>(x.size()));  // x in; y and mask out
}

// Dropout 0.3 fused with the second 2x2 pooling, [64, 64, 14, 14] -> [64, 64, 7, 7]: what the
// paper's network runs in training instead of dropout_forward + max_pool_forward/14x14.

struct DropoutPoolData {
    Index features = 64 * 14 * 14;
    Buffer x = random_buffer(batch * 64 * 14 * 14, 0, 1, 10);
    Buffer y = Buffer(static_cast<std::size_t>(batch * 64 * 7 * 7)), winner_mask = Buffer(y.size());
    Buffer dy = random_buffer(batch * 64 * 7 * 7, -1, 1, 11), dx = Buffer(x.size());
    std::vector<std::int32_t> argmax = std::vector<std::int32_t>(y.size());
    Buffer scratch = Buffer(static_cast<std::size_t>(cnnlite::num_threads() * cnnlite::kernels::dropout_max_pool_scratch(features)));
    std::vector<std::int64_t> ids = std::vector<std::int64_t>(static_cast<std::size_t>(batch));
    cnnlite::kernels::WindowGeometry g = cnnlite::kernels::WindowGeometry::valid(14, 14, 2, 2, 2, 2);
    DropoutPoolData() {
        for (Index i = 0; i < batch; ++i) ids[static_cast<std::size_t>(i)] = 1000 + 7 * i;
    }
    void forward(std::uint64_t step) {
        const cnnlite::RandomStream stream(0, cnnlite::Purpose::dropout, 2, step);
        cnnlite::kernels::dropout_max_pool_forward(x.data(), batch, Index(64), g, ids.data(), stream, 0.3, y.data(),
                                                   argmax.data(), winner_mask.data(), scratch.data());
    }
};

void BM_dropout_max_pool_forward(benchmark::State& state) {
    set_threads(state);
    DropoutPoolData d;
    std::uint64_t step = 0;
    for (auto _ : state) {
        d.forward(step++);
        benchmark::ClobberMemory();
    }
    bandwidth(state, 4.0 * static_cast<double>(d.x.size() + 3 * d.y.size()));  // x in; y, argmax, mask out
}

void BM_dropout_max_pool_backward(benchmark::State& state) {
    set_threads(state);
    DropoutPoolData d;
    d.forward(0);
    for (auto _ : state) {
        cnnlite::kernels::dropout_max_pool_backward(d.dy.data(), d.argmax.data(), d.winner_mask.data(), batch * 64, Index(49),
                                                    Index(196), d.dx.data(), true);
        benchmark::ClobberMemory();
    }
    bandwidth(state, 4.0 * static_cast<double>(3 * d.y.size() + d.x.size()));  // dy, argmax, mask in; dx out
}

// ---------------------------------------------------------------------------------------------
// Fused softmax cross-entropy on the network's logits [64, 10].

void BM_softmax_cross_entropy(benchmark::State& state) {
    set_threads(state);
    const Index classes = 10;
    const Buffer logits = random_buffer(batch * classes, -5, 5, 11);
    Buffer targets(logits.size(), 0.0f), probs(logits.size());
    for (Index r = 0; r < batch; ++r) targets[static_cast<std::size_t>(r * classes + r % classes)] = 1.0f;
    for (auto _ : state) {
        double loss = cnnlite::kernels::softmax_cross_entropy_rows(logits.data(), targets.data(), probs.data(), batch, classes);
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
    }
    bandwidth(state, 3 * 4.0 * static_cast<double>(logits.size()));
    state.counters["rows"] = benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
}

// ---------------------------------------------------------------------------------------------
// Adam over the network's 805,962 parameters as one array (see bench_optim for variants).

void BM_adam_update(benchmark::State& state) {
    set_threads(state);
    Buffer p = random_buffer(paper_parameters, -0.05f, 0.05f, 12), g = random_buffer(paper_parameters, -1e-3f, 1e-3f, 13);
    Buffer m = random_buffer(paper_parameters, -1e-4f, 1e-4f, 14), v = random_buffer(paper_parameters, 0, 1e-7f, 15);
    const auto c = cnnlite::kernels::adam_coefficients<float>(1e-3, 0.9, 0.999, 1e-7, 10, cnnlite::kernels::AdamEpsilon::keras);
    for (auto _ : state) {
        cnnlite::kernels::adam_update(p.data(), g.data(), m.data(), v.data(), paper_parameters, c);
        benchmark::ClobberMemory();
    }
    bandwidth(state, 7 * 4.0 * paper_parameters);  // p, g, m, v in; p, m, v out
}

// ---------------------------------------------------------------------------------------------
// Dense layers through the library's op (cnnlite::linear): forward under NoGrad, backward via
// autograd from a recorded forward (the forward is outside the timed region).

template <Index In, Index Out, bool Relu>
struct DenseData {
    cnnlite::Variable<float> x, w, b;
    cnnlite::Tensor<float> grad;
    DenseData() {
        auto fill = [](cnnlite::Tensor<float>& t, float scale, unsigned seed) {
            const Buffer r = random_buffer(t.numel(), -scale, scale, seed);
            std::copy(r.begin(), r.end(), t.data());
        };
        cnnlite::Tensor<float> xt(cnnlite::Shape{batch, In}), wt(cnnlite::Shape{Out, In}), bt(cnnlite::Shape{Out});
        fill(xt, 1.0f, 16);
        fill(wt, std::sqrt(6.0f / (In + Out)), 17);
        fill(bt, 0.01f, 18);
        x = cnnlite::Variable<float>(xt, true);  // the network needs dx: the conv weights sit below
        w = cnnlite::Variable<float>(wt, true);
        b = cnnlite::Variable<float>(bt, true);
        grad = cnnlite::Tensor<float>(cnnlite::Shape{batch, Out});
        fill(grad, 1e-3f, 19);
    }
};

template <Index In, Index Out, bool Relu>
void BM_dense_forward(benchmark::State& state) {
    set_threads(state);
    DenseData<In, Out, Relu> d;
    cnnlite::NoGrad no_grad;
    for (auto _ : state) {
        cnnlite::Variable<float> y = cnnlite::linear(d.x, d.w, d.b, Relu);
        benchmark::DoNotOptimize(y.value().data());
    }
    flops(state, 2.0 * batch * In * Out);
}

template <Index In, Index Out, bool Relu>
void BM_dense_backward(benchmark::State& state) {
    set_threads(state);
    DenseData<In, Out, Relu> d;
    for (auto _ : state) {
        state.PauseTiming();
        d.x.zero_grad();
        d.w.zero_grad();
        d.b.zero_grad();
        cnnlite::Variable<float> y = cnnlite::linear(d.x, d.w, d.b, Relu);
        state.ResumeTiming();
        y.backward(d.grad);
        benchmark::DoNotOptimize(d.w.grad().data());
    }
    flops(state, 2 * 2.0 * batch * In * Out);  // dx = G W and dW = G^T x
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization in training followed by a ReLU, through the library's ops, forward and
// backward: the two ops (batch_norm, relu) against the fused batch_norm_relu, on ResNet-8's
// first activation ([64, 32, 28, 28], 6.4 MB: memory-bound passes).

template <bool Fused>
void BM_batch_norm_relu(benchmark::State& state) {
    set_threads(state);
    const cnnlite::Shape shape{batch, 32, 28, 28};
    cnnlite::Tensor<float> x(shape), grad(shape), gamma(cnnlite::Shape{32}), beta(cnnlite::Shape{32});
    const Buffer rx = random_buffer(x.numel(), -2.0f, 2.0f, 21), rg = random_buffer(grad.numel(), -1.0f, 1.0f, 22);
    std::copy(rx.begin(), rx.end(), x.data());
    std::copy(rg.begin(), rg.end(), grad.data());
    gamma.fill(1.0f);
    for (auto _ : state) {
        cnnlite::Variable<float> xv(x, true), g(gamma, true), b(beta, true);
        cnnlite::Variable<float> y = Fused ? cnnlite::batch_norm_relu(xv, g, b, 1e-5)
                                           : cnnlite::relu(cnnlite::batch_norm(xv, g, b, 1e-5));
        y.backward(grad);
        benchmark::DoNotOptimize(xv.grad().data());
    }
    // Passes over the activation: fused 4 forward (2 statistics, normalise + rectify: read, write)
    // + 7 backward (x, dy, y for the sums; x, dy, y, dx for dx); the two ops 6 + 8.
    bandwidth(state, 4.0 * static_cast<double>(shape.numel()) * (Fused ? 11 : 14));
}

// ---------------------------------------------------------------------------------------------
// Ceilings. SGEMM through Eigen with the row-major maps the library uses.

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<RowMatrix, Eigen::Unaligned>;

struct GemmCase {  // C[M, N] = op(A) op(B) with the products' real layouts
    const char* name;
    Index m, n, k;
    bool a_transposed, b_transposed;
};
// The model's products (batch 64). dense: 3136 -> 256, dense_1: 256 -> 10, conv: the per-image
// product W[64, 4] col[4, 784] (run 64 times, once per image, as the kernel does).
const GemmCase gemm_cases[] = {
    {"dense_forward", 64, 256, 3136, false, true},   // Y = X W^T
    {"dense_dx", 64, 3136, 256, false, false},       // dX = G W
    {"dense_dw", 256, 3136, 64, true, false},        // dW = G^T X
    {"dense_1_forward", 64, 10, 256, false, true},
    {"dense_1_dw", 10, 256, 64, true, false},
    {"conv_k4", 64, 784, 4, false, false},
};

double gemm_flop(const GemmCase& c) { return 2.0 * c.m * c.n * c.k * (c.k == 4 ? batch : 1); }

template <int Case>
void BM_sgemm_eigen_shape(benchmark::State& state) {
    set_threads(state);
    const GemmCase& c = gemm_cases[Case];
    Buffer a = random_buffer(c.m * c.k, -1, 1, 20), b = random_buffer(c.k * c.n, -1, 1, 21), out(static_cast<std::size_t>(c.m * c.n));
    const Index reps = c.k == 4 ? batch : 1;
    for (auto _ : state) {
        for (Index r = 0; r < reps; ++r) {
            Map C(out.data(), c.m, c.n);
            const Map A(a.data(), c.a_transposed ? c.k : c.m, c.a_transposed ? c.m : c.k);
            const Map B(b.data(), c.b_transposed ? c.n : c.k, c.b_transposed ? c.k : c.n);
            if (c.a_transposed) C.noalias() = A.transpose() * B;
            else if (c.b_transposed) C.noalias() = A * B.transpose();
            else C.noalias() = A * B;
        }
        benchmark::ClobberMemory();
    }
    flops(state, gemm_flop(c));
}

void BM_sgemm_eigen_square(benchmark::State& state) {
    set_threads(state);
    const Index n = 1024;
    Buffer a = random_buffer(n * n, -1, 1, 22), b = random_buffer(n * n, -1, 1, 23), out(static_cast<std::size_t>(n * n));
    for (auto _ : state) {
        Map(out.data(), n, n).noalias() = Map(a.data(), n, n) * Map(b.data(), n, n);
        benchmark::ClobberMemory();
    }
    flops(state, 2.0 * n * n * n);
}

// OpenBLAS, loaded at run time when present (Debian: libopenblas0-pthread), to see whether
// handing the products to a BLAS (EIGEN_USE_BLAS) would pay for these shapes.
// Debian's OpenBLAS 0.3.21 does not recognise newer Xeons and falls back to its SSE3
// "Prescott" kernels (~6x slower SGEMM), so on an AVX-512 CPU without OPENBLAS_CORETYPE in the
// environment this process sets it to SkylakeX before loading the library; the summary says so.
struct OpenBlas {
    using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
    using SetThreads = void (*)(int);
    using CoreName = char* (*)();
    Sgemm sgemm = nullptr;
    SetThreads set_threads = nullptr;
    std::string core;            // the kernels OpenBLAS chose
    bool core_set_here = false;  // OPENBLAS_CORETYPE set by this process
    static const OpenBlas& get() {
        static const OpenBlas lib = [] {
            OpenBlas l;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
            if (!std::getenv("OPENBLAS_CORETYPE") && __builtin_cpu_supports("avx512f"))
                l.core_set_here = setenv("OPENBLAS_CORETYPE", "SkylakeX", 0) == 0;
#endif
            for (const char* name : {"libopenblas.so.0", "libopenblas.so"}) {
                if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
                    l.sgemm = reinterpret_cast<Sgemm>(dlsym(h, "cblas_sgemm"));
                    l.set_threads = reinterpret_cast<SetThreads>(dlsym(h, "openblas_set_num_threads"));
                    if (auto core = reinterpret_cast<CoreName>(dlsym(h, "openblas_get_corename"))) l.core = core();
                    if (l.sgemm) break;
                }
            }
            return l;
        }();
        return lib;
    }
};
constexpr int cblas_row_major = 101, cblas_no_trans = 111, cblas_trans = 112;

void run_openblas(benchmark::State& state, Index m, Index n, Index k, bool at, bool bt, Index reps) {
    const OpenBlas& blas = OpenBlas::get();
    if (!blas.sgemm) {
        state.SkipWithError("OpenBLAS not found (apt-get install libopenblas0-pthread)");
        return;
    }
    if (blas.set_threads) blas.set_threads(static_cast<int>(state.range(0)));
    Buffer a = random_buffer(m * k, -1, 1, 24), b = random_buffer(k * n, -1, 1, 25), out(static_cast<std::size_t>(m * n));
    const int lda = static_cast<int>(at ? m : k), ldb = static_cast<int>(bt ? k : n);
    for (auto _ : state) {
        for (Index r = 0; r < reps; ++r)
            blas.sgemm(cblas_row_major, at ? cblas_trans : cblas_no_trans, bt ? cblas_trans : cblas_no_trans,
                       static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a.data(), lda, b.data(), ldb,
                       0.0f, out.data(), static_cast<int>(n));
        benchmark::ClobberMemory();
    }
    flops(state, 2.0 * m * n * k * reps);
    if (blas.set_threads) blas.set_threads(1);  // park its pool before the next benchmark
}

template <int Case>
void BM_sgemm_openblas_shape(benchmark::State& state) {
    const GemmCase& c = gemm_cases[Case];
    run_openblas(state, c.m, c.n, c.k, c.a_transposed, c.b_transposed, c.k == 4 ? batch : 1);
}
void BM_sgemm_openblas_square(benchmark::State& state) { run_openblas(state, 1024, 1024, 1024, false, false, 1); }

// STREAM triad a = b + s c over three arrays of `Floats` floats each, threaded like the kernels.
template <Index Floats>
void BM_triad(benchmark::State& state) {
    set_threads(state);
    Buffer a(static_cast<std::size_t>(Floats)), b = random_buffer(Floats, 0, 1, 26), c = random_buffer(Floats, 0, 1, 27);
    float* pa = a.data();
    const float* pb = b.data();
    const float* pc = c.data();
    const float s = 1.5f;
    for (auto _ : state) {
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static)
#endif
        for (Index i = 0; i < Floats; ++i) pa[i] = pb[i] + s * pc[i];
        benchmark::ClobberMemory();
    }
    bandwidth(state, 3 * 4.0 * Floats);
}

// STREAM copy a = b over two arrays: the other half of the memory ceiling (no arithmetic, one
// read stream instead of two).
template <Index Floats>
void BM_copy(benchmark::State& state) {
    set_threads(state);
    Buffer a(static_cast<std::size_t>(Floats)), b = random_buffer(Floats, 0, 1, 28);
    float* pa = a.data();
    const float* pb = b.data();
    for (auto _ : state) {
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static)
#endif
        for (Index i = 0; i < Floats; ++i) pa[i] = pb[i];
        benchmark::ClobberMemory();
    }
    bandwidth(state, 2 * 4.0 * Floats);
}

// ---------------------------------------------------------------------------------------------
// The FP32 FMA peak. Each thread runs fma_chains independent chains acc = acc * a + b: an FMA's
// result is ready ~4 cycles after it starts and a core starts two per cycle, so at least 8 must
// be in flight; 12 leave a margin and, with a and b, still fit AVX2's 16 registers. The vector
// width is chosen at compile time: AVX-512 when the build targets it (-march=native here), else
// AVX2 with FMA, else scalar code.

constexpr int fma_chains = 12;
#if defined(__AVX512F__)
constexpr int fma_lanes = 16;
constexpr const char* fma_isa = "avx512 _mm512_fmadd_ps";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int fma_lanes = 8;
constexpr const char* fma_isa = "avx2 _mm256_fmadd_ps";
#else
constexpr int fma_lanes = 1;
constexpr const char* fma_isa = "scalar";
#endif

// rounds x fma_chains FMAs on the calling thread. The result depends on every one of them, so
// the compiler cannot drop any; a and b come from the caller, so it cannot fold them either.
float fma_chains_run(std::int64_t rounds, float a, float b) {
#if defined(__AVX512F__)
    __m512 acc[fma_chains];
    for (int c = 0; c < fma_chains; ++c) acc[c] = _mm512_set1_ps(1.0f + 0.01f * static_cast<float>(c));
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    for (std::int64_t r = 0; r < rounds; ++r) {
#pragma GCC unroll 12
        for (int c = 0; c < fma_chains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], va, vb);
    }
    for (int c = 1; c < fma_chains; ++c) acc[0] = _mm512_add_ps(acc[0], acc[c]);
    return _mm512_reduce_add_ps(acc[0]);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 acc[fma_chains];
    for (int c = 0; c < fma_chains; ++c) acc[c] = _mm256_set1_ps(1.0f + 0.01f * static_cast<float>(c));
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    for (std::int64_t r = 0; r < rounds; ++r) {
#pragma GCC unroll 12
        for (int c = 0; c < fma_chains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], va, vb);
    }
    for (int c = 1; c < fma_chains; ++c) acc[0] = _mm256_add_ps(acc[0], acc[c]);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc[0]);
    float sum = 0;
    for (float v : lanes) sum += v;
    return sum;
#else
    float acc[fma_chains];
    for (int c = 0; c < fma_chains; ++c) acc[c] = 1.0f + 0.01f * static_cast<float>(c);
    for (std::int64_t r = 0; r < rounds; ++r)
        for (int c = 0; c < fma_chains; ++c) acc[c] = acc[c] * a + b;
    float sum = 0;
    for (float v : acc) sum += v;
    return sum;
#endif
}

// fma_chains_run on `threads` threads at once. Returns the FLOP done (2 per lane and FMA) and
// the sum over threads of each thread's own rate (its FLOP over its own time): on a machine
// shared with other work a descheduled thread stretches the team's wall time but not the
// other cores' rate, and the peak is what the cores do, not what the scheduler gave us.
// a = 0.999, b = 0.001 keep every accumulator near 1: no overflow, no denormals.
struct FmaBurst {
    double flop = 0, per_thread_rate = 0;
};
FmaBurst fma_burst(int threads, std::int64_t rounds) {
    float a = 0.999f, b = 0.001f, sink = 0;
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
    const double flop = 2.0 * fma_lanes * fma_chains * static_cast<double>(rounds);
    int ran = 0;  // threads that really ran (one without OpenMP)
    double rate = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : sink, ran, rate)
#endif
    {
        const auto start = std::chrono::steady_clock::now();
        sink += fma_chains_run(rounds, a, b);
        const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
        ran += 1;
        rate += flop / seconds.count();
    }
    (void)threads;
    benchmark::DoNotOptimize(sink);
    return {flop * ran, rate};
}

// The peak that every peak_frac is a fraction of, measured once per process and thread count:
// the best of 200 bursts of ~1.5 ms per thread after a warm-up. Other work on the machine can
// only slow a burst down, so the best burst is the nearest to what the cores can do; bursts
// shorter than a scheduler time slice make one where no thread was preempted likely.
double fma_peak(int threads) {
    static std::map<int, double> peak;
    if (auto it = peak.find(threads); it != peak.end()) return it->second;
    const std::int64_t rounds = std::int64_t(1) << 20;
    fma_burst(threads, 16 * rounds);
    double best = 0;
    for (int i = 0; i < 200; ++i) best = std::max(best, fma_burst(threads, rounds).per_thread_rate);
    return peak[threads] = best;
}

void peak_fraction(benchmark::State& state, double flop_per_iteration) {
    state.counters["peak_frac"] =
        benchmark::Counter(flop_per_iteration * static_cast<double>(state.iterations()) /
                               fma_peak(static_cast<int>(state.range(0))),
                           benchmark::Counter::kIsRate);
}

// The same kernel as a benchmark: its flops counter is the team's wall-clock rate, what a
// parallel kernel sees (with other work on the machine, well below the peak on 2 threads);
// its peak_frac compares that with the per-core peak above.
void BM_fma_peak(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    const std::int64_t rounds = std::int64_t(1) << 20;
    double flop = 0;
    for (auto _ : state) flop = fma_burst(threads, rounds).flop;
    flops(state, flop);
    peak_fraction(state, flop);
    state.counters["peak"] = fma_peak(threads);
    state.SetLabel(std::string(fma_isa) + ", " + std::to_string(fma_chains) + " chains per thread");
}

// ---------------------------------------------------------------------------------------------
// The modern model's 3x3 convolutions: ResNet-8 of examples/fashion_mnist (architectures.cpp,
// resnet8) at batch 64: the stem, then per stage the strided 3x3 that changes the width and the
// stride-1 3x3 at the new width (the 28x28 block keeps its width, so it has only the latter). All
// 'same' (TensorFlow's: a stride-2 window on 28x28 pads 0 above and 1 below), no bias and no
// fused ReLU (BatchNorm follows each). The 1x1 shortcuts are not 3x3 and are left out.

struct ModernConv {
    const char* name;
    Index in_channels, out_channels, size, stride;
    Index groups = 1;
    ConvShape shape() const {
        ConvShape s;
        s.batch = batch;
        s.in_channels = in_channels;
        s.out_channels = out_channels;
        s.window = WindowGeometry::same(size, size, 3, 3, stride, stride);
        s.groups = groups;
        return s;
    }
};
const ModernConv modern_convs[] = {
    {"stem_1to32_28x28", 1, 32, 28, 1},        // runs forward and backward-weights only in training
    {"c32_28x28", 32, 32, 28, 1},              // twice per step
    {"c32to64_s2_28x28", 32, 64, 28, 2},
    {"c64_14x14", 64, 64, 14, 1},
    {"c64to128_s2_14x14", 64, 128, 14, 2},
    {"c128_7x7", 128, 128, 7, 1},
};
// The depthwise 3x3 layers of a MobileNet-like network of the same widths (batch 64).
const ModernConv depthwise_convs[] = {
    {"dw_c32_28x28", 32, 32, 28, 1, 32},
    {"dw_c64_s2_28x28", 64, 64, 28, 2, 64},
    {"dw_c128_14x14", 128, 128, 14, 1, 128},
    {"dw_c256_7x7", 256, 256, 7, 1, 256},
};

enum class ConvPass { forward, backward_data, backward_weights };
const char* pass_name(ConvPass p) {
    return p == ConvPass::forward ? "forward" : p == ConvPass::backward_data ? "backward_data" : "backward_weights";
}

// Compulsory traffic: each tensor the pass reads or writes, once (fp32). Forward reads x and w
// and writes y; backward-data reads dy and w and writes dx; backward-weights reads x and dy and
// writes dw. Each pass touches one tensor of the input's, the output's and the weights' size,
// so all three move the same bytes, and do the same 2 N O P C kh kw FLOP.
double modern_bytes(const ConvShape& s) {
    return in_bytes(s) + conv_out_bytes(s) + 4.0 * s.out_channels * s.patch();
}

void roofline_counters(benchmark::State& state, const ConvShape& s) {
    const double flop = conv_flop(s), bytes = modern_bytes(s);
    flops(state, flop);
    bandwidth(state, bytes);
    peak_fraction(state, flop);
    state.counters["bytes"] = bytes;
    state.counters["intensity"] = flop / bytes;
}

struct ModernConvData {
    ConvShape s;
    Buffer x, w, dy, y, dx, dw, workspace;
    explicit ModernConvData(const ConvShape& shape)
        : s(shape),
          x(random_buffer(shape.batch * shape.in_channels * shape.window.in_h * shape.window.in_w, -1, 1, 29)),
          w(random_buffer(shape.out_channels * shape.patch(), -0.1f, 0.1f, 30)),
          dy(random_buffer(shape.batch * shape.out_channels * shape.pixels(), -1e-3f, 1e-3f, 31)),
          y(dy.size()),
          dx(x.size()),
          dw(w.size()),
          workspace(static_cast<std::size_t>(cnnlite::kernels::conv2d_workspace_size(shape))) {}
};

// cnnlite's kernels, called as ops/conv2d.hpp calls them: backward_data is conv2d_backward
// asked for dx only (what a frozen layer's backward runs), backward_weights the same call asked
// for dW only. Returns the pass's output (y, dx or dw).
const Buffer& cnnlite_conv_pass(ModernConvData& d, ConvPass pass) {
    const ConvShape& s = d.s;
    switch (pass) {
        case ConvPass::forward:
            cnnlite::kernels::conv2d_forward(s, d.x.data(), d.w.data(), static_cast<const float*>(nullptr), false,
                                             d.y.data(), d.workspace.data());
            return d.y;
        case ConvPass::backward_data:
            cnnlite::kernels::conv2d_backward(s, d.x.data(), d.w.data(), d.y.data(), d.dy.data(), false,
                                              static_cast<float*>(nullptr), static_cast<float*>(nullptr), d.dx.data(),
                                              d.workspace.data());
            return d.dx;
        case ConvPass::backward_weights:
            cnnlite::kernels::conv2d_backward(s, d.x.data(), d.w.data(), d.y.data(), d.dy.data(), false, d.dw.data(),
                                              static_cast<float*>(nullptr), static_cast<float*>(nullptr),
                                              d.workspace.data());
            return d.dw;
    }
    return d.y;
}

void run_cnnlite_conv(benchmark::State& state, const ModernConv& c, ConvPass pass,
                      cnnlite::kernels::ConvAlgorithm algorithm = cnnlite::kernels::ConvAlgorithm::automatic,
                      bool winograd = true) {
    set_threads(state);
    ConvShape shape = c.shape();
    shape.algorithm = algorithm;
    shape.winograd = winograd;
    ModernConvData d(shape);
    for (auto _ : state) {
        cnnlite_conv_pass(d, pass);
        benchmark::ClobberMemory();
    }
    roofline_counters(state, d.s);
}

// The stride-1 3x3 convolutions of prediction's channels-last groups (nn/channels_last_plan.hpp)
// at batch 64, 16 groups of 4 images handed out to the threads as the plan hands them out: the
// direct product (channels_last_conv, tile 0) or Winograd's F(tile x tile, 3x3)
// (kernels/winograd.hpp). FLOP/s count the direct convolution's multiply-adds, so that the
// three ways compare by time; with Winograd's the fraction of the FMA peak can pass 100%.
const ModernConv winograd_convs[] = {
    {"c16_28x28", 16, 16, 28, 1}, {"c32_28x28", 32, 32, 28, 1}, {"c64_14x14", 64, 64, 14, 1},
    {"c128_7x7", 128, 128, 7, 1}, {"c32_7x7", 32, 32, 7, 1},    {"c64_6x6", 64, 64, 6, 1},
    {"c64_5x5", 64, 64, 5, 1},    {"c256_4x4", 256, 256, 4, 1}, {"c64_4x4", 64, 64, 4, 1},
    {"c8_28x28", 8, 8, 28, 1},
};

void run_channels_last_conv(benchmark::State& state, const ModernConv& c, Index tile) {
    namespace k = cnnlite::kernels;
    set_threads(state);
    ConvShape s = c.shape();
    s.batch = 1;
    const Index C = s.in_channels, O = s.out_channels, HW = c.size * c.size, P = s.pixels(), G = k::channels_last_group;
    const Index groups = batch / G;
    Buffer x = random_buffer(groups * k::channels_last_group_floats(HW, C), -1, 1, 11);
    for (Index g = 0; g < groups; ++g) k::channels_last_zeros(x.data() + g * k::channels_last_group_floats(HW, C), HW, C);
    const Buffer w = random_buffer(O * C * 9, -0.1f, 0.1f, 12), bias = random_buffer(O, -0.1f, 0.1f, 13);
    Buffer wf(w.size()), u(static_cast<std::size_t>(tile > 0 ? k::WinogradTiles(s, tile).points() * C * O : 0));
    k::forward_filters(s, w.data(), wf.data());
    if (tile > 0 && !k::winograd_filters(s, tile, w.data(), u.data())) state.SkipWithError("filters out of range");
    std::vector<std::int32_t> offsets(static_cast<std::size_t>(G * P * 9));
    k::forward_run_offsets(s, G, static_cast<std::int32_t>(G * HW * C), offsets.data());
    const int threads = static_cast<int>(state.range(0));
    Buffer y(static_cast<std::size_t>(groups * G * P * O));
    Buffer scratch(static_cast<std::size_t>(threads * (tile > 0 ? k::winograd_scratch_floats(s, tile) : 0)));
    const Index tiles = tile > 0 ? G * k::WinogradTiles(s, tile).per_image() : 0;
    for (auto _ : state) {
#pragma omp parallel for schedule(dynamic)
        for (Index g = 0; g < groups; ++g) {
            const float* xg = x.data() + g * k::channels_last_group_floats(HW, C);
            float* yg = y.data() + g * G * P * O;
            if (tile == 0)
                k::channels_last_conv(s, xg, wf.data(), offsets.data(), bias.data(), nullptr, true, yg, 0, G * P);
            else
                k::channels_last_winograd(s, tile, G, xg, u.data(), wf.data(), offsets.data(), bias.data(), nullptr, true,
                                          yg, k::WinogradPart{0, tiles, 0, O},
                                          scratch.data() + cnnlite::thread_index() * k::winograd_scratch_floats(s, tile));
        }
        benchmark::ClobberMemory();
    }
    roofline_counters(state, c.shape());
}

#ifdef CNNLITE_BENCH_ONEDNN
// oneDNN on the same shape and thread count (its OpenMP team is the one set_num_threads sets).
// The reorders into its layouts happen when the primitive is made, outside the timed loop.
void run_onednn_conv(benchmark::State& state, const ModernConv& c, ConvPass pass) {
    set_threads(state);
    ModernConvData d(c.shape());
    const auto direction = pass == ConvPass::forward         ? bench_onednn::Direction::forward
                           : pass == ConvPass::backward_data ? bench_onednn::Direction::backward_data
                                                             : bench_onednn::Direction::backward_weights;
    bench_onednn::Conv conv(d.s, direction, d.x.data(), d.w.data(), d.dy.data());
    // Same shape, same padding, same result: checked against cnnlite once, before timing.
    conv.run();
    const Buffer& ours = cnnlite_conv_pass(d, pass);
    Buffer theirs(ours.size());
    conv.output(theirs.data());
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        err = std::max(err, static_cast<double>(std::abs(ours[i] - theirs[i])));
        scale = std::max(scale, static_cast<double>(std::abs(ours[i])));
    }
    if (!(err <= 1e-4 * scale)) {
        state.SkipWithError(("oneDNN's result differs from cnnlite's: max |difference| " + std::to_string(err) +
                             ", max |value| " + std::to_string(scale)).c_str());
        return;
    }
    for (auto _ : state) conv.run();
    roofline_counters(state, d.s);
    state.SetLabel(conv.implementation());
}
#endif

constexpr Index triad_l2 = 32 * 1024;          // 3 x 128 KiB: inside each core's 512 KiB L2
constexpr Index triad_l3 = 1024 * 1024;        // 3 x 4 MiB: inside the 32 MiB L3
constexpr Index triad_dram = 16 * 1024 * 1024; // 3 x 64 MiB: main memory

const char* triad_for(double footprint) {
    if (footprint <= 512.0 * 1024) return "ceiling/triad_L2";
    if (footprint <= 24.0 * 1024 * 1024) return "ceiling/triad_L3";
    return "ceiling/triad_DRAM";
}

// ---------------------------------------------------------------------------------------------
// Registration, in running order: ceilings first (OpenBLAS last: its threads stay awake a while).

// ---------------------------------------------------------------------------------------------
// Whole-network inference with and without the channels-last plan (nn/channels_last_plan.hpp)
// on a small VGG for 28x28 images: two 3x3 convolutions with ReLU at 28x28 (32 filters), max
// pooling, two at 14x14 (64), max pooling, dropout, Flatten, Dense(128, relu), Dense(10,
// softmax). ResNet-8's figures come from benchmarks/compare, which reads its model file.

cnnlite::Model<float> vgg_like() {
    using namespace cnnlite;
    auto in = Input<float>({1, 28, 28});
    Conv2dOptions o;
    o.kernel_size = {3, 3};
    o.padding = Padding::same();
    o.activation = Activation::relu;
    o.filters = 32;
    Symbolic<float> h = MaxPool2D<float>(2, 2)(Conv2D<float>(o)(Conv2D<float>(o)(in)));
    o.filters = 64;
    h = Dropout<float>(0.25)(MaxPool2D<float>(2, 2)(Conv2D<float>(o)(Conv2D<float>(o)(h))));
    h = Dense<float>(128).activation("relu")(Flatten<float>()(h));
    return Model<float>(in, Dense<float>(10).activation("softmax")(h), 0);
}

template <bool ChannelsLast, Index Batch>
void BM_vgg_inference(benchmark::State& state) {
    set_threads(state);
    static const cnnlite::Model<float> model = vgg_like();
    static const cnnlite::InferenceModel<float> prepared(model, cnnlite::InferenceOptions{ChannelsLast, false});
    cnnlite::Tensor<float> x(cnnlite::Shape{Batch, 1, 28, 28});
    for (Index i = 0; i < x.numel(); ++i) x[i] = static_cast<float>((i * 37) % 256) / 255.0f;  // pixel-like values
    for (auto _ : state) benchmark::DoNotOptimize(prepared.predict(x).data());
    state.counters["images_per_second"] =
        benchmark::Counter(static_cast<double>(Batch) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void register_all() {
    const ConvShape pc = paper_conv(), dc = deep_conv();
    const double pooled = 4.0 * batch * 64 * 14 * 14;
    const Meta ceiling{Bound::ceiling, 0, "", ""};
    add("ceiling/triad_L2", BM_triad<triad_l2>, ceiling);
    add("ceiling/triad_L3", BM_triad<triad_l3>, ceiling);
    add("ceiling/triad_DRAM", BM_triad<triad_dram>, ceiling);
    add("ceiling/copy_DRAM", BM_copy<triad_dram>, ceiling);
    add("ceiling/fma_peak", BM_fma_peak, ceiling);
    add("ceiling/sgemm_eigen_square1024", BM_sgemm_eigen_square, ceiling);
    add("ceiling/sgemm_eigen/dense_forward", BM_sgemm_eigen_shape<0>, ceiling);
    add("ceiling/sgemm_eigen/dense_dx", BM_sgemm_eigen_shape<1>, ceiling);
    add("ceiling/sgemm_eigen/dense_dw", BM_sgemm_eigen_shape<2>, ceiling);
    add("ceiling/sgemm_eigen/dense_1_forward", BM_sgemm_eigen_shape<3>, ceiling);
    add("ceiling/sgemm_eigen/dense_1_dw", BM_sgemm_eigen_shape<4>, ceiling);
    add("ceiling/sgemm_eigen/conv_k4", BM_sgemm_eigen_shape<5>, ceiling);

    auto mem = [](double footprint, const char* what) { return Meta{Bound::memory, footprint, "", what}; };
    add("im2col/paper", BM_im2col<false>, mem(in_bytes(pc) + 4.0 * pc.patch() * pc.pixels() * 2, "1x28x28, 2x2 same"));
    add("im2col/c64_14x14_k3", BM_im2col<true>, mem(in_bytes(dc) + 4.0 * dc.patch() * dc.pixels() * 2, "64x14x14, 3x3 same"));
    add("col2im/paper", BM_col2im<false>, mem(in_bytes(pc) + 4.0 * pc.patch() * pc.pixels(), "1x28x28, 2x2 same"));
    add("col2im/c64_14x14_k3", BM_col2im<true>, mem(in_bytes(dc) + 4.0 * dc.patch() * dc.pixels(), "64x14x14, 3x3 same"));
    add("conv2d_forward/unfused", BM_conv_forward, mem(in_bytes(pc) + conv_out_bytes(pc), "conv+bias+ReLU, 64x64x28x28 out"));
    add("conv2d_backward/unfused", BM_conv_backward, mem(in_bytes(pc) + 2 * conv_out_bytes(pc), "dW, db (no dx)"));
    add("conv2d_forward/fused_relu_pool", BM_conv_relu_pool_forward, mem(in_bytes(pc) + 2 * pooled, "conv+ReLU+pool, 64x64x14x14 out"));
    add("conv2d_backward/fused_relu_pool", BM_conv_relu_pool_backward, mem(in_bytes(pc) + 3 * pooled, "dW, db (no dx)"));
    add("conv2d_forward/c64_14x14_k3", BM_conv_forward_deep, Meta{Bound::latency, 0, "", "K = 576, Eigen inside"});
    add("max_pool_forward/28x28", BM_max_pool_forward<28>, mem(4.0 * batch * 64 * 28 * 28 * 1.5, "64x64x28x28 -> 14x14"));
    add("max_pool_backward/28x28", BM_max_pool_backward<28>, mem(4.0 * batch * 64 * 28 * 28 * 1.5, "scatter to argmax"));
    add("max_pool_forward/14x14", BM_max_pool_forward<14>, mem(4.0 * batch * 64 * 14 * 14 * 1.5, "64x64x14x14 -> 7x7"));
    add("max_pool_backward/14x14", BM_max_pool_backward<14>, mem(4.0 * batch * 64 * 14 * 14 * 1.5, "scatter to argmax"));
    add("dropout_forward/12544", BM_dropout_forward, mem(3 * pooled, "rate 0.3, [64, 12544]"));
    add("dropout_max_pool_forward/14x14", BM_dropout_max_pool_forward, mem(1.75 * pooled, "fused, [64, 12544] -> 7x7"));
    add("dropout_max_pool_backward/14x14", BM_dropout_max_pool_backward, mem(1.75 * pooled, "scatter to the winners"));
    add("adam_update/805962", BM_adam_update, mem(16.0 * paper_parameters, "fused, Keras epsilon"));
    add("softmax_cross_entropy/64x10", BM_softmax_cross_entropy, Meta{Bound::latency, 0, "", "[64, 10] logits"});
    const double activation = 4.0 * batch * 32 * 28 * 28;
    add("batch_norm_relu/unfused/64x32x28x28", BM_batch_norm_relu<false>,
        mem(14 * activation, "training: batch_norm, relu; forward + backward"));
    add("batch_norm_relu/fused/64x32x28x28", BM_batch_norm_relu<true>,
        mem(11 * activation, "training: batch_norm_relu; forward + backward"));
    add("dense_forward/3136x256", BM_dense_forward<3136, 256, true>,
        Meta{Bound::gemm, 0, "ceiling/sgemm_eigen/dense_forward", "linear op + ReLU"});
    add("dense_backward/3136x256", BM_dense_backward<3136, 256, true>,
        Meta{Bound::gemm, 0, "ceiling/sgemm_eigen/dense_dx", "linear op: dx, dW, db"});
    add("dense_forward/256x10", BM_dense_forward<256, 10, false>,
        Meta{Bound::gemm, 0, "ceiling/sgemm_eigen/dense_1_forward", "linear op (logits)"});
    add("dense_backward/256x10", BM_dense_backward<256, 10, false>,
        Meta{Bound::gemm, 0, "ceiling/sgemm_eigen/dense_1_dw", "linear op: dx, dW, db"});

    const Meta network{Bound::latency, 0, "", "small VGG, InferenceModel::predict"};
    add("inference/vgg_like/planes/batch:256", BM_vgg_inference<false, 256>, network);
    add("inference/vgg_like/channels_last/batch:256", BM_vgg_inference<true, 256>, network);
    add("inference/vgg_like/planes/batch:1", BM_vgg_inference<false, 1>, network);
    add("inference/vgg_like/channels_last/batch:1", BM_vgg_inference<true, 1>, network);

    for (const ModernConv& c : modern_convs)
        for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weights}) {
            const std::string name = std::string("conv3x3/") + c.name + "/" + pass_name(pass);
            const Meta meta{Bound::fma, 0, "", "ResNet-8 3x3, cnnlite"};
            add(name, [&c, pass](benchmark::State& state) { run_cnnlite_conv(state, c, pass); }, meta);
#ifdef CNNLITE_BENCH_ONEDNN
            add("onednn/" + name, [&c, pass](benchmark::State& state) { run_onednn_conv(state, c, pass); },
                Meta{Bound::fma, 0, "", "ResNet-8 3x3, oneDNN"});
#endif
            // The per-shape choice of kernels/implicit_conv.hpp, indirect_conv.hpp and
            // winograd_planes.hpp: each shape every way (not the stem, whose 9 taps take the
            // direct loop); "direct" is the automatic choice without Winograd's transforms.
            if (c.in_channels * 9 <= cnnlite::kernels::direct_conv_max_patch) continue;
            using cnnlite::kernels::ConvAlgorithm;
            struct Way {
                ConvAlgorithm algorithm;
                bool winograd;
                const char *name, *description;
            };
            for (const Way way : {Way{ConvAlgorithm::unfold, false, "unfold", "im2col + products"},
                                  Way{ConvAlgorithm::in_place, false, "in_place", "padded image read in place"},
                                  Way{ConvAlgorithm::indirect, false, "indirect", "channels-last rows through offsets"},
                                  Way{ConvAlgorithm::automatic, false, "direct", "automatic, no Winograd"}})
                add(std::string("conv_algorithm/") + c.name + "/" + pass_name(pass) + "/" + way.name,
                    [&c, pass, a = way.algorithm, wg = way.winograd](benchmark::State& state) {
                        run_cnnlite_conv(state, c, pass, a, wg);
                    },
                    Meta{Bound::fma, 0, "", way.description});
        }

    // Depthwise: the direct loops over the planes (kernels/depthwise_conv.hpp) and the grouped
    // path's im2col and one-row products they replace.
    for (const ModernConv& c : depthwise_convs)
        for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weights}) {
            using cnnlite::kernels::ConvAlgorithm;
            for (const auto& [algorithm, way] : {std::pair{ConvAlgorithm::automatic, "direct"}, std::pair{ConvAlgorithm::unfold, "unfold"}})
                add(std::string("depthwise/") + c.name + "/" + pass_name(pass) + "/" + way,
                    [&c, pass, a = algorithm](benchmark::State& state) { run_cnnlite_conv(state, c, pass, a); },
                    Meta{Bound::memory, modern_bytes(c.shape()), "", "depthwise 3x3, batch 64"});
        }

    // Prediction's stride-1 3x3 convolutions, direct and by Winograd's transforms: the
    // measurements behind kernels::winograd_tile_for.
    if constexpr (cnnlite::kernels::register_gemm_available)
        for (const ModernConv& c : winograd_convs)
            for (const auto& [tile, way] : {std::pair<Index, const char*>{0, "direct"}, {2, "f2x2"}, {4, "f4x4"}})
                add(std::string("winograd/") + c.name + "/" + way,
                    [&c, t = tile](benchmark::State& state) { run_channels_last_conv(state, c, t); },
                    Meta{Bound::fma, 0, "", "channels-last forward, batch 64"});

    add("ceiling/sgemm_openblas_square1024", BM_sgemm_openblas_square, ceiling);
    add("ceiling/sgemm_openblas/dense_forward", BM_sgemm_openblas_shape<0>, ceiling);
    add("ceiling/sgemm_openblas/dense_dx", BM_sgemm_openblas_shape<1>, ceiling);
    add("ceiling/sgemm_openblas/dense_dw", BM_sgemm_openblas_shape<2>, ceiling);
    add("ceiling/sgemm_openblas/dense_1_forward", BM_sgemm_openblas_shape<3>, ceiling);
    add("ceiling/sgemm_openblas/dense_1_dw", BM_sgemm_openblas_shape<4>, ceiling);
    add("ceiling/sgemm_openblas/conv_k4", BM_sgemm_openblas_shape<5>, ceiling);
}

// ---------------------------------------------------------------------------------------------
// The summary: the console output as usual, then each kernel's rate against its ceiling.

struct Result {
    double bandwidth = 0, flops = 0, micros = 0;
};

class SummaryReporter : public benchmark::ConsoleReporter {
public:
    SummaryReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs) {
            if (run.error_occurred) continue;
            const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            if (run.run_type == Run::RT_Aggregate && !median) continue;
            if (run.run_type == Run::RT_Iteration && run.repetitions > 1) continue;  // wait for the median
            Result r;
            auto get = [&](const char* key) {
                auto it = run.counters.find(key);
                return it == run.counters.end() ? 0.0 : it->second.value;
            };
            r.bandwidth = get("bandwidth");
            r.flops = get("flops");
            r.micros = run.GetAdjustedRealTime();
            results_[{run.run_name.function_name, threads_of(run.run_name.args)}] = r;
        }
        ConsoleReporter::ReportRuns(runs);
    }

    void print_summary() const {
        std::printf("\nEfficiency against the ceilings measured in this run (bandwidth in GB/s, rates in GFLOP/s)\n");
        for (int threads : {1, 2}) {
            std::printf("\n-- %d thread%s --\n", threads, threads > 1 ? "s" : "");
            std::printf("%-50s %-32s %10s   %-40s %6s\n", "kernel", "what", "rate", "binding ceiling", "eff.");
            for (const auto& [name, meta] : registry()) {
                const Result* r = find(name, threads);
                if (!r || meta.bound == Bound::ceiling) continue;
                char rate[32], bound[96] = "-", eff[16] = "";
                if (meta.bound == Bound::memory) {
                    std::snprintf(rate, sizeof rate, "%.1f GB/s", r->bandwidth / 1e9);
                    const char* ceiling = triad_for(meta.footprint);
                    if (const Result* c = find(ceiling, threads)) {
                        std::snprintf(bound, sizeof bound, "%s %.1f GB/s (%.1f MB)", ceiling + 8, c->bandwidth / 1e9,
                                      meta.footprint / 1e6);
                        std::snprintf(eff, sizeof eff, "%.0f%%", 100 * r->bandwidth / c->bandwidth);
                    }
                } else if (meta.bound == Bound::gemm) {
                    std::snprintf(rate, sizeof rate, "%.1f GF/s", r->flops / 1e9);
                    const Result* shape = find(meta.gemm_shape, threads);
                    const Result* square = find("ceiling/sgemm_eigen_square1024", threads);
                    if (shape && square) {
                        std::snprintf(bound, sizeof bound, "%s %.1f | square %.1f", meta.gemm_shape.c_str() + 8,
                                      shape->flops / 1e9, square->flops / 1e9);
                        std::snprintf(eff, sizeof eff, "%.0f%%|%.0f%%", 100 * r->flops / shape->flops,
                                      100 * r->flops / square->flops);
                    }
                } else if (meta.bound == Bound::fma) {
                    std::snprintf(rate, sizeof rate, "%.1f GF/s", r->flops / 1e9);
                    std::snprintf(bound, sizeof bound, "FMA peak %.1f GF/s", fma_peak(threads) / 1e9);
                    std::snprintf(eff, sizeof eff, "%.0f%%", 100 * r->flops / fma_peak(threads));
                } else if (r->flops > 0) {
                    std::snprintf(rate, sizeof rate, "%.1f GF/s", r->flops / 1e9);
                } else {
                    std::snprintf(rate, sizeof rate, "%.2f us", r->micros);
                }
                std::printf("%-50s %-32s %10s   %-40s %6s\n", name.c_str(), meta.description.c_str(), rate, bound, eff);
            }
            // The GEMM ceilings side by side: Eigen (what the library uses) and OpenBLAS.
            const OpenBlas& blas = OpenBlas::get();
            if (blas.sgemm)
                std::printf("OpenBLAS kernels: %s%s\n", blas.core.empty() ? "?" : blas.core.c_str(),
                            blas.core_set_here ? " (OPENBLAS_CORETYPE=SkylakeX set by this benchmark)" : "");
            std::printf("%-34s %12s %12s\n", "SGEMM shape", "Eigen GF/s", "OpenBLAS");
            auto row = [&](const std::string& label, const std::string& eigen, const std::string& blas) {
                const Result* e = find(eigen, threads);
                const Result* b = find(blas, threads);
                if (!e && !b) return;
                std::printf("%-34s %12.1f %12s\n", label.c_str(), e ? e->flops / 1e9 : 0.0,
                            b ? std::to_string(static_cast<int>(std::lround(b->flops / 1e9))).c_str() : "-");
            };
            row("square 1024", "ceiling/sgemm_eigen_square1024", "ceiling/sgemm_openblas_square1024");
            for (const GemmCase& c : gemm_cases)
                row(c.name, std::string("ceiling/sgemm_eigen/") + c.name, std::string("ceiling/sgemm_openblas/") + c.name);
            for (const char* t : {"ceiling/triad_L2", "ceiling/triad_L3", "ceiling/triad_DRAM", "ceiling/copy_DRAM"})
                if (const Result* c = find(t, threads)) std::printf("%-34s %12.1f GB/s\n", t + 8, c->bandwidth / 1e9);
            print_roofline(threads);
        }
    }

    // The modern model's 3x3 convolutions against the FMA peak, and against oneDNN.
    void print_roofline(int threads) const {
        bool any = false;
        for (const ModernConv& c : modern_convs)
            for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weights}) {
                const std::string name = std::string("conv3x3/") + c.name + "/" + pass_name(pass);
                const Result* ours = find(name, threads);
                const Result* dnnl = find("onednn/" + name, threads);
                if (!ours && !dnnl) continue;
                if (!any) {
                    std::printf("\nResNet-8 3x3 convolutions, batch 64 (FMA peak %.1f GF/s, %s x %d chains)\n",
                                fma_peak(threads) / 1e9, fma_isa, fma_chains);
#ifdef CNNLITE_BENCH_ONEDNN
                    std::printf("oneDNN %d.%d.%d, ISA %s, reorders into its layouts not timed\n", DNNL_VERSION_MAJOR,
                                DNNL_VERSION_MINOR, DNNL_VERSION_PATCH, bench_onednn::isa_name());
#endif
                    std::printf("%-40s %11s %6s %11s %6s %16s\n", "convolution", "cnnlite", "peak", "oneDNN", "peak",
                                "cnnlite/oneDNN");
                    any = true;
                }
                auto gf = [](const Result* r) {
                    char text[16] = "-";
                    if (r) std::snprintf(text, sizeof text, "%.1f", r->flops / 1e9);
                    return std::string(text);
                };
                auto pct = [&](const Result* r) {
                    return r ? std::to_string(std::lround(100 * r->flops / fma_peak(threads))) + "%" : std::string("-");
                };
                char ratio[16] = "-";
                if (ours && dnnl) std::snprintf(ratio, sizeof ratio, "%.2f", ours->flops / dnnl->flops);
                std::printf("%-40s %11s %6s %11s %6s %16s\n", (std::string(c.name) + " " + pass_name(pass)).c_str(),
                            gf(ours).c_str(), pct(ours).c_str(), gf(dnnl).c_str(), pct(dnnl).c_str(), ratio);
            }
    }

private:
    static int threads_of(const std::string& args) {
        const auto pos = args.find("threads:");
        return pos == std::string::npos ? 1 : std::atoi(args.c_str() + pos + 8);
    }
    const Result* find(const std::string& name, int threads) const {
        auto it = results_.find({name, threads});
        return it == results_.end() ? nullptr : &it->second;
    }
    std::map<std::pair<std::string, int>, Result> results_;
};

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    // The peaks the fractions refer to, measured before anything else runs; also in the JSON
    // output's context, for benchmarks/roofline.py.
    for (int threads : {1, 2}) {
        std::fprintf(stderr, "FP32 FMA peak (%s, %d chains): %.1f GFLOP/s on %d thread%s\n", fma_isa, fma_chains,
                     fma_peak(threads) / 1e9, threads, threads > 1 ? "s" : "");
        benchmark::AddCustomContext("fma_peak_threads_" + std::to_string(threads), std::to_string(fma_peak(threads)));
    }
    benchmark::AddCustomContext("fma_isa", fma_isa);
#ifdef CNNLITE_BENCH_ONEDNN
    benchmark::AddCustomContext("onednn", std::to_string(DNNL_VERSION_MAJOR) + "." + std::to_string(DNNL_VERSION_MINOR) +
                                              "." + std::to_string(DNNL_VERSION_PATCH) + " " + bench_onednn::isa_name());
#endif
    SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_summary();
    benchmark::Shutdown();
    return 0;
}
