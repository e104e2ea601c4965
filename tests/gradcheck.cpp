#include "tests/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "core/autograd.h"

namespace lowbit::testing {

namespace {

// Element i (logical row-major order) of a possibly strided f32 tensor.
float* element(const Tensor& t, int64_t i) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    const int64_t n = t.shape()[d];
    off += (i % n) * t.strides()[d];
    i /= n;
  }
  return t.data<float>() + off;
}

double weighted_sum(const Tensor& y, const Tensor& gy) {
  std::vector<float> a = y.to_vector(), b = gy.to_vector();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double)a[i] * b[i];
  return s;
}

double abs_weighted_sum(const Tensor& y, const Tensor& gy) {
  std::vector<float> a = y.to_vector(), b = gy.to_vector();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::abs((double)a[i] * b[i]);
  return s;
}

}  // namespace

std::string gradcheck(const OpFn& f, std::vector<Tensor> inputs, const GradcheckOptions& opt) {
  std::vector<bool> check = opt.check;
  if (check.empty())
    for (const Tensor& t : inputs) check.push_back(t.defined() && t.dtype() == DType::f32);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!check[i]) continue;
    inputs[i] = inputs[i].detach();  // a fresh leaf with the same (possibly strided) layout
    inputs[i].set_requires_grad(true);
  }
  Tensor y = f(inputs);
  for (float v : y.to_vector())
    if (!std::isfinite(v)) return "the forward output holds a non-finite value (" + std::to_string(v) + ")";
  Generator gen(1234);
  Tensor gy = randn(y.shape(), &gen);
  y.backward(gy);

  std::ostringstream report;
  double worst = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!check[k]) continue;
    Tensor x = inputs[k];
    Tensor g = x.grad();
    if (!g.defined()) {
      report << "input " << k << ": no gradient was produced";
      return report.str();
    }
    if (g.shape() != x.shape()) {
      report << "input " << k << ": gradient shape " << shape_str(g.shape()) << " != input shape " << shape_str(x.shape());
      return report.str();
    }
    std::vector<float> analytic = g.to_vector();
    std::vector<double> numeric(x.numel());
    NoGradGuard ng;
    // Rounding noise of the f32 forward, carried through the difference quotient.
    const double noise = 4 * 6e-8 * abs_weighted_sum(f(inputs), gy) / opt.h;
    for (int64_t i = 0; i < x.numel(); ++i) {
      float* p = element(x, i);
      const float orig = *p;
      double L[4];
      const double steps[4] = {2, 1, -1, -2};
      for (int s = 0; s < 4; ++s) {
        *p = (float)(orig + steps[s] * opt.h);
        L[s] = weighted_sum(f(inputs), gy);
      }
      *p = orig;
      numeric[i] = (-L[0] + 8 * L[1] - 8 * L[2] + L[3]) / (12 * opt.h);
    }
    // The tolerance scales with this gradient: a fixed absolute one would let
    // a 17% error through on a gradient of size 0.02.
    double scale = 0;
    for (double n : numeric) scale = std::max(scale, std::abs(n));
    for (int64_t i = 0; i < x.numel(); ++i) {
      const bool finite = std::isfinite(analytic[i]) && std::isfinite(numeric[i]);
      const double diff = std::abs(analytic[i] - numeric[i]);
      const double tol = opt.rtol * std::abs(numeric[i]) + opt.atol * scale + noise;
      // Any non-finite value fails (NaN > worst is false, so test it first).
      const double excess = finite ? diff - tol : INFINITY;
      if (excess > worst) {
        worst = excess;
        report.str("");
        report << "input " << k << " " << shape_str(x.shape()) << " element " << i << ": analytic " << analytic[i]
               << " vs numeric " << numeric[i] << " (tolerance " << tol << ")";
      }
    }
  }
  return worst > 0 ? report.str() : std::string();
}

Tensor distinct_values(const Shape& shape, uint64_t seed, float scale) {
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  Generator g(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(idx[i], idx[g.next_u64() % (uint64_t)(i + 1)]);
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = ((float)idx[i] - (float)n / 2 + 0.5f) * scale;
  return Tensor::from_vector(v, shape);
}

Tensor randn_away(const Shape& shape, uint64_t seed, std::vector<float> avoid, float margin) {
  Generator g(seed);
  Tensor t = randn(shape, &g);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    for (float a : avoid)
      if (std::abs(p[i] - a) < margin) p[i] = a + (p[i] >= a ? margin : -margin) * 2;
  return t;
}

Tensor noncontig(const Tensor& t) {
  LOWBIT_CHECK(t.dim() >= 2, "noncontig: needs a tensor with at least 2 dims");
  NoGradGuard ng;
  // Store the transpose contiguously, then view it transposed back.
  Tensor tt = t.transpose(-1, -2).contiguous();
  Tensor v = tt.transpose(-1, -2).detach();
  LOWBIT_CHECK(!v.is_contiguous() || t.size(-1) == 1 || t.size(-2) == 1, "noncontig: result is contiguous");
  return v;
}

double rel_error(const Tensor& a, const Tensor& b) {
  LOWBIT_CHECK(a.shape() == b.shape(), "rel_error: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  std::vector<float> va = a.to_vector(), vb = b.to_vector();
  double num = 0, den = 1e-6;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) != std::isnan(vb[i])) return INFINITY;
    num = std::max(num, (double)std::abs(va[i] - vb[i]));
    den = std::max(den, (double)std::abs(vb[i]));
  }
  return num / den;
}

}  // namespace lowbit::testing
