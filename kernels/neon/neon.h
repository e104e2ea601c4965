// Registration of the NEON (AArch64 ASIMD) float and int8 kernels. The only names
// kernels/neon/ exports; no intrinsics or xsimd here.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels {
// Elementwise, reductions and batch-norm helpers; sets elementwise_path.
void fill_neon_float(FloatKernels& k);
// SGEMM and the im2col convolution over it; sets gemm_path and conv_path.
void fill_neon_gemm(FloatKernels& k);
// Int8 GEMM, convolution and depthwise convolution (exact s16 smlal); sets the int8 path names.
void fill_neon_int8(Int8Kernels& k);
// Int8 quantize/dequantize/requantize/add/pool helpers (xsimd); sets elementwise_path.
void fill_neon_int8_elementwise(Int8Kernels& k);
// Int8 GEMM and convolution with sdot (kernels/neon/qgemm_neondot.cpp, built with +dotprod).
void fill_neondot_int8_gemm(Int8Kernels& k);
// The NEON depthwise kernel, used by both paths (isa: the path recorded in the weights).
const char* qdwconv_name_neon(Isa isa);
void qdwconv_pack_neon(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh, Isa isa);
void qu8_qs8_dwconv_neon(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
                         const QConv2dShape& sh, Isa isa);
}  // namespace lowbit::kernels
