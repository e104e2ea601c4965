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
}  // namespace lowbit::kernels
