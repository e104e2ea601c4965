// Registration of the NEON (AArch64 ASIMD) float kernels. The only names
// kernels/neon/ exports; no intrinsics or xsimd here.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels {
// Elementwise, reductions and batch-norm helpers; sets elementwise_path.
void fill_neon_float(FloatKernels& k);
// SGEMM and the im2col convolution over it; sets gemm_path and conv_path.
void fill_neon_gemm(FloatKernels& k);
}  // namespace lowbit::kernels
