// quant::QatSchedule on nn::Trainer: each switch takes effect at its epoch,
// observers rest during validation, the model ends frozen.
#include <doctest/doctest.h>

#include <cmath>

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


// The BN's running statistics (mean, var) of a prepared conv+BN+ReLU+Linear net.
std::pair<std::vector<float>, std::vector<float>> bn_stats(nn::Module& m) {
  std::vector<float> mean, var;
  for (auto& [n, t] : m.state_dict()) {
    if (n.find("running_mean") != std::string::npos) mean = t.to_vector();
    if (n.find("running_var") != std::string::npos) var = t.to_vector();
  }
  return {mean, var};
}
void set_bn_stats(nn::Module& m, float mean, float var) {
  for (auto& [n, t] : m.state_dict()) {
    if (n.find("running_mean") != std::string::npos) t.fill_(mean);
    if (n.find("running_var") != std::string::npos) t.fill_(var);
  }
}
nn::ModulePtr conv_bn_net(uint64_t seed) {
  using namespace nn;
  manual_seed(seed);
  return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<Conv2d>(1, 4, 3, 1, 1), std::make_shared<BatchNorm2d>(4), std::make_shared<ReLU>(),
      std::make_shared<Flatten>(), std::make_shared<Linear>(64, 4)});
}
}  // namespace

TEST_CASE("QatSchedule: BN frozen from epoch 1, activations quantized from 1, observers off from 2; frozen at the end") {
  using namespace nn;
  const BatchList train = testing::Blobs(1), val = testing::Blobs(2, 2);
  ModulePtr net = conv_bn_net(0);
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
  auto net = [] { return conv_bn_net(3); };
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


TEST_CASE("reestimate_bn_stats: the running statistics become the average of the first N batches' statistics") {
  using namespace nn;
  const BatchList data = testing::Blobs(5, 3);
  auto net = conv_bn_net(4);
  Tensor w, b;  // the BN's input is conv(x, W) + b
  for (auto& [n, t] : net->named_parameters()) {
    if (n == "0.weight") w = t.detach().clone();
    if (n == "0.bias") b = t.detach().clone();
  }
  REQUIRE(b.defined());
  const quant::QConfig qc = quant::preset("w8a8");
  auto q = quant::prepare_qat(net, qc);
  {  // the quantizers see data once (LSQ initialises its steps), then the statistics are wrong
    NoGradGuard ng;
    q->train();
    q->forward(data.batch(0).images);
  }
  // With the input and weights unquantized the conv's output is conv(x, W),
  // whatever the running variance, so the expected statistics are exact.
  for (auto& [p, qz] : quant::quantizers(*q)) qz->enable_fake_quant(false);
  std::vector<std::vector<float>> act_scales;
  for (auto& [p, qz] : quant::quantizers(*q)) act_scales.push_back(qz->qparams().scale);
  for (int64_t n : {2, 3}) {
    set_bn_stats(*q, 100.0f, 50.0f);
    q->eval();
    CHECK(quant::reestimate_bn_stats(*q, data, n) == n);
    std::vector<double> mean(4, 0), var(4, 0);
    for (int64_t k = 0; k < n; ++k) {
      const std::vector<float> y = conv2d(data.batch(k).images, w, b, Conv2dOptions::make(1, 1)).to_vector();
      const int64_t hw = 16, count = 16 * hw;
      for (int64_t c = 0; c < 4; ++c) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < 16; ++i)
          for (int64_t j = 0; j < hw; ++j) s += y[(size_t)((i * 4 + c) * hw + j)];
        const double m = s / count;
        for (int64_t i = 0; i < 16; ++i)
          for (int64_t j = 0; j < hw; ++j) s2 += std::pow(y[(size_t)((i * 4 + c) * hw + j)] - m, 2);
        mean[(size_t)c] += m / n, var[(size_t)c] += s2 / (count - 1) / n;  // unbiased, as PyTorch's running_var
      }
    }
    const auto [rm, rv] = bn_stats(*q);
    for (int64_t c = 0; c < 4; ++c) {
      CHECK_MESSAGE(rm[(size_t)c] == doctest::Approx(mean[(size_t)c]).epsilon(1e-4), "batches ", n, " channel ", c);
      CHECK_MESSAGE(rv[(size_t)c] == doctest::Approx(var[(size_t)c]).epsilon(1e-4), "batches ", n, " channel ", c);
    }
    CHECK_FALSE(q->is_training());  // the mode, the momenta and the observers as they were
    q->for_each_module([](const std::string& p, Module& m) {
      if (auto* b = dynamic_cast<BatchNorm2d*>(&m)) CHECK_MESSAGE(b->momentum == 0.1f, p);
    });
    size_t i = 0;
    for (auto& [p, qz] : quant::quantizers(*q)) {
      CHECK_MESSAGE(qz->observer_enabled(), p);
      CHECK_MESSAGE(qz->qparams().scale == act_scales[i++], p);
    }
  }
  // Statistics frozen by the schedule stay as they are.
  quant::freeze_bn_stats(*q);
  set_bn_stats(*q, 1.0f, 2.0f);
  CHECK(quant::reestimate_bn_stats(*q, data, 3) == 0);
  CHECK(bn_stats(*q).first == std::vector<float>(4, 1.0f));
}

TEST_CASE("QatSchedule: with BN statistics live, they are re-estimated before freezing; the last validation is the frozen model's") {
  using namespace nn;
  const BatchList train = testing::Blobs(1), val = testing::Blobs(2, 2);
  for (int64_t batches : {0, 4}) {
    auto q = quant::prepare_qat(conv_bn_net(0), quant::preset("w4a4"));
    quant::QatSchedule schedule(quant::preset("w4a4"), {.bn_reestimate_batches = batches});
    struct Spy : TrainerCallback {  // the statistics the training left
      std::vector<float> mean;
      bool finish(Module& m, const BatchSource&) override {
        mean = bn_stats(m).first;
        return false;
      }
    } spy;
    TrainerConfig c;
    c.epochs = 2;
    c.optimizer.lr = 0.02;
    const TrainResult r = Trainer(q, c, {&spy, &schedule}).fit(train, val);
    CHECK(static_cast<quant::QuantModel&>(*q).frozen());
    CHECK(r.last.top1 == nn::evaluate(*q, val).top1);  // validated after freezing
    const quant::BnReestimation& re = schedule.bn_reestimation();
    CHECK(re.batches == batches);
    CHECK((bn_stats(*q).first != spy.mean) == re.kept);  // kept: the statistics changed; not kept: restored
    if (re.batches) CHECK(re.kept == (re.loss_after < re.loss_before));
  }
}

TEST_CASE("reestimate_bn_stats_if_better: kept only when the probe loss falls, else the model is restored exactly") {
  const BatchList data = testing::Blobs(8, 6);
  int kept = 0, restored = 0;
  for (float var : {5.0f, 1.0f, 0.2f}) {
    quant::QConfig qc = quant::preset("w4a4");
    quant::set_quantizer(qc, quant::QuantizerKind::lsq);
    auto q = quant::prepare_qat(conv_bn_net(9), qc);
    {
      NoGradGuard ng;
      q->train();
      for (int k = 0; k < 3; ++k) q->forward(data.batch(k).images);  // EMA statistics and LSQ steps
    }
    set_bn_stats(*q, 0.0f, var);
    std::vector<std::vector<float>> before;
    for (auto& [n, t] : q->state_dict()) before.push_back(t.to_vector());
    const quant::BnReestimation r = quant::reestimate_bn_stats_if_better(*q, data, 3, 2);
    CHECK(r.batches == 3);
    CHECK(r.kept == (r.loss_after < r.loss_before));
    std::vector<std::vector<float>> after;
    for (auto& [n, t] : q->state_dict()) after.push_back(t.to_vector());
    CHECK((after == before) == !r.kept);
    (r.kept ? kept : restored) += 1;
  }
  CHECK(kept >= 1);  // statistics 5× the data's variance are worse than re-estimated ones
  MESSAGE("re-estimation kept ", kept, " of 3, restored ", restored);
}

TEST_CASE("reestimate_bn_stats keeps the trained integer weights: the per-channel LSQ steps absorb σ_old/σ_new") {
  const BatchList data = testing::Blobs(6, 3);
  quant::QConfig qc = quant::preset("w4a4");
  quant::set_quantizer(qc, quant::QuantizerKind::lsq);
  auto q = quant::prepare_qat(conv_bn_net(7), qc);
  {
    NoGradGuard ng;
    q->train();
    q->forward(data.batch(0).images);  // LSQ initialises its steps
  }
  set_bn_stats(*q, 0.3f, 5.0f);  // statistics far from the data's
  auto* conv = dynamic_cast<quant::FusedConv2d*>(q->model()->child("0").get());
  REQUIRE(conv);
  auto integers = [&] {
    NoGradGuard ng;
    const Tensor w = conv->folded_weight_bias().first;
    const std::vector<float> fq = conv->weight_quantizer()->forward(w).to_vector(),
                             s = conv->weight_quantizer()->qparams().scale;
    std::vector<int> out;
    for (size_t i = 0; i < fq.size(); ++i) out.push_back((int)std::lround(fq[i] / s[i / 9]));
    return out;
  };
  const std::vector<int> before = integers();
  const std::vector<float> s0 = conv->weight_quantizer()->qparams().scale;
  CHECK(quant::reestimate_bn_stats(*q, data, 3) == 3);
  CHECK(integers() == before);
  const auto [mean, var] = bn_stats(*q);
  const std::vector<float> s1 = conv->weight_quantizer()->qparams().scale;
  for (size_t c = 0; c < 4; ++c) {
    CHECK(var[c] != doctest::Approx(5.0f));
    CHECK(s1[c] == doctest::Approx(s0[c] * std::sqrt((5.0f + 1e-5f) / (var[c] + 1e-5f))).epsilon(1e-5));
  }
}
