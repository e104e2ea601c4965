#include "quant/checkpoint.h"

#include "core/safetensors.h"

namespace lowbit::quant {

nn::Metadata quant_metadata(const QuantInfo& info) {
  return {{"quantization", info.qat ? "qat" : "ptq"},
          {"qconfig", qconfig_to_string(info.qconfig)},
          {"quant_state", info.frozen ? "frozen" : "training"}};
}

std::optional<QuantInfo> quant_info(const nn::Metadata& md, const std::string& path) {
  auto fmt = md.find("format");
  LOWBIT_CHECK(fmt == md.end() || fmt->second != "lowbit.int8", path,
               ": is an int8 model file (for the int8 engine: lowbit eval / infer), not a quantized checkpoint");
  auto it = md.find("quantization");
  if (it == md.end()) return std::nullopt;
  QuantInfo info;
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
  auto q = rebuild(float_model, *info);
  nn::NamedTensors model_part;
  for (auto& [n, t] : file.tensors)
    if (n.rfind("optim.", 0) != 0) model_part.emplace_back(n, t);
  try {
    q->load_state_dict(model_part, true);
  } catch (const Error& e) {
    fail("checkpoint ", path, ": ", e.what());
  }
  finish_load(*q, *info);
  return q;
}

}  // namespace lowbit::quant
