// Distillation losses (Hinton et al. 2015; FitNets, Romero et al. 2015;
// attention transfer, Zagoruyko & Komodakis 2017). Differentiable in the
// student's tensors; the teacher's are treated as constants (pass them
// detached, as the Distiller does).
//
//   kd_loss          T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)), averaged over the batch:
//                    torch: F.kl_div(F.log_softmax(z_s/T, 1), F.softmax(z_t/T, 1), reduction="batchmean") * T*T
//   soft_target_loss α · kd_loss + (1 − α) · CE(z_s, y; label smoothing)
//                    (α weighs the soft term; α = 0 is plain training, α = 1 ignores the labels)
//   attention_map    F.normalize(mean_c |a|^p, flattened per image): N×C×H×W → N×(H·W)
//                    (the paper sums over channels; the mean differs by the factor C,
//                    which the normalization removes)
//   attention_loss   mean((at(s) − at(t))²); when the spatial sizes differ, the larger
//                    map (before normalization) is average-pooled to the smaller
//   HintAdapter      FitNets' regressor: 1×1 conv (student C → teacher C, no bias) + BN
//   hint_loss        mean((adapter(s) − t)²) after pooling the larger map to the smaller size
#pragma once
#include "core/ops.h"
#include "nn/layers.h"

namespace lowbit::distill {

Tensor kd_loss(const Tensor& student_logits, const Tensor& teacher_logits, float temperature);
Tensor soft_target_loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels,
                        float temperature, float alpha, float label_smoothing = 0.0f);

Tensor attention_map(const Tensor& features, float p = 2.0f);
Tensor attention_loss(const Tensor& student_features, const Tensor& teacher_features, float p = 2.0f);

class HintAdapter : public nn::Module {
 public:
  HintAdapter(int64_t student_channels, int64_t teacher_channels);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "HintAdapter"; }
  int64_t student_channels, teacher_channels;
};
Tensor hint_loss(HintAdapter& adapter, const Tensor& student_features, const Tensor& teacher_features);

// Both N×C×H×W: the larger (in H·W) average-pooled to the other's H×W; Error
// naming `what` if the batch sizes differ or either is not 4-D.
std::pair<Tensor, Tensor> match_spatial(const Tensor& a, const Tensor& b, const char* what);

}  // namespace lowbit::distill
