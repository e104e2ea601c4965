#include "nn/clip.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"

namespace lowbit::nn {

namespace {

constexpr int64_t kBlock = 1 << 14;

// Σ|x|^p over a contiguous array, or max|x| for p = inf: per-block partials
// in double, combined in block order.
double power_sum(const float* x, int64_t n, double p) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part((size_t)blocks, 0.0);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
    double acc = 0.0;
    if (std::isinf(p)) {
      for (int64_t i = lo; i < hi; ++i) {
        const double a = std::fabs((double)x[i]);
        acc = std::isnan(a) || a > acc ? a : acc;  // NaN propagates
      }
    } else if (p == 2.0) {
      for (int64_t i = lo; i < hi; ++i) acc += (double)x[i] * (double)x[i];
    } else {
      for (int64_t i = lo; i < hi; ++i) acc += std::pow(std::fabs((double)x[i]), p);
    }
    part[(size_t)b] = acc;
  }
  double total = 0.0;
  for (double v : part) total = std::isinf(p) ? (std::isnan(v) || v > total ? v : total) : total + v;
  return total;
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  LOWBIT_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be positive, got ", norm_type);
  const bool inf = std::isinf(norm_type);
  std::vector<Tensor> grads;
  for (auto& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (g.defined()) grads.push_back(g);
  }
  if (grads.empty()) return 0.0;
  double acc = 0.0;
  for (auto& g : grads) {
    LOWBIT_CHECK(g.dtype() == DType::f32, "clip_grad_norm_: gradients must be f32, got ", dtype_name(g.dtype()));
    Tensor c = g.contiguous();
    const double s = power_sum(c.data<float>(), c.numel(), norm_type);
    acc = inf ? (std::isnan(s) || s > acc ? s : acc) : acc + s;
  }
  const double total = inf ? acc : std::pow(acc, 1.0 / norm_type);
  LOWBIT_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total norm of order ", norm_type,
               " of the gradients is ", total, "; cannot clip");
  const double coef = max_norm / (total + 1e-6);
  if (coef >= 1.0) return total;  // PyTorch multiplies by the clamped 1.0: a no-op
  const float f = (float)coef;  // NaN when total is NaN: propagates, as PyTorch
  NoGradGuard no_grad;
  for (auto& g : grads) {
    if (g.is_contiguous()) {
      float* x = g.data<float>();
      const int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (n >= kBlock)
      for (int64_t i = 0; i < n; ++i) x[i] *= f;
      g.bump_version();
    } else {
      g.copy_(mul(g, f));
    }
  }
  return total;
}

}  // namespace lowbit::nn
