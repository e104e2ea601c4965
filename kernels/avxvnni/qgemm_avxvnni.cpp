// AVX-VNNI int8 GEMM and convolution: the shared driver
// (kernels/simd/qgemm_driver.h) over a 6×16 microkernel of VEX-encoded
// vpdpbusd on ymm (each s32 lane += Σ of 4 u8×s8 products, exact; the sum
// wraps mod 2^32 like the reference's; never the saturating vpdpbusds).
//
// Layout "avxvnni 6x16c4": per block of 16 output channels, ⌈K/4⌉ groups of
// 64 bytes (channels 0–7 then 8–15, 4 consecutive k each). A rows are u8 read
// in place or through the driver's indirection (no im2col copy when the
// channels are whole K groups), 4 bytes broadcast per row and step.
// The tile: 12 ymm accumulators + 2 of W + 1 broadcast of the 16 VEX-encodable
// registers. The multiply-adds are asm ("{vex}" forces the AVX-VNNI encoding;
// the EVEX form of the same mnemonic needs AVX512-VNNI+VL).
//
// LOWBIT_AVXVNNI_EVEX (a test-only build flag) emits the EVEX ymm encoding
// instead, so the logic can be checked on an AVX512-VNNI machine that lacks
// AVX-VNNI; the shipped build never sets it.
#include <immintrin.h>

#include <cstring>

#include "kernels/avx2/avx2.h"
#include "kernels/avx2/qepilogue_avx2.h"
#include "kernels/avxvnni/avxvnni.h"
#include "kernels/simd/qgemm_driver.h"

namespace lowbit::kernels {
namespace {

typedef int32_t __attribute__((may_alias)) AliasedS32;

inline __m256i dpbusd(__m256i acc, __m256i a_u8, __m256i b_s8) {
#if defined(LOWBIT_AVXVNNI_EVEX)
  __asm__("vpdpbusd %[b], %[a], %[acc]" : [acc] "+x"(acc) : [a] "x"(a_u8), [b] "x"(b_s8));
#else
  __asm__("%{vex%} vpdpbusd %[b], %[a], %[acc]" : [acc] "+x"(acc) : [a] "x"(a_u8), [b] "x"(b_s8));
#endif
  return acc;
}

inline __m256i broadcast4(const uint8_t* a) {
  __m256i v;
  __asm__("vpbroadcastd %[a], %[v]" : [v] "=x"(v) : [a] "m"(*reinterpret_cast<const AliasedS32*>(a)));
  return v;
}

struct AvxVnniTile {
  static constexpr Isa kIsa = Isa::avxvnni;
  static constexpr const char *kArch = "avxvnni", *kInstr = "vpdpbusd";
  static constexpr int64_t kMR = 6, kNR = 16, kKG = 4;
  static constexpr bool kIndirect = true;
  using AElem = uint8_t;

  static size_t block_bytes(int64_t kpad) { return static_cast<size_t>(kpad * kNR); }

  static void pack_block(uint8_t* dst, const int8_t* w, int64_t ldw, int64_t cols, int64_t k, int64_t kpad) {
    for (int64_t kg = 0; kg < kpad / 4; ++kg)
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t t = 0; t < 4; ++t) {
          const int64_t kk = kg * 4 + t;
          dst[kg * 64 + j * 4 + t] = kk < k ? static_cast<uint8_t>(w[j * ldw + kk]) : 0;
        }
  }

  template <int MR>
  static const uint8_t* accumulate(__m256i (&acc)[MR][2], const uint8_t* const* a, int64_t kpad,
                                   const uint8_t* b) {
    for (int64_t kk = 0; kk < kpad; kk += 4, b += 64) {
      const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
      const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32));
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const __m256i av = broadcast4(a[i] + kk);
        acc[i][0] = dpbusd(acc[i][0], av, b0);
        acc[i][1] = dpbusd(acc[i][1], av, b1);
      }
    }
    return b;
  }

  template <int MR>
  static void epilogue(__m256i (&acc)[MR][2], const int32_t* col_off, const float* mult, const TileEpilogue& te,
                       uint8_t* c, int64_t ldc_bytes) {
    const EpilogueConsts256 ec(te);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) store16_avx2(c + i * ldc_bytes, acc[i][0], acc[i][1], col_off, mult, ec, te.nr);
  }

  template <int MR>
  static void tile_mr(int64_t kpad, const uint8_t* const* rows, const uint8_t* b, const int32_t* col_off,
                      const float* mult, const TileEpilogue& te, uint8_t* c, int64_t ldc_bytes) {
    __m256i acc[MR][2];
    const uint8_t* a[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = acc[i][1] = _mm256_setzero_si256();
      a[i] = rows[i];
    }
    accumulate<MR>(acc, a, kpad, b);
    epilogue<MR>(acc, col_off, mult, te, c, ldc_bytes);
  }

  template <int MR>
  static void itile_mr(int64_t ntaps, int64_t cg, const uint8_t* const* ptrs, const uint8_t* b,
                       const int32_t* col_off, const float* mult, const TileEpilogue& te, uint8_t* c,
                       int64_t ldc_bytes) {
    __m256i acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    for (int64_t t = 0; t < ntaps; ++t, ptrs += kMR) {
      const uint8_t* a[MR];
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) a[i] = ptrs[i];
      b = accumulate<MR>(acc, a, cg, b);
    }
    epilogue<MR>(acc, col_off, mult, te, c, ldc_bytes);
  }
};

}  // namespace

void fill_avxvnni_int8_gemm(Int8Kernels& k) {
  QGemmDriver<AvxVnniTile>::fill_table(
      k, [](PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) { qdwconv_pack_avx2(out, w, sh, Isa::avxvnni); },
      [](void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
         const QConv2dShape& sh) { qu8_qs8_dwconv_avx2(y, x, x_zp, w, ep, sh, Isa::avxvnni); },
      qdwconv_name_avx2(Isa::avxvnni));
}

}  // namespace lowbit::kernels
