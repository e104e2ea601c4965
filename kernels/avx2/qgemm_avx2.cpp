// AVX2 int8 GEMM and convolution: the shared driver
// (kernels/simd/qgemm_driver.h) over a 6×16 microkernel that is exact on the
// full u8/s8 range.
//
// Why not vpmaddubsw: it adds two u8×s8 products into a saturating s16, and
// 255·(−128)·2 = −65280 does not fit, so results depend on the data (the
// saturation probe in the tests catches it). Here both operands are widened
// to s16 first — activations while the A rows are prepared (u8 → s16 zero
// extension, s8 → s16 sign extension, in the driver's row/im2col step),
// weights at pack time — and vpmaddwd multiplies s16 pairs into s32 exactly
// (|a·w| ≤ 255·128, a pair sum ≤ 65280), vpaddd accumulates (wrapping like
// the reference). 16 multiply-adds per instruction pair, against 32 for
// vpmaddubsw: exactness costs half the peak of the saturating form, which is
// what the peak probe measures. (A 7-bit-activation vpmaddubsw mode, exact
// only when the quantization config keeps activations in [0, 127], is not
// implemented.)
//
// Layout "avx2 6x16 s16x2": per block of 16 output channels, ⌈K/2⌉ pairs of
// k, each 16 channels × 2 s16 (64 bytes); A rows are s16 with an even count.
// The tile: 6 rows × 16 columns = 12 ymm accumulators + 2 of W + 1 broadcast
// pair + 1 product = all 16 ymm registers.
#include <immintrin.h>

#include <cstring>

#include "kernels/avx2/avx2.h"
#include "kernels/avx2/qepilogue_avx2.h"
#include "kernels/simd/qgemm_driver.h"

namespace lowbit::kernels {
namespace {

typedef int32_t __attribute__((may_alias)) AliasedS32;

// acc += a · b as vpmaddwd + vpaddd on s16 pairs (asm: with intrinsics GCC 12
// keeps half of the 12 accumulators on the stack).
inline __m256i madd_acc(__m256i acc, __m256i a, __m256i b) {
  __m256i t;
  __asm__("vpmaddwd %[b], %[a], %[t]\n\tvpaddd %[t], %[acc], %[acc]"
          : [acc] "+x"(acc), [t] "=&x"(t)
          : [a] "x"(a), [b] "x"(b));
  return acc;
}

// A pair of s16 values of a row, broadcast to every s32 lane.
inline __m256i broadcast_pair(const int16_t* a) {
  __m256i v;
  __asm__("vpbroadcastd %[a], %[v]" : [v] "=x"(v) : [a] "m"(*reinterpret_cast<const AliasedS32*>(a)));
  return v;
}

struct Avx2Tile {
  static constexpr Isa kIsa = Isa::avx2;
  static constexpr const char *kArch = "avx2", *kInstr = "vpmaddwd";
  static constexpr int64_t kMR = 6, kNR = 16, kKG = 2;
  static constexpr bool kIndirect = false;
  using AElem = int16_t;

  static size_t block_bytes(int64_t kpad) { return static_cast<size_t>(kpad * kNR * 2); }

  static void pack_block(uint8_t* dst, const int8_t* w, int64_t ldw, int64_t cols, int64_t k, int64_t kpad) {
    int16_t* d = reinterpret_cast<int16_t*>(dst);
    for (int64_t kp = 0; kp < kpad / 2; ++kp)
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t t = 0; t < 2; ++t) {
          const int64_t kk = 2 * kp + t;
          d[(kp * kNR + j) * 2 + t] = kk < k ? w[j * ldw + kk] : 0;
        }
  }

  template <int MR>
  static void tile_mr(int64_t kpad, const int16_t* const* rows, const uint8_t* bp, const int32_t* col_off,
                      const float* mult, const TileEpilogue& te, uint8_t* c, int64_t ldc_bytes) {
    __m256i acc[MR][2];
    const int16_t* a[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = acc[i][1] = _mm256_setzero_si256();
      a[i] = rows[i];
    }
    const __m256i* b = reinterpret_cast<const __m256i*>(bp);
    for (int64_t kk = 0; kk < kpad; kk += 2, b += 2) {
      const __m256i b0 = _mm256_load_si256(b), b1 = _mm256_load_si256(b + 1);
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const __m256i av = broadcast_pair(a[i] + kk);
        acc[i][0] = madd_acc(acc[i][0], av, b0);
        acc[i][1] = madd_acc(acc[i][1], av, b1);
      }
    }
    const EpilogueConsts256 ec(te);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) store16_avx2(c + i * ldc_bytes, acc[i][0], acc[i][1], col_off, mult, ec, te.nr);
  }
};

}  // namespace

void fill_avx2_int8_gemm(Int8Kernels& k) {
  QGemmDriver<Avx2Tile>::fill_table(
      k, [](PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) { qdwconv_pack_avx2(out, w, sh, Isa::avx2); },
      [](void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
         const QConv2dShape& sh) { qu8_qs8_dwconv_avx2(y, x, x_zp, w, ep, sh, Isa::avx2); },
      qdwconv_name_avx2(Isa::avx2));
}

}  // namespace lowbit::kernels
