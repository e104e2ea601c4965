// `lowbit qat`: quantization-aware training from a float checkpoint — `lowbit
// train`'s loop (schedule, progress, per-epoch validation, .best, exact
// resume) around quant::prepare_qat, frozen after the last epoch.
//
// Defaults differ from train where fine-tuning wants it: --lr 0.01, --epochs 1.
// --freeze-bn-after E: after E epochs BN uses its running statistics;
// --freeze-observers-after E: from then on the STE quantizers keep their
// scales (LSQ steps keep learning); --quantize-activations-after E: weights
// are fake-quantized from the start, activations after E epochs (their
// observers watch meanwhile). Validation runs with observers paused, so it
// never moves a scale.
#include <cstdio>

#include "core/safetensors.h"
#include "quant/checkpoint.h"
#include "tools/common.h"
#include "tools/qat_variant.h"

namespace lowbit::cli {

int cmd_qat(const Args& a_in) {
  Args a = a_in;
  // Everything that can be refused is refused before any data is read.
  if (a.has("--init")) throw UsageError("qat starts from --weights F (a float checkpoint); --init is train's");
  qconfig_from_flags(a, nullptr, true);
  // The checkpoint says which model it holds: the one resumed, else the float one.
  if (a.has("--resume")) {
    const std::string r = a.get("--resume", "");
    const SafetensorsFile file = load_safetensors(r);
    const auto info = quant::quant_info(file.metadata, r);
    if (!info || !info->qat) throw UsageError(r + " is not a lowbit qat checkpoint");
    if (info->frozen) throw UsageError(r + " is a finished (frozen) QAT model; nothing to resume");
    a = with_checkpoint_defaults(a, file.metadata);
  } else if (a.has("--weights")) {
    const std::string w = a.get("--weights", "");
    const SafetensorsFile file = load_safetensors(w);
    if (quant::quant_info(file.metadata, w)) throw UsageError(w + " is already quantized; pass the float checkpoint");
    a = with_checkpoint_defaults(a, file.metadata);
  } else {
    throw UsageError("--weights FLOAT.safetensors is required (the model to fine-tune)");
  }
  QatVariant v(a);
  return run_training(a, &v);
}

}  // namespace lowbit::cli
