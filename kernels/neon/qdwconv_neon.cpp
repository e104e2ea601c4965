// NEON int8 depthwise convolution: the shared driver
// (kernels/simd/qdwconv_driver.h) over a row kernel on 8 channels at a time:
// x widened u8 → s16 (uxtl), weights packed as s16, smlal/smlal2 into two s32
// accumulators per 8 channels (exact: |x·w| ≤ 255·128; wraps like the reference).
//
// Layout "neon dw c8 s16": per block of 8 channels, R·S taps of 8 s16 weights
// (channels past C are 0). Used by the neon and neondot paths.
#include <arm_neon.h>

#include <cstring>

#include "kernels/neon/neon.h"
#include "kernels/neon/qepilogue_neon.h"
#include "kernels/simd/qdwconv_driver.h"

namespace lowbit::kernels {
namespace {

template <Isa I>
struct DwNeon {
  static constexpr Isa kIsa = I;
  static constexpr const char *kArch = "neon", *kInstr = "smlal";
  static constexpr int64_t kChannels = 8, kTaps = 1;
  static constexpr int64_t kCB = 16;  // zero-point row padding (the kernel reads 8 at a time)

  static size_t packed_bytes(int64_t c, int64_t ntaps) { return static_cast<size_t>((c + 7) / 8 * ntaps * 16); }
  static void pack(uint8_t* dst, const int8_t* w, int64_t c, int64_t ntaps) {
    int16_t* d = reinterpret_cast<int16_t*>(dst);
    for (int64_t cb = 0; cb < (c + 7) / 8; ++cb)
      for (int64_t t = 0; t < ntaps; ++t)
        for (int64_t j = 0; j < 8; ++j) {
          const int64_t ch = cb * 8 + j;
          d[(cb * ntaps + t) * 8 + j] = ch < c ? w[ch * ntaps + t] : 0;
        }
  }

  static void row(int ntaps, const uint8_t* const* taps, int64_t nq, const uint8_t* w, int64_t c,
                  const int32_t* col_off, const float* mult, const TileEpilogue& te, uint8_t* y) {
    const int ob = te.out == QOut::f32 ? 4 : 1;
    const EpilogueConstsNeon ec(te);
    const int16_t* wp = reinterpret_cast<const int16_t*>(w);
    for (int64_t q = 0; q < nq; ++q) {
      const uint8_t* const* tq = taps + q * ntaps;
      // Two 8-channel blocks per epilogue call (store16_neon takes 16 outputs).
      for (int64_t c0 = 0; c0 < c; c0 += 16) {
        int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int64_t h = 0; h < 2; ++h) {
          const int64_t cb0 = c0 + 8 * h;
          if (cb0 >= c) break;
          const int64_t valid = std::min<int64_t>(8, c - cb0);
          const int16_t* wb = wp + (cb0 / 8) * ntaps * 8;
          for (int t = 0; t < ntaps; ++t) {
            uint8x8_t xb;
            if (valid == 8) {
              xb = vld1_u8(tq[t] + cb0);
            } else {
              uint8_t tmp[8] = {};
              std::memcpy(tmp, tq[t] + cb0, static_cast<size_t>(valid));
              xb = vld1_u8(tmp);
            }
            const int16x8_t xv = vreinterpretq_s16_u16(vmovl_u8(xb));
            const int16x8_t wv = vld1q_s16(wb + t * 8);
            acc[2 * h] = vmlal_s16(acc[2 * h], vget_low_s16(xv), vget_low_s16(wv));
            acc[2 * h + 1] = vmlal_high_s16(acc[2 * h + 1], xv, wv);
          }
        }
        store16_neon(y + (q * c + c0) * ob, acc, col_off + c0, mult + c0, ec,
                     static_cast<int>(std::min<int64_t>(16, c - c0)));
      }
    }
  }
};

}  // namespace

const char* qdwconv_name_neon(Isa isa) {
  return isa == Isa::neondot ? QDwDriver<DwNeon<Isa::neondot>>::name() : QDwDriver<DwNeon<Isa::neon>>::name();
}

void qdwconv_pack_neon(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh, Isa isa) {
  if (isa == Isa::neondot)
    QDwDriver<DwNeon<Isa::neondot>>::pack(out, w, sh);
  else
    QDwDriver<DwNeon<Isa::neon>>::pack(out, w, sh);
}

void qu8_qs8_dwconv_neon(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
                         const QConv2dShape& sh, Isa isa) {
  if (isa == Isa::neondot)
    QDwDriver<DwNeon<Isa::neondot>>::conv(y, x, x_zp, w, ep, sh, "qu8_qs8_conv2d depthwise (neondot)");
  else
    QDwDriver<DwNeon<Isa::neon>>::conv(y, x, x_zp, w, ep, sh, "qu8_qs8_conv2d depthwise (neon)");
}

}  // namespace lowbit::kernels
