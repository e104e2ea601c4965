// AVX2+FMA SGEMM (placeholder: reference kernels until written).
#include "kernels/avx2/avx2.h"

namespace lowbit::kernels {
void fill_avx2_gemm(FloatKernels&) {}
}  // namespace lowbit::kernels
