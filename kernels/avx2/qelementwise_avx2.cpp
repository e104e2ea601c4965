// AVX2 int8 helpers: the xsimd implementation of kernels/simd/qelementwise_simd.h
// instantiated for fma3<avx2> (8 float lanes). Also the helpers of the avxvnni
// and avx512vnni tables, which start from this path's entries.
#include "kernels/avx2/avx2.h"
#include "kernels/simd/qelementwise_simd.h"

namespace lowbit::kernels {

void fill_avx2_int8_elementwise(Int8Kernels& k) {
  QElementwiseSimd<xsimd::fma3<xsimd::avx2>>::fill(
      k, "qu8-elementwise-xsimd-avx2");  // quantize, dequantize, requantize, add, max and global avg pool
}

}  // namespace lowbit::kernels
