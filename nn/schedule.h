// Learning-rate schedules in closed form: lr(t) for a step index t, as
// torch.optim.lr_scheduler computes them (its `_get_closed_form_lr`).
//
// t counts scheduler steps, as PyTorch's `last_epoch`: lr(0) is the rate
// before the first scheduler.step(). The caller picks the unit and says so:
//   per epoch  apply_schedule(opt, sched, epoch)        before epoch `epoch` runs
//              (PyTorch: scheduler.step() once at the end of each epoch)
//   per step   apply_schedule(opt, sched, iteration)   before iteration `iteration`
// A schedule has no state, so resuming needs only t (and the optimizer's
// initial_lr, which its state_dict keeps).
//
// Closed forms (base = the group's initial_lr):
//   StepLR          base · γ^⌊t / step_size⌋
//   MultiStepLR     base · γ^(number of milestones ≤ t)
//   CosineAnnealing eta_min + (base − eta_min) · (1 + cos(π t / T_max)) / 2   (periodic past T_max, as PyTorch)
//   LinearWarmup    base · (start + (end − start) · min(t, total) / total)     (PyTorch's LinearLR)
//   Sequential      schedule i at t − milestone_{i−1} once t ≥ milestone_{i−1} (PyTorch's SequentialLR)
//   Constant        base
#pragma once
#include <memory>
#include <vector>

#include "nn/optim.h"

namespace lowbit::nn {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr(int64_t t, double base_lr) const = 0;
};
using LrSchedulePtr = std::shared_ptr<const LrSchedule>;

class ConstantLR : public LrSchedule {
 public:
  double lr(int64_t, double base_lr) const override { return base_lr; }
};

class StepLR : public LrSchedule {
 public:
  StepLR(int64_t step_size, double gamma = 0.1);
  double lr(int64_t t, double base_lr) const override;
  int64_t step_size;
  double gamma;
};

class MultiStepLR : public LrSchedule {
 public:
  MultiStepLR(std::vector<int64_t> milestones, double gamma = 0.1);  // milestones increasing
  double lr(int64_t t, double base_lr) const override;
  std::vector<int64_t> milestones;
  double gamma;
};

class CosineAnnealingLR : public LrSchedule {
 public:
  explicit CosineAnnealingLR(int64_t t_max, double eta_min = 0.0);
  double lr(int64_t t, double base_lr) const override;
  int64_t t_max;
  double eta_min;
};

class LinearWarmup : public LrSchedule {
 public:
  explicit LinearWarmup(int64_t total_iters, double start_factor = 1.0 / 3.0, double end_factor = 1.0);
  double lr(int64_t t, double base_lr) const override;
  int64_t total_iters;
  double start_factor, end_factor;
};

class SequentialLR : public LrSchedule {
 public:
  // schedules.size() == milestones.size() + 1; milestones increasing.
  SequentialLR(std::vector<LrSchedulePtr> schedules, std::vector<int64_t> milestones);
  double lr(int64_t t, double base_lr) const override;
  std::vector<LrSchedulePtr> schedules;
  std::vector<int64_t> milestones;
};

// Linear warm-up from start_factor·base over `warmup` steps, then `after`
// (which starts again at its own t = 0): SequentialLR({LinearWarmup(warmup,
// start_factor), after}, {warmup}).
LrSchedulePtr warmup_then(int64_t warmup, double start_factor, LrSchedulePtr after);

// Sets every group's lr to schedule.lr(t, group.initial_lr).
void apply_schedule(Optimizer& optimizer, const LrSchedule& schedule, int64_t t);

}  // namespace lowbit::nn
