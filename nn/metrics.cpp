#include "nn/metrics.h"

#include <cmath>

namespace lowbit::nn {

namespace {

struct Batch {
  Tensor logits;  // contiguous f32 [N×C]
  Tensor targets;  // contiguous s32 [N]
  int64_t n, c;
};

Batch check_batch(const Tensor& logits, const Tensor& targets, const char* who) {
  LOWBIT_CHECK(logits.defined() && logits.dim() == 2 && logits.dtype() == DType::f32, who,
               ": logits must be f32 [N, C], got ", logits.defined() ? shape_str(logits.shape()) : "undefined");
  LOWBIT_CHECK(targets.defined() && targets.dim() == 1 && targets.dtype() == DType::s32 &&
                   targets.size(0) == logits.size(0),
               who, ": targets must be s32 [", logits.size(0), "], got ",
               targets.defined() ? std::string(dtype_name(targets.dtype())) + " " + shape_str(targets.shape())
                                 : "undefined");
  Batch b{logits.contiguous(), targets.contiguous(), logits.size(0), logits.size(1)};
  const int32_t* t = b.targets.data<int32_t>();
  for (int64_t i = 0; i < b.n; ++i)
    LOWBIT_CHECK(t[i] >= 0 && t[i] < b.c, who, ": target ", t[i], " of sample ", i, " is not a class in [0, ", b.c,
                 ")");
  return b;
}

int64_t argmax_row(const float* row, int64_t c) {
  int64_t best = 0;
  for (int64_t j = 0; j < c; ++j) {
    if (std::isnan(row[j])) return j;
    if (row[j] > row[best]) best = j;
  }
  return best;
}

bool in_topk(const float* row, int64_t c, int64_t target, int64_t k) {
  const float v = row[target];
  int64_t rank = 0;
  for (int64_t j = 0; j < c; ++j) {
    if (std::isnan(row[j])) return false;
    if (row[j] > v || (row[j] == v && j < target)) ++rank;
  }
  return rank < k;
}

int64_t count_topk(const Batch& b, int64_t k) {
  const float* x = b.logits.data<float>();
  const int32_t* t = b.targets.data<int32_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < b.n; ++i) correct += in_topk(x + i * b.c, b.c, t[i], k);
  return correct;
}

void add_confusion(const Batch& b, Tensor& cm) {
  const float* x = b.logits.data<float>();
  const int32_t* t = b.targets.data<int32_t>();
  int32_t* m = cm.data<int32_t>();
  for (int64_t i = 0; i < b.n; ++i) m[t[i] * b.c + argmax_row(x + i * b.c, b.c)] += 1;
  cm.bump_version();
}

}  // namespace

int64_t topk_correct(const Tensor& logits, const Tensor& targets, int64_t k) {
  LOWBIT_CHECK(k >= 1, "topk_correct: k must be >= 1, got ", k);
  return count_topk(check_batch(logits, targets, "topk_correct"), k);
}

double accuracy(const Tensor& logits, const Tensor& targets, int64_t k) {
  LOWBIT_CHECK(k >= 1, "accuracy: k must be >= 1, got ", k);
  Batch b = check_batch(logits, targets, "accuracy");
  return b.n ? (double)count_topk(b, k) / (double)b.n : 0.0;
}

Tensor confusion_matrix(const Tensor& logits, const Tensor& targets) {
  Batch b = check_batch(logits, targets, "confusion_matrix");
  Tensor cm = Tensor::zeros({b.c, b.c}, DType::s32);
  add_confusion(b, cm);
  return cm;
}

ClassificationMeter::ClassificationMeter(int64_t num_classes)
    : num_classes_(num_classes), confusion_(Tensor::zeros({num_classes, num_classes}, DType::s32)) {
  LOWBIT_CHECK(num_classes > 0, "ClassificationMeter: num_classes must be positive, got ", num_classes);
}

void ClassificationMeter::update(const Tensor& logits, const Tensor& targets, double batch_loss) {
  Batch b = check_batch(logits, targets, "ClassificationMeter");
  LOWBIT_CHECK(b.c == num_classes_, "ClassificationMeter: logits have ", b.c, " classes, the meter ", num_classes_);
  count_ += b.n;
  top1_ += count_topk(b, 1);
  top5_ += count_topk(b, 5);
  if (!std::isnan(batch_loss)) {
    loss_sum_ += batch_loss * (double)b.n;
    loss_count_ += b.n;
  }
  add_confusion(b, confusion_);
}

void ClassificationMeter::reset() {
  count_ = top1_ = top5_ = loss_count_ = 0;
  loss_sum_ = 0.0;
  confusion_.zero_();
}

}  // namespace lowbit::nn
