// NEON elementwise kernels: the xsimd implementation in
// kernels/simd/float_simd.h instantiated for batch<float, neon64> (4 float
// lanes; AArch64 has FMA and IEEE division/sqrt in ASIMD).
#include "kernels/neon/neon.h"
#include "kernels/simd/float_simd.h"

namespace lowbit::kernels {

void fill_neon_float(FloatKernels& k) {
  FloatSimd<xsimd::neon64>::fill(k);
  k.elementwise_path = "f32-elementwise-xsimd-neon";
}

}  // namespace lowbit::kernels
