// Reference pooling and row softmax. No fast paths yet: pooling is memory
// bound and a small share of a ResNet/MobileNetV2 step, so core calls these
// directly. Semantics follow PyTorch (noted per kernel where they differ in
// corner cases).
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ref/ref.h"

namespace lowbit::kernels::ref {

// y[N·C×P×Q], argmax[N·C×P×Q] (index into the H×W plane) from x[N·C×H×W].
// A window lying wholly in padding (impossible with PyTorch's pad ≤ R/2 rule)
// gives -inf and argmax -1, which the backward skips.
void f32_max_pool2d_forward(float* y, int32_t* argmax, const float* x, const Pool2dShape& sh) {
  const int64_t planes = sh.n * sh.c, hw = sh.h * sh.w, pq = sh.p * sh.q;
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * hw;
    for (int64_t i = 0; i < sh.p; ++i)
      for (int64_t j = 0; j < sh.q; ++j) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_at = -1;
        bool is_nan = false;
        for (int64_t a = 0; a < sh.r && !is_nan; ++a) {
          const int64_t ih = i * sh.stride_h - sh.pad_h + a * sh.dil_h;
          if (ih < 0 || ih >= sh.h) continue;
          for (int64_t b = 0; b < sh.s; ++b) {
            const int64_t iw = j * sh.stride_w - sh.pad_w + b * sh.dil_w;
            if (iw < 0 || iw >= sh.w) continue;
            const float v = xp[ih * sh.w + iw];
            // Strict '>' keeps the first maximum; a NaN wins and ends the search.
            if (v != v || v > best || best_at < 0) {
              best = v;
              best_at = ih * sh.w + iw;
              if (v != v) {
                is_nan = true;
                break;
              }
            }
          }
        }
        y[pl * pq + i * sh.q + j] = best;
        argmax[pl * pq + i * sh.q + j] = static_cast<int32_t>(best_at);
      }
  }
}

// dx[N·C×H×W] = scatter-add of dy to argmax positions (dx overwritten).
void f32_max_pool2d_backward(float* dx, const float* dy, const int32_t* argmax, const Pool2dShape& sh) {
  const int64_t planes = sh.n * sh.c, hw = sh.h * sh.w, pq = sh.p * sh.q;
  std::fill(dx, dx + planes * hw, 0.0f);
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t o = 0; o < pq; ++o) {
      const int32_t at = argmax[pl * pq + o];
      if (at >= 0) dx[pl * hw + at] += dy[pl * pq + o];
    }
}

namespace {

// Divisor of output (i, j). count_include_pad counts window taps inside the
// padded frame [-pad, H+pad) — PyTorch's (hend-hstart)·(wend-wstart), which
// drops the part of a ceil_mode window hanging past the padding; otherwise
// only the taps inside the input.
int64_t avg_divisor(const Pool2dShape& sh, int64_t i, int64_t j) {
  int64_t rows = 0, cols = 0;
  for (int64_t a = 0; a < sh.r; ++a) {
    const int64_t ih = i * sh.stride_h - sh.pad_h + a * sh.dil_h;
    rows += sh.count_include_pad ? (ih >= -sh.pad_h && ih < sh.h + sh.pad_h) : (ih >= 0 && ih < sh.h);
  }
  for (int64_t b = 0; b < sh.s; ++b) {
    const int64_t iw = j * sh.stride_w - sh.pad_w + b * sh.dil_w;
    cols += sh.count_include_pad ? (iw >= -sh.pad_w && iw < sh.w + sh.pad_w) : (iw >= 0 && iw < sh.w);
  }
  return rows * cols;
}

}  // namespace

// y[N·C×P×Q] = window mean of x[N·C×H×W]
void f32_avg_pool2d_forward(float* y, const float* x, const Pool2dShape& sh) {
  const int64_t planes = sh.n * sh.c, hw = sh.h * sh.w, pq = sh.p * sh.q;
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * hw;
    for (int64_t i = 0; i < sh.p; ++i)
      for (int64_t j = 0; j < sh.q; ++j) {
        double s = 0.0;
        for (int64_t a = 0; a < sh.r; ++a) {
          const int64_t ih = i * sh.stride_h - sh.pad_h + a * sh.dil_h;
          if (ih < 0 || ih >= sh.h) continue;
          for (int64_t b = 0; b < sh.s; ++b) {
            const int64_t iw = j * sh.stride_w - sh.pad_w + b * sh.dil_w;
            if (iw >= 0 && iw < sh.w) s += xp[ih * sh.w + iw];
          }
        }
        const int64_t d = avg_divisor(sh, i, j);
        y[pl * pq + i * sh.q + j] = d > 0 ? static_cast<float>(s / d) : 0.0f;
      }
  }
}

// dx[N·C×H×W] (overwritten) = each dy spread evenly over its window
void f32_avg_pool2d_backward(float* dx, const float* dy, const Pool2dShape& sh) {
  const int64_t planes = sh.n * sh.c, hw = sh.h * sh.w, pq = sh.p * sh.q;
  std::fill(dx, dx + planes * hw, 0.0f);
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* dxp = dx + pl * hw;
    for (int64_t i = 0; i < sh.p; ++i)
      for (int64_t j = 0; j < sh.q; ++j) {
        const int64_t d = avg_divisor(sh, i, j);
        if (d == 0) continue;
        const float g = dy[pl * pq + i * sh.q + j] / static_cast<float>(d);
        for (int64_t a = 0; a < sh.r; ++a) {
          const int64_t ih = i * sh.stride_h - sh.pad_h + a * sh.dil_h;
          if (ih < 0 || ih >= sh.h) continue;
          for (int64_t b = 0; b < sh.s; ++b) {
            const int64_t iw = j * sh.stride_w - sh.pad_w + b * sh.dil_w;
            if (iw >= 0 && iw < sh.w) dxp[ih * sh.w + iw] += g;
          }
        }
      }
  }
}

// y[NC×P×Q] from x[NC×H×W]; bin i covers rows [floor(i·H/P), ceil((i+1)·H/P)).
void f32_adaptive_avg_pool2d_forward(float* y, const float* x, int64_t nc, int64_t h, int64_t w,
                                     int64_t p, int64_t q) {
  for (int64_t pl = 0; pl < nc; ++pl) {
    const float* xp = x + pl * h * w;
    for (int64_t i = 0; i < p; ++i) {
      const int64_t h0 = (i * h) / p, h1 = ((i + 1) * h + p - 1) / p;
      for (int64_t j = 0; j < q; ++j) {
        const int64_t w0 = (j * w) / q, w1 = ((j + 1) * w + q - 1) / q;
        double s = 0.0;
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) s += xp[a * w + b];
        y[(pl * p + i) * q + j] = static_cast<float>(s / double((h1 - h0) * (w1 - w0)));
      }
    }
  }
}

// dx[NC×H×W] (overwritten) from dy[NC×P×Q]
void f32_adaptive_avg_pool2d_backward(float* dx, const float* dy, int64_t nc, int64_t h, int64_t w,
                                      int64_t p, int64_t q) {
  std::fill(dx, dx + nc * h * w, 0.0f);
  for (int64_t pl = 0; pl < nc; ++pl) {
    float* dxp = dx + pl * h * w;
    for (int64_t i = 0; i < p; ++i) {
      const int64_t h0 = (i * h) / p, h1 = ((i + 1) * h + p - 1) / p;
      for (int64_t j = 0; j < q; ++j) {
        const int64_t w0 = (j * w) / q, w1 = ((j + 1) * w + q - 1) / q;
        const float g = dy[(pl * p + i) * q + j] / static_cast<float>((h1 - h0) * (w1 - w0));
        for (int64_t a = h0; a < h1; ++a)
          for (int64_t b = w0; b < w1; ++b) dxp[a * w + b] += g;
      }
    }
  }
}

// y[rows×cols] = softmax (or log-softmax) of each row of x; max-subtracted so
// exp never overflows, the normalizer summed in double.
void f32_softmax_rows(float* y, const float* x, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < cols; ++j) m = std::max(m, xr[j]);
    if (m == -std::numeric_limits<float>::infinity()) m = 0.0f;  // all -inf row: avoid (-inf) - (-inf)
    double s = 0.0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(double(xr[j]) - m);
    if (log) {
      const double ls = std::log(s);
      for (int64_t j = 0; j < cols; ++j) yr[j] = static_cast<float>(double(xr[j]) - m - ls);
    } else {
      const double inv = 1.0 / s;
      for (int64_t j = 0; j < cols; ++j) yr[j] = static_cast<float>(std::exp(double(xr[j]) - m) * inv);
    }
  }
}

}  // namespace lowbit::kernels::ref
