// AVX2+FMA elementwise kernels: the xsimd implementation in
// kernels/simd/float_simd.h instantiated for batch<float, fma3<avx2>>
// (8 float lanes, FMA instructions); this file is built with -mavx2 -mfma.
#include "kernels/avx2/avx2.h"
#include "kernels/simd/float_simd.h"

namespace lowbit::kernels {

void fill_avx2_float(FloatKernels& k) {
  FloatSimd<xsimd::fma3<xsimd::avx2>>::fill(k);
  k.elementwise_path = "f32-elementwise-xsimd-avx2";
}

}  // namespace lowbit::kernels
