// The QAT schedule as a Trainer callback (nn/trainer.h): what happens to a
// prepared model (prepare_qat) at each epoch of its training, and after it.
//
//   quant::QatSchedule qat(qconfig, {.freeze_bn_after = 3, .freeze_observers_after = 4});
//   nn::Trainer(model, cfg, {&qat}).fit(train, val);   // the model ends frozen
//
// Before epoch e (0-based): BatchNorm statistics frozen from e ≥
// freeze_bn_after (Krishnamoorthi 2018 §3.2: the folded weights stop
// moving with the batch), observers off from e ≥ freeze_observers_after
// (the qparams stop tracking the data), and activation fake quantization on
// from e ≥ quantize_activations_after (weights first; the activation
// observers still watch before). Observers are off during validation. An LSQ
// step that collapses to the clamp is a warning naming the quantizer. Each
// checkpoint records the qconfig (quant/checkpoint.h); a resume must be a QAT
// run of the same qconfig that has not finished. After the last planned
// epoch the BatchNorm statistics that still follow the batch are re-estimated
// on bn_reestimate_batches training batches and kept if bn_probe_batches
// other training batches say they are better (quant::reestimate_bn_stats_if_better;
// 0: not run), and the model is frozen (quant::freeze): the finished form,
// which the trainer's last validation measures.
#pragma once
#include <cstdint>
#include <limits>

#include "nn/trainer.h"
#include "quant/qconfig.h"
#include "quant/quantize.h"

namespace lowbit::quant {

struct QatScheduleConfig {
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  int64_t freeze_bn_after = kNever;         // epochs
  int64_t freeze_observers_after = kNever;  // epochs
  int64_t quantize_activations_after = 0;   // epochs
  int64_t bn_reestimate_batches = 64;       // at the end, before freezing; 0: keep the running statistics
  int64_t bn_probe_batches = 16;            // training batches that decide whether the re-estimation stays
};

class QatSchedule : public nn::TrainerCallback {
 public:
  QatSchedule(QConfig qconfig, QatScheduleConfig c = {}) : qc_(std::move(qconfig)), c_(c) {}
  void on_epoch_begin(nn::Module& model, int64_t epoch) override;
  std::vector<std::pair<std::string, std::string>> warnings(nn::Module& model) override;
  void before_eval(nn::Module& model) override;
  void after_eval(nn::Module& model) override;
  nn::Metadata metadata(bool finished) override;
  void check_resume(const nn::Metadata& md, const std::string& path) override;
  bool finish(nn::Module& model, const BatchSource& train) override;
  const QConfig& qconfig() const { return qc_; }
  // What the BN re-estimation before freezing did (batches 0: it did not run).
  const BnReestimation& bn_reestimation() const { return bn_; }

 private:
  QConfig qc_;
  QatScheduleConfig c_;
  bool observers_on_ = true, bn_frozen_ = false, finished_ = false;
  uint64_t epochs_seen_ = 0;
  BnReestimation bn_;
};

}  // namespace lowbit::quant
