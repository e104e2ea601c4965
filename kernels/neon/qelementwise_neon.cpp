// NEON int8 helpers: the xsimd implementation of kernels/simd/qelementwise_simd.h
// instantiated for neon64 (4 float lanes). Also the helpers of the neondot table.
#include "kernels/neon/neon.h"
#include "kernels/simd/qelementwise_simd.h"

namespace lowbit::kernels {

void fill_neon_int8_elementwise(Int8Kernels& k) {
  QElementwiseSimd<xsimd::neon64>::fill(
      k, "qu8-elementwise-xsimd-neon");  // quantize, dequantize, requantize, add, max and global avg pool
}

}  // namespace lowbit::kernels
