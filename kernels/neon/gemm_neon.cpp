// NEON SGEMM: the blocked xsimd GEMM of kernels/simd/gemm_simd.h instantiated
// for neon64 (6×8 microkernel), and the im2col convolution over it. There is
// no oneDNN on aarch64 in Debian, so this is the float conv path there.
#include "kernels/neon/neon.h"
#include "kernels/ref/ref.h"
#include "kernels/simd/gemm_simd.h"

namespace lowbit::kernels {
namespace {

using Gemm = GemmSimd<xsimd::neon64>;

void f32_conv2d_forward_neon(float* y, const float* x, const float* w, const float* bias, const Conv2dShape& sh) {
  ref::f32_conv2d_forward_im2col(y, x, w, bias, sh, Gemm::f32_gemm);
}
void f32_conv2d_backward_input_neon(float* dx, const float* dy, const float* w, const Conv2dShape& sh) {
  ref::f32_conv2d_backward_input_im2col(dx, dy, w, sh, Gemm::f32_gemm);
}
void f32_conv2d_backward_weight_neon(float* dw, float* db, const float* dy, const float* x,
                                     const Conv2dShape& sh) {
  ref::f32_conv2d_backward_weight_im2col(dw, db, dy, x, sh, Gemm::f32_gemm);
}

}  // namespace

void fill_neon_gemm(FloatKernels& k) {
  k.f32_gemm = Gemm::f32_gemm;
  k.f32_conv2d_forward = f32_conv2d_forward_neon;
  k.f32_conv2d_backward_input = f32_conv2d_backward_input_neon;
  k.f32_conv2d_backward_weight = f32_conv2d_backward_weight_neon;
  k.gemm_path = kernel_name("f32-gemm-" + tile_name(Gemm::kMR, Gemm::kNR, 1) + "-neon");
  k.conv_path = kernel_name("f32-conv-im2col-" + tile_name(Gemm::kMR, Gemm::kNR, 1) + "-neon");
}

}  // namespace lowbit::kernels
