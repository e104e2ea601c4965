// Quantized model files: a training checkpoint (nn/checkpoint.h) of the
// prepared model — float weights plus every scale, zero point and LSQ step
// under PyTorch's prepared-model names — and three metadata entries that say
// how to rebuild its structure:
//   "quantization"  "ptq" (BN folded), "qat" (BN kept in the fused convs) or
//                   "dynamic" (quant/dynamic.h: the float model with its dynamic
//                   layers' s8 weights, scales and float biases)
//   "qconfig"       the QConfig in text form (qconfig_to_string), or the
//                   DynamicConfig's ("dynamic per-channel")
//   "dynamic_layers" (dynamic only) the quantized layers' paths, comma-separated
//   "quant_state"   "frozen" (the finished quantized model) or "training"
// Loading builds the float model from its metadata as usual, then rebuilds
// the prepared structure with these, then loads strictly.
#pragma once
#include <optional>

#include "nn/checkpoint.h"
#include "quant/dynamic.h"
#include "quant/quantize.h"

namespace lowbit::quant {

struct QuantInfo {
  bool qat = false;
  QConfig qconfig;
  bool frozen = true;
  bool dynamic = false;  // then dynamic_config and dynamic_layers, not qconfig
  DynamicConfig dynamic_config{};
  std::vector<std::string> dynamic_layers{};
};

nn::Metadata quant_metadata(const QuantInfo& info);
// nullopt for a float checkpoint; Error naming `path` for damaged entries.
std::optional<QuantInfo> quant_info(const nn::Metadata& metadata, const std::string& path);

// prepare or prepare_qat of a fresh float model, as `info` says.
std::shared_ptr<QuantModel> rebuild(const nn::ModulePtr& float_model, const QuantInfo& info);
// After the state was loaded into a rebuilt model: a frozen model freezes
// again with the loaded qparams (no calibration data needed).
void finish_load(QuantModel& q, const QuantInfo& info);

// rebuild + strict load + finish_load. Error if `path` is a float checkpoint.
std::shared_ptr<QuantModel> load_quantized(const std::string& path, const nn::ModulePtr& float_model);

// A dynamically quantized checkpoint: quantize_dynamic of `float_model` (in
// place) as the metadata says, then a strict load. Error unless `path` is one.
nn::ModulePtr load_dynamic(const std::string& path, const nn::ModulePtr& float_model);
nn::Metadata dynamic_metadata(nn::Module& model, const DynamicConfig& cfg);

}  // namespace lowbit::quant
