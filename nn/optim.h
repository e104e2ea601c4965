// Optimizers with PyTorch 1.13's update rules (torch.optim.SGD, Adam, AdamW,
// single-tensor path), parameter groups, and a state that round-trips
// through checkpoints so a resumed run continues bit for bit.
//
// Parameters are held by name (the model's dotted names), and the state is
// keyed by those names, so a checkpoint reads as
//   optim.state.layer1.0.conv1.weight.momentum_buffer   (tensors)
//   optim.type = SGD, optim.group.0.lr = 0.1, ...       (scalars, exact decimal strings)
// Updates run under NoGradGuard, in place on the parameters' storage (the
// version counter is bumped), elementwise with OpenMP: the result does not
// depend on the thread count.
//
//   auto opt = SGD(no_decay_groups(model->named_parameters(), 5e-4), {.lr = 0.1, .momentum = 0.9});
//   loss.backward(); opt.step(); opt.zero_grad();
#pragma once
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"

namespace lowbit::nn {

// Marks a ParamGroup field that takes the optimizer's default.
inline constexpr double kUseDefault = -1.0;

struct ParamGroup {
  NamedTensors params;  // f32, contiguous, names unique across all groups
  double lr = kUseDefault;            // current learning rate; schedules write it
  double weight_decay = kUseDefault;
  double initial_lr = kUseDefault;    // the lr the group started with; schedules scale it
  std::string name;                   // for messages ("decay", "no_decay", ...)
};

// Two groups: "decay" (tensors of 2 or more dims: conv and linear weights)
// with `weight_decay`, and "no_decay" (1-D tensors: every bias and BatchNorm
// weight/bias) with 0, the usual recipe. Empty groups are dropped.
std::vector<ParamGroup> no_decay_groups(const NamedTensors& params, double weight_decay);

// An optimizer's state for checkpoints. Tensor names start with "optim.state."
// and scalar keys with "optim."; scalars are decimal strings that parse back
// to the same double.
struct OptimizerState {
  NamedTensors tensors;
  std::map<std::string, std::string> scalars;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (parameters without one
  // are skipped and their state does not advance, as in PyTorch).
  void step();
  // set_to_none (PyTorch ≥ 2.0's default): gradients become undefined;
  // otherwise they are filled with zeros in place.
  void zero_grad(bool set_to_none = true);

  virtual std::string type_name() const = 0;  // "SGD", "Adam", "AdamW"
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  std::vector<Tensor> parameters() const;
  void set_lr(double lr);  // every group
  double lr() const { return groups_.at(0).lr; }
  int64_t steps() const { return steps_; }  // step() calls so far

  // Per-parameter buffers, per-group lr/initial_lr/weight_decay, the
  // optimizer's hyperparameters and the step count. Loading restores all of
  // them (the checkpoint's hyperparameters win, as in PyTorch); the type,
  // the groups' parameter names and the buffers' shapes must match, and an
  // error names the offending key.
  OptimizerState state_dict() const;
  void load_state_dict(const OptimizerState& state);

 protected:
  Optimizer(std::vector<ParamGroup> groups, double default_lr, double default_weight_decay);
  // Update one parameter in place: p (contiguous f32), its gradient g
  // (contiguous, p.numel() values), the group's lr and weight decay, and its
  // state buffers by name (empty before the first step; buffers take p's shape).
  virtual void update(const Tensor& p, const float* g, double lr, double weight_decay,
                      std::map<std::string, Tensor>& state) = 0;
  // Hyperparameters other than lr/weight_decay, for state_dict.
  virtual std::map<std::string, double> hyperparameters() const = 0;
  virtual void set_hyperparameter(const std::string& key, double value) = 0;

 private:
  std::vector<ParamGroup> groups_;
  // param name → buffers ("momentum_buffer", "exp_avg", "exp_avg_sq", "step")
  std::map<std::string, std::map<std::string, Tensor>> state_;
  int64_t steps_ = 0;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0
};

// torch.optim.SGD: d = g + wd·p; buf = d on the first step, else
// momentum·buf + (1 − dampening)·d; d = nesterov ? d + momentum·buf : buf;
// p −= lr·d.
class SGD : public Optimizer {
 public:
  SGD(const NamedTensors& params, const SGDOptions& options);
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  std::string type_name() const override { return "SGD"; }
  SGDOptions options;  // lr/weight_decay here are the groups' defaults only

 protected:
  void update(const Tensor& p, const float* g, double lr, double weight_decay,
              std::map<std::string, Tensor>& state) override;
  std::map<std::string, double> hyperparameters() const override;
  void set_hyperparameter(const std::string& key, double value) override;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled
};

// torch.optim.Adam (decoupled = false) and AdamW (decoupled = true):
//   t += 1; Adam: g += wd·p;  AdamW: p *= 1 − lr·wd
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//   p −= lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + eps)          (eps outside the root, after bias correction)
class Adam : public Optimizer {
 public:
  Adam(const NamedTensors& params, const AdamOptions& options);
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options);
  std::string type_name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  AdamOptions options;

 protected:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options, bool decoupled);
  void update(const Tensor& p, const float* g, double lr, double weight_decay,
              std::map<std::string, Tensor>& state) override;
  std::map<std::string, double> hyperparameters() const override;
  void set_hyperparameter(const std::string& key, double value) override;

 private:
  bool decoupled_;
};

// Note: AdamOptions::weight_decay defaults to 0; PyTorch's AdamW default is 1e-2.
class AdamW : public Adam {
 public:
  AdamW(const NamedTensors& params, const AdamOptions& options);
  AdamW(std::vector<ParamGroup> groups, const AdamOptions& options);
};

}  // namespace lowbit::nn
