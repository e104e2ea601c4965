// Scalar reference float kernels: elementwise, reductions, batch-norm helpers
// and GEMM. These define correct; every fast path is tested against them.
//
// Numerics (written once, here):
//  - f32_sum accumulates sequentially in double: for the sizes we meet
//    (≤ 1e9 elements) its error is far below float resolution, so it is a
//    usable oracle for blocked/lane-parallel fast paths.
//  - f32_channel_moments is two-pass in double (mean, then mean of squared
//    deviations): no cancellation from E[x²] − E[x]².
//  - f32_gemm accumulates each dot product in double, again to be the oracle
//    a float FMA kernel is measured against.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/ref.h"

namespace lowbit::kernels::ref {
namespace {

// Stable for large |x|: never evaluates exp of a large positive number.
float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  float e = std::exp(x);
  return e / (1.0f + e);
}

// The switch sits outside the loop so each loop body is a single op.
template <class F>
void map(float* y, const float* x, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <class F>
void zip(float* y, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(a[i * sa], b[i * sb]);
}

}  // namespace

// y[n] = op(x[n])
void f32_unary(float* y, const float* x, Unary op, int64_t n) {
  switch (op) {
    case Unary::neg: map(y, x, n, [](float v) { return -v; }); break;
    case Unary::exp: map(y, x, n, [](float v) { return std::exp(v); }); break;
    case Unary::log: map(y, x, n, [](float v) { return std::log(v); }); break;
    case Unary::sqrt: map(y, x, n, [](float v) { return std::sqrt(v); }); break;
    case Unary::abs: map(y, x, n, [](float v) { return std::fabs(v); }); break;
    // relu/relu6 are the fused activations' definition (act_apply: NaN propagates, as PyTorch).
    case Unary::relu: map(y, x, n, [](float v) { return act_apply(Act::relu, v); }); break;
    case Unary::relu6: map(y, x, n, [](float v) { return act_apply(Act::relu6, v); }); break;
    case Unary::sigmoid: map(y, x, n, sigmoid); break;
    case Unary::tanh: map(y, x, n, [](float v) { return std::tanh(v); }); break;
    case Unary::square: map(y, x, n, [](float v) { return v * v; }); break;
    case Unary::reciprocal: map(y, x, n, [](float v) { return 1.0f / v; }); break;
  }
}

// y[n] = op(a[n*sa], b[n*sb])
void f32_binary(float* y, const float* a, int64_t sa, const float* b, int64_t sb, Binary op, int64_t n) {
  switch (op) {
    case Binary::add: zip(y, a, sa, b, sb, n, [](float u, float v) { return u + v; }); break;
    case Binary::sub: zip(y, a, sa, b, sb, n, [](float u, float v) { return u - v; }); break;
    case Binary::mul: zip(y, a, sa, b, sb, n, [](float u, float v) { return u * v; }); break;
    case Binary::div: zip(y, a, sa, b, sb, n, [](float u, float v) { return u / v; }); break;
    // max/min propagate NaN from either side, as torch.maximum/minimum.
    case Binary::max:
      zip(y, a, sa, b, sb, n, [](float u, float v) { return (u != u || u > v) ? u : v; });
      break;
    case Binary::min:
      zip(y, a, sa, b, sb, n, [](float u, float v) { return (u != u || u < v) ? u : v; });
      break;
  }
}

// y[n] = a[n]*alpha + b[n]*beta
void f32_axpby(float* y, const float* a, float alpha, const float* b, float beta, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * alpha + b[i] * beta;
}

// sum of x[n], sequential in double
double f32_sum(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

// max of x[n]; NaN if any element is NaN; -inf for n == 0
float f32_max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] != x[i]) return x[i];
    if (x[i] > m) m = x[i];
  }
  return m;
}

// mean[C], var[C] (biased) over x[N×C×HW]
void f32_channel_moments(float* mean, float* var, const float* x, int64_t n, int64_t c, int64_t hw) {
  const double count = static_cast<double>(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0.0;
    for (int64_t b = 0; b < n; ++b) {
      const float* p = x + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) s += p[i];
    }
    const double mu = count > 0 ? s / count : 0.0;
    double ss = 0.0;
    for (int64_t b = 0; b < n; ++b) {
      const float* p = x + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) {
        double d = p[i] - mu;
        ss += d * d;
      }
    }
    mean[ch] = static_cast<float>(mu);
    var[ch] = count > 0 ? static_cast<float>(ss / count) : 0.0f;
  }
}

// y[N×C×HW] = x * scale[C] + shift[C]
void f32_channel_affine(float* y, const float* x, const float* scale, const float* shift, Act act,
                        int64_t n, int64_t c, int64_t hw) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* p = x + (b * c + ch) * hw;
      float* q = y + (b * c + ch) * hw;
      const float sc = scale[ch], sh = shift[ch];
      for (int64_t i = 0; i < hw; ++i) q[i] = act_apply(act, p[i] * sc + sh);
    }
}

// Batch-norm backward: channel sums in double, then dx (see kernels.h).
void f32_bn_backward(float* dx, float* sum_g, float* sum_gxhat, const float* x, const float* g, const float* y,
                     Act act, const float* mean, const float* invstd, const float* weight, bool training, int64_t n,
                     int64_t c, int64_t hw) {
  const double count = static_cast<double>(n * hw);
  // The gradient reaching the batch norm: g where the fused activation passes, else 0.
  auto gate = [&](int64_t i) { return act == Act::none || act_passes(act, y[i]) ? g[i] : 0.0f; };
  for (int64_t ch = 0; ch < c; ++ch) {
    const double m = mean[ch], is = invstd[ch];
    double sg = 0.0, sgx = 0.0;
    for (int64_t b = 0; b < n; ++b) {
      const int64_t o = (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) {
        const float gi = gate(o + i);
        sg += gi;
        sgx += double(gi) * ((x[o + i] - m) * is);
      }
    }
    sum_g[ch] = static_cast<float>(sg);
    sum_gxhat[ch] = static_cast<float>(sgx);
    if (!dx) continue;
    const double w = weight ? weight[ch] : 1.0;
    const double mg = training && count > 0 ? sg / count : 0.0, mgx = training && count > 0 ? sgx / count : 0.0;
    for (int64_t b = 0; b < n; ++b) {
      const int64_t o = (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i)
        dx[o + i] = static_cast<float>(w * is * (gate(o + i) - mg - (x[o + i] - m) * is * mgx));
    }
  }
}

// C[M×N] = op(A)[M×K] · op(B)[K×N] + beta·C
void f32_gemm(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int64_t ldb,
              bool trans_a, bool trans_b, float beta, int64_t m, int64_t n, int64_t k) {
  // One row of double accumulators; the p-outer loop keeps B accesses along
  // rows when B is not transposed (the common case in im2col convolution).
  std::vector<double> acc(static_cast<size_t>(n));
  for (int64_t i = 0; i < m; ++i) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t p = 0; p < k; ++p) {
      const double av = trans_a ? a[p * lda + i] : a[i * lda + p];
      if (trans_b) {
        for (int64_t j = 0; j < n; ++j) acc[j] += av * b[j * ldb + p];
      } else {
        const float* brow = b + p * ldb;
        for (int64_t j = 0; j < n; ++j) acc[j] += av * brow[j];
      }
    }
    float* crow = c + i * ldc;
    if (beta == 0.0f) {
      for (int64_t j = 0; j < n; ++j) crow[j] = static_cast<float>(acc[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) crow[j] = static_cast<float>(acc[j] + double(beta) * crow[j]);
    }
  }
}

}  // namespace lowbit::kernels::ref
