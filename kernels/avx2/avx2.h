// Registration of the AVX2+FMA float kernels. The only names kernels/avx2/
// exports; everything else there has internal linkage, and this header has no
// intrinsics, so table.cpp (built without -mavx2) can include it.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels {
// Elementwise, reductions and batch-norm helpers; sets elementwise_path.
void fill_avx2_float(FloatKernels& k);
// SGEMM and the im2col convolution over it; sets gemm_path and conv_path.
void fill_avx2_gemm(FloatKernels& k);
// fp32 FMA and vpmaddubsw/vpmaddwd int8 peak probes.
void fill_avx2_peak(PeakProbes& p);
// Int8 GEMM, convolution and depthwise convolution (exact s16 vpmaddwd); sets the int8 path names.
void fill_avx2_int8_gemm(Int8Kernels& k);
// Int8 quantize/dequantize/requantize/add/pool helpers (xsimd); sets elementwise_path.
void fill_avx2_int8_elementwise(Int8Kernels& k);
// The AVX2 depthwise kernel, also used by the avxvnni path (isa: the path recorded in the weights).
const char* qdwconv_name_avx2(Isa isa);
void qdwconv_pack_avx2(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh, Isa isa);
void qu8_qs8_dwconv_avx2(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
                         const QConv2dShape& sh, Isa isa);
}  // namespace lowbit::kernels
