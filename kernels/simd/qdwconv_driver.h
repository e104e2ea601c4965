// The int8 depthwise convolution driver (groups = C = K), written once and
// instantiated per ISA with that ISA's row kernel. Include only from an ISA
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
// dilation works; the row kernels unroll 3×3 and 5×5.
//
// Traits:
//   kIsa                      the path recorded in the packed weights
//   kArch, kInstr, kChannels, kTaps   the name: kChannels channels, kTaps taps per multiply-add step
//   kCB                       channels per block (the zero-point row is padded to a multiple)
//   packed_bytes(c, ntaps), pack(dst, w, c, ntaps)   the path's weight layout (w: C × R·S)
//   row(ntaps, taps, nq, w, c, col_off, mult, te, y)   nq output pixels of one output row:
//                             taps[q·ntaps + t] points at channel 0 of the input pixel of tap t
//                             of pixel q (or at the zero-point row); y is pixel 0's output,
//                             pixels are c elements apart; col_off/mult hold C values.
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
  static constexpr int64_t kCB = T::kCB;

  // "qu8-qc8w-dwconv-16c2t-fp32-avx2-vpmaddwd"; also the packed weights' layout name.
  static const char* name() {
    static const char* n = kernel_name("qu8-qc8w-dwconv-" + std::to_string(T::kChannels) + "c" +
                                       std::to_string(T::kTaps) + "t-fp32-" + T::kArch + "-" + T::kInstr);
    return n;
  }

  static void pack(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) {
    int8::init_conv_header(out, sh);
    const int64_t rs = sh.r * sh.s;
    // W is C × R·S (one filter per channel): a GEMM of n = C rows, k = R·S, for the row sums.
    int8::init_packed(out.w, T::kIsa, name(), w, sh.c, rs, 1, T::packed_bytes(sh.c, rs));
    T::pack(out.w.data.data(), w, sh.c, rs);
  }

  static void conv(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& pw, const QuantEpilogue& ep,
                   const QConv2dShape& sh, const char* who) {
    int8::check_conv_packed(pw, sh, T::kIsa, who);
    int8::check_packed(pw.w, T::kIsa, name(), who);
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
    const uint8_t* w = pw.w.data.data();
    const TileEpilogue te{ep.out, ep.out_zp, ep.qmin, ep.qmax, 0};
    const int64_t ob = int8::out_bytes(ep.out);
    const int64_t work = sh.n * P * Q * c * rs;
    const int threads = work >= (1 << 16) ? num_threads() : 1;
    const int64_t H = sh.h, W = sh.w, R = sh.r, S = sh.s, sth = sh.stride_h, stw = sh.stride_w, ph = sh.pad_h,
                  pwd = sh.pad_w, dh = sh.dil_h, dw = sh.dil_w;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t row = 0; row < sh.n * P; ++row) {
      const int64_t b = row / P, p = row % P;
      static thread_local std::vector<const uint8_t*> taps;
      if (taps.size() < static_cast<size_t>(Q * rs)) taps.resize(static_cast<size_t>(Q * rs));
      const uint8_t** tp = taps.data();  // (thread_local access is a call in PIC code: once per row)
      const uint8_t* img = x + b * H * W * c;
      const uint8_t* zero = zero_row.data();
      const int64_t h0 = p * sth - ph;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t ih = h0 + r * dh;
        const uint8_t* in_row = ih >= 0 && ih < H ? img + ih * W * c : nullptr;
        for (int64_t s = 0; s < S; ++s) {
          const uint8_t** t = tp + r * S + s;
          int64_t iw = s * dw - pwd;
          for (int64_t q = 0; q < Q; ++q, iw += stw, t += rs)
            *t = in_row && iw >= 0 && iw < W ? in_row + iw * c : zero;
        }
      }
      T::row(static_cast<int>(rs), tp, Q, w, c, off.data(), mult.data(), te,
             static_cast<uint8_t*>(y) + row * Q * c * ob);
    }
  }
};

}  // namespace
}  // namespace lowbit::kernels
