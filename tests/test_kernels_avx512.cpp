// The AVX-512 kernels against their portable versions: compiled with -mavx512f whatever the
// build targets (see test_kernels_avx2.cpp); on a CPU without AVX-512F the cases are skipped.
#include <doctest/doctest.h>

#include "conv_relu_pool_cases.hpp"
#include "depthwise_cases.hpp"
#include "inference_model_cases.hpp"
#include "register_gemm_cases.hpp"
#include "train_threads_cases.hpp"
#include "winograd_cases.hpp"

namespace {

bool cpu_has_avx512() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

}  // namespace

TEST_CASE("AVX-512 fused conv+ReLU+pool forward from window-major taps (16 windows per vector): the bits of the conv plane pooled row by row") {
    conv_relu_pool_cases::check_window_major_forward(cpu_has_avx512());
}

TEST_CASE("AVX-512 register_gemm equals the in-order fused multiply-add loop bit for bit, at every tile edge") {
    register_gemm_cases::check_register_gemm_bitwise(cpu_has_avx512());
}

TEST_CASE("AVX-512 register_gemm reading a padded image in place equals the in-order loop bit for bit") {
    register_gemm_cases::check_register_gemm_padded_reads(cpu_has_avx512());
}

TEST_CASE("AVX-512 register_gemm reading A's rows through run offsets equals the in-order loop bit for bit") {
    register_gemm_cases::check_register_gemm_run_reads(cpu_has_avx512());
}

TEST_CASE("AVX-512 register_gemm's epilogue (bias, residual, ReLU) equals the in-order loop and the same additions bit for bit") {
    register_gemm_cases::check_register_gemm_epilogue(cpu_has_avx512());
}

TEST_CASE("AVX-512 Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions equal the exact sums to rounding: odd shapes, every padding, residual and ReLU, any tile ranges") {
    winograd_cases::check_against_reference(cpu_has_avx512());
}

TEST_CASE("AVX-512 Winograd convolutions: an image with a NaN, an infinity or a huge value takes the direct product; the others keep their bits") {
    winograd_cases::check_non_finite(cpu_has_avx512());
}

TEST_CASE("AVX-512 Winograd convolutions run 3x3 stride-1 undilated ungrouped convolutions with enough channels") {
    winograd_cases::check_choice(cpu_has_avx512());
}

TEST_CASE("AVX-512 Winograd convolutions of training's planes: forward and input gradient against exact sums, any padding up to 2, the same bits at 1-3 threads, non-finite values") {
    winograd_cases::check_planes(cpu_has_avx512());
}

TEST_CASE("AVX-512 transposes between planes and channels-last rows equal the element-by-element loop") {
    register_gemm_cases::check_transposes(cpu_has_avx512());
}

TEST_CASE("AVX-512 register_gemm: a NaN or infinity in A or B spreads to exactly the row or column it touches") {
    register_gemm_cases::check_register_gemm_non_finite(cpu_has_avx512());
}

TEST_CASE("AVX-512 dense products equal the in-order fused multiply-add chains bit for bit: bias, ReLU, accumulation, NaN and infinity, 1-3 threads") {
    register_gemm_cases::check_dense_products(cpu_has_avx512());
}

TEST_CASE("AVX-512 float convolutions on register_gemm equal the double Eigen path, at 1 and 2 threads") {
    register_gemm_cases::check_float_convolutions(cpu_has_avx512());
}

TEST_CASE("AVX-512 build: training gives the same weights at 1, 2 and 3 threads (register_gemm convolutions, Eigen's AVX-512 products)") {
    if (!cpu_has_avx512()) return;
    train_threads_cases::check_paper_network();
    train_threads_cases::check_residual_network();
}

TEST_CASE("AVX-512 build: InferenceModel folds the batch norms and packs the filters once, with Model::predict's bits") {
    if (!cpu_has_avx512()) return;
    inference_model_cases::check_inference_model(cnnlite::kernels::register_gemm_available);
}

TEST_CASE("AVX-512 build: InferenceModel runs the convolutions channels-last: Model::predict's outputs, the same bits at any batch and thread count") {
    if (!cpu_has_avx512()) return;
    inference_model_cases::check_channels_last(cnnlite::kernels::register_gemm_available);
}

TEST_CASE("AVX-512 build: InferenceModel runs each chunk on the team or one thread, as its thread governor chooses, with the same outputs") {
    if (!cpu_has_avx512()) return;
    inference_model_cases::check_adaptive_threads();
}

TEST_CASE("AVX-512 build: depthwise convolutions (16-float channel vectors on the blocks) equal the grouped unfold path; NaN, infinities, 1 and 2 threads") {
    depthwise_cases::check_all(cpu_has_avx512());
}
