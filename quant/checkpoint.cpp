#include "quant/checkpoint.h"

#include "core/safetensors.h"
#include "core/strings.h"
#include "nn/checkpoint.h"
#include "quant/quantize.h"

#include <cmath>

namespace lowbit::quant {

nn::Metadata quant_metadata(const QuantInfo& info) {
  return {{"quantization", info.qat ? "qat" : "ptq"},
          {"qconfig", qconfig_to_string(info.qconfig)},
          {"quant_state", info.frozen ? "frozen" : "training"}};
}

std::optional<QuantInfo> quant_info(const nn::Metadata& md, const std::string& path) {
  auto fmt = md.find("format");
  LOWBIT_CHECK(fmt == md.end() || fmt->second != "lowbit.int8", path,
               ": is an int8 model file, which only the int8 engine runs (lowbit eval / infer); training, QAT, "
               "distillation and quantization start from a float checkpoint (lowbit train's F.safetensors)");
  auto it = md.find("quantization");
  if (it == md.end()) return std::nullopt;
  QuantInfo info;
  if (it->second == "dynamic") {
    info.dynamic = true;
    auto qc = md.find("qconfig");
    auto layers = md.find("dynamic_layers");
    LOWBIT_CHECK(qc != md.end() && layers != md.end(), path,
                 ": dynamically quantized checkpoint without its qconfig and dynamic_layers entries");
    try {
      info.dynamic_config = DynamicConfig::parse(qc->second);
    } catch (const Error& e) {
      fail(path, ": ", e.what());
    }
    for (const std::string& p : split_all(layers->second, ',')) {
      LOWBIT_CHECK(!p.empty(), path, ": empty name in dynamic_layers '", layers->second, "'");
      info.dynamic_layers.push_back(p);
    }
    return info;
  }
  LOWBIT_CHECK(it->second == "ptq" || it->second == "qat", path, ": unknown quantization flow '", it->second, "'");
  info.qat = it->second == "qat";
  auto qc = md.find("qconfig");
  LOWBIT_CHECK(qc != md.end(), path, ": quantized checkpoint without a qconfig entry");
  try {
    info.qconfig = qconfig_from_string(qc->second);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  auto st = md.find("quant_state");
  info.frozen = st == md.end() || st->second == "frozen";
  return info;
}

std::shared_ptr<QuantModel> rebuild(const nn::ModulePtr& float_model, const QuantInfo& info) {
  LOWBIT_CHECK(!info.dynamic, "a dynamically quantized checkpoint rebuilds with load_dynamic");
  return info.qat ? prepare_qat(float_model, info.qconfig) : prepare(float_model, info.qconfig);
}

void finish_load(QuantModel& q, const QuantInfo& info) {
  for (auto& [p, qz] : quantizers(q))
    if (auto* fq = dynamic_cast<FakeQuantize*>(qz)) fq->assume_loaded();
  if (info.frozen) freeze(q);
  else if (!info.qat) enable_calibration(q);
}

std::shared_ptr<QuantModel> load_quantized(const std::string& path, const nn::ModulePtr& float_model) {
  const SafetensorsFile file = load_safetensors(path);
  const auto info = quant_info(file.metadata, path);
  LOWBIT_CHECK(info.has_value(), path,
               " is a float checkpoint (no quantization parameters); make a quantized one with lowbit quantize or "
               "lowbit qat");
  LOWBIT_CHECK(!info->dynamic, path, " is dynamically quantized (lowbit quantize --dynamic); it loads with load_dynamic");
  auto q = rebuild(float_model, *info);
  nn::NamedTensors model_part;
  for (auto& [n, t] : file.tensors)
    if (!nn::is_training_state_key(n)) model_part.emplace_back(n, t);
  try {
    q->load_state_dict(model_part, true);
  } catch (const Error& e) {
    fail("checkpoint ", path, ": ", e.what());
  }
  nn::check_loaded_values(*q, "checkpoint " + path);
  finish_load(*q, *info);
  // A frozen quantizer's grid is what the engine will use: each step finite
  // and positive, each zero point on its grid.
  for (const auto& [name, qz] : quantizers(*q)) {
    if (!qz->frozen()) continue;
    const QuantParams qp = qz->qparams();
    for (size_t c = 0; c < qp.scale.size(); ++c)
      LOWBIT_CHECK(std::isfinite(qp.scale[c]) && qp.scale[c] > 0, "checkpoint ", path, ": ", name, " has scale ",
                   qp.scale[c], qp.scale.size() > 1 ? " in channel " + std::to_string(c) : std::string(),
                   " (a quantization step must be finite and positive)");
    for (size_t c = 0; c < qp.zero_point.size(); ++c)
      LOWBIT_CHECK(qp.zero_point[c] >= qz->qmin() && qp.zero_point[c] <= qz->qmax(), "checkpoint ", path, ": ", name,
                   " has zero point ", qp.zero_point[c], qp.zero_point.size() > 1 ? " in channel " + std::to_string(c) : std::string(),
                   ", outside its grid [", qz->qmin(), ", ", qz->qmax(), "]");
  }
  return q;
}

nn::Metadata dynamic_metadata(nn::Module& model, const DynamicConfig& cfg) {
  std::string layers;
  for (const auto& [p, d] : dynamic_layers(model)) layers += (layers.empty() ? "" : ",") + p;
  return {{"quantization", "dynamic"}, {"qconfig", cfg.str()}, {"quant_state", "frozen"}, {"dynamic_layers", layers}};
}

nn::ModulePtr load_dynamic(const std::string& path, const nn::ModulePtr& float_model) {
  const SafetensorsFile file = load_safetensors(path);
  const auto info = quant_info(file.metadata, path);
  LOWBIT_CHECK(info && info->dynamic, path, " is not a dynamically quantized checkpoint (make one with lowbit quantize "
               "--dynamic)");
  try {
    quantize_dynamic(*float_model, std::set<std::string>(info->dynamic_layers.begin(), info->dynamic_layers.end()),
                     info->dynamic_config);
    nn::NamedTensors model_part;
    for (auto& [n, t] : file.tensors)
      if (!nn::is_training_state_key(n)) model_part.emplace_back(n, t);
    float_model->load_state_dict(model_part, true);
  } catch (const Error& e) {
    fail("checkpoint ", path, ": ", e.what());
  }
  nn::check_loaded_values(*float_model, "checkpoint " + path);
  float_model->eval();
  return float_model;
}

}  // namespace lowbit::quant
