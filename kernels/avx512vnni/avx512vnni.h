// Registration of the AVX512-VNNI kernels. No intrinsics here, so table.cpp
// (built without -mavx512*) can include it. The float entries of the
// avx512vnni table are the avx2 ones.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels {
// zmm FMA and vpdpbusd peak probes.
void fill_avx512vnni_peak(PeakProbes& p);
// Int8 GEMM and convolution (vpdpbusd), depthwise convolution; sets the int8 path names.
void fill_avx512vnni_int8_gemm(Int8Kernels& k);
// The depthwise kernel the conv entries above dispatch to (groups = C = K).
const char* qdwconv_name_avx512vnni();
void qdwconv_pack_avx512vnni(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh);
void qu8_qs8_dwconv_avx512vnni(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w,
                               const QuantEpilogue& ep, const QConv2dShape& sh);
}  // namespace lowbit::kernels
