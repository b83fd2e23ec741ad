// Depthwise convolutions with the channels in the vector. kernels/depthwise_conv.hpp runs them
// plane by plane: on a 7x7 or 14x14 plane each tap's vector loop has a handful of iterations,
// and the weight gradient ends every tap of every plane in a horizontal sum. Here the work is
// cut into blocks of 16 channels of one image, and each block is transposed into a zero-padded
// channels-last buffer,
//
//     block[padded row][padded column][16 channels],
//
// so that one tap of one output pixel is 16 channels side by side whatever the plane's size
// (oneDNN's depthwise kernels block channels the same way). The forward keeps a chunk of taps'
// weights in registers and forms each output pixel's sums in registers; the weight gradient
// keeps a chunk of taps' sums in registers along each output row; the input gradient adds
// each output pixel's gradient times the weights back into the padded block, whose inner part
// is then transposed back to planes.
// Shapes: one output channel per input channel (multiplier 1) and a multiple of 16 channels;
// the others stay on the planes.
// Every tap counts, the padding's too (w * 0), and every sum runs in a fixed order (taps in
// the filter's order from 0 for an output; output pixels in order for a weight gradient, the
// batch in fixed slices, kernels/parallel.hpp), so results are the same bits at any thread
// count and NaN and infinities reach what they reach in the unfolded product.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cnnlite/core/threading.hpp"
#include "cnnlite/kernels/activation.hpp"
#include "cnnlite/kernels/conv_geometry.hpp"
#include "cnnlite/kernels/parallel.hpp"
#include "cnnlite/kernels/transpose.hpp"

namespace cnnlite::kernels {

/// Channels per block.
constexpr std::int64_t depthwise_block = 16;

/// Whether the depthwise shape `s` (depthwise_conv(s)) runs on channel blocks: multiplier 1 and
/// a multiple of depthwise_block channels.
inline bool depthwise_blocked(const ConvShape& s) {
    return s.out_channels == s.in_channels && s.in_channels % depthwise_block == 0;
}

namespace detail {

/// The blocked layout of one shape: the padded block's size and where each tap reads in it.
struct DepthwiseBlocks {
    std::int64_t C, in_h, in_w, out_h, out_w, taps, padded_h, padded_w, top, left, sh, sw, kw, dh, dw;

    explicit DepthwiseBlocks(const ConvShape& s)
        : C(s.in_channels), in_h(s.window.in_h), in_w(s.window.in_w), out_h(s.out_h()), out_w(s.out_w()),
          taps(s.window.kernel_h * s.window.kernel_w), padded_h(in_h + s.window.pad_top + s.window.pad_bottom),
          padded_w(in_w + s.window.pad_left + s.window.pad_right), top(s.window.pad_top), left(s.window.pad_left),
          sh(s.window.stride_h), sw(s.window.stride_w), kw(s.window.kernel_w), dh(s.dilation_h), dw(s.dilation_w) {}
    /// Where tap t reads, from the read of its output pixel's tap 0, in floats.
    std::int64_t offset(std::int64_t t) const { return ((t / kw) * dh * padded_w + (t % kw) * dw) * depthwise_block; }
    /// Floats of the padded block and of an output block.
    std::int64_t padded_floats() const { return padded_h * padded_w * depthwise_block; }
    std::int64_t out_floats() const { return out_h * out_w * depthwise_block; }
    /// Where output pixel (oy, ox)'s tap 0 reads in the padded block.
    std::int64_t read(std::int64_t oy, std::int64_t ox) const {
        return (oy * sh * padded_w + ox * sw) * depthwise_block;
    }
};

/// Lanes of one vector register of T on the build's target: the width the loops below work in,
/// so that each chunk's sums and weights fill whole registers.
template <class T>
constexpr int depthwise_lanes() {
#if defined(__AVX512F__)
    constexpr int bytes = 64;
#elif defined(__AVX__)
    constexpr int bytes = 32;
#else
    constexpr int bytes = 16;
#endif
    return static_cast<int>(std::min<std::size_t>(bytes / sizeof(T), depthwise_block));
}

/// The block's padded channels-last buffer from the 16 planes at `x` ([16, in_h * in_w]), the
/// padding zero: the planes transposed whole into `staging` (in_h * in_w * 16 floats), then
/// each image row copied to its place between its padding.
template <class T>
void to_padded_block(const DepthwiseBlocks& b, const T* x, T* staging, T* block) {
    transpose_plane(x, depthwise_block, b.in_h * b.in_w, staging);
    const std::int64_t row = b.padded_w * depthwise_block, left = b.left * depthwise_block,
                       inner = b.in_w * depthwise_block;
    std::fill(block, block + b.top * row, T(0));
    for (std::int64_t r = 0; r < b.in_h; ++r) {
        T* to = block + (r + b.top) * row;
        std::fill(to, to + left, T(0));
        std::memcpy(to + left, staging + r * inner, static_cast<std::size_t>(inner) * sizeof(T));
        std::fill(to + left + inner, to + row, T(0));
    }
    std::fill(block + (b.top + b.in_h) * row, block + b.padded_floats(), T(0));
}

/// The 16 planes ([16, P], at `dy`) channels-last into `g` [P, 16], masked where y <= 0 when
/// `y` is given (`planes` holds 16 * P floats of scratch for the masked planes).
template <class T>
void to_gradient_block(const T* dy, const T* y, std::int64_t P, T* planes, T* g) {
    if (y) {
        masked_gradient(dy, y, depthwise_block, P, planes);
        dy = planes;
    }
    transpose_plane(dy, depthwise_block, P, g);
}

/// The filters of the block's 16 channels from w [C, taps] at channel c0, tap by tap:
/// wT [taps][16], so that a tap's 16 weights are one load.
template <class T>
const T* block_filters(const DepthwiseBlocks& b, const T* w, std::int64_t c0, T* wT) {
    for (std::int64_t v = 0; v < depthwise_block; ++v)
        for (std::int64_t t = 0; t < b.taps; ++t) wT[t * depthwise_block + v] = w[(c0 + v) * b.taps + t];
    return wT;
}

// V lanes of T as one value (GCC's and Clang's vector extension), loaded and stored unaligned:
// the loops below are written in these, so that the compiler keeps each tap's weights or sums in
// a register and reads a tap's channels as one vector (left to itself, it vectorises across the
// output pixels instead, with gathers).
template <class T, int V>
struct ChannelVectorOf {
    typedef T type __attribute__((vector_size(V * sizeof(T))));
};
template <class T, int V>
using ChannelVector = typename ChannelVectorOf<T, V>::type;

template <class T, int V>
ChannelVector<T, V> load_channels(const T* from) {
    ChannelVector<T, V> v;
    std::memcpy(&v, from, sizeof v);
    return v;
}

template <class T, int V>
void store_channels(T* to, const ChannelVector<T, V>& v) {
    std::memcpy(to, &v, sizeof v);
}

// The sums of taps [t0, t0 + K) for every output pixel of a block, lanes [h, h + V): forward
// (y += w * x, each pixel's sums in a register), input gradient (dx += w * g) or weight
// gradient (dw += g * x, the taps' sums in registers along each output row). `w` is the
// block's filters tap by tap (block_filters). The loops over the taps are unrolled on request:
// at -O2 GCC keeps the register arrays they index in memory.
template <class T, int K, int V>
void forward_taps(const DepthwiseBlocks& b, const T* block, const T* w, std::int64_t t0, std::int64_t h, T* out) {
    ChannelVector<T, V> wk[K];
    std::int64_t off[K];
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) {
        off[k] = b.offset(t0 + k);
        wk[k] = load_channels<T, V>(w + (t0 + k) * depthwise_block + h);
    }
    for (std::int64_t oy = 0; oy < b.out_h; ++oy)
        for (std::int64_t ox = 0; ox < b.out_w; ++ox) {
            const T* in = block + b.read(oy, ox) + h;
            T* o = out + (oy * b.out_w + ox) * depthwise_block + h;
            ChannelVector<T, V> acc = t0 == 0 ? ChannelVector<T, V>{} : load_channels<T, V>(o);
#pragma GCC unroll 16
            for (int k = 0; k < K; ++k) acc += wk[k] * load_channels<T, V>(in + off[k]);
            store_channels<T, V>(o, acc);
        }
}

template <class T, int K, int V>
void input_gradient_taps(const DepthwiseBlocks& b, const T* g, const T* w, std::int64_t t0, std::int64_t h,
                         T* block) {
    ChannelVector<T, V> wk[K];
    std::int64_t off[K];
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) {
        off[k] = b.offset(t0 + k);
        wk[k] = load_channels<T, V>(w + (t0 + k) * depthwise_block + h);
    }
    for (std::int64_t oy = 0; oy < b.out_h; ++oy)
        for (std::int64_t ox = 0; ox < b.out_w; ++ox) {
            T* to = block + b.read(oy, ox) + h;
            const ChannelVector<T, V> gp = load_channels<T, V>(g + (oy * b.out_w + ox) * depthwise_block + h);
#pragma GCC unroll 16
            for (int k = 0; k < K; ++k) store_channels<T, V>(to + off[k], load_channels<T, V>(to + off[k]) + wk[k] * gp);
        }
}

template <class T, int K, int V>
void weight_gradient_taps(const DepthwiseBlocks& b, const T* block, const T* g, std::int64_t t0, std::int64_t h,
                          T* partial) {
    // Each output row's products are summed in registers, then the rows' sums in `image`: two
    // short chains of additions instead of one as long as the plane (a tenth of the rounding
    // error at 28x28).
    ChannelVector<T, V> image[K] = {};
    std::int64_t off[K];
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) off[k] = b.offset(t0 + k);
    for (std::int64_t oy = 0; oy < b.out_h; ++oy) {
        ChannelVector<T, V> acc[K] = {};
        for (std::int64_t ox = 0; ox < b.out_w; ++ox) {
            const T* in = block + b.read(oy, ox) + h;
            const ChannelVector<T, V> gp = load_channels<T, V>(g + (oy * b.out_w + ox) * depthwise_block + h);
#pragma GCC unroll 16
            for (int k = 0; k < K; ++k) acc[k] += gp * load_channels<T, V>(in + off[k]);
        }
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) image[k] += acc[k];
    }
    // partial is [taps][C] at the block's channels: dW^T, as sum_slice_partials(transposed) reads it.
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) {
        T* to = partial + (t0 + k) * b.C + h;
        store_channels<T, V>(to, load_channels<T, V>(to) + image[k]);
    }
}

// Runs chunk(K, t0) over the taps in chunks of K = 9 (a 3x3 filter in one), then 4, then 1, so that
// each chunk's weights or sums stay in registers.
template <class Chunk>
void for_tap_chunks(std::int64_t taps, const Chunk& chunk) {
    std::int64_t t0 = 0;
    for (; t0 + 9 <= taps; t0 += 9) chunk(std::integral_constant<int, 9>{}, t0);
    for (; t0 + 4 <= taps; t0 += 4) chunk(std::integral_constant<int, 4>{}, t0);
    for (; t0 < taps; ++t0) chunk(std::integral_constant<int, 1>{}, t0);
}

}  // namespace detail

/// Floats of scratch per thread the blocked kernels need: a padded block and its staging (or
/// planes), two output blocks, and a block's filters.
inline std::int64_t depthwise_blocked_per_thread(const ConvShape& s) {
    const detail::DepthwiseBlocks b(s);
    return 2 * b.padded_floats() + 2 * b.out_floats() + b.taps * depthwise_block;
}

/// depthwise_conv_forward for a shape depthwise_blocked() accepts.
template <class T>
void depthwise_blocked_forward(const ConvShape& s, const T* x, const T* w, const T* bias, bool relu, T* y,
                               T* workspace, std::int64_t per_thread) {
    const detail::DepthwiseBlocks b(s);
    constexpr int V = detail::depthwise_lanes<T>();
    const std::int64_t blocks = b.C / depthwise_block, items = s.batch * blocks;
    const std::int64_t in_plane = b.in_h * b.in_w, out_plane = b.out_h * b.out_w;
#pragma omp parallel for schedule(static) if (items * depthwise_block * out_plane * b.taps >= parallel_threshold)
    for (std::int64_t item = 0; item < items; ++item) {
        const std::int64_t n = item / blocks, c0 = (item % blocks) * depthwise_block;
        T* block = workspace + thread_index() * per_thread;
        T* staging = block + b.padded_floats();
        T* out = staging + b.padded_floats();
        const T* wT = detail::block_filters(b, w, c0, out + b.out_floats());
        detail::to_padded_block(b, x + (n * b.C + c0) * in_plane, staging, block);
        for (std::int64_t h = 0; h < depthwise_block; h += V)
            detail::for_tap_chunks(b.taps, [&](auto K, std::int64_t t0) {
                detail::forward_taps<T, decltype(K)::value, V>(b, block, wT, t0, h, out);
            });
        T* yn = y + (n * b.C + c0) * out_plane;
        if constexpr (std::is_same_v<T, float>) {
            planes_with_bias_relu(out, out_plane, depthwise_block, bias ? bias + c0 : nullptr, relu, yn);
        } else {
            transpose_plane(out, out_plane, depthwise_block, yn);
            for (std::int64_t c = 0; c < depthwise_block; ++c) {
                const T add = bias ? bias[c0 + c] : T(0);
                T* yc = yn + c * out_plane;
                for (std::int64_t p = 0; p < out_plane; ++p) {
                    const T v = yc[p] + add;
                    yc[p] = relu && v <= T(0) ? T(0) : v;  // NaN stays NaN
                }
            }
        }
    }
}

/// depthwise_conv_backward for a shape depthwise_blocked() accepts (the same arguments; the
/// slices' partial sums after the per-thread scratch).
template <class T>
void depthwise_blocked_backward(const ConvShape& s, const T* x, const T* w, const T* y, const T* dy, bool relu, T* dw,
                                T* db, T* dx, T* workspace, std::int64_t per_thread) {
    const detail::DepthwiseBlocks b(s);
    constexpr int V = detail::depthwise_lanes<T>();
    const std::int64_t blocks = b.C / depthwise_block, items = s.batch * blocks;
    const std::int64_t in_plane = b.in_h * b.in_w, out_plane = b.out_h * b.out_w;
    const bool parallel = items * depthwise_block * out_plane * b.taps >= parallel_threshold;
    (void)parallel;  // read by the pragmas only
    const T* mask = relu ? y : nullptr;
    // The input gradient, block by block: the padded block of sums, its inner part to planes.
    if (dx) {
#pragma omp parallel for schedule(static) if (parallel)
        for (std::int64_t item = 0; item < items; ++item) {
            const std::int64_t n = item / blocks, c0 = (item % blocks) * depthwise_block;
            T* block = workspace + thread_index() * per_thread;
            T* planes = block + b.padded_floats();  // the padded block as planes, then copied inner part
            T* g = planes + b.padded_floats();
            T* masked = g + b.out_floats();
            const T* wT = detail::block_filters(b, w, c0, masked + b.out_floats());
            const std::int64_t at = (n * b.C + c0) * out_plane;
            detail::to_gradient_block(dy + at, mask ? mask + at : nullptr, out_plane, masked, g);
            std::fill(block, block + b.padded_floats(), T(0));
            for (std::int64_t h = 0; h < depthwise_block; h += V)
                detail::for_tap_chunks(b.taps, [&](auto K, std::int64_t t0) {
                    detail::input_gradient_taps<T, decltype(K)::value, V>(b, g, wT, t0, h, block);
                });
            const std::int64_t padded_plane = b.padded_h * b.padded_w;
            transpose_plane(block, padded_plane, depthwise_block, planes);
            T* dxn = dx + (n * b.C + c0) * in_plane;
            for (std::int64_t c = 0; c < depthwise_block; ++c)
                for (std::int64_t r = 0; r < b.in_h; ++r)
                    std::memcpy(dxn + c * in_plane + r * b.in_w, planes + c * padded_plane + (r + b.top) * b.padded_w + b.left,
                                static_cast<std::size_t>(b.in_w) * sizeof(T));
        }
    }
    if (!dw && !db) return;
    // The weight and bias gradients: per image, each block's sums into the image's slice of the
    // batch, [taps][C] then [C].
    T* partials = workspace + num_threads() * per_thread;
    const auto image = [&](std::int64_t n, T* scratch, T* partial) {
        T* block = scratch;
        T* staging = block + b.padded_floats();
        T* g = staging + b.padded_floats();
        T* masked = g + b.out_floats();
        for (std::int64_t c0 = 0; c0 < b.C; c0 += depthwise_block) {
            const std::int64_t at = (n * b.C + c0) * out_plane;
            detail::to_gradient_block(dy + at, mask ? mask + at : nullptr, out_plane, masked, g);
            // The bias gradient: each output row's sum, then the rows' sums, as the weights'.
            T image_sum[depthwise_block] = {};
            for (std::int64_t oy = 0; oy < b.out_h; ++oy) {
                T row_sum[depthwise_block] = {};
                for (std::int64_t ox = 0; ox < b.out_w; ++ox) {
#pragma omp simd
                    for (std::int64_t v = 0; v < depthwise_block; ++v) row_sum[v] += g[(oy * b.out_w + ox) * depthwise_block + v];
                }
#pragma omp simd
                for (std::int64_t v = 0; v < depthwise_block; ++v) image_sum[v] += row_sum[v];
            }
            for (std::int64_t v = 0; v < depthwise_block; ++v) partial[b.taps * b.C + c0 + v] += image_sum[v];
            if (!dw) continue;
            detail::to_padded_block(b, x + (n * b.C + c0) * in_plane, staging, block);
            for (std::int64_t h = 0; h < depthwise_block; h += V)
                detail::for_tap_chunks(b.taps, [&](auto K, std::int64_t t0) {
                    detail::weight_gradient_taps<T, decltype(K)::value, V>(b, block, g, t0, h, partial + c0);
                });
        }
    };
    const std::int64_t slices =
        detail::accumulate_in_slices(s.batch, parallel, workspace, per_thread, partials, b.C * (b.taps + 1), image);
    detail::sum_slice_partials(partials, slices, b.C, b.taps, dw, db, /*transposed=*/true);
}

}  // namespace cnnlite::kernels
