#include "nn/divergence.h"

#include <cstdio>

#include "core/error.h"

namespace lowbit::nn {

std::optional<std::string> DivergenceMonitor::add_loss(double loss) {
  LOWBIT_CHECK(rule_.window >= 1 && rule_.rising >= 1 && rule_.factor > 0, "divergence rule: window ", rule_.window,
               ", rising ", rule_.rising, ", factor ", rule_.factor, " (all must be positive)");
  sum_ += loss;
  if (++in_window_ < rule_.window) return std::nullopt;
  const double mean = sum_ / rule_.window;
  sum_ = 0;
  in_window_ = 0;
  if (first_ < 0) {
    first_ = last_ = mean;
    return std::nullopt;
  }
  rises_ = mean > last_ ? rises_ + 1 : 0;
  last_ = mean;
  if (fired_ || rises_ < rule_.rising || !(mean >= rule_.factor * first_)) return std::nullopt;
  fired_ = true;
  char b[256];
  std::snprintf(b, sizeof b, "training loss rose for %d windows of %d steps to %.4g, %.1fx the first window's %.4g",
                rises_, rule_.window, mean, mean / first_, first_);
  return std::string(b);
}

}  // namespace lowbit::nn
