// AVX512-VNNI peak probes for `lowbit bench peak`.
//
// f32: 16 independent zmm accumulators, acc = fma(acc, m, a): 2 FMA ports ×
// 4-cycle latency needs ≥ 8 chains in flight (CPUs that split a zmm op into
// two 256-bit halves, as AMD Zen 4 does, need fewer).
// s8: 16 independent vpdpbusd chains, acc += Σ₄ u8×s8 per s32 lane: 64
// multiply-adds per instruction, counted as 128 ops. The accumulator is an
// input of vpdpbusd, so nothing can be hoisted. The instruction is written as
// asm with the accumulator tied in place: from _mm512_dpbusd_epi32 GCC 12
// emits two register copies per vpdpbusd, which would make the front end the
// limit on a CPU that issues two vpdpbusd per cycle.
#include <immintrin.h>

#include "kernels/avx512vnni/avx512vnni.h"

namespace lowbit::kernels {
namespace {

constexpr int kChains = 16;

int64_t peak_f32_fma_16x16_avx512vnni(float* sink, int64_t iters) {
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(0.5f + 0.01f * static_cast<float>(j));
  const __m512 m = _mm512_set1_ps(0.9999f), a = _mm512_set1_ps(0.0001f);  // converges to 1
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], m, a);
  }
  __m512 s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, acc[j]);
  // (A plain store: GCC 12 warns falsely inside _mm512_reduce_add_*.)
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float t = 0.0f;
  for (float v : lanes) t += v;
  *sink = t;
  return iters * kChains * 16 * 2;
}

inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  __asm__("vpdpbusd %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
}

int64_t peak_s8_dot_16x64_avx512vnni(int32_t* sink, int64_t iters) {
  __m512i acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_epi32(j);
  const __m512i a = _mm512_set1_epi8(static_cast<char>(200)), b = _mm512_set1_epi8(-7);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kChains; ++j) acc[j] = dpbusd(acc[j], a, b);
  }
  __m512i s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_epi32(s, acc[j]);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, s);
  uint32_t t = 0;
  for (int32_t v : lanes) t += static_cast<uint32_t>(v);
  *sink = static_cast<int32_t>(t);
  return iters * kChains * 64 * 2;
}

}  // namespace

void fill_avx512vnni_peak(PeakProbes& p) {
  p.f32_fma = peak_f32_fma_16x16_avx512vnni;
  p.s8_dot = peak_s8_dot_16x64_avx512vnni;
  p.name = "avx512vnni: 16 zmm vfmadd231ps chains; 16 zmm vpdpbusd chains";
}

}  // namespace lowbit::kernels
