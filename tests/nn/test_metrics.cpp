// Metrics: top-1/top-5 accuracy and the confusion matrix, by hand (ties,
// NaN, bad targets) and against PyTorch (topk, argmax, bincount) on random
// logits from tests/fixtures/training.safetensors.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.h"
#include "nn/metrics.h"
#include "nn_test_util.h"

using namespace lowbit;
using namespace lowbit::nn;
using namespace nn_test;

TEST_CASE("metrics: hand values, ties, NaN, non-contiguous logits, bad targets") {
  // rows: clear winner 2; tie between 0 and 1 (first wins); NaN row.
  Tensor logits = Tensor::from_vector({0, 1, 5, 2, 2, 0, 1, NAN, 0}, {3, 3});
  Tensor t = Tensor::from_vector_s32({2, 1, 0}, {3});
  CHECK(topk_correct(logits, t, 1) == 1);  // row 1: the tie goes to class 0
  CHECK(topk_correct(logits, t, 2) == 2);
  CHECK(topk_correct(logits, t, 5) == 2);  // k > C: every row without NaN
  CHECK(accuracy(logits, t, 1) == doctest::Approx(1.0 / 3));
  Tensor cm = confusion_matrix(logits, t);
  CHECK(cm.dtype() == DType::s32);
  // true 2 → predicted 2; true 1 → predicted 0 (tie); true 0 → predicted 1 (NaN is the max, as torch.argmax)
  CHECK(cm.to_vector() == std::vector<float>{0, 1, 0, 1, 0, 0, 0, 0, 1});

  // Logits as a transposed view give the same answers.
  Tensor lt = Tensor::from_vector({0, 2, 1, 1, 2, NAN, 5, 0, 0}, {3, 3}).transpose(0, 1);
  CHECK(topk_correct(lt, t, 2) == 2);
  CHECK(confusion_matrix(lt, t).to_vector() == cm.to_vector());

  CHECK(accuracy(Tensor::zeros({0, 4}), Tensor::zeros({0}, DType::s32)) == 0.0);
  std::string err = error_of([&] { accuracy(logits, Tensor::from_vector_s32({0, 3, 1}, {3})); });
  CHECK(contains(err, "target 3 of sample 1 is not a class in [0, 3)"));
  CHECK(contains(error_of([&] { accuracy(logits, Tensor::from_vector_s32({0, 1}, {2})); }), "targets must be s32 [3]"));
  CHECK(contains(error_of([&] { accuracy(logits, Tensor::zeros({3})); }), "got f32 [3]"));
}

TEST_CASE("metrics agree with PyTorch (topk, argmax, bincount); the meter accumulates") {
  const SafetensorsFile& fx = training_fixture();
  const Tensor logits = fx.get("metrics.logits"), target = fx.get("metrics.target");
  CHECK(topk_correct(logits, target, 1) == (int64_t)fx.get("metrics.top1").item());
  CHECK(topk_correct(logits, target, 5) == (int64_t)fx.get("metrics.top5").item());
  CHECK(confusion_matrix(logits, target).to_vector() == fx.get("metrics.confusion").to_vector());

  ClassificationMeter meter(10);
  // Unequal batches (10 and n - 10 samples): a per-batch mean of the losses
  // (1.5) and a per-sample one differ, and so do per-batch accuracies.
  const int64_t n = logits.size(0), half = 10;
  REQUIRE(n > 2 * half);
  meter.update(logits.slice(0, 0, half), target.slice(0, 0, half), 2.0);
  meter.update(logits.slice(0, half, n), target.slice(0, half, n), 1.0);
  CHECK(meter.count() == n);
  CHECK(meter.top1_correct() == (int64_t)fx.get("metrics.top1").item());
  CHECK(meter.top5() == doctest::Approx(fx.get("metrics.top5").item() / n));
  CHECK(meter.mean_loss() == doctest::Approx((2.0 * half + 1.0 * (n - half)) / n));
  CHECK(meter.confusion().to_vector() == fx.get("metrics.confusion").to_vector());
  CHECK(contains(error_of([&] { meter.update(Tensor::zeros({1, 3}), Tensor::zeros({1}, DType::s32)); }),
                 "logits have 3 classes, the meter 10"));
  meter.reset();
  CHECK(meter.count() == 0);
  CHECK(meter.confusion().to_vector() == std::vector<float>(100, 0.0f));
}
