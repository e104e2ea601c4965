// Classification metrics from logits [N×C] (f32, any layout) and targets [N]
// (s32 class indices in [0, C)).
//
// Ties and NaN, stated once: the prediction is the first maximal logit, with
// NaN counting as the largest value (torch.argmax). A sample is top-k correct
// when its target ranks among the first k classes ordered by logit descending,
// ties broken by lower index (so top-1 agrees with the prediction); a row
// holding a NaN is never correct. k larger than C counts every valid row.
#pragma once
#include <cstdint>
#include <limits>

#include "core/tensor.h"

namespace lowbit::nn {

// Number of samples whose target is among the top k.
int64_t topk_correct(const Tensor& logits, const Tensor& targets, int64_t k = 1);
// Fraction of top-k correct samples (0 for an empty batch).
double accuracy(const Tensor& logits, const Tensor& targets, int64_t k = 1);
// s32 [C×C]: entry (true class, predicted class) counts samples.
Tensor confusion_matrix(const Tensor& logits, const Tensor& targets);

// Running totals over an evaluation: top-1, top-5, mean loss, confusion matrix.
class ClassificationMeter {
 public:
  explicit ClassificationMeter(int64_t num_classes);
  // batch_loss: the batch's mean loss (weighted by batch size in mean_loss()); NaN to leave loss out.
  void update(const Tensor& logits, const Tensor& targets,
              double batch_loss = std::numeric_limits<double>::quiet_NaN());
  void reset();
  int64_t count() const { return count_; }
  int64_t top1_correct() const { return top1_; }
  int64_t top5_correct() const { return top5_; }
  double top1() const { return count_ ? (double)top1_ / (double)count_ : 0.0; }
  double top5() const { return count_ ? (double)top5_ / (double)count_ : 0.0; }
  double mean_loss() const { return loss_count_ ? loss_sum_ / (double)loss_count_ : 0.0; }
  const Tensor& confusion() const { return confusion_; }  // s32 [C×C], rows true class
  int64_t num_classes() const { return num_classes_; }

 private:
  int64_t num_classes_;
  int64_t count_ = 0, top1_ = 0, top5_ = 0, loss_count_ = 0;
  double loss_sum_ = 0.0;
  Tensor confusion_;
};

}  // namespace lowbit::nn
