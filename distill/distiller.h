// The teacher–student trainer's core: one distillation step.
//
//   distill::Distiller d(teacher, cfg);        // teacher: a loaded float model; frozen here
//   d.prepare(*student, sample_images);        // checks classes and taps, sizes hint adapters
//   auto q = quant::prepare_qat(student, qc);  // optional: a low-bit student (taps keep their meaning)
//   distill::DistillLoss kd(d);                // as a Trainer callback (nn/trainer.h):
//   nn::Trainer(q, cfg, {&kd}).fit(train, val);  //   each batch's loss is d.step's
// or by hand: an optimizer over the student's and d.adapters()'s parameters,
//   for (batch) { auto s = d.step(*q, batch.images, batch.labels); s.loss.backward(); … }
//
// The teacher runs in eval mode under NoGradGuard on the same (augmented)
// batch as the student: no graph, no running-statistics update, no random
// numbers drawn, so its parameters and buffers stay bit-identical and the
// student's run consumes exactly what plain training would.
//
// Loss: soft_target_loss(z_s, z_t, y; T, α, label smoothing)
//       + hint_weight · Σ hint_loss(adapter_i, s_i, t_i)                  (FitNets)
//       + attention_weight / 2 · Σ attention_loss(s_j, t_j; p)            (AT, β = 1000 in the paper)
// with the teacher's and student's features read by feature taps (nn/taps.h)
// at the named modules: "layer2:features.7" pairs the teacher's layer2 with
// the student's features.7.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "distill/losses.h"
#include "nn/taps.h"
#include "nn/trainer.h"

namespace lowbit::distill {

struct TapPair {
  std::string teacher, student;
};
// "layer2:features.7" → {layer2, features.7}; Error naming `flag` otherwise.
TapPair parse_tap_pair(const std::string& s, const std::string& flag);
// "layer1:features.3,layer2:features.6" → the pairs, each as parse_tap_pair.
std::vector<TapPair> parse_tap_pairs(const std::string& list, const std::string& flag);

struct DistillConfig {
  float temperature = 4.0f;
  float alpha = 0.9f;  // weight of the soft (teacher) term; 1 − α on the labels
  float label_smoothing = 0.0f;
  std::vector<TapPair> hints{}, attention{};
  float hint_weight = 1.0f;
  float attention_weight = 1000.0f;  // β; the loss adds β/2 · Σ attention_loss
  float attention_p = 2.0f;
  // Error for T ≤ 0, α outside [0, 1], negative weights, label smoothing outside [0, 1).
  void validate() const;
  std::string str() const;  // one line, for checkpoints ("T=4 alpha=0.9 …")
};

class Distiller {
 public:
  Distiller(nn::ModulePtr teacher, DistillConfig cfg);

  // On the float student (before any prepare_qat; eval mode, no grad, so
  // nothing in it changes): the teacher's and student's class counts must
  // agree and every tap name must exist (Error listing the valid names); one
  // hint adapter per hint pair, sized from the features on `sample`.
  void prepare(nn::Module& float_student, const Tensor& sample);

  struct Step {
    Tensor loss;            // scalar, in the student's (and the adapters') graph
    Tensor student_logits;  // N×classes
    Tensor teacher_logits;  // N×classes, no graph
  };
  // One batch: the teacher (frozen), then the student as it is (float, or a
  // QuantModel from prepare_qat: taps are read inside its model).
  Step step(nn::Module& student, const Tensor& images, const Tensor& labels);

  // The hint adapters ("hint0", "hint1", … in --hint order): train them with
  // the student; checkpoints keep them next to it.
  const nn::ModulePtr& adapters() const { return adapters_; }
  const nn::ModulePtr& teacher() const { return teacher_; }
  const DistillConfig& config() const { return cfg_; }

 private:
  nn::ModulePtr teacher_, adapters_;
  DistillConfig cfg_;
  std::vector<std::string> teacher_taps_, student_taps_;
  bool prepared_ = false;
};

// The Distiller as a Trainer callback: each batch's loss is its step's; the
// hint adapters train with the student and live in the checkpoints under
// "aux."; each checkpoint records the config ("distill" = config().str()),
// and a resumed run must have been distilled with the same one.
class DistillLoss : public nn::TrainerCallback {
 public:
  explicit DistillLoss(Distiller& d) : d_(d) {}
  std::optional<Tensor> loss(nn::Module& student, const Batch& b, Tensor& logits) override;
  nn::Module* aux() override;
  nn::Metadata metadata(bool finished) override;
  void check_resume(const nn::Metadata& md, const std::string& path) override;

 private:
  Distiller& d_;
};

// The module whose paths a student's taps name: a QuantModel's inner model,
// else the student itself.
nn::Module& tap_root(nn::Module& student);

}  // namespace lowbit::distill
