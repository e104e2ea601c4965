// AVX2 int8 depthwise convolution: the shared driver
// (kernels/simd/qdwconv_driver.h) over a row kernel that multiplies two taps
// at once with vpmaddwd, exactly.
//
// Two 16-channel tap vectors are interleaved byte-wise (punpcklbw/hbw) and
// zero-extended to s16, giving (x_t[c], x_t+1[c]) pairs; the weights are
// packed as the matching s16 pairs, so vpmaddwd yields x_t·w_t + x_t+1·w_t+1
// per channel in s32 (exact: |x·w| ≤ 255·128), in channel order.
//
// Layout "avx2 dw c16x2": per block of 16 channels, ⌈R·S/2⌉ tap pairs of 16
// channels × 2 s16 (channels 0–7, then 8–15); taps past R·S and channels past
// C are 0. Also instantiated for the avxvnni path (same instructions).
#include <immintrin.h>

#include <cstring>

#include "kernels/avx2/avx2.h"
#include "kernels/avx2/qepilogue_avx2.h"
#include "kernels/simd/qdwconv_driver.h"

namespace lowbit::kernels {
namespace {

template <Isa I>
struct Dw256 {
  static constexpr Isa kIsa = I;
  static constexpr const char *kArch = "avx2", *kInstr = "vpmaddwd";
  static constexpr int64_t kChannels = 16, kTaps = 2;
  static constexpr int64_t kCB = 16;

  static int64_t pairs(int64_t ntaps) { return (ntaps + 1) / 2; }
  static size_t packed_bytes(int64_t c, int64_t ntaps) { return static_cast<size_t>((c + 15) / 16 * pairs(ntaps) * 64); }
  static void pack(uint8_t* dst, const int8_t* w, int64_t c, int64_t ntaps) {
    int16_t* d = reinterpret_cast<int16_t*>(dst);
    const int64_t cblocks = (c + 15) / 16, np = pairs(ntaps);
    for (int64_t cb = 0; cb < cblocks; ++cb)
      for (int64_t g = 0; g < np; ++g)
        for (int64_t j = 0; j < 16; ++j)
          for (int64_t t = 0; t < 2; ++t) {
            const int64_t ch = cb * 16 + j, tap = 2 * g + t;
            d[((cb * np + g) * 16 + j) * 2 + t] = ch < c && tap < ntaps ? w[ch * ntaps + tap] : 0;
          }
  }

  template <bool kFull>
  static __m128i load16(const uint8_t* p, int64_t valid) {
    if constexpr (kFull) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    } else {
      alignas(16) uint8_t tmp[16] = {};
      std::memcpy(tmp, p, static_cast<size_t>(valid));
      return _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
  }

  template <int NT, bool kFull>
  static void pixel16(int ntaps_rt, const uint8_t* const* taps, int64_t c0, int64_t valid, const int16_t* wb,
                      const int32_t* col_off, const float* mult, const EpilogueConsts256& ec, uint8_t* y) {
    const int nt = NT > 0 ? NT : ntaps_rt;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
#pragma GCC unroll 13
    for (int g = 0; g < (nt + 1) / 2; ++g) {
      const __m128i t0 = load16<kFull>(taps[2 * g] + c0, valid);
      const __m128i t1 = 2 * g + 1 < nt ? load16<kFull>(taps[2 * g + 1] + c0, valid) : _mm_setzero_si128();
      const __m256i lo = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(t0, t1));
      const __m256i hi = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(t0, t1));
      const __m256i* wg = reinterpret_cast<const __m256i*>(wb + g * 32);
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(lo, _mm256_load_si256(wg)));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(hi, _mm256_load_si256(wg + 1)));
    }
    store16_avx2(y, acc0, acc1, col_off + c0, mult + c0, ec, static_cast<int>(valid));
  }

  template <int NT>
  static void row_taps(int ntaps, const uint8_t* const* taps, int64_t nq, const uint8_t* w, int64_t c,
                       const int32_t* col_off, const float* mult, const TileEpilogue& te, uint8_t* y) {
    const int ob = te.out == QOut::f32 ? 4 : 1;
    const EpilogueConsts256 ec(te);
    const int64_t np = pairs(ntaps);
    for (int64_t c0 = 0; c0 < c; c0 += 16) {
      const int64_t valid = std::min<int64_t>(16, c - c0);
      const int16_t* wb = reinterpret_cast<const int16_t*>(w) + (c0 / 16) * np * 32;
      for (int64_t q = 0; q < nq; ++q) {
        uint8_t* yq = y + (q * c + c0) * ob;
        if (valid == 16)
          pixel16<NT, true>(ntaps, taps + q * ntaps, c0, valid, wb, col_off, mult, ec, yq);
        else
          pixel16<NT, false>(ntaps, taps + q * ntaps, c0, valid, wb, col_off, mult, ec, yq);
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

const char* qdwconv_name_avx2(Isa isa) {
  return isa == Isa::avxvnni ? QDwDriver<Dw256<Isa::avxvnni>>::name() : QDwDriver<Dw256<Isa::avx2>>::name();
}

void qdwconv_pack_avx2(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh, Isa isa) {
  if (isa == Isa::avxvnni)
    QDwDriver<Dw256<Isa::avxvnni>>::pack(out, w, sh);
  else
    QDwDriver<Dw256<Isa::avx2>>::pack(out, w, sh);
}

void qu8_qs8_dwconv_avx2(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
                         const QConv2dShape& sh, Isa isa) {
  if (isa == Isa::avxvnni)
    QDwDriver<Dw256<Isa::avxvnni>>::conv(y, x, x_zp, w, ep, sh, "qu8_qs8_conv2d depthwise (avxvnni)");
  else
    QDwDriver<Dw256<Isa::avx2>>::conv(y, x, x_zp, w, ep, sh, "qu8_qs8_conv2d depthwise (avx2)");
}

}  // namespace lowbit::kernels
