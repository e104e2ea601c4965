// AVX2+FMA SGEMM: the blocked xsimd GEMM of kernels/simd/gemm_simd.h
// instantiated for fma3<avx2> (6×16 microkernel, 12 ymm accumulators), and
// the im2col convolution over it. Built with -mavx2 -mfma.
#include "kernels/avx2/avx2.h"
#include "kernels/ref/ref.h"
#include "kernels/simd/gemm_simd.h"

namespace lowbit::kernels {
namespace {

using Gemm = GemmSimd<xsimd::fma3<xsimd::avx2>>;

// Convolution = the reference im2col lowering over this GEMM (1×1 stride-1
// convolutions skip im2col: the input plane is already the B matrix).
void f32_conv2d_forward_avx2(float* y, const float* x, const float* w, const float* bias, const Conv2dShape& sh) {
  ref::f32_conv2d_forward_im2col(y, x, w, bias, sh, Gemm::f32_gemm);
}
void f32_conv2d_backward_input_avx2(float* dx, const float* dy, const float* w, const Conv2dShape& sh) {
  ref::f32_conv2d_backward_input_im2col(dx, dy, w, sh, Gemm::f32_gemm);
}
void f32_conv2d_backward_weight_avx2(float* dw, float* db, const float* dy, const float* x,
                                     const Conv2dShape& sh) {
  ref::f32_conv2d_backward_weight_im2col(dw, db, dy, x, sh, Gemm::f32_gemm);
}

}  // namespace

void fill_avx2_gemm(FloatKernels& k) {
  k.f32_gemm = Gemm::f32_gemm;
  k.f32_conv2d_forward = f32_conv2d_forward_avx2;
  k.f32_conv2d_backward_input = f32_conv2d_backward_input_avx2;
  k.f32_conv2d_backward_weight = f32_conv2d_backward_weight_avx2;
  k.gemm_path = kernel_name("f32-gemm-" + tile_name(Gemm::kMR, Gemm::kNR, 1) + "-avx2");
  k.conv_path = kernel_name("f32-conv-im2col-" + tile_name(Gemm::kMR, Gemm::kNR, 1) + "-avx2");
}

}  // namespace lowbit::kernels
