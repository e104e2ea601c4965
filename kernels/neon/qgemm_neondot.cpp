// NEON dot-product (ARMv8.2 DotProd) int8 GEMM and convolution: the shared
// driver (kernels/simd/qgemm_driver.h) over a 4×16 sdot microkernel. Built
// with -march=armv8.2-a+dotprod, used only where HWCAP reports asimddp.
//
// sdot: each s32 lane += Σ of 4 s8×s8 products, exact (wraps mod 2^32 like
// the reference). Activations are u8, so the driver flips their sign bit while
// preparing the A rows (a − 128 ∈ s8) and moves the zero point by the same
// 128: Σ (a − zp)·w is unchanged. (udot would need unsigned weights.)
//
// Layout "neondot 4x16c4": per block of 16 output channels, ⌈K/4⌉ groups of
// 64 bytes: 4 vectors of 4 channels × 4 consecutive k. The tile: 4 rows × 16
// columns = 16 accumulators; one 16-byte load per row covers 4 K groups, each
// used by sdot-by-lane.
#include <arm_neon.h>

#include <cstring>

#include "kernels/neon/neon.h"
#include "kernels/neon/qepilogue_neon.h"
#include "kernels/simd/qgemm_driver.h"

namespace lowbit::kernels {
namespace {

struct NeonDotTile {
  static constexpr Isa kIsa = Isa::neondot;
  static constexpr const char *kArch = "neondot", *kInstr = "sdot";
  static constexpr int64_t kMR = 4, kNR = 16, kKG = 4;
  static constexpr bool kIndirect = false;
  using AElem = int8_t;

  static size_t block_bytes(int64_t kpad) { return static_cast<size_t>(kpad * kNR); }

  static void pack_block(uint8_t* dst, const int8_t* w, int64_t ldw, int64_t cols, int64_t k, int64_t kpad) {
    for (int64_t kg = 0; kg < kpad / 4; ++kg)
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t t = 0; t < 4; ++t) {
          const int64_t kk = kg * 4 + t;
          dst[kg * 64 + j * 4 + t] = kk < k ? static_cast<uint8_t>(w[j * ldw + kk]) : 0;
        }
  }

  template <int L, int MR>
  static void group(int32x4_t (&acc)[MR][4], const int8x16_t (&a)[MR], const int8_t* b) {
    const int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16), b2 = vld1q_s8(b + 32), b3 = vld1q_s8(b + 48);
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = vdotq_laneq_s32(acc[i][0], b0, a[i], L);
      acc[i][1] = vdotq_laneq_s32(acc[i][1], b1, a[i], L);
      acc[i][2] = vdotq_laneq_s32(acc[i][2], b2, a[i], L);
      acc[i][3] = vdotq_laneq_s32(acc[i][3], b3, a[i], L);
    }
  }

  template <int MR>
  static void tile_mr(int64_t kpad, const int8_t* const* rows, const uint8_t* bp, const int32_t* col_off,
                      const float* mult, const TileEpilogue& te, uint8_t* c, int64_t ldc_bytes) {
    int32x4_t acc[MR][4];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < 4; ++j) acc[i][j] = vdupq_n_s32(0);
    const int8_t* b = reinterpret_cast<const int8_t*>(bp);
    int64_t kk = 0;
    for (; kk + 16 <= kpad; kk += 16, b += 4 * 64) {  // 4 K groups per row load
      int8x16_t a[MR];
      for (int i = 0; i < MR; ++i) a[i] = vld1q_s8(rows[i] + kk);
      group<0, MR>(acc, a, b);
      group<1, MR>(acc, a, b + 64);
      group<2, MR>(acc, a, b + 128);
      group<3, MR>(acc, a, b + 192);
    }
    for (; kk < kpad; kk += 4, b += 64) {  // remaining K groups, one at a time
      int8x16_t a[MR];
      for (int i = 0; i < MR; ++i) {
        int32_t v;
        std::memcpy(&v, rows[i] + kk, 4);
        a[i] = vreinterpretq_s8_s32(vdupq_n_s32(v));
      }
      group<0, MR>(acc, a, b);
    }
    const EpilogueConstsNeon ec(te);
    for (int i = 0; i < MR; ++i) store16_neon(c + i * ldc_bytes, acc[i], col_off, mult, ec, te.nr);
  }
};

}  // namespace

void fill_neondot_int8_gemm(Int8Kernels& k) {
  QGemmDriver<NeonDotTile>::fill_table(
      k, [](PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) { qdwconv_pack_neon(out, w, sh, Isa::neondot); },
      [](void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
         const QConv2dShape& sh) { qu8_qs8_dwconv_neon(y, x, x_zp, w, ep, sh, Isa::neondot); },
      qdwconv_name_neon(Isa::neondot));
}

}  // namespace lowbit::kernels
