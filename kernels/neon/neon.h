// Registration of the NEON (AArch64 ASIMD) float kernels. No intrinsics here.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels {
// Elementwise, reductions, batch-norm helpers and GEMM; sets the path names it fills.
void fill_neon_float(FloatKernels& k);
}  // namespace lowbit::kernels
