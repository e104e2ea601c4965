#include "nn/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace lowbit::nn {

namespace {
void check_increasing(const std::vector<int64_t>& m, const char* who) {
  for (size_t i = 1; i < m.size(); ++i)
    LOWBIT_CHECK(m[i] > m[i - 1], who, ": milestones must increase, got ", m[i - 1], " then ", m[i]);
}
void check_t(int64_t t, const char* who) { LOWBIT_CHECK(t >= 0, who, ": step index must be >= 0, got ", t); }
}  // namespace

StepLR::StepLR(int64_t step_size, double gamma) : step_size(step_size), gamma(gamma) {
  LOWBIT_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
}

double StepLR::lr(int64_t t, double base_lr) const {
  check_t(t, "StepLR");
  return base_lr * std::pow(gamma, (double)(t / step_size));
}

MultiStepLR::MultiStepLR(std::vector<int64_t> ms, double gamma) : milestones(std::move(ms)), gamma(gamma) {
  check_increasing(milestones, "MultiStepLR");
}

double MultiStepLR::lr(int64_t t, double base_lr) const {
  check_t(t, "MultiStepLR");
  const auto passed = std::upper_bound(milestones.begin(), milestones.end(), t) - milestones.begin();
  return base_lr * std::pow(gamma, (double)passed);
}

CosineAnnealingLR::CosineAnnealingLR(int64_t t_max, double eta_min) : t_max(t_max), eta_min(eta_min) {
  LOWBIT_CHECK(t_max > 0, "CosineAnnealingLR: T_max must be positive, got ", t_max);
}

double CosineAnnealingLR::lr(int64_t t, double base_lr) const {
  check_t(t, "CosineAnnealingLR");
  return eta_min + (base_lr - eta_min) * (1.0 + std::cos(std::numbers::pi * (double)t / (double)t_max)) / 2.0;
}

LinearWarmup::LinearWarmup(int64_t total_iters, double start_factor, double end_factor)
    : total_iters(total_iters), start_factor(start_factor), end_factor(end_factor) {
  LOWBIT_CHECK(total_iters > 0, "LinearWarmup: total_iters must be positive, got ", total_iters);
  LOWBIT_CHECK(start_factor > 0 && start_factor <= 1 && end_factor >= 0 && end_factor <= 1,
               "LinearWarmup: factors must lie in (0, 1] and [0, 1], got ", start_factor, " and ", end_factor);
}

double LinearWarmup::lr(int64_t t, double base_lr) const {
  check_t(t, "LinearWarmup");
  const double progress = (double)std::min(t, total_iters) / (double)total_iters;
  return base_lr * (start_factor + (end_factor - start_factor) * progress);
}

SequentialLR::SequentialLR(std::vector<LrSchedulePtr> s, std::vector<int64_t> m)
    : schedules(std::move(s)), milestones(std::move(m)) {
  LOWBIT_CHECK(!schedules.empty() && schedules.size() == milestones.size() + 1, "SequentialLR: ", schedules.size(),
               " schedules need ", schedules.empty() ? 0 : schedules.size() - 1, " milestones, got ",
               milestones.size());
  for (auto& p : schedules) LOWBIT_CHECK(p != nullptr, "SequentialLR: null schedule");
  check_increasing(milestones, "SequentialLR");
}

double SequentialLR::lr(int64_t t, double base_lr) const {
  check_t(t, "SequentialLR");
  const size_t i = std::upper_bound(milestones.begin(), milestones.end(), t) - milestones.begin();
  const int64_t start = i == 0 ? 0 : milestones[i - 1];
  return schedules[i]->lr(t - start, base_lr);
}

LrSchedulePtr warmup_then(int64_t warmup, double start_factor, LrSchedulePtr after) {
  return std::make_shared<SequentialLR>(
      std::vector<LrSchedulePtr>{std::make_shared<LinearWarmup>(warmup, start_factor), std::move(after)},
      std::vector<int64_t>{warmup});
}

void apply_schedule(Optimizer& optimizer, const LrSchedule& schedule, int64_t t) {
  for (auto& g : optimizer.param_groups()) g.lr = schedule.lr(t, g.initial_lr);
}

}  // namespace lowbit::nn
