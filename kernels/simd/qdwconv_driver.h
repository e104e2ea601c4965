// The int8 depthwise convolution driver (groups = C = K), written once and
// instantiated per ISA with that ISA's pixel kernel. Include only from an ISA
// folder's .cpp; internal linkage; no intrinsics.
//
// Depthwise convolution does R·S multiply-adds per output value and reads
// every input pixel R·S/stride² times: it is bound by memory and shuffles,
// not by multiplies, and a GEMM lowering (N = 1 per group) wastes the tile.
// The direct kernel vectorises over channels (NHWC keeps them contiguous):
// for each output pixel, an indirection list of the R·S input pixels it reads
// (XNNPACK's indirection buffer), where a tap in the padding points at a row
// filled with the input zero point, so
//   acc[c] = Σ_t x_t[c]·w_t[c] + (bias[c] − x_zp·Σ_t w_t[c])
// is exact for border pixels too. Any filter size, stride, padding and
// dilation works; the pixel kernels unroll 3×3 and 5×5.
//
// Traits:
//   kIsa, kLayout, kCB        path, layout name, channels per block
//   WElem                     packed weight element (e.g. int32 for vpmulld, int16)
//   pixel(ntaps, taps, w, c, col_off, mult, te, y)   one output pixel, all c channels;
//                             taps[t] points at channel 0 of an input pixel (or the zero-point
//                             row, which has round_up(c, kCB) bytes); w is the packed layout
//                             below; col_off/mult hold round_up(c, kCB) values.
// Packed layout: for each block of kCB channels, R·S taps of kCB WElems
// (channels past C are zero).
#pragma once
#include <algorithm>
#include <vector>

#include "kernels/int8_util.h"
#include "kernels/kernels.h"
#include "kernels/simd/qgemm_driver.h"  // TileEpilogue

namespace lowbit::kernels {
namespace {

template <class T>
struct QDwDriver {
  using WElem = typename T::WElem;
  static constexpr int64_t kCB = T::kCB;

  static void pack(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) {
    int8::init_conv_header(out, sh);
    const int64_t rs = sh.r * sh.s, cblocks = (sh.c + kCB - 1) / kCB;
    // W is C × R·S (one filter per channel): a GEMM of n = C rows, k = R·S, for the row sums.
    int8::init_packed(out.w, T::kIsa, T::kLayout, w, sh.c, rs, 1,
                      static_cast<size_t>(cblocks * rs * kCB) * sizeof(WElem));
    WElem* dst = reinterpret_cast<WElem*>(out.w.data.data());
    for (int64_t cb = 0; cb < cblocks; ++cb)
      for (int64_t t = 0; t < rs; ++t)
        for (int64_t j = 0; j < kCB; ++j) {
          const int64_t ch = cb * kCB + j;
          dst[(cb * rs + t) * kCB + j] = ch < sh.c ? static_cast<WElem>(w[ch * rs + t]) : WElem{0};
        }
  }

  static void conv(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& pw, const QuantEpilogue& ep,
                   const QConv2dShape& sh, const char* who) {
    int8::check_conv_packed(pw, sh, T::kIsa, who);
    int8::check_packed(pw.w, T::kIsa, T::kLayout, who);
    int8::check_epilogue(ep, who);
    int8::check_a_zero_point(x_zp, false, who);
    const int64_t c = sh.c, cpad = (c + kCB - 1) / kCB * kCB, rs = sh.r * sh.s, P = sh.p(), Q = sh.q();
    std::vector<int32_t> off(static_cast<size_t>(cpad), 0);
    std::vector<float> mult(static_cast<size_t>(cpad), 0.0f);
    for (int64_t j = 0; j < c; ++j) {
      off[static_cast<size_t>(j)] = qmath::column_offset(ep.bias ? ep.bias[j] : 0, x_zp, pw.w.row_sums[static_cast<size_t>(j)]);
      mult[static_cast<size_t>(j)] = ep.multiplier[ep.per_channel ? j : 0];
    }
    const std::vector<uint8_t> zero_row(static_cast<size_t>(cpad), static_cast<uint8_t>(x_zp));
    const WElem* w = reinterpret_cast<const WElem*>(pw.w.data.data());
    const TileEpilogue te{ep.out, ep.out_zp, ep.qmin, ep.qmax, 0};
    const int64_t ob = int8::out_bytes(ep.out);
    const int64_t work = sh.n * P * Q * c * rs;
    const int threads = work >= (1 << 16) ? num_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t row = 0; row < sh.n * P; ++row) {
      const int64_t b = row / P, p = row % P;
      std::vector<const uint8_t*> taps(static_cast<size_t>(rs));
      const uint8_t* img = x + b * sh.h * sh.w * c;
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t h0 = p * sh.stride_h - sh.pad_h, w0 = q * sh.stride_w - sh.pad_w;
        for (int64_t r = 0; r < sh.r; ++r) {
          const int64_t ih = h0 + r * sh.dil_h;
          for (int64_t s = 0; s < sh.s; ++s) {
            const int64_t iw = w0 + s * sh.dil_w;
            taps[static_cast<size_t>(r * sh.s + s)] =
                ih >= 0 && ih < sh.h && iw >= 0 && iw < sh.w ? img + (ih * sh.w + iw) * c : zero_row.data();
          }
        }
        T::pixel(static_cast<int>(rs), taps.data(), w, c, off.data(), mult.data(), te,
                 static_cast<uint8_t*>(y) + ((row * Q + q) * c) * ob);
      }
    }
  }
};

}  // namespace
}  // namespace lowbit::kernels
