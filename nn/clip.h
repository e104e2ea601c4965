// Gradient clipping by total norm, as torch.nn.utils.clip_grad_norm_.
#pragma once
#include <limits>
#include <vector>

#include "core/tensor.h"

namespace lowbit::nn {

inline constexpr double kInfNorm = std::numeric_limits<double>::infinity();

// total = the norm_type-norm of all gradients taken together (as if
// concatenated; parameters without a gradient are skipped, no gradient at all
// gives 0); every gradient is then scaled in place by
// min(1, max_norm / (total + 1e-6)). Returns total. norm_type: any p > 0, or
// kInfNorm (largest |g|). A non-finite total is an error when
// error_if_nonfinite, otherwise the gradients are scaled by the (NaN)
// coefficient, as PyTorch does. Sums run in double over fixed blocks, so the
// result does not depend on the thread count.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

}  // namespace lowbit::nn
