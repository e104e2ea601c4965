// NEON (ASIMD) int8 GEMM and convolution: the shared driver
// (kernels/simd/qgemm_driver.h) over a 4×16 microkernel, exact on the full
// u8/s8 range: activations are widened to s16 while the A rows are prepared
// (the driver's row/im2col step), weights at pack time, and smlal by lane
// multiplies s16×s16 into s32 exactly (accumulation wraps like the reference).
// The neondot path (qgemm_neondot.cpp) replaces GEMM/conv with sdot where the
// CPU has it; this file also provides the depthwise kernel both use.
//
// Layout "neon 4x16 s16": per block of 16 output channels, K (rounded up to 4)
// rows of 16 s16 weights. The tile: 4 rows × 16 columns = 16 q-register
// accumulators; per 4 k, each row's 4 activations are one d register and each
// k step is 4 smlal/smlal2 by lane per row.
#include <arm_neon.h>

#include "kernels/neon/neon.h"
#include "kernels/neon/qepilogue_neon.h"
#include "kernels/simd/qgemm_driver.h"

namespace lowbit::kernels {
namespace {

struct NeonTile {
  static constexpr Isa kIsa = Isa::neon;
  static constexpr const char *kArch = "neon", *kInstr = "smlal";
  static constexpr int64_t kMR = 4, kNR = 16, kKG = 4;
  static constexpr bool kIndirect = false;
  using AElem = int16_t;

  static size_t block_bytes(int64_t kpad) { return static_cast<size_t>(kpad * kNR * 2); }

  static void pack_block(uint8_t* dst, const int8_t* w, int64_t ldw, int64_t cols, int64_t k, int64_t kpad) {
    int16_t* d = reinterpret_cast<int16_t*>(dst);
    for (int64_t kk = 0; kk < kpad; ++kk)
      for (int64_t j = 0; j < cols; ++j) d[kk * kNR + j] = kk < k ? w[j * ldw + kk] : 0;
  }

  template <int L, int MR>
  static void step(int32x4_t (&acc)[MR][4], const int16x4_t (&a)[MR], const int16_t* b) {
    const int16x8_t b0 = vld1q_s16(b), b1 = vld1q_s16(b + 8);
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = vmlal_lane_s16(acc[i][0], vget_low_s16(b0), a[i], L);
      acc[i][1] = vmlal_high_lane_s16(acc[i][1], b0, a[i], L);
      acc[i][2] = vmlal_lane_s16(acc[i][2], vget_low_s16(b1), a[i], L);
      acc[i][3] = vmlal_high_lane_s16(acc[i][3], b1, a[i], L);
    }
  }

  template <int MR>
  static void tile_mr(int64_t kpad, const int16_t* const* rows, const uint8_t* bp, const int32_t* col_off,
                      const float* mult, const TileEpilogue& te, uint8_t* c, int64_t ldc_bytes) {
    int32x4_t acc[MR][4];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < 4; ++j) acc[i][j] = vdupq_n_s32(0);
    const int16_t* b = reinterpret_cast<const int16_t*>(bp);
    for (int64_t kk = 0; kk < kpad; kk += 4, b += 4 * kNR) {
      int16x4_t a[MR];
      for (int i = 0; i < MR; ++i) a[i] = vld1_s16(rows[i] + kk);
      step<0, MR>(acc, a, b);
      step<1, MR>(acc, a, b + kNR);
      step<2, MR>(acc, a, b + 2 * kNR);
      step<3, MR>(acc, a, b + 3 * kNR);
    }
    const EpilogueConstsNeon ec(te);
    for (int i = 0; i < MR; ++i) store16_neon(c + i * ldc_bytes, acc[i], col_off, mult, ec, te.nr);
  }
};

}  // namespace

void fill_neon_int8(Int8Kernels& k) {
  QGemmDriver<NeonTile>::fill_table(
      k, [](PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) { qdwconv_pack_neon(out, w, sh, Isa::neon); },
      [](void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
         const QConv2dShape& sh) { qu8_qs8_dwconv_neon(y, x, x_zp, w, ep, sh, Isa::neon); },
      qdwconv_name_neon(Isa::neon));
}

}  // namespace lowbit::kernels
