// quant::QatSchedule on nn::Trainer: each switch takes effect at its epoch,
// observers rest during validation, the model ends frozen.
#include <doctest/doctest.h>

#include "core/autograd.h"
#include "core/generator.h"
#include "core/ops.h"
#include "nn/layers.h"
#include "nn/trainer.h"
#include "quant/checkpoint.h"
#include "quant/qat_schedule.h"
#include "quant/qmodules.h"
#include "quant/quantize.h"
#include "core/safetensors.h"
#include "tests/test_util.h"

using namespace lowbit;

namespace {

// What the schedule did, seen from a callback after it: per epoch, whether
// the first conv's BN running mean moved, whether the output quantizer's
// step moved, and the switches at the epoch's start.
struct Probe : nn::TrainerCallback {
  nn::Module* model = nullptr;
  std::vector<float> mean0, scale0;
  std::vector<bool> bn_moved, act_scale_moved, act_fake_quant, observers_on;
  bool observer_on_in_eval = false;
  const Tensor& running_mean() {
    for (auto& [n, t] : model->state_dict())
      if (n.find("running_mean") != std::string::npos) return held = t;
    FAIL("no running_mean");
    return held;
  }
  quant::Quantizer* act() {
    for (auto& [p, q] : quant::quantizers(*model))
      if (p.find("weight_fake_quant") == std::string::npos && p.find("0.") == 0) return q;
    return nullptr;
  }
  void on_epoch_begin(nn::Module& m, int64_t) override {
    model = &m;
    mean0 = running_mean().to_vector();
    scale0 = act()->qparams().scale;
    act_fake_quant.push_back(act()->fake_quant_enabled());
    observers_on.push_back(act()->observer_enabled());
  }
  void before_eval(nn::Module&) override {
    bn_moved.push_back(running_mean().to_vector() != mean0);
    act_scale_moved.push_back(act()->qparams().scale != scale0);
  }
  void on_eval_progress(int64_t, int64_t, double) override {
    for (auto& [p, q] : quant::quantizers(*model)) observer_on_in_eval = observer_on_in_eval || q->observer_enabled();
  }
  Tensor held;
};

}  // namespace

TEST_CASE("QatSchedule: BN frozen from epoch 1, activations quantized from 1, observers off from 2; frozen at the end") {
  using namespace nn;
  const BatchList train = testing::Blobs(1), val = testing::Blobs(2, 2);
  manual_seed(0);
  ModulePtr net = std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<Conv2d>(1, 4, 3, 1, 1), std::make_shared<BatchNorm2d>(4), std::make_shared<ReLU>(),
      std::make_shared<Flatten>(), std::make_shared<Linear>(64, 4)});
  const quant::QConfig qc = quant::preset("w8a8");
  auto q = quant::prepare_qat(net, qc);
  quant::QatSchedule schedule(qc, {.freeze_bn_after = 1, .freeze_observers_after = 2, .quantize_activations_after = 1});
  Probe probe;
  TrainerConfig c;
  c.epochs = 3;
  c.optimizer.lr = 0.02;
  const TrainResult r = Trainer(q, c, {&schedule, &probe}).fit(train, val);
  CHECK(probe.bn_moved == std::vector<bool>{true, false, false});
  CHECK(probe.act_fake_quant == std::vector<bool>{false, true, true});
  CHECK(probe.observers_on == std::vector<bool>{true, true, false});
  CHECK_FALSE(probe.act_scale_moved[2]);  // observers off: the step stays
  CHECK_FALSE(probe.observer_on_in_eval);
  for (auto& [p, qz] : quant::quantizers(*q)) CHECK_MESSAGE(qz->frozen(), p);
  CHECK(r.last.top1 > 0.8);
  // Its checkpoints say QAT with this qconfig, finished at the end.
  CHECK(schedule.metadata(true) == quant::quant_metadata({true, qc, true}));
  CHECK(testing::error_of([&] { schedule.check_resume(schedule.metadata(true), "q.safetensors"); }) ==
        "q.safetensors is a finished (frozen) QAT model; nothing to resume");
  CHECK(testing::error_of([&] { schedule.check_resume({}, "f.safetensors"); }) == "f.safetensors is not a lowbit qat checkpoint");
}

TEST_CASE("calibrate: every batch observed once, without grad; the qparams a by-hand loop gives") {
  using namespace nn;
  auto net = [] {
    manual_seed(3);
    return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
        std::make_shared<Conv2d>(1, 4, 3, 1, 1), std::make_shared<BatchNorm2d>(4), std::make_shared<ReLU>(),
        std::make_shared<Flatten>(), std::make_shared<Linear>(64, 4)});
  };
  // Three batches, the last with the widest range (a calibration that stops early misses it).
  std::vector<Batch> batches;
  for (int k = 0; k < 3; ++k) {
    Generator g(10 + k);
    batches.push_back({mul(randn({8, 1, 4, 4}, &g), 1.0f + 2.0f * k), Tensor::zeros({8}, DType::s32), {}});
  }
  const BatchList data(batches, 4);
  quant::QConfig qc = quant::preset("w8a8");
  quant::set_activation_observer(qc, quant::ObserverKind::minmax);
  auto a = quant::prepare(net(), qc), b = quant::prepare(net(), qc);
  std::vector<int64_t> seen;
  CHECK(quant::calibrate(*a, data, [&](int64_t done, int64_t total) {
          seen.push_back(done);
          CHECK(total == 24);
        }) == 24);
  CHECK(seen == std::vector<int64_t>{8, 16, 24});
  {
    NoGradGuard ng;
    for (const Batch& x : batches) b->forward(x.images);
  }
  quant::freeze(*a);
  quant::freeze(*b);
  const auto qa = quant::quantizers(*a), qb = quant::quantizers(*b);
  REQUIRE(qa.size() == qb.size());
  for (size_t i = 0; i < qa.size(); ++i) {
    CHECK_MESSAGE(qa[i].second->qparams().scale == qb[i].second->qparams().scale, qa[i].first);
    CHECK_MESSAGE(qa[i].second->qparams().zero_point == qb[i].second->qparams().zero_point, qa[i].first);
  }
  // The input's range is the widest batch's: [min, max] of all 24 images.
  float lo = 0, hi = 0;
  for (const Batch& x : batches)
    for (float v : x.images.to_vector()) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(qa[0].second->qparams().scale[0] == doctest::Approx((hi - lo) / 255.0f).epsilon(1e-5));
}
