// Registration of the AVX-VNNI int8 kernels (VEX-encoded vpdpbusd on ymm:
// Alder Lake and later, Zen 5). No intrinsics here, so table.cpp can include
// it. The avxvnni table starts from the avx2 one (float, int8 helpers,
// depthwise) and overrides GEMM and convolution.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels {
// Int8 GEMM and convolution (depthwise stays on the AVX2 kernel); sets the int8 path names.
void fill_avxvnni_int8_gemm(Int8Kernels& k);
}  // namespace lowbit::kernels
