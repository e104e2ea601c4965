// Reference int8 helpers: quantize / dequantize / requantize, residual add,
// pooling on NHWC, layout changes, and the ref path's int8 table section.
// Every value goes through kernels/quant_math.h.
#include <cmath>
#include <algorithm>

#include "kernels/int8_util.h"
#include "kernels/ref/int8_ref.h"

namespace lowbit::kernels::ref {
namespace {

template <class QT>
void quantize(QT* y, const float* x, const float* scale, const int32_t* zp, int64_t outer, int64_t channels,
              int64_t inner) {
  constexpr int32_t lo = std::is_signed_v<QT> ? -128 : 0, hi = std::is_signed_v<QT> ? 127 : 255;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const float inv = qmath::inverse_scale(scale[c]);
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i)
        y[base + i] = static_cast<QT>(qmath::quantize(x[base + i], inv, zp[c], lo, hi));
    }
}

template <class QT>
void dequantize(float* y, const QT* x, const float* scale, const int32_t* zp, int64_t outer, int64_t channels,
                int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) y[base + i] = qmath::dequantize(x[base + i], zp[c], scale[c]);
    }
}

template <class T>
void nchw_to_nhwc(T* y, const T* x, int64_t n, int64_t c, int64_t hw) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i) y[(b * hw + i) * c + ch] = x[(b * c + ch) * hw + i];
}

template <class T>
void nhwc_to_nchw(T* y, const T* x, int64_t n, int64_t c, int64_t hw) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i) y[(b * c + ch) * hw + i] = x[(b * hw + i) * c + ch];
}

}  // namespace

void quantize_f32_u8(uint8_t* y, const float* x, const float* scale, const int32_t* zero_point, int64_t outer,
                     int64_t channels, int64_t inner) {
  quantize(y, x, scale, zero_point, outer, channels, inner);
}
void quantize_f32_s8(int8_t* y, const float* x, const float* scale, const int32_t* zero_point, int64_t outer,
                     int64_t channels, int64_t inner) {
  quantize(y, x, scale, zero_point, outer, channels, inner);
}
void fake_quantize_f32(float* y, uint8_t* mask, const float* x, const float* scale, const int32_t* zero_point,
                       int32_t qmin, int32_t qmax, int64_t outer, int64_t channels, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const float inv = qmath::inverse_scale(scale[c]);
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const int32_t q = qmath::round_half_even(x[base + i] * inv) + zero_point[c];
        y[base + i] = qmath::dequantize(qmath::clamp_q(q, qmin, qmax), zero_point[c], scale[c]);
        if (mask) mask[base + i] = q >= qmin && q <= qmax;
      }
    }
}

void lsq_backward_f32(float* dx, double* dscale, double* doffset, const float* g, const float* x, float inv,
                      float offset, int32_t zp, int32_t qmin, int32_t qmax, int64_t n) {
  double ds = 0, db = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = (x[i] - offset) * inv, u = v + (float)zp;
    if (u < (float)qmin) {
      dx[i] = 0;
      ds += (double)g[i] * (qmin - zp);
      db += g[i];
    } else if (u > (float)qmax) {
      dx[i] = 0;
      ds += (double)g[i] * (qmax - zp);
      db += g[i];
    } else {
      dx[i] = g[i];
      ds += (double)g[i] * ((float)qmath::round_half_even(v) - v);
    }
  }
  *dscale = ds;
  *doffset = db;
}

bool f32_minmax(float* mn, float* mx, const float* x, int64_t n) {
  float lo = x[0], hi = x[0];
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) {
    finite = finite && std::isfinite(x[i]);
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  *mn = lo;
  *mx = hi;
  return finite;
}

void dequantize_u8_f32(float* y, const uint8_t* x, const float* scale, const int32_t* zero_point, int64_t outer,
                       int64_t channels, int64_t inner) {
  dequantize(y, x, scale, zero_point, outer, channels, inner);
}
void dequantize_s8_f32(float* y, const int8_t* x, const float* scale, const int32_t* zero_point, int64_t outer,
                       int64_t channels, int64_t inner) {
  dequantize(y, x, scale, zero_point, outer, channels, inner);
}

void requantize_u8(uint8_t* y, const uint8_t* x, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp,
                   int64_t n) {
  const float inv = qmath::inverse_scale(out_scale);
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<uint8_t>(qmath::quantize(qmath::dequantize(x[i], in_zp, in_scale), inv, out_zp, 0, 255));
}

void qu8_add(uint8_t* y, const uint8_t* a, float a_scale, int32_t a_zp, const uint8_t* b, float b_scale, int32_t b_zp,
             float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax, int64_t n) {
  const float inv = qmath::inverse_scale(y_scale);
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<uint8_t>(qmath::add(a[i], a_zp, a_scale, b[i], b_zp, b_scale, inv, y_zp, qmin, qmax));
}

void qu8_max_pool2d(uint8_t* y, const uint8_t* x, const QPool2dShape& sh) {
  int8::check_pool_shape(sh, "qu8_max_pool2d (ref)");
  for (int64_t b = 0; b < sh.n; ++b)
    for (int64_t p = 0; p < sh.p; ++p)
      for (int64_t q = 0; q < sh.q; ++q)
        for (int64_t c = 0; c < sh.c; ++c) {
          int32_t m = 0;  // every window overlaps the input, and u8 ≥ 0
          for (int64_t r = 0; r < sh.r; ++r) {
            const int64_t ih = p * sh.stride_h - sh.pad_h + r;
            if (ih < 0 || ih >= sh.h) continue;
            for (int64_t s = 0; s < sh.s; ++s) {
              const int64_t iw = q * sh.stride_w - sh.pad_w + s;
              if (iw < 0 || iw >= sh.w) continue;
              m = std::max<int32_t>(m, x[((b * sh.h + ih) * sh.w + iw) * sh.c + c]);
            }
          }
          y[((b * sh.p + p) * sh.q + q) * sh.c + c] = static_cast<uint8_t>(m);
        }
}

void qu8_avg_pool2d(uint8_t* y, const uint8_t* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                    const QPool2dShape& sh) {
  int8::check_pool_shape(sh, "qu8_avg_pool2d (ref)");
  const float ratio = qmath::scale_ratio(x_scale, y_scale);
  for (int64_t b = 0; b < sh.n; ++b)
    for (int64_t p = 0; p < sh.p; ++p)
      for (int64_t q = 0; q < sh.q; ++q) {
        // The window as PyTorch counts it: clipped to input + padding, then (without
        // count_include_pad) to the input.
        const int64_t h0 = p * sh.stride_h - sh.pad_h, w0 = q * sh.stride_w - sh.pad_w;
        const int64_t h1 = std::min(h0 + sh.r, sh.h + sh.pad_h), w1 = std::min(w0 + sh.s, sh.w + sh.pad_w);
        const int64_t padded_count = (h1 - h0) * (w1 - w0);
        const int64_t hs = std::max<int64_t>(h0, 0), ws = std::max<int64_t>(w0, 0);
        const int64_t he = std::min(h1, sh.h), we = std::min(w1, sh.w);
        const int64_t count = sh.count_include_pad ? padded_count : (he - hs) * (we - ws);
        const float mult = qmath::avg_multiplier(ratio, count);
        for (int64_t c = 0; c < sh.c; ++c) {
          int32_t sum = 0;  // Σ (x − x_zp) over the input taps; padding taps add 0
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) sum += x[((b * sh.h + ih) * sh.w + iw) * sh.c + c] - x_zp;
          y[((b * sh.p + p) * sh.q + q) * sh.c + c] = static_cast<uint8_t>(qmath::average(sum, mult, y_zp, 0, 255));
        }
      }
}

void qu8_global_avg_pool(uint8_t* y, const uint8_t* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                         int64_t n, int64_t hw, int64_t c) {
  const float mult = qmath::avg_multiplier(qmath::scale_ratio(x_scale, y_scale), hw);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      int32_t sum = 0;
      for (int64_t i = 0; i < hw; ++i) sum = qmath::wrap_add(sum, x[(b * hw + i) * c + ch] - x_zp);
      y[b * c + ch] = static_cast<uint8_t>(qmath::average(sum, mult, y_zp, 0, 255));
    }
}

void u8_nchw_to_nhwc(uint8_t* y, const uint8_t* x, int64_t n, int64_t c, int64_t hw) { nchw_to_nhwc(y, x, n, c, hw); }
void u8_nhwc_to_nchw(uint8_t* y, const uint8_t* x, int64_t n, int64_t c, int64_t hw) { nhwc_to_nchw(y, x, n, c, hw); }
void f32_nchw_to_nhwc(float* y, const float* x, int64_t n, int64_t c, int64_t hw) { nchw_to_nhwc(y, x, n, c, hw); }
void f32_nhwc_to_nchw(float* y, const float* x, int64_t n, int64_t c, int64_t hw) { nhwc_to_nchw(y, x, n, c, hw); }

Int8Kernels int8_kernels() {
  Int8Kernels k{};
  k.qgemm_pack = qgemm_pack;
  k.qu8_qs8_gemm = qu8_qs8_gemm;
  k.qs8_qs8_gemm = qs8_qs8_gemm;
  k.qconv2d_pack = qconv2d_pack;
  k.qu8_qs8_conv2d = qu8_qs8_conv2d;
  k.quantize_f32_u8 = quantize_f32_u8;
  k.quantize_f32_s8 = quantize_f32_s8;
  k.dequantize_u8_f32 = dequantize_u8_f32;
  k.fake_quantize_f32 = fake_quantize_f32;
  k.f32_minmax = f32_minmax;
  k.lsq_backward_f32 = lsq_backward_f32;
  k.dequantize_s8_f32 = dequantize_s8_f32;
  k.requantize_u8 = requantize_u8;
  k.qu8_add = qu8_add;
  k.qu8_max_pool2d = qu8_max_pool2d;
  k.qu8_avg_pool2d = qu8_avg_pool2d;
  k.qu8_global_avg_pool = qu8_global_avg_pool;
  k.u8_nchw_to_nhwc = u8_nchw_to_nhwc;
  k.u8_nhwc_to_nchw = u8_nhwc_to_nchw;
  k.f32_nchw_to_nhwc = f32_nchw_to_nhwc;
  k.f32_nhwc_to_nchw = f32_nhwc_to_nchw;
  k.gemm_path = "qu8-qc8w-gemm-fp32-ref";
  k.conv_path = "qu8-qc8w-conv-direct-fp32-ref";
  k.depthwise_path = "qu8-qc8w-dwconv-direct-fp32-ref";
  k.elementwise_path = "qu8-elementwise-ref";
  return k;
}

}  // namespace lowbit::kernels::ref
