// AVX512-VNNI int8 depthwise convolution: the shared driver
// (kernels/simd/qdwconv_driver.h) over a row kernel that multiplies four taps
// at once with vpdpbusd.
//
// vpdpbusd sums 4 u8×s8 products per s32 lane, so each lane must hold the
// same channel of 4 different taps. Four 64-channel tap vectors T0..T3 are
// interleaved with two rounds of in-lane unpacks (bytes, then words):
//   Q_i lane (l, j) = (T0, T1, T2, T3)[channel 16l + 4i + j],   i, j < 4, l < 4 (128-bit lanes)
// and the weights are packed in the same order, so one vpdpbusd per Q_i
// adds 4 taps × 16 channels, exactly (u8×s8 products, s32 sums that wrap
// like the reference's). Per 64 channels and 4 taps: 4 loads, 8 unpacks and
// 4 vpdpbusd, against 16 widening loads, 16 vpmulld and 16 vpaddd of the
// plain s32 method. After the last tap group, a 4×4 transpose of 128-bit
// blocks puts the channels back in order for the epilogue.
//
// Layout "avx512vnni dw c64x4": per block of 64 channels, ⌈R·S/4⌉ groups of 4
// taps, each 4 zmm (Q_0..Q_3 order); taps past R·S and channels past C are 0.
// With C ≤ 32 one vector holds two output pixels of 32 lanes each (weights
// stored twice), so narrow layers (MobileNetV2's first, C = 32) use every lane.
// GCC 12 warns falsely inside the AVX-512 intrinsic headers (their
// _mm512_undefined_* self-initialisation) once they are inlined here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/avx512vnni/avx512vnni.h"
#include "kernels/avx512vnni/qepilogue_avx512.h"
#include "kernels/simd/qdwconv_driver.h"

namespace lowbit::kernels {
namespace {

inline __m512i dpbusd_mem(__m512i acc, __m512i a_u8, const uint8_t* b_s8) {
  __asm__("vpdpbusd %[b], %[a], %[acc]"
          : [acc] "+v"(acc)
          : [a] "v"(a_u8), [b] "m"(*reinterpret_cast<const __m512i*>(b_s8)));
  return acc;
}

struct Dw512 {
  static constexpr Isa kIsa = Isa::avx512vnni;
  static constexpr const char *kArch = "avx512vnni", *kInstr = "vpdpbusd";
  static constexpr int64_t kChannels = 64, kTaps = 4;
  static constexpr int64_t kCB = 64;

  static int64_t groups4(int64_t ntaps) { return (ntaps + 3) / 4; }
  static size_t packed_bytes(int64_t c, int64_t ntaps) {
    return static_cast<size_t>((c + 63) / 64 * groups4(ntaps) * 256);
  }
  // With C ≤ 32 a 64-lane vector holds two output pixels (lanes 32–63: the next
  // pixel), so the weights of channel ch sit at lanes ch and 32 + ch.
  static void pack(uint8_t* dst, const int8_t* w, int64_t c, int64_t ntaps) {
    const int64_t cblocks = (c + 63) / 64, g4 = groups4(ntaps), lanes = c <= 32 ? 32 : 64;
    for (int64_t cb = 0; cb < cblocks; ++cb)
      for (int64_t g = 0; g < g4; ++g)
        for (int64_t i = 0; i < 4; ++i)
          for (int64_t l = 0; l < 4; ++l)
            for (int64_t j = 0; j < 4; ++j)
              for (int64_t tt = 0; tt < 4; ++tt) {
                const int64_t ch = cb * 64 + (16 * l + 4 * i + j) % lanes, tap = 4 * g + tt;
                dst[((cb * g4 + g) * 4 + i) * 64 + l * 16 + j * 4 + tt] =
                    ch < c && tap < ntaps ? static_cast<uint8_t>(w[ch * ntaps + tap]) : 0;
              }
  }

  // The 64 input lanes of one tap: channels [c0, c0 + 64) of one pixel, or
  // (pair) channels [0, 32) of two pixels.
  enum class Lanes { full, masked, pair };
  template <Lanes L>
  static __m512i load_tap(const uint8_t* p, const uint8_t* p2, int64_t c0, __mmask64 mask) {
    if constexpr (L == Lanes::full) return _mm512_loadu_si512(p + c0);
    if constexpr (L == Lanes::masked) return _mm512_maskz_loadu_epi8(mask, p + c0);
    const __m256i lo = _mm256_maskz_loadu_epi8(static_cast<__mmask32>(mask), p);
    const __m256i hi = _mm256_maskz_loadu_epi8(static_cast<__mmask32>(mask), p2);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }

  // One output pixel, channels [c0, c0 + 64) (mask: the valid ones), or with
  // Lanes::pair two pixels (taps, taps2) of c ≤ 32 channels, stored at y and y2.
  template <int NT, Lanes L>
  static void pixel64(int ntaps_rt, const uint8_t* const* taps, const uint8_t* const* taps2, int64_t c0,
                      __mmask64 mask, const uint8_t* wb, const int32_t* col_off, const float* mult,
                      const EpilogueConsts& ec, int64_t valid, uint8_t* y, uint8_t* y2, int ob) {
    const int nt = NT > 0 ? NT : ntaps_rt;
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
#pragma GCC unroll 7
    for (int g = 0; g < (nt + 3) / 4; ++g) {
      __m512i t[4];
#pragma GCC unroll 4
      for (int tt = 0; tt < 4; ++tt) {
        const int tap = 4 * g + tt;
        t[tt] = tap >= nt ? _mm512_setzero_si512()
                          : load_tap<L>(taps[tap], L == Lanes::pair ? taps2[tap] : nullptr, c0, mask);
      }
      const __m512i a = _mm512_unpacklo_epi8(t[0], t[1]), b = _mm512_unpackhi_epi8(t[0], t[1]);
      const __m512i c = _mm512_unpacklo_epi8(t[2], t[3]), d = _mm512_unpackhi_epi8(t[2], t[3]);
      const uint8_t* wg = wb + g * 256;
      acc[0] = dpbusd_mem(acc[0], _mm512_unpacklo_epi16(a, c), wg);
      acc[1] = dpbusd_mem(acc[1], _mm512_unpackhi_epi16(a, c), wg + 64);
      acc[2] = dpbusd_mem(acc[2], _mm512_unpacklo_epi16(b, d), wg + 128);
      acc[3] = dpbusd_mem(acc[3], _mm512_unpackhi_epi16(b, d), wg + 192);
    }
    // 4×4 transpose of 128-bit blocks: natural block l holds channels 16l..16l+15.
    const __m512i t0 = _mm512_shuffle_i32x4(acc[0], acc[1], 0x44), t1 = _mm512_shuffle_i32x4(acc[0], acc[1], 0xEE);
    const __m512i t2 = _mm512_shuffle_i32x4(acc[2], acc[3], 0x44), t3 = _mm512_shuffle_i32x4(acc[2], acc[3], 0xEE);
    const __m512i n[4] = {_mm512_shuffle_i32x4(t0, t2, 0x88), _mm512_shuffle_i32x4(t0, t2, 0xDD),
                          _mm512_shuffle_i32x4(t1, t3, 0x88), _mm512_shuffle_i32x4(t1, t3, 0xDD)};
    if constexpr (L == Lanes::pair) {
#pragma GCC unroll 4
      for (int l = 0; l < 4; ++l) {
        const int cl = 16 * (l % 2);
        if (cl >= valid || (l >= 2 && !y2)) continue;
        store16_avx512((l < 2 ? y : y2) + cl * ob, n[l], _mm512_loadu_si512(col_off + cl),
                       _mm512_loadu_ps(mult + cl), ec, tail_mask16(valid - cl));
      }
    } else {
#pragma GCC unroll 4
      for (int l = 0; l < 4; ++l) {
        if (16 * l >= valid) break;
        store16_avx512(y + (c0 + 16 * l) * ob, n[l], _mm512_loadu_si512(col_off + c0 + 16 * l),
                       _mm512_loadu_ps(mult + c0 + 16 * l), ec, tail_mask16(valid - 16 * l));
      }
    }
  }

  template <int NT>
  static void row_taps(int ntaps, const uint8_t* const* taps, int64_t nq, const uint8_t* w, int64_t c,
                       const int32_t* col_off, const float* mult, const TileEpilogue& te, uint8_t* y) {
    const int ob = te.out == QOut::f32 ? 4 : 1;
    const EpilogueConsts ec(te);
    const int64_t g4 = groups4(ntaps);
    if (c <= 32) {  // two pixels per vector; an odd last pixel pairs with itself, its copy unstored
      const __mmask64 mask = c == 32 ? __mmask64(0xFFFFFFFF) : (__mmask64(1) << c) - 1;
      for (int64_t q = 0; q < nq; q += 2) {
        const bool two = q + 1 < nq;
        pixel64<NT, Lanes::pair>(ntaps, taps + q * ntaps, taps + (two ? q + 1 : q) * ntaps, 0, mask, w, col_off,
                                 mult, ec, c, y + q * c * ob, two ? y + (q + 1) * c * ob : nullptr, ob);
      }
      return;
    }
    for (int64_t c0 = 0; c0 < c; c0 += 64) {
      const int64_t valid = std::min<int64_t>(64, c - c0);
      const uint8_t* wb = w + (c0 / 64) * g4 * 256;
      if (valid == 64) {
        for (int64_t q = 0; q < nq; ++q)
          pixel64<NT, Lanes::full>(ntaps, taps + q * ntaps, nullptr, c0, 0, wb, col_off, mult, ec, valid,
                                   y + q * c * ob, nullptr, ob);
      } else {
        const __mmask64 mask = (__mmask64(1) << valid) - 1;
        for (int64_t q = 0; q < nq; ++q)
          pixel64<NT, Lanes::masked>(ntaps, taps + q * ntaps, nullptr, c0, mask, wb, col_off, mult, ec, valid,
                                     y + q * c * ob, nullptr, ob);
      }
    }
  }

  static void row(int ntaps, const uint8_t* const* taps, int64_t nq, const uint8_t* w, int64_t c,
                  const int32_t* col_off, const float* mult, const TileEpilogue& te, uint8_t* y) {
    if (ntaps == 9)
      row_taps<9>(ntaps, taps, nq, w, c, col_off, mult, te, y);
    else if (ntaps == 25)
      row_taps<25>(ntaps, taps, nq, w, c, col_off, mult, te, y);
    else
      row_taps<0>(ntaps, taps, nq, w, c, col_off, mult, te, y);
  }
};

}  // namespace

const char* qdwconv_name_avx512vnni() { return QDwDriver<Dw512>::name(); }

void qdwconv_pack_avx512vnni(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) {
  QDwDriver<Dw512>::pack(out, w, sh);
}

void qu8_qs8_dwconv_avx512vnni(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w,
                               const QuantEpilogue& ep, const QConv2dShape& sh) {
  QDwDriver<Dw512>::conv(y, x, x_zp, w, ep, sh, "qu8_qs8_conv2d depthwise (avx512vnni)");
}

}  // namespace lowbit::kernels
