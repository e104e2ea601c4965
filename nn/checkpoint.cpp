#include "nn/checkpoint.h"

#include "core/safetensors.h"

#include <cmath>

namespace lowbit::nn {

namespace {
bool is_optim_key(const std::string& k) { return k.rfind("optim.", 0) == 0; }
bool is_aux_key(const std::string& k) { return k.rfind("aux.", 0) == 0; }
}  // namespace

bool is_training_state_key(const std::string& k) { return is_optim_key(k) || is_aux_key(k); }

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const Metadata& metadata, const Module* aux) {
  NamedTensors tensors = model.state_dict();
  for (auto& [n, t] : tensors)
    LOWBIT_CHECK(!is_training_state_key(n), "save_checkpoint ", path, ": model key '", n,
                 "' collides with the 'optim.' / 'aux.' namespaces");
  if (aux)
    for (auto& [n, t] : aux->state_dict()) tensors.emplace_back("aux." + n, t);
  Metadata meta;
  for (auto& [k, v] : metadata) {
    LOWBIT_CHECK(!is_optim_key(k), "save_checkpoint ", path, ": metadata key '", k, "' is reserved ('optim.')");
    meta[k] = v;
  }
  meta["format"] = kCheckpointFormat;
  if (optimizer) {
    OptimizerState s = optimizer->state_dict();
    for (auto& nt : s.tensors) tensors.push_back(nt);
    for (auto& [k, v] : s.scalars) meta[k] = v;
  }
  save_safetensors(path, tensors, meta);
}

int64_t first_nonfinite(const Tensor& t, bool nonnegative) {
  if (!t.defined() || t.dtype() != DType::f32) return -1;
  const Tensor c = t.contiguous();
  const float* p = c.data<float>();
  if (!nonnegative) {  // one vectorizable pass first: NaN iff some value is NaN or ±inf
    float probe = 0;
    for (int64_t i = 0; i < c.numel(); ++i) probe += p[i] * 0.0f;
    if (probe == 0) return -1;
  }
  for (int64_t i = 0; i < c.numel(); ++i)
    if (!std::isfinite(p[i]) || (nonnegative && p[i] < 0)) return i;
  return -1;
}

void check_loaded_values(const Module& model, const std::string& path) {
  for (const auto& [name, t] : model.named_parameters())
    if (const int64_t i = first_nonfinite(t); i >= 0)
      fail(path, ": parameter '", name, "' holds ", t.contiguous().data<float>()[i], " at index ", i,
           " (every parameter must be finite)");
  for (const auto& [name, t] : model.named_buffers()) {
    auto ends_with = [&](const std::string& tail) {
      return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    const bool var = ends_with("running_var"), mean = ends_with("running_mean");
    if (!var && !mean) continue;
    if (const int64_t i = first_nonfinite(t, var); i >= 0)
      fail(path, ": BatchNorm statistic '", name, "' holds ", t.contiguous().data<float>()[i], " at index ", i,
           var ? " (a running variance must be finite and not negative)" : " (a running mean must be finite)");
  }
}

Metadata load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer, bool strict, Module* aux) {
  SafetensorsFile file = load_safetensors(path);  // errors name the file
  NamedTensors model_part, aux_part;
  OptimizerState optim_part;
  for (auto& [n, t] : file.tensors) {
    if (is_aux_key(n)) aux_part.emplace_back(n.substr(4), t);
    else (is_optim_key(n) ? optim_part.tensors : model_part).emplace_back(n, t);
  }
  Metadata user;
  for (auto& [k, v] : file.metadata) {
    if (is_optim_key(k)) optim_part.scalars[k] = v;
    else user[k] = v;
  }
  // Optimizer first (it validates everything before changing anything), then
  // the model; if the model is rejected, the optimizer gets its old state back.
  OptimizerState backup;
  if (optimizer) {
    LOWBIT_CHECK(!optim_part.scalars.empty(), "checkpoint ", path,
                 ": holds no optimizer state (saved without an optimizer)");
    backup = optimizer->state_dict();
    try {
      optimizer->load_state_dict(optim_part);
    } catch (const Error& e) {
      fail("checkpoint ", path, ": ", e.what());
    }
  }
  try {
    model.load_state_dict(model_part, strict);
  } catch (const Error& e) {
    if (optimizer) optimizer->load_state_dict(backup);
    fail("checkpoint ", path, ": ", e.what());
  }
  try {
    check_loaded_values(model, "checkpoint " + path);
  } catch (const Error&) {
    if (optimizer) optimizer->load_state_dict(backup);
    throw;
  }
  if (aux) {
    try {
      aux->load_state_dict(aux_part, true);
    } catch (const Error& e) {
      fail("checkpoint ", path, ": aux (training-only modules): ", e.what());
    }
  }
  return user;
}

}  // namespace lowbit::nn
