// Reference convolution: im2col / col2im and the three conv directions as
// GEMMs. The GEMM is a parameter so a fast path (avx2) reuses the lowering and
// only swaps the matrix multiply; the plain f32_conv2d_* use ref::f32_gemm and
// always lower explicitly, so the oracle shares no shortcut with fast paths.
//
// Per image n and group g (Cg = C/G input channels, Kg = K/G outputs):
//   col[Cg·R·S × P·Q] = im2col(x[n, g])
//   forward:          y[n, g](Kg × PQ)      = w[g](Kg × CgRS) · col
//   backward input:   dcol(CgRS × PQ)       = w[g]ᵀ · dy[n, g];  dx[n, g] += col2im(dcol)
//   backward weight:  dw[g](Kg × CgRS)     += dy[n, g] · colᵀ
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "kernels/ref/ref.h"

namespace lowbit::kernels::ref {
namespace {

// 1×1, stride 1, no padding: the input plane x[Cg × H·W] is already col.
bool is_pointwise(const Conv2dShape& sh) {
  return sh.r == 1 && sh.s == 1 && sh.stride_h == 1 && sh.stride_w == 1 && sh.pad_h == 0 && sh.pad_w == 0;
}

struct Lowering {
  int64_t cg, kg, crs, pq, hw;
};

Lowering lowering(const Conv2dShape& sh) {
  if (sh.groups < 1 || sh.c % sh.groups != 0 || sh.k % sh.groups != 0)
    throw std::invalid_argument("conv2d kernel: groups must divide both input and output channels");
  Lowering l;
  l.cg = sh.c / sh.groups;
  l.kg = sh.k / sh.groups;
  l.crs = l.cg * sh.r * sh.s;
  l.pq = sh.p() * sh.q();
  l.hw = sh.h * sh.w;
  return l;
}

void conv_forward(float* y, const float* x, const float* w, const float* bias, const Conv2dShape& sh,
                  GemmFn gemm, bool direct_pointwise) {
  const Lowering l = lowering(sh);
  const bool direct = direct_pointwise && is_pointwise(sh);
  std::vector<float> col(direct ? 0 : static_cast<size_t>(l.crs * l.pq));
  for (int64_t b = 0; b < sh.n; ++b)
    for (int64_t g = 0; g < sh.groups; ++g) {
      const float* xg = x + (b * sh.c + g * l.cg) * l.hw;
      float* yg = y + (b * sh.k + g * l.kg) * l.pq;
      const float* bmat = xg;
      if (!direct) {
        f32_im2col(col.data(), xg, l.cg, sh.h, sh.w, sh);
        bmat = col.data();
      }
      gemm(yg, l.pq, w + g * l.kg * l.crs, l.crs, bmat, l.pq, false, false, 0.0f, l.kg, l.pq, l.crs);
      if (bias)
        for (int64_t k = 0; k < l.kg; ++k) {
          const float bv = bias[g * l.kg + k];
          float* row = yg + k * l.pq;
          for (int64_t i = 0; i < l.pq; ++i) row[i] += bv;
        }
    }
}

void conv_backward_input(float* dx, const float* dy, const float* w, const Conv2dShape& sh, GemmFn gemm,
                         bool direct_pointwise) {
  const Lowering l = lowering(sh);
  const bool direct = direct_pointwise && is_pointwise(sh);
  std::vector<float> col(direct ? 0 : static_cast<size_t>(l.crs * l.pq));
  if (!direct) std::fill(dx, dx + sh.n * sh.c * l.hw, 0.0f);
  for (int64_t b = 0; b < sh.n; ++b)
    for (int64_t g = 0; g < sh.groups; ++g) {
      float* dxg = dx + (b * sh.c + g * l.cg) * l.hw;
      const float* dyg = dy + (b * sh.k + g * l.kg) * l.pq;
      // Pointwise: dcol is dx itself, written directly (beta = 0).
      float* dcol = direct ? dxg : col.data();
      gemm(dcol, l.pq, w + g * l.kg * l.crs, l.crs, dyg, l.pq, true, false, 0.0f, l.crs, l.pq, l.kg);
      if (!direct) f32_col2im(dxg, col.data(), l.cg, sh.h, sh.w, sh);
    }
}

void conv_backward_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& sh,
                          GemmFn gemm, bool direct_pointwise) {
  const Lowering l = lowering(sh);
  const bool direct = direct_pointwise && is_pointwise(sh);
  std::vector<float> col(direct ? 0 : static_cast<size_t>(l.crs * l.pq));
  if (sh.n == 0) std::fill(dw, dw + sh.k * l.crs, 0.0f);
  for (int64_t b = 0; b < sh.n; ++b)
    for (int64_t g = 0; g < sh.groups; ++g) {
      const float* xg = x + (b * sh.c + g * l.cg) * l.hw;
      const float* dyg = dy + (b * sh.k + g * l.kg) * l.pq;
      const float* cmat = xg;
      if (!direct) {
        f32_im2col(col.data(), xg, l.cg, sh.h, sh.w, sh);
        cmat = col.data();
      }
      // First image overwrites dw (beta = 0), later ones accumulate.
      gemm(dw + g * l.kg * l.crs, l.crs, dyg, l.pq, cmat, l.pq, false, true, b == 0 ? 0.0f : 1.0f, l.kg,
           l.crs, l.pq);
    }
  if (db) {
    // Double accumulation: a bias gradient sums N·P·Q terms.
    for (int64_t k = 0; k < sh.k; ++k) {
      double s = 0.0;
      for (int64_t b = 0; b < sh.n; ++b) {
        const float* row = dy + (b * sh.k + k) * l.pq;
        for (int64_t i = 0; i < l.pq; ++i) s += row[i];
      }
      db[k] = static_cast<float>(s);
    }
  }
}

}  // namespace

// col[(C·R·S) × (P·Q)] from x[C×H×W]; zero where the window reads padding.
void f32_im2col(float* col, const float* x, int64_t c, int64_t h, int64_t w, const Conv2dShape& sh) {
  const int64_t p = sh.p(), q = sh.q();
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t fr = 0; fr < sh.r; ++fr)
      for (int64_t fs = 0; fs < sh.s; ++fs) {
        float* out = col + ((ch * sh.r + fr) * sh.s + fs) * p * q;
        for (int64_t i = 0; i < p; ++i) {
          const int64_t ih = i * sh.stride_h - sh.pad_h + fr * sh.dil_h;
          float* orow = out + i * q;
          if (ih < 0 || ih >= h) {
            std::fill(orow, orow + q, 0.0f);
            continue;
          }
          const float* xrow = x + (ch * h + ih) * w;
          for (int64_t j = 0; j < q; ++j) {
            const int64_t iw = j * sh.stride_w - sh.pad_w + fs * sh.dil_w;
            orow[j] = (iw >= 0 && iw < w) ? xrow[iw] : 0.0f;
          }
        }
      }
}

// x[C×H×W] += col2im(col[(C·R·S) × (P·Q)]); padding positions are dropped.
void f32_col2im(float* x, const float* col, int64_t c, int64_t h, int64_t w, const Conv2dShape& sh) {
  const int64_t p = sh.p(), q = sh.q();
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t fr = 0; fr < sh.r; ++fr)
      for (int64_t fs = 0; fs < sh.s; ++fs) {
        const float* in = col + ((ch * sh.r + fr) * sh.s + fs) * p * q;
        for (int64_t i = 0; i < p; ++i) {
          const int64_t ih = i * sh.stride_h - sh.pad_h + fr * sh.dil_h;
          if (ih < 0 || ih >= h) continue;
          float* xrow = x + (ch * h + ih) * w;
          const float* irow = in + i * q;
          for (int64_t j = 0; j < q; ++j) {
            const int64_t iw = j * sh.stride_w - sh.pad_w + fs * sh.dil_w;
            if (iw >= 0 && iw < w) xrow[iw] += irow[j];
          }
        }
      }
}

// y[N×K×P×Q] = conv(x[N×C×H×W], w[K×C/G×R×S]) + bias[K]
void f32_conv2d_forward_im2col(float* y, const float* x, const float* w, const float* bias,
                               const Conv2dShape& sh, GemmFn gemm) {
  conv_forward(y, x, w, bias, sh, gemm, true);
}

// dx[N×C×H×W] (overwritten) from dy[N×K×P×Q], w[K×C/G×R×S]
void f32_conv2d_backward_input_im2col(float* dx, const float* dy, const float* w, const Conv2dShape& sh,
                                      GemmFn gemm) {
  conv_backward_input(dx, dy, w, sh, gemm, true);
}

// dw[K×C/G×R×S] and db[K] (both overwritten; db may be null) from dy, x
void f32_conv2d_backward_weight_im2col(float* dw, float* db, const float* dy, const float* x,
                                       const Conv2dShape& sh, GemmFn gemm) {
  conv_backward_weight(dw, db, dy, x, sh, gemm, true);
}

void f32_conv2d_forward(float* y, const float* x, const float* w, const float* bias, const Conv2dShape& sh) {
  conv_forward(y, x, w, bias, sh, &f32_gemm, false);
}

void f32_conv2d_backward_input(float* dx, const float* dy, const float* w, const Conv2dShape& sh) {
  conv_backward_input(dx, dy, w, sh, &f32_gemm, false);
}

void f32_conv2d_backward_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& sh) {
  conv_backward_weight(dw, db, dy, x, sh, &f32_gemm, false);
}

}  // namespace lowbit::kernels::ref
