// AVX2+FMA elementwise kernels (placeholder: reference kernels until written).
#include "kernels/avx2/avx2.h"

namespace lowbit::kernels {
void fill_avx2_float(FloatKernels&) {}
}  // namespace lowbit::kernels
