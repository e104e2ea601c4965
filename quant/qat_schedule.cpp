#include "quant/qat_schedule.h"

#include "quant/checkpoint.h"
#include "quant/quantize.h"

namespace lowbit::quant {

void QatSchedule::on_epoch_begin(nn::Module& model, int64_t epoch) {
  epochs_seen_ = (uint64_t)epoch + 1;
  bn_frozen_ = epoch >= c_.freeze_bn_after;
  if (bn_frozen_) freeze_bn_stats(model);
  observers_on_ = epoch < c_.freeze_observers_after;
  enable_observers(model, observers_on_);
  // Weights first, activations from epoch E on (their observers still watch).
  for (auto& [path, q] : quantizers(model))
    if (path.find("weight_fake_quant") == std::string::npos) q->enable_fake_quant(epoch >= c_.quantize_activations_after);
}

std::vector<std::pair<std::string, std::string>> QatSchedule::warnings(nn::Module& model) {
  std::vector<std::pair<std::string, std::string>> w;
  for (const CollapsedStep& c : collapsed_steps(model)) w.emplace_back(c.quantizer, c.text);
  return w;
}

void QatSchedule::before_eval(nn::Module& model) { enable_observers(model, false); }
void QatSchedule::after_eval(nn::Module& model) {
  if (!finished_) enable_observers(model, observers_on_);
}

nn::Metadata QatSchedule::metadata(bool finished) { return quant_metadata({true, qc_, finished}); }

void QatSchedule::check_resume(const nn::Metadata& md, const std::string& path) {
  const auto info = quant_info(md, path);
  LOWBIT_CHECK(info && info->qat, path, " is not a lowbit qat checkpoint");
  LOWBIT_CHECK(!info->frozen, path, " is a finished (frozen) QAT model; nothing to resume");
  LOWBIT_CHECK(qconfig_to_string(info->qconfig) == qconfig_to_string(qc_), path, " was trained with qconfig '",
               info->qconfig.name, "', the flags ask for '", qc_.name, "'");
}

bool QatSchedule::finish(nn::Module& model, const BatchSource& train) {
  // The next epoch's order: batches the last epoch did not end on.
  if (!bn_frozen_ && c_.bn_reestimate_batches > 0)
    bn_ = reestimate_bn_stats_if_better(model, train, c_.bn_reestimate_batches, c_.bn_probe_batches, epochs_seen_);
  freeze(model);
  finished_ = true;
  return true;
}

}  // namespace lowbit::quant
