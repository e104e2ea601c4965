// Int8 helpers written once with xsimd and instantiated per ISA
// (QElementwiseSimd<Arch> for fma3<avx2> in kernels/avx2/, neon64 in
// kernels/neon/): quantize, dequantize, requantize, residual add, max pool and
// global average pool on NHWC. Include only from an ISA folder's .cpp.
//
// Every value takes exactly the fp32 steps of kernels/quant_math.h, in the
// same order, so the results equal ref's bit for bit:
//   quantize   f = x · inv_scale; f = (f > −L ? f : −L); f = (f < L ? f : L);
//              q = nearbyint(f) (cvtps2dq / fcvtns) + zp, clamped to the type
//   dequantize (float)(q − zp) · scale
//   add        dequantize(a) + dequantize(b), then quantize (separate mul and
//              add: ISO C++ mode keeps the compiler from fusing them)
// The float clamps are written as comparisons and selects, so a NaN takes the
// lower limit on every ISA (xsimd's min/max differ between x86 and NEON on NaN).
// Element runs shorter than a vector and the ragged ends go through the
// scalar quant_math functions, which compute the same thing.
#pragma once
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/int8_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/int8_ref.h"

namespace lowbit::kernels {
namespace {

template <class Arch>
struct QElementwiseSimd {
  using VF = xsimd::batch<float, Arch>;
  using VI = xsimd::batch<int32_t, Arch>;
  static constexpr int64_t kL = VF::size;
  static constexpr int64_t kParallelMin = 1 << 16;

  template <class Body>
  static void parallel_rows(int64_t rows, int64_t work, Body body) {
    const int threads = work >= kParallelMin ? num_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t r = 0; r < rows; ++r) body(r);
  }

  // round_half_even(clamp(f)) as in quant_math.h.
  static VI round_clamped(VF f) {
    const VF lo(-qmath::kRoundLimit), hi(qmath::kRoundLimit);
    f = xsimd::select(f > lo, f, lo);
    f = xsimd::select(f < hi, f, hi);
    return xsimd::nearbyint_as_int(f);
  }
  static VI clamp_int(VI q, int32_t qmin, int32_t qmax) { return xsimd::min(xsimd::max(q, VI(qmin)), VI(qmax)); }

  template <class QT>
  static VI load_q(const QT* p) {
    alignas(64) int32_t tmp[kL];
    for (int64_t i = 0; i < kL; ++i) tmp[i] = p[i];
    return VI::load_aligned(tmp);
  }
  template <class QT>
  static void store_q(QT* p, VI q) {
    alignas(64) int32_t tmp[kL];
    q.store_aligned(tmp);
    for (int64_t i = 0; i < kL; ++i) p[i] = static_cast<QT>(tmp[i]);
  }

  // y[i] = quantize(x[i]) for n values with one (inv, zp).
  template <class QT>
  static void quantize_run(QT* y, const float* x, float inv, int32_t zp, int64_t n) {
    constexpr int32_t lo = std::is_signed_v<QT> ? -128 : 0, hi = std::is_signed_v<QT> ? 127 : 255;
    int64_t i = 0;
    for (; i + kL <= n; i += kL)
      store_q(y + i, clamp_int(round_clamped(VF::load_unaligned(x + i) * VF(inv)) + VI(zp), lo, hi));
    for (; i < n; ++i) y[i] = static_cast<QT>(qmath::quantize(x[i], inv, zp, lo, hi));
  }

  template <class QT>
  static void quantize(QT* y, const float* x, const float* scale, const int32_t* zp, int64_t outer,
                       int64_t channels, int64_t inner) {
    constexpr int32_t lo = std::is_signed_v<QT> ? -128 : 0, hi = std::is_signed_v<QT> ? 127 : 255;
    std::vector<float> inv(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) inv[static_cast<size_t>(c)] = qmath::inverse_scale(scale[c]);
    if (inner == 1 && channels >= kL) {  // NHWC per channel: vectors across channels
      parallel_rows(outer, outer * channels, [&](int64_t o) {
        const float* xo = x + o * channels;
        QT* yo = y + o * channels;
        int64_t c = 0;
        for (; c + kL <= channels; c += kL) {
          const VF f = VF::load_unaligned(xo + c) * VF::load_unaligned(inv.data() + c);
          store_q(yo + c, clamp_int(round_clamped(f) + VI::load_unaligned(zp + c), lo, hi));
        }
        for (; c < channels; ++c) yo[c] = static_cast<QT>(qmath::quantize(xo[c], inv[static_cast<size_t>(c)], zp[c], lo, hi));
      });
      return;
    }
    parallel_rows(outer * channels, outer * channels * inner, [&](int64_t oc) {
      const int64_t c = oc % channels;
      quantize_run(y + oc * inner, x + oc * inner, inv[static_cast<size_t>(c)], zp[c], inner);
    });
  }

  template <class QT>
  static void dequantize_run(float* y, const QT* x, float scale, int32_t zp, int64_t n) {
    int64_t i = 0;
    for (; i + kL <= n; i += kL) (xsimd::to_float(load_q(x + i) - VI(zp)) * VF(scale)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] = qmath::dequantize(x[i], zp, scale);
  }

  template <class QT>
  static void dequantize(float* y, const QT* x, const float* scale, const int32_t* zp, int64_t outer, int64_t channels,
                         int64_t inner) {
    if (inner == 1 && channels >= kL) {
      parallel_rows(outer, outer * channels, [&](int64_t o) {
        const QT* xo = x + o * channels;
        float* yo = y + o * channels;
        int64_t c = 0;
        for (; c + kL <= channels; c += kL)
          (xsimd::to_float(load_q(xo + c) - VI::load_unaligned(zp + c)) * VF::load_unaligned(scale + c))
              .store_unaligned(yo + c);
        for (; c < channels; ++c) yo[c] = qmath::dequantize(xo[c], zp[c], scale[c]);
      });
      return;
    }
    parallel_rows(outer * channels, outer * channels * inner, [&](int64_t oc) {
      const int64_t c = oc % channels;
      dequantize_run(y + oc * inner, x + oc * inner, scale[c], zp[c], inner);
    });
  }

  // Chunks of a flat array for the element-wise ops.
  template <class Body>
  static void chunks(int64_t n, Body body) {
    constexpr int64_t kChunk = 4 * 1024;
    parallel_rows((n + kChunk - 1) / kChunk, n, [&](int64_t ci) { body(ci * kChunk, std::min(n, (ci + 1) * kChunk)); });
  }

  static void requantize_u8(uint8_t* y, const uint8_t* x, float in_scale, int32_t in_zp, float out_scale,
                            int32_t out_zp, int64_t n) {
    const float inv = qmath::inverse_scale(out_scale);
    chunks(n, [&](int64_t b, int64_t e) {
      int64_t i = b;
      for (; i + kL <= e; i += kL) {
        const VF f = xsimd::to_float(load_q(x + i) - VI(in_zp)) * VF(in_scale);
        store_q(y + i, clamp_int(round_clamped(f * VF(inv)) + VI(out_zp), 0, 255));
      }
      for (; i < e; ++i)
        y[i] = static_cast<uint8_t>(qmath::quantize(qmath::dequantize(x[i], in_zp, in_scale), inv, out_zp, 0, 255));
    });
  }

  static void add_u8(uint8_t* y, const uint8_t* a, float a_scale, int32_t a_zp, const uint8_t* b, float b_scale,
                     int32_t b_zp, float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax, int64_t n) {
    const float inv = qmath::inverse_scale(y_scale);
    chunks(n, [&](int64_t s, int64_t e) {
      int64_t i = s;
      for (; i + kL <= e; i += kL) {
        const VF fa = xsimd::to_float(load_q(a + i) - VI(a_zp)) * VF(a_scale);
        const VF fb = xsimd::to_float(load_q(b + i) - VI(b_zp)) * VF(b_scale);
        store_q(y + i, clamp_int(round_clamped((fa + fb) * VF(inv)) + VI(y_zp), qmin, qmax));
      }
      for (; i < e; ++i)
        y[i] = static_cast<uint8_t>(qmath::add(a[i], a_zp, a_scale, b[i], b_zp, b_scale, inv, y_zp, qmin, qmax));
    });
  }

  // Max pooling on NHWC: the u8 maximum needs no arithmetic, vectors of 16 bytes across channels.
  static void max_pool_u8(uint8_t* y, const uint8_t* x, const QPool2dShape& sh) {
    int8::check_pool_shape(sh, "qu8_max_pool2d");
    using VB = xsimd::batch<uint8_t, Arch>;
    constexpr int64_t kB = VB::size;
    parallel_rows(sh.n * sh.p, sh.n * sh.p * sh.q * sh.c * sh.r * sh.s, [&](int64_t row) {
      const int64_t b = row / sh.p, p = row % sh.p;
      const int64_t h0 = p * sh.stride_h - sh.pad_h, hs = std::max<int64_t>(h0, 0), he = std::min(h0 + sh.r, sh.h);
      for (int64_t q = 0; q < sh.q; ++q) {
        const int64_t w0 = q * sh.stride_w - sh.pad_w, ws = std::max<int64_t>(w0, 0), we = std::min(w0 + sh.s, sh.w);
        uint8_t* yq = y + ((b * sh.p + p) * sh.q + q) * sh.c;
        int64_t c = 0;
        for (; c + kB <= sh.c; c += kB) {
          VB m(uint8_t{0});
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw)
              m = xsimd::max(m, VB::load_unaligned(x + ((b * sh.h + ih) * sh.w + iw) * sh.c + c));
          m.store_unaligned(yq + c);
        }
        for (; c < sh.c; ++c) {
          uint8_t m = 0;
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) m = std::max(m, x[((b * sh.h + ih) * sh.w + iw) * sh.c + c]);
          yq[c] = m;
        }
      }
    });
  }

  // Global average pool on NHWC: s32 sums across channels (wrapping like ref), then
  // the same requantization as ref (quant_math.h average).
  static void global_avg_pool_u8(uint8_t* y, const uint8_t* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                                 int64_t n, int64_t hw, int64_t c) {
    const float mult = qmath::avg_multiplier(qmath::scale_ratio(x_scale, y_scale), hw);
    for (int64_t b = 0; b < n; ++b) {
      const uint8_t* xb = x + b * hw * c;
      int64_t ch = 0;
      for (; ch + kL <= c; ch += kL) {
        VI sum(0);
        for (int64_t i = 0; i < hw; ++i) sum += load_q(xb + i * c + ch) - VI(x_zp);
        store_q(y + b * c + ch, clamp_int(round_clamped(xsimd::to_float(sum) * VF(mult)) + VI(y_zp), 0, 255));
      }
      for (; ch < c; ++ch) {
        int32_t sum = 0;
        for (int64_t i = 0; i < hw; ++i) sum = qmath::wrap_add(sum, xb[i * c + ch] - x_zp);
        y[b * c + ch] = static_cast<uint8_t>(qmath::average(sum, mult, y_zp, 0, 255));
      }
    }
  }

  // Fake quantization of one run with one (scale, zp); the mask from the
  // unclamped integer, as quant_math's scalar version.
  static void fake_quantize_run(float* y, uint8_t* mask, const float* x, float scale, float inv, int32_t zp,
                                int32_t qmin, int32_t qmax, int64_t n) {
    int64_t i = 0;
    for (; i + kL <= n; i += kL) {
      const VI q = round_clamped(VF::load_unaligned(x + i) * VF(inv)) + VI(zp);
      (xsimd::to_float(clamp_int(q, qmin, qmax) - VI(zp)) * VF(scale)).store_unaligned(y + i);
      if (mask) {
        alignas(64) int32_t in[kL];
        xsimd::select((q >= VI(qmin)) && (q <= VI(qmax)), VI(1), VI(0)).store_aligned(in);
        for (int64_t j = 0; j < kL; ++j) mask[i + j] = static_cast<uint8_t>(in[j]);
      }
    }
    for (; i < n; ++i) {
      const int32_t q = qmath::round_half_even(x[i] * inv) + zp;
      y[i] = qmath::dequantize(qmath::clamp_q(q, qmin, qmax), zp, scale);
      if (mask) mask[i] = q >= qmin && q <= qmax;
    }
  }

  static void fake_quantize(float* y, uint8_t* mask, const float* x, const float* scale, const int32_t* zp,
                            int32_t qmin, int32_t qmax, int64_t outer, int64_t channels, int64_t inner) {
    // Rows of whole channels; a single long run is split into blocks so it
    // still spreads over the threads.
    constexpr int64_t kBlock = 1 << 14;
    const int64_t rows = outer * channels, blocks = (inner + kBlock - 1) / kBlock;
    parallel_rows(rows * blocks, rows * inner, [&](int64_t rb) {
      const int64_t r = rb / blocks, b = rb % blocks, c = r % channels;
      const int64_t begin = r * inner + b * kBlock, len = std::min(kBlock, inner - b * kBlock);
      fake_quantize_run(y + begin, mask ? mask + begin : nullptr, x + begin, scale[c], qmath::inverse_scale(scale[c]),
                        zp[c], qmin, qmax, len);
    });
  }

  static void lsq_backward(float* dx, double* dscale, double* doffset, const float* g, const float* x, float inv,
                           float offset, int32_t zp, int32_t qmin, int32_t qmax, int64_t n) {
    constexpr int64_t kBlock = 1 << 12;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> ds(static_cast<size_t>(blocks)), db(static_cast<size_t>(blocks));
    const float lo = (float)qmin, hi = (float)qmax, zf = (float)zp, below = (float)(qmin - zp),
                above = (float)(qmax - zp);
    parallel_rows(blocks, n, [&](int64_t b) {
      const int64_t begin = b * kBlock, end = std::min(n, begin + kBlock);
      VF vs(0.0f), vb(0.0f);
      int64_t i = begin;
      for (; i + kL <= end; i += kL) {
        const VF gv = VF::load_unaligned(g + i);
        const VF v = (VF::load_unaligned(x + i) - VF(offset)) * VF(inv), u = v + VF(zf);
        const auto lt = u < VF(lo), gt = u > VF(hi), out = lt || gt;
        const VF r = xsimd::to_float(round_clamped(v));
        xsimd::select(out, VF(0.0f), gv).store_unaligned(dx + i);
        const VF term = xsimd::select(lt, VF(below), xsimd::select(gt, VF(above), r - v));
        vs = vs + gv * term;
        vb = vb + xsimd::select(out, gv, VF(0.0f));
      }
      alignas(64) float ts[kL], tb[kL];
      vs.store_aligned(ts);
      vb.store_aligned(tb);
      double s = 0, o = 0;
      for (int64_t j = 0; j < kL; ++j) s += ts[j], o += tb[j];
      for (; i < end; ++i) {
        const float v = (x[i] - offset) * inv, u = v + zf;
        if (u < lo || u > hi) {
          dx[i] = 0;
          s += (double)g[i] * (u < lo ? below : above);
          o += g[i];
        } else {
          dx[i] = g[i];
          s += (double)g[i] * ((float)qmath::round_half_even(v) - v);
        }
      }
      ds[static_cast<size_t>(b)] = s;
      db[static_cast<size_t>(b)] = o;
    });
    double s = 0, o = 0;
    for (size_t b = 0; b < ds.size(); ++b) s += ds[b], o += db[b];
    *dscale = s;
    *doffset = o;
  }

  static bool minmax(float* mn, float* mx, const float* x, int64_t n) {
    constexpr int64_t kBlock = 1 << 14;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<float> lo(static_cast<size_t>(blocks)), hi(static_cast<size_t>(blocks));
    std::vector<uint8_t> ok(static_cast<size_t>(blocks));
    parallel_rows(blocks, n, [&](int64_t b) {
      const float* p = x + b * kBlock;
      const int64_t len = std::min(kBlock, n - b * kBlock);
      VF vlo(p[0]), vhi(p[0]), bad(0.0f);
      int64_t i = 0;
      for (; i + kL <= len; i += kL) {
        const VF v = VF::load_unaligned(p + i);
        bad = bad + (v - v);  // NaN for NaN and ±Inf, 0 otherwise
        vlo = xsimd::select(v < vlo, v, vlo);
        vhi = xsimd::select(v > vhi, v, vhi);
      }
      alignas(64) float tl[kL], th[kL], tb[kL];
      vlo.store_aligned(tl);
      vhi.store_aligned(th);
      bad.store_aligned(tb);
      float l = tl[0], h = th[0];
      bool finite = true;
      for (int64_t j = 0; j < kL; ++j) {
        l = tl[j] < l ? tl[j] : l;
        h = th[j] > h ? th[j] : h;
        finite = finite && tb[j] == 0.0f;
      }
      for (; i < len; ++i) {
        finite = finite && std::isfinite(p[i]);
        l = p[i] < l ? p[i] : l;
        h = p[i] > h ? p[i] : h;
      }
      lo[static_cast<size_t>(b)] = l;
      hi[static_cast<size_t>(b)] = h;
      ok[static_cast<size_t>(b)] = finite;
    });
    bool finite = true;
    *mn = lo[0];
    *mx = hi[0];
    for (size_t b = 0; b < lo.size(); ++b) {
      finite = finite && ok[b];
      *mn = lo[b] < *mn ? lo[b] : *mn;
      *mx = hi[b] > *mx ? hi[b] : *mx;
    }
    return finite;
  }

  static void fill(Int8Kernels& k, const char* name) {
    k.fake_quantize_f32 = fake_quantize;
    k.f32_minmax = minmax;
    k.lsq_backward_f32 = lsq_backward;
    k.quantize_f32_u8 = [](uint8_t* y, const float* x, const float* s, const int32_t* z, int64_t o, int64_t c,
                           int64_t i) { quantize(y, x, s, z, o, c, i); };
    k.quantize_f32_s8 = [](int8_t* y, const float* x, const float* s, const int32_t* z, int64_t o, int64_t c,
                           int64_t i) { quantize(y, x, s, z, o, c, i); };
    k.dequantize_u8_f32 = [](float* y, const uint8_t* x, const float* s, const int32_t* z, int64_t o, int64_t c,
                             int64_t i) { dequantize(y, x, s, z, o, c, i); };
    k.dequantize_s8_f32 = [](float* y, const int8_t* x, const float* s, const int32_t* z, int64_t o, int64_t c,
                             int64_t i) { dequantize(y, x, s, z, o, c, i); };
    k.requantize_u8 = requantize_u8;
    k.qu8_add = add_u8;
    k.qu8_max_pool2d = max_pool_u8;
    k.qu8_global_avg_pool = global_avg_pool_u8;
    k.elementwise_path = name;
  }
};

}  // namespace
}  // namespace lowbit::kernels
