// oneDNN's f32 convolution (forward, backward-data, backward-weights) on a cnnlite ConvShape, for
// bench_kernels' side-by-side figures. Built only with CNNLITE_BENCH_ONEDNN (Debian: libdnnl-dev,
// oneDNN 2.x); the library itself never uses oneDNN.
//
// Every tensor has format_tag::any, so oneDNN picks the layouts its fastest implementation wants
// (blocked nChw16c and the like); the random NCHW / OIHW data are reordered into them once, when
// the primitive is made, so the timed run() is the convolution alone. In a framework those
// reorders happen once per layer boundary or are avoided by keeping the blocked layout.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <string>
#include <unordered_map>

#include "cnnlite/kernels/conv2d.hpp"

namespace bench_onednn {

enum class Direction { forward, backward_data, backward_weights };

/// The ISA oneDNN dispatches to on this CPU (it may not recognise a new one and fall back).
inline const char* isa_name() {
    switch (dnnl::get_effective_cpu_isa()) {
        case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
        case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
        case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
        case dnnl::cpu_isa::avx512_core: return "avx512_core";
        case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
        case dnnl::cpu_isa::avx2: return "avx2";
        case dnnl::cpu_isa::avx: return "avx";
        case dnnl::cpu_isa::sse41: return "sse41";
        default: return "other";
    }
}

/// One primitive with its arguments in oneDNN's chosen layouts, ready to run. Make it after the
/// thread count is set: oneDNN sizes its blocking for the OpenMP team it sees at creation.
class Conv {
public:
    /// x [N, C, H, W], w [O, C, kh, kw] and dy [N, O, OH, OW] in plain layouts (the inputs the
    /// direction reads are copied; the others may be null).
    Conv(const cnnlite::kernels::ConvShape& s, Direction direction, const float* x, const float* w, const float* dy)
        : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
        using dims = dnnl::memory::dims;
        using tag = dnnl::memory::format_tag;
        const auto& g = s.window;
        const dims src{s.batch, s.in_channels, g.in_h, g.in_w};
        const dims wei{s.out_channels, s.in_channels, g.kernel_h, g.kernel_w};
        const dims dst{s.batch, s.out_channels, s.out_h(), s.out_w()};
        const dims strides{g.stride_h, g.stride_w}, pad_l{g.pad_top, g.pad_left}, pad_r{g.pad_bottom, g.pad_right};
        auto any = [](const dims& d) { return dnnl::memory::desc(d, dnnl::memory::data_type::f32, tag::any); };

        // Backward primitives need the forward one as a hint (it fixes the layouts they share).
        const dnnl::convolution_forward::primitive_desc fwd(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                            any(src), any(wei), any(dst), strides, pad_l, pad_r),
            engine_);
        switch (direction) {
            case Direction::forward:
                primitive_ = dnnl::convolution_forward(fwd);
                impl_ = fwd.impl_info_str();
                args_[DNNL_ARG_SRC] = input(x, src, tag::nchw, fwd.src_desc());
                args_[DNNL_ARG_WEIGHTS] = input(w, wei, tag::oihw, fwd.weights_desc());
                args_[DNNL_ARG_DST] = dnnl::memory(fwd.dst_desc(), engine_);
                output_arg_ = DNNL_ARG_DST;
                break;
            case Direction::backward_data: {
                const dnnl::convolution_backward_data::primitive_desc pd(
                    dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, any(src), any(wei),
                                                          any(dst), strides, pad_l, pad_r),
                    engine_, fwd);
                primitive_ = dnnl::convolution_backward_data(pd);
                impl_ = pd.impl_info_str();
                args_[DNNL_ARG_DIFF_DST] = input(dy, dst, tag::nchw, pd.diff_dst_desc());
                args_[DNNL_ARG_WEIGHTS] = input(w, wei, tag::oihw, pd.weights_desc());
                args_[DNNL_ARG_DIFF_SRC] = dnnl::memory(pd.diff_src_desc(), engine_);
                output_arg_ = DNNL_ARG_DIFF_SRC;
                break;
            }
            case Direction::backward_weights: {
                const dnnl::convolution_backward_weights::primitive_desc pd(
                    dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, any(src), any(wei),
                                                             any(dst), strides, pad_l, pad_r),
                    engine_, fwd);
                primitive_ = dnnl::convolution_backward_weights(pd);
                impl_ = pd.impl_info_str();
                args_[DNNL_ARG_SRC] = input(x, src, tag::nchw, pd.src_desc());
                args_[DNNL_ARG_DIFF_DST] = input(dy, dst, tag::nchw, pd.diff_dst_desc());
                args_[DNNL_ARG_DIFF_WEIGHTS] = dnnl::memory(pd.diff_weights_desc(), engine_);
                output_arg_ = DNNL_ARG_DIFF_WEIGHTS;
                break;
            }
        }
    }

    /// One convolution, waited for.
    void run() {
        primitive_.execute(stream_, args_);
        stream_.wait();
    }
    /// oneDNN's name for the implementation it chose, e.g. "brgconv:avx512_core".
    const std::string& implementation() const { return impl_; }

    /// The pass's output (y, dx or dw) copied into `plain` in NCHW / OIHW order.
    void output(float* plain) {
        dnnl::memory& out = args_.at(output_arg_);
        const dnnl::memory::desc& d = out.get_desc();
        const dnnl::memory::format_tag tag =
            output_arg_ == DNNL_ARG_DIFF_WEIGHTS ? dnnl::memory::format_tag::oihw : dnnl::memory::format_tag::nchw;
        dnnl::memory user({d.dims(), dnnl::memory::data_type::f32, tag}, engine_, plain);
        dnnl::reorder(out, user).execute(stream_, out, user);
        stream_.wait();
    }

private:
    // Plain-layout data copied into a buffer of the primitive's layout (the untimed reorder).
    dnnl::memory input(const float* data, const dnnl::memory::dims& d, dnnl::memory::format_tag plain,
                       const dnnl::memory::desc& wanted) {
        dnnl::memory user({d, dnnl::memory::data_type::f32, plain}, engine_, const_cast<float*>(data));
        dnnl::memory mem(wanted, engine_);
        dnnl::reorder(user, mem).execute(stream_, user, mem);
        stream_.wait();
        return mem;
    }

    dnnl::engine engine_;
    dnnl::stream stream_;
    dnnl::primitive primitive_;
    std::unordered_map<int, dnnl::memory> args_;
    int output_arg_ = DNNL_ARG_DST;
    std::string impl_;
};

}  // namespace bench_onednn
