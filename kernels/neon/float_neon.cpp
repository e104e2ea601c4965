// NEON float kernels (placeholder: reference kernels until written).
#include "kernels/neon/neon.h"

namespace lowbit::kernels {
void fill_neon_float(FloatKernels&) {}
}  // namespace lowbit::kernels
