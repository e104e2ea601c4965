// The requantization epilogue on 8 s32 lanes for the AVX2-class int8 kernels
// (kernels/avx2 and kernels/avxvnni, both built with -mavx2): the fp32 steps
// of kernels/quant_math.h.
//   f = (float)(acc + col_off) · mult
//   f32 out: f.  u8/s8 out: cvtps2dq(clamp(f, qmin − zp, qmax − zp)) + zp
// Clamping in float to integer bounds before the (monotonic) rounding gives
// exactly clamp(round(f) + zp, qmin, qmax); vmaxps(NaN, lo) = lo, so a NaN
// still ends at qmin, as in quant_math.h.
#pragma once
#include <immintrin.h>

#include <cstring>

#include "kernels/simd/qgemm_driver.h"

namespace lowbit::kernels {
namespace {

struct EpilogueConsts256 {
  __m256 lo, hi;
  __m256i zp;
  QOut out;
  explicit EpilogueConsts256(const TileEpilogue& te)
      : lo(_mm256_set1_ps(static_cast<float>(te.qmin - te.zp))),
        hi(_mm256_set1_ps(static_cast<float>(te.qmax - te.zp))),
        zp(_mm256_set1_epi32(te.zp)),
        out(te.out) {}
};

inline __m256 dequant8(__m256i acc, const int32_t* col_off, const float* mult) {
  const __m256i off = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col_off));
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc, off)), _mm256_loadu_ps(mult));
}

inline __m256i requant8(__m256 f, const EpilogueConsts256& ec) {
  return _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(f, ec.lo), ec.hi)), ec.zp);
}

// Stores the first n (≤ 16) of the 16 outputs acc0 (columns 0–7) and acc1
// (columns 8–15) at c: 16 bytes for u8/s8, 64 for f32.
inline void store16_avx2(uint8_t* c, __m256i acc0, __m256i acc1, const int32_t* col_off, const float* mult,
                         const EpilogueConsts256& ec, int n) {
  const __m256 f0 = dequant8(acc0, col_off, mult), f1 = dequant8(acc1, col_off + 8, mult + 8);
  if (ec.out == QOut::f32) {
    if (n >= 16) {
      _mm256_storeu_ps(reinterpret_cast<float*>(c), f0);
      _mm256_storeu_ps(reinterpret_cast<float*>(c) + 8, f1);
    } else {
      alignas(32) float tmp[16];
      _mm256_store_ps(tmp, f0);
      _mm256_store_ps(tmp + 8, f1);
      std::memcpy(c, tmp, static_cast<size_t>(n) * 4);
    }
    return;
  }
  // Values are already inside [qmin, qmax] ⊂ the output type, so the saturating packs are plain narrowing.
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(requant8(f0, ec), requant8(f1, ec)), 0xD8);
  const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
  const __m128i b = ec.out == QOut::u8 ? _mm_packus_epi16(lo, hi) : _mm_packs_epi16(lo, hi);
  if (n >= 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(c), b);
  } else {
    alignas(16) uint8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
    std::memcpy(c, tmp, static_cast<size_t>(n));
  }
}

}  // namespace
}  // namespace lowbit::kernels
