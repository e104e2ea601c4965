// AVX2 peak probes: the most fp32 FMAs and int8 multiply-adds per second one
// thread can issue, for `lowbit bench peak`.
//
// f32: 12 independent accumulators, acc = fma(acc, m, a). FMA latency is 4–5
// cycles and up to 2 issue per cycle, so ≥ 10 chains in flight keep both
// ports busy; 12 accumulators + m + a fit the 16 ymm registers.
//
// s8: the AVX2 int8 dot product as the GEMM kernels do it,
//   vpmaddubsw (u8×s8 → s16 pair sums) ; vpmaddwd with ones (→ s32) ; vpaddd,
// 32 multiply-adds per triple, counted as 64 ops, in 10 independent chains.
// Written as one asm statement per triple: with intrinsics the inputs are
// loop-invariant, so the compiler hoists both multiplies out of the loop and
// leaves only the vpaddd (the asm reads the accumulator, so it cannot be
// hoisted); and GCC 12 keeps each accumulator in two registers with a copy per
// step, spending front-end slots that a 4-wide core would miss.
#include <immintrin.h>

#include "kernels/avx2/avx2.h"

namespace lowbit::kernels {
namespace {

constexpr int kF32Chains = 12;

int64_t peak_f32_fma_12x8_avx2(float* sink, int64_t iters) {
  __m256 acc[kF32Chains];
  for (int j = 0; j < kF32Chains; ++j) acc[j] = _mm256_set1_ps(0.5f + 0.01f * static_cast<float>(j));
  const __m256 m = _mm256_set1_ps(0.9999f), a = _mm256_set1_ps(0.0001f);  // converges to 1
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kF32Chains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], m, a);
  }
  __m256 s = acc[0];
  for (int j = 1; j < kF32Chains; ++j) s = _mm256_add_ps(s, acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float t = 0.0f;
  for (float v : lanes) t += v;
  *sink = t;
  return iters * kF32Chains * 8 * 2;
}

constexpr int kS8Chains = 10;  // 10 accumulators + a, b, ones + 1 scratch of the 16 ymm registers

// acc += Σ₂ Σ₂ a·b per s32 lane (vpmaddubsw's s16 saturation is irrelevant here).
inline __m256i s8_dot_step(__m256i acc, __m256i a, __m256i b, __m256i ones) {
  __m256i t;
  __asm__("vpmaddubsw %[b], %[a], %[t]\n\t"
          "vpmaddwd %[ones], %[t], %[t]\n\t"
          "vpaddd %[t], %[acc], %[acc]"
          : [acc] "+x"(acc), [t] "=&x"(t)
          : [a] "x"(a), [b] "x"(b), [ones] "x"(ones));
  return acc;
}

int64_t peak_s8_dot_10x32_avx2(int32_t* sink, int64_t iters) {
  __m256i acc[kS8Chains];
  for (int j = 0; j < kS8Chains; ++j) acc[j] = _mm256_set1_epi32(j);
  const __m256i a = _mm256_set1_epi8(static_cast<char>(200)), b = _mm256_set1_epi8(-7);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 10
    for (int j = 0; j < kS8Chains; ++j) acc[j] = s8_dot_step(acc[j], a, b, ones);
  }
  __m256i s = acc[0];
  for (int j = 1; j < kS8Chains; ++j) s = _mm256_add_epi32(s, acc[j]);
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  uint32_t t = 0;
  for (int32_t v : lanes) t += static_cast<uint32_t>(v);
  *sink = static_cast<int32_t>(t);
  return iters * kS8Chains * 32 * 2;
}

}  // namespace

void fill_avx2_peak(PeakProbes& p) {
  p.f32_fma = peak_f32_fma_12x8_avx2;
  p.s8_dot = peak_s8_dot_10x32_avx2;
  p.name = "avx2: 12 ymm vfmadd231ps chains; 10 vpmaddubsw+vpmaddwd+vpaddd chains";
}

}  // namespace lowbit::kernels
