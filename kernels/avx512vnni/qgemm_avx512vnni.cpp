// AVX512-VNNI int8 GEMM and convolution: the shared driver
// (kernels/simd/qgemm_driver.h) over an 8×32 vpdpbusd microkernel.
//
// vpdpbusd zmm: each s32 lane += Σ of 4 u8×s8 products, exact (the products
// and their 4-sum fit in 17 bits; the add to the accumulator wraps mod 2^32,
// as the reference's does). The saturating form vpdpbusds is never used.
//
// Layout "avx512vnni 8x32c4": W is packed per block of 32 output channels as
// ⌈K/4⌉ groups of 128 bytes: bytes [0, 64) are channels 0–15, 4 consecutive k
// each, bytes [64, 128) channels 16–31 (channels past N and k past K are zero).
// A rows are u8 (s8 activations are flipped to u8 by the driver), 4 bytes at a
// time broadcast to all lanes.
//
// The tile: 8 rows × 32 columns = 16 zmm accumulators, 2 zmm of W per K group,
// 16 vpdpbusd per 2 loads + 8 broadcasts. The multiply-adds are written as
// asm with the accumulator tied in place: from _mm512_dpbusd_epi32, GCC 12
// copies every accumulator twice per step.
// GCC 12 warns falsely inside the AVX-512 intrinsic headers (their
// _mm512_undefined_* self-initialisation) once they are inlined here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels/avx512vnni/avx512vnni.h"
#include "kernels/avx512vnni/qepilogue_avx512.h"
#include "kernels/simd/qgemm_driver.h"

namespace lowbit::kernels {
namespace {

// acc += Σ₄ a (u8) × b (s8) per s32 lane. In AT&T order the middle operand is
// the unsigned one; only the last (signed) operand could come from memory, so
// the broadcast A bytes sit in a register.
inline __m512i dpbusd(__m512i acc, __m512i a_u8, __m512i b_s8) {
  __asm__("vpdpbusd %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a_u8), [b] "v"(b_s8));
  return acc;
}

// 4 bytes of a row broadcast to every lane (vpbroadcastd from memory).
inline __m512i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// The microkernel for MR rows × 16·NV columns (NV zmm of W per K group).
template <int kTileRows, int kVecs>
struct Vnni512 {
  static constexpr Isa kIsa = Isa::avx512vnni;
  static constexpr const char *kArch = "avx512vnni", *kInstr = "vpdpbusd";
  static constexpr int64_t kMR = kTileRows, kNR = 16 * kVecs, kKG = 4;
  static constexpr int NV = kVecs;
  using AElem = uint8_t;

  static size_t block_bytes(int64_t kpad) { return static_cast<size_t>(kpad * kNR); }

  // Per K group: NV × 64 bytes, vector v holding channels 16v..16v+15, 4 k each.
  static void pack_block(uint8_t* dst, const int8_t* w, int64_t ldw, int64_t cols, int64_t k, int64_t kpad) {
    for (int64_t kg = 0; kg < kpad / 4; ++kg)
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t t = 0; t < 4; ++t) {
          const int64_t kk = kg * 4 + t;
          dst[kg * 4 * kNR + j * 4 + t] = kk < k ? static_cast<uint8_t>(w[j * ldw + kk]) : 0;
        }
  }

  template <int MR>
  static void epilogue(__m512i (&acc)[MR][NV], const int32_t* col_off, const float* mult, const TileEpilogue& te,
                       uint8_t* c, int64_t ldc_bytes) {
    const int ob = te.out == QOut::f32 ? 4 : 1;
    const EpilogueConsts ec(te);
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      const int valid = te.nr - 16 * j;
      if (valid <= 0) break;
      const __mmask16 mask = tail_mask16(valid);
      const __m512i off = _mm512_loadu_si512(col_off + 16 * j);
      const __m512 mu = _mm512_loadu_ps(mult + 16 * j);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) store16_avx512(c + i * ldc_bytes + 16 * j * ob, acc[i][j], off, mu, ec, mask);
    }
  }

  // acc += the K groups [0, kpad) of rows a[0..MR) × the packed block b; returns b advanced.
  template <int MR>
  static const uint8_t* accumulate(__m512i (&acc)[MR][NV], const uint8_t* const* a, int64_t kpad,
                                   const uint8_t* b) {
    for (int64_t kk = 0; kk < kpad; kk += 4) {
      __m512i bv[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) bv[j] = _mm512_load_si512(b + 64 * j);
      b += 64 * NV;
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        const __m512i av = broadcast4(a[i] + kk);
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[i][j] = dpbusd(acc[i][j], av, bv[j]);
      }
    }
    return b;
  }

  template <int MR>
  static void tile_mr(int64_t kpad, const uint8_t* const* rows, const uint8_t* b, const int32_t* col_off,
                      const float* mult, const TileEpilogue& te, uint8_t* c, int64_t ldc_bytes) {
    __m512i acc[MR][NV];
    const uint8_t* a[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_si512();
      a[i] = rows[i];
    }
    accumulate<MR>(acc, a, kpad, b);
    epilogue<MR>(acc, col_off, mult, te, c, ldc_bytes);
  }

  // Indirect A: for each tap, MR pointers to cg bytes.
  template <int MR>
  static void itile_mr(int64_t ntaps, int64_t cg, const uint8_t* const* ptrs, const uint8_t* b,
                       const int32_t* col_off, const float* mult, const TileEpilogue& te, uint8_t* c,
                       int64_t ldc_bytes) {
    __m512i acc[MR][NV];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_si512();
    for (int64_t t = 0; t < ntaps; ++t, ptrs += kMR) {
      const uint8_t* a[MR];
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) a[i] = ptrs[i];
      b = accumulate<MR>(acc, a, cg, b);
    }
    epilogue<MR>(acc, col_off, mult, te, c, ldc_bytes);
  }

  static constexpr bool kIndirect = true;
};

#ifndef LOWBIT_VNNI512_MR
#define LOWBIT_VNNI512_MR 8
#define LOWBIT_VNNI512_NV 2
#endif
using Tile = Vnni512<LOWBIT_VNNI512_MR, LOWBIT_VNNI512_NV>;

}  // namespace

void fill_avx512vnni_int8_gemm(Int8Kernels& k) {
  QGemmDriver<Tile>::fill_table(
      k, [](PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) { qdwconv_pack_avx512vnni(out, w, sh); },
      [](void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
         const QConv2dShape& sh) { qu8_qs8_dwconv_avx512vnni(y, x, x_zp, w, ep, sh); },
      qdwconv_name_avx512vnni());
}

}  // namespace lowbit::kernels
