// Finite-difference gradient check (ggml/tinygrad style) used by every op test.
//
// For output y = f(inputs) and a fixed random upstream gradient gy, the
// analytic gradient of L = Σ y·gy from backward() is compared with the
// 4-point central difference
//     dL/dx_i ≈ (−L(x+2h) + 8L(x+h) − 8L(x−h) + L(x−2h)) / 12h
// evaluated in double from f32 forwards. Inputs may be non-contiguous views.
//
// How to add an op test: build inputs (randn / distinct_values / a
// non-contiguous view via noncontig()), call CHECK(gradcheck(f, {a, b}));
// choose inputs away from kinks (relu at 0, max ties) so the difference
// quotient is valid.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"

namespace lowbit::testing {

struct GradcheckOptions {
  double h = 1e-2;     // step
  // |analytic − numeric| ≤ rtol·|numeric| + atol·max|numeric| + f32 rounding
  // noise, per input: the tolerance follows each gradient's own scale. Any
  // non-finite output or gradient fails.
  double atol = 1e-3;
  double rtol = 1e-2;
  std::vector<bool> check;  // per input; empty = all f32 inputs
};

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Returns "" on success, else a description of the worst mismatch.
std::string gradcheck(const OpFn& f, std::vector<Tensor> inputs, const GradcheckOptions& opt = {});

// Values that differ pairwise by ≥ 0.05 (no ties, no kinks within h), in random order.
Tensor distinct_values(const Shape& shape, uint64_t seed, float scale = 0.05f);
// randn, then push values away from the points in `avoid` by at least margin.
Tensor randn_away(const Shape& shape, uint64_t seed, std::vector<float> avoid, float margin = 0.05f);
// A non-contiguous view holding the same values as `t` (made by transposing
// the last two dims of a copy laid out transposed).
Tensor noncontig(const Tensor& t);

// max |a − b| / max(max |b|, 1e-6) over all elements (shapes must agree).
double rel_error(const Tensor& a, const Tensor& b);

}  // namespace lowbit::testing
