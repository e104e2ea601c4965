// AVX-512 int8 depthwise convolution: the shared driver
// (kernels/simd/qdwconv_driver.h) over a pixel kernel that keeps 16 channels
// per zmm in s32 lanes: x widened u8 → s32 (vpmovzxbd), weights packed as
// s32, vpmulld + vpaddd. Exact: |x·w| ≤ 255·128, sums wrap mod 2^32 like the
// reference. 3×3 and 5×5 filters get fully unrolled tap loops.
//
// Layout "avx512 dw c16": per block of 16 channels, R·S taps of 16 s32 weights.
// GCC 12 warns falsely inside the AVX-512 intrinsic headers (their
// _mm512_undefined_* self-initialisation) once they are inlined here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/avx512vnni/avx512vnni.h"
#include "kernels/avx512vnni/qepilogue_avx512.h"
#include "kernels/simd/qdwconv_driver.h"

namespace lowbit::kernels {
namespace {

struct Dw512 {
  static constexpr Isa kIsa = Isa::avx512vnni;
  static constexpr const char* kLayout = "avx512 dw c16";
  static constexpr int64_t kCB = 16;
  using WElem = int32_t;

  // 64 channels (4 zmm) at a time where possible, so 4 independent sums are in flight.
  template <int NT>
  static void pixel_taps(int ntaps_rt, const uint8_t* const* taps, const int32_t* w, int64_t c,
                         const int32_t* col_off, const float* mult, const TileEpilogue& te, uint8_t* y) {
    const int nt = NT > 0 ? NT : ntaps_rt;
    const int ob = te.out == QOut::f32 ? 4 : 1;
    const EpilogueConsts ec(te);
    int64_t c0 = 0;
    for (; c0 + 64 <= c; c0 += 64) {
      __m512i acc[4];
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u) acc[u] = _mm512_setzero_si512();
      const int32_t* wb = w + (c0 / 16) * nt * 16;
#pragma GCC unroll 25
      for (int t = 0; t < nt; ++t) {
        const uint8_t* xp = taps[t] + c0;
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) {
          const __m512i xv = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xp + 16 * u)));
          const __m512i wv = _mm512_load_si512(wb + (u * nt + t) * 16);
          acc[u] = _mm512_add_epi32(acc[u], _mm512_mullo_epi32(xv, wv));
        }
      }
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u)
        store16_avx512(y + (c0 + 16 * u) * ob, acc[u], _mm512_loadu_si512(col_off + c0 + 16 * u),
                       _mm512_loadu_ps(mult + c0 + 16 * u), ec, 0xFFFF);
    }
    for (; c0 < c; c0 += 16) {
      const __mmask16 mask = tail_mask16(c - c0);
      __m512i acc = _mm512_setzero_si512();
      const int32_t* wb = w + (c0 / 16) * nt * 16;
#pragma GCC unroll 25
      for (int t = 0; t < nt; ++t) {
        const __m512i xv = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, taps[t] + c0));
        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(xv, _mm512_load_si512(wb + t * 16)));
      }
      store16_avx512(y + c0 * ob, acc, _mm512_loadu_si512(col_off + c0), _mm512_loadu_ps(mult + c0), ec, mask);
    }
  }

  static void pixel(int ntaps, const uint8_t* const* taps, const int32_t* w, int64_t c, const int32_t* col_off,
                    const float* mult, const TileEpilogue& te, uint8_t* y) {
    if (ntaps == 9)
      pixel_taps<9>(ntaps, taps, w, c, col_off, mult, te, y);
    else if (ntaps == 25)
      pixel_taps<25>(ntaps, taps, w, c, col_off, mult, te, y);
    else
      pixel_taps<0>(ntaps, taps, w, c, col_off, mult, te, y);
  }
};

}  // namespace

void qdwconv_pack_avx512vnni(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) {
  QDwDriver<Dw512>::pack(out, w, sh);
}

void qu8_qs8_dwconv_avx512vnni(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w,
                               const QuantEpilogue& ep, const QConv2dShape& sh) {
  QDwDriver<Dw512>::conv(y, x, x_zp, w, ep, sh, "qu8_qs8_conv2d depthwise (avx512vnni)");
}

}  // namespace lowbit::kernels
