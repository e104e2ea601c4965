// The requantization epilogue on 16 s32 lanes, shared by the AVX-512 int8
// kernels of this folder: the fp32 steps of kernels/quant_math.h.
//   f = (float)(acc + col_off) · mult
//   f32 out: f.  u8/s8 out: cvtps2dq(clamp(f, qmin − zp, qmax − zp)) + zp
#pragma once
#include <immintrin.h>

#include "kernels/quant_math.h"
#include "kernels/simd/qgemm_driver.h"

namespace lowbit::kernels {
namespace {

// The epilogue's broadcast constants, made once per tile. The clamp is done
// in float, to [qmin − zp, qmax − zp], before rounding: clamping commutes with
// a monotonic rounding when the bounds are integers, so this is exactly
// clamp(round(f) + zp, qmin, qmax) of quant_math.h (a NaN still becomes qmin:
// vmaxps(NaN, lo) = lo), with two integer operations fewer per vector.
struct EpilogueConsts {
  __m512 lo, hi;
  __m512i zp;
  QOut out;
  explicit EpilogueConsts(const TileEpilogue& te)
      : lo(_mm512_set1_ps(static_cast<float>(te.qmin - te.zp))),
        hi(_mm512_set1_ps(static_cast<float>(te.qmax - te.zp))),
        zp(_mm512_set1_epi32(te.zp)),
        out(te.out) {}
};

// Stores the 16 (masked) outputs of acc at c (u8/s8: 16 bytes, f32: 64 bytes).
inline void store16_avx512(uint8_t* c, __m512i acc, __m512i col_off, __m512 mult, const EpilogueConsts& ec,
                           __mmask16 mask) {
  const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, col_off)), mult);
  if (ec.out == QOut::f32) {
    _mm512_mask_storeu_ps(c, mask, f);
    return;
  }
  const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(f, ec.lo), ec.hi)), ec.zp);
  _mm_mask_storeu_epi8(c, mask, _mm512_cvtepi32_epi8(q));
}

inline __mmask16 tail_mask16(int64_t valid) {
  return valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (valid > 0 ? valid : 0)) - 1);
}

}  // namespace
}  // namespace lowbit::kernels
