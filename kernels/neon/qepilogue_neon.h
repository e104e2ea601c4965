// The requantization epilogue on 4 s32 lanes for the AArch64 int8 kernels
// (kernels/neon, also included by the neondot file): the fp32 steps of
// kernels/quant_math.h.
//   f = (float)(acc + col_off) · mult
//   f32 out: f.  u8/s8 out: fcvtns(clamp(f, qmin − zp, qmax − zp)) + zp
// fcvtns rounds to nearest, ties to even; fmaxnm(NaN, lo) = lo, so a NaN ends
// at qmin as in quant_math.h. Clamping in float to integer bounds before the
// monotonic rounding is exactly clamp(round(f) + zp, qmin, qmax).
#pragma once
#include <arm_neon.h>

#include <cstring>

#include "kernels/simd/qgemm_driver.h"

namespace lowbit::kernels {
namespace {

struct EpilogueConstsNeon {
  float32x4_t lo, hi;
  int32x4_t zp;
  QOut out;
  explicit EpilogueConstsNeon(const TileEpilogue& te)
      : lo(vdupq_n_f32(static_cast<float>(te.qmin - te.zp))),
        hi(vdupq_n_f32(static_cast<float>(te.qmax - te.zp))),
        zp(vdupq_n_s32(te.zp)),
        out(te.out) {}
};

inline float32x4_t dequant4(int32x4_t acc, const int32_t* col_off, const float* mult) {
  return vmulq_f32(vcvtq_f32_s32(vaddq_s32(acc, vld1q_s32(col_off))), vld1q_f32(mult));
}

inline int16x4_t requant4(float32x4_t f, const EpilogueConstsNeon& ec) {
  return vqmovn_s32(vaddq_s32(vcvtnq_s32_f32(vminnmq_f32(vmaxnmq_f32(f, ec.lo), ec.hi)), ec.zp));
}

// Stores the first n (≤ 16) of 16 outputs (acc[0] columns 0–3, …, acc[3] 12–15).
inline void store16_neon(uint8_t* c, const int32x4_t (&acc)[4], const int32_t* col_off, const float* mult,
                         const EpilogueConstsNeon& ec, int n) {
  float32x4_t f[4];
  for (int j = 0; j < 4; ++j) f[j] = dequant4(acc[j], col_off + 4 * j, mult + 4 * j);
  if (ec.out == QOut::f32) {
    if (n >= 16) {
      for (int j = 0; j < 4; ++j) vst1q_f32(reinterpret_cast<float*>(c) + 4 * j, f[j]);
    } else {
      float tmp[16];
      for (int j = 0; j < 4; ++j) vst1q_f32(tmp + 4 * j, f[j]);
      std::memcpy(c, tmp, static_cast<size_t>(n) * 4);
    }
    return;
  }
  // Values are inside [qmin, qmax] ⊂ the output type: the saturating narrows only narrow.
  const int16x8_t lo = vcombine_s16(requant4(f[0], ec), requant4(f[1], ec));
  const int16x8_t hi = vcombine_s16(requant4(f[2], ec), requant4(f[3], ec));
  const uint8x16_t b = ec.out == QOut::u8 ? vcombine_u8(vqmovun_s16(lo), vqmovun_s16(hi))
                                          : vreinterpretq_u8_s8(vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
  if (n >= 16) {
    vst1q_u8(c, b);
  } else {
    uint8_t tmp[16];
    vst1q_u8(tmp, b);
    std::memcpy(c, tmp, static_cast<size_t>(n));
  }
}

}  // namespace
}  // namespace lowbit::kernels
