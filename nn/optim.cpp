#include "nn/optim.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "core/autograd.h"

namespace lowbit::nn {

namespace {

// Elementwise loops below are split across threads only when large enough to
// pay for it; each element's arithmetic is the same either way.
constexpr int64_t kParallelMin = 1 << 15;

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

double parse_double(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  LOWBIT_CHECK(it != m.end(), "optimizer state: missing scalar '", key, "'");
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  LOWBIT_CHECK(!it->second.empty() && end && *end == '\0', "optimizer state: scalar '", key, "' = '", it->second,
               "' is not a number");
  return v;
}

std::string join_names(const NamedTensors& params) {
  std::string s;
  for (auto& [n, t] : params) s += (s.empty() ? "" : ",") + n;
  return s;
}

const std::string kStatePrefix = "optim.state.";

std::vector<ParamGroup> one_group(const NamedTensors& params) {
  ParamGroup g;
  g.params = params;
  return {g};
}

}  // namespace

std::vector<ParamGroup> no_decay_groups(const NamedTensors& params, double weight_decay) {
  ParamGroup decay, no_decay;
  decay.name = "decay";
  decay.weight_decay = weight_decay;
  no_decay.name = "no_decay";
  no_decay.weight_decay = 0.0;
  for (auto& [n, t] : params) (t.dim() >= 2 ? decay : no_decay).params.emplace_back(n, t);
  std::vector<ParamGroup> out;
  for (auto* g : {&decay, &no_decay})
    if (!g->params.empty()) out.push_back(std::move(*g));
  return out;
}

// ---- Optimizer ----------------------------------------------------------------

Optimizer::Optimizer(std::vector<ParamGroup> groups, double default_lr, double default_weight_decay)
    : groups_(std::move(groups)) {
  LOWBIT_CHECK(!groups_.empty(), "optimizer: no parameter groups");
  std::set<std::string> seen;
  for (size_t i = 0; i < groups_.size(); ++i) {
    ParamGroup& g = groups_[i];
    if (g.name.empty()) g.name = std::to_string(i);
    if (g.lr == kUseDefault) g.lr = default_lr;
    if (g.weight_decay == kUseDefault) g.weight_decay = default_weight_decay;
    if (g.initial_lr == kUseDefault) g.initial_lr = g.lr;
    LOWBIT_CHECK(g.lr >= 0 && g.initial_lr >= 0, "optimizer: group '", g.name, "' has a negative learning rate ", g.lr);
    LOWBIT_CHECK(g.weight_decay >= 0, "optimizer: group '", g.name, "' has a negative weight decay ", g.weight_decay);
    for (auto& [n, t] : g.params) {
      LOWBIT_CHECK(t.defined(), "optimizer: parameter '", n, "' is undefined");
      LOWBIT_CHECK(t.dtype() == DType::f32 && t.is_contiguous(), "optimizer: parameter '", n,
                   "' must be a contiguous f32 tensor");
      LOWBIT_CHECK(n.find(',') == std::string::npos, "optimizer: parameter name '", n, "' contains a comma");
      LOWBIT_CHECK(seen.insert(n).second, "optimizer: parameter '", n, "' appears twice");
    }
  }
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (auto& g : groups_)
    for (auto& [n, t] : g.params) out.push_back(t);
  return out;
}

void Optimizer::set_lr(double lr) {
  LOWBIT_CHECK(lr >= 0, "optimizer: negative learning rate ", lr);
  for (auto& g : groups_) g.lr = lr;
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& g : groups_)
    for (auto& [n, p] : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (set_to_none) p.set_grad(Tensor());
      else grad.zero_();
    }
}

void Optimizer::step() {
  NoGradGuard no_grad;
  for (auto& g : groups_) {
    for (auto& [n, p] : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      LOWBIT_CHECK(grad.dtype() == DType::f32 && grad.numel() == p.numel(), type_name(), ": gradient of '", n,
                   "' has shape ", shape_str(grad.shape()), ", parameter ", shape_str(p.shape()));
      Tensor gc = grad.contiguous();
      update(p, gc.data<float>(), g.lr, g.weight_decay, state_[n]);
      p.bump_version();
    }
  }
  ++steps_;
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState s;
  s.scalars["optim.type"] = type_name();
  s.scalars["optim.steps"] = std::to_string(steps_);
  s.scalars["optim.groups"] = std::to_string(groups_.size());
  for (auto& [k, v] : hyperparameters()) s.scalars["optim." + k] = exact(v);
  for (size_t i = 0; i < groups_.size(); ++i) {
    const ParamGroup& g = groups_[i];
    const std::string pre = "optim.group." + std::to_string(i) + ".";
    s.scalars[pre + "name"] = g.name;
    s.scalars[pre + "lr"] = exact(g.lr);
    s.scalars[pre + "initial_lr"] = exact(g.initial_lr);
    s.scalars[pre + "weight_decay"] = exact(g.weight_decay);
    s.scalars[pre + "params"] = join_names(g.params);
    // State in parameter order, so the file reads like the model.
    for (auto& [n, t] : g.params) {
      auto it = state_.find(n);
      if (it == state_.end()) continue;
      for (auto& [bn, b] : it->second) s.tensors.emplace_back(kStatePrefix + n + "." + bn, b.detach().clone());
    }
  }
  return s;
}

void Optimizer::load_state_dict(const OptimizerState& s) {
  auto type = s.scalars.find("optim.type");
  LOWBIT_CHECK(type != s.scalars.end(), "optimizer state: no 'optim.type' (not an optimizer state)");
  LOWBIT_CHECK(type->second == type_name(), "optimizer state is for ", type->second, ", this optimizer is ",
               type_name());
  const double ngroups = parse_double(s.scalars, "optim.groups");
  LOWBIT_CHECK(ngroups == (double)groups_.size(), "optimizer state has ", s.scalars.at("optim.groups"),
               " parameter groups, this optimizer ", groups_.size());
  // Validate everything before changing anything.
  std::map<std::string, const Tensor*> params;
  for (size_t i = 0; i < groups_.size(); ++i) {
    const std::string key = "optim.group." + std::to_string(i) + ".params";
    auto it = s.scalars.find(key);
    LOWBIT_CHECK(it != s.scalars.end(), "optimizer state: missing scalar '", key, "'");
    LOWBIT_CHECK(it->second == join_names(groups_[i].params), "optimizer state: group ", i,
                 " holds different parameters than this optimizer's group '", groups_[i].name, "' (", key, ")");
    for (auto& [n, t] : groups_[i].params) params[n] = &t;
  }
  std::map<std::string, std::map<std::string, Tensor>> state;
  for (auto& [key, t] : s.tensors) {
    LOWBIT_CHECK(key.rfind(kStatePrefix, 0) == 0, "optimizer state: unexpected tensor '", key, "'");
    // "<param>.<buffer>": the buffer name has no dot, the parameter name may.
    const size_t dot = key.rfind('.');
    const std::string pname = key.substr(kStatePrefix.size(), dot - kStatePrefix.size());
    const std::string bname = key.substr(dot + 1);
    auto p = params.find(pname);
    LOWBIT_CHECK(p != params.end(), "optimizer state: '", key, "' belongs to no parameter of this optimizer");
    const bool is_step = bname == "step";
    const Shape want = is_step ? Shape{} : p->second->shape();
    LOWBIT_CHECK(t.shape() == want, "optimizer state: '", key, "' has shape ", shape_str(t.shape()),
                 ", expected ", shape_str(want));
    LOWBIT_CHECK(t.dtype() == (is_step ? DType::s32 : DType::f32), "optimizer state: '", key, "' has dtype ",
                 dtype_name(t.dtype()));
    state[pname][bname] = t.contiguous().clone();
  }
  std::map<std::string, double> hp = hyperparameters();
  for (auto& [k, v] : hp) v = parse_double(s.scalars, "optim." + k);
  std::vector<double> lr, initial_lr, wd;
  for (size_t i = 0; i < groups_.size(); ++i) {
    const std::string pre = "optim.group." + std::to_string(i) + ".";
    lr.push_back(parse_double(s.scalars, pre + "lr"));
    initial_lr.push_back(parse_double(s.scalars, pre + "initial_lr"));
    wd.push_back(parse_double(s.scalars, pre + "weight_decay"));
  }
  const double steps = parse_double(s.scalars, "optim.steps");

  for (auto& [k, v] : hp) set_hyperparameter(k, v);
  for (size_t i = 0; i < groups_.size(); ++i) {
    groups_[i].lr = lr[i];
    groups_[i].initial_lr = initial_lr[i];
    groups_[i].weight_decay = wd[i];
  }
  state_ = std::move(state);
  steps_ = (int64_t)steps;
}

// ---- SGD ------------------------------------------------------------------------

SGD::SGD(const NamedTensors& params, const SGDOptions& options) : SGD(one_group(params), options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& opt)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay), options(opt) {
  LOWBIT_CHECK(opt.momentum >= 0, "SGD: negative momentum ", opt.momentum);
  LOWBIT_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0),
               "SGD: Nesterov momentum requires a momentum and zero dampening");
}

void SGD::update(const Tensor& param, const float* g, double lr, double weight_decay,
                 std::map<std::string, Tensor>& state) {
  float* p = param.data<float>();
  const int64_t n = param.numel();
  // PyTorch applies each scalar as a float to float tensors.
  const float wd = (float)weight_decay, neg_lr = (float)-lr, mom = (float)options.momentum;
  const float keep = (float)(1.0 - options.dampening);
  const bool nesterov = options.nesterov;
  if (options.momentum == 0) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] + neg_lr * (wd != 0.0f ? g[i] + wd * p[i] : g[i]);
    return;
  }
  auto it = state.find("momentum_buffer");
  const bool first = it == state.end();
  if (first) it = state.emplace("momentum_buffer", Tensor::empty(param.shape())).first;
  float* buf = it->second.data<float>();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
    buf[i] = first ? d : buf[i] * mom + keep * d;
    d = nesterov ? d + mom * buf[i] : buf[i];
    p[i] = p[i] + neg_lr * d;
  }
  it->second.bump_version();
}

std::map<std::string, double> SGD::hyperparameters() const {
  return {{"momentum", options.momentum}, {"dampening", options.dampening}, {"nesterov", options.nesterov ? 1.0 : 0.0}};
}

void SGD::set_hyperparameter(const std::string& key, double value) {
  if (key == "momentum") options.momentum = value;
  else if (key == "dampening") options.dampening = value;
  else if (key == "nesterov") options.nesterov = value != 0;
}

// ---- Adam / AdamW ----------------------------------------------------------------

Adam::Adam(const NamedTensors& params, const AdamOptions& options)
    : Adam(one_group(params), options, false) {}
Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options) : Adam(std::move(groups), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& opt, bool decoupled)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay), options(opt), decoupled_(decoupled) {
  LOWBIT_CHECK(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1, type_name(), ": betas (",
               opt.beta1, ", ", opt.beta2, ") must lie in [0, 1)");
  LOWBIT_CHECK(opt.eps >= 0, type_name(), ": negative eps ", opt.eps);
}

AdamW::AdamW(const NamedTensors& params, const AdamOptions& options)
    : Adam(one_group(params), options, true) {}
AdamW::AdamW(std::vector<ParamGroup> groups, const AdamOptions& options) : Adam(std::move(groups), options, true) {}

void Adam::update(const Tensor& param, const float* g, double lr, double weight_decay,
                  std::map<std::string, Tensor>& state) {
  float* p = param.data<float>();
  const int64_t n = param.numel();
  if (state.empty()) {
    state["step"] = Tensor::zeros({}, DType::s32);
    state["exp_avg"] = Tensor::zeros(param.shape());
    state["exp_avg_sq"] = Tensor::zeros(param.shape());
  }
  int32_t& step = state["step"].data<int32_t>()[0];
  step += 1;
  float* m = state["exp_avg"].data<float>();
  float* v = state["exp_avg_sq"].data<float>();
  // Scalars as PyTorch forms them: bias corrections and step size in double
  // (Python floats), then each applied as a float.
  const double bc1 = 1.0 - std::pow(options.beta1, (double)step);
  const double bc2 = 1.0 - std::pow(options.beta2, (double)step);
  const float neg_step_size = (float)-(lr / bc1), bc2_sqrt = (float)std::sqrt(bc2);
  const float b1 = (float)options.beta1, b2 = (float)options.beta2;
  const float one_minus_b1 = (float)(1.0 - options.beta1), one_minus_b2 = (float)(1.0 - options.beta2);
  const float eps = (float)options.eps;
  const float l2 = decoupled_ ? 0.0f : (float)weight_decay;
  const float decay = decoupled_ ? (float)(1.0 - lr * weight_decay) : 1.0f;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = l2 != 0.0f ? g[i] + l2 * p[i] : g[i];
    const float pi = decay != 1.0f ? p[i] * decay : p[i];
    m[i] = m[i] * b1 + one_minus_b1 * gi;
    v[i] = v[i] * b2 + one_minus_b2 * (gi * gi);
    const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    p[i] = pi + neg_step_size * (m[i] / denom);
  }
  for (auto& [k, t] : state) t.bump_version();
}

std::map<std::string, double> Adam::hyperparameters() const {
  return {{"beta1", options.beta1}, {"beta2", options.beta2}, {"eps", options.eps}};
}

void Adam::set_hyperparameter(const std::string& key, double value) {
  if (key == "beta1") options.beta1 = value;
  else if (key == "beta2") options.beta2 = value;
  else if (key == "eps") options.eps = value;
}

}  // namespace lowbit::nn
