// Optimizers, LR schedules and gradient clipping: hand-computed steps, and
// PyTorch's numbers from tests/fixtures/training.safetensors ("optim.*",
// "sched.*", "clip.*"; PyTorch in float64 from the stored float32 values).
#include <doctest/doctest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "nn/clip.h"
#include "nn/divergence.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "nn_test_util.h"

using namespace lowbit;
using namespace lowbit::nn;
using namespace nn_test;

namespace {

Tensor leaf(const std::vector<float>& v, const Shape& shape) {
  Tensor t = Tensor::from_vector(v, shape);
  t.set_requires_grad(true);
  return t;
}

void set_grad(const Tensor& p, const std::vector<float>& g) { p.set_grad(Tensor::from_vector(g, p.shape())); }

std::unique_ptr<Optimizer> optimizer_from_fixture(const std::string& c, const NamedTensors& params) {
  const std::string type = meta("optim." + c + ".type");
  auto get = [&](const std::string& k, double dflt) {
    const auto& m = training_fixture().metadata;
    auto it = m.find("optim." + c + "." + k);
    return it == m.end() ? dflt : std::stod(it->second);
  };
  if (type == "SGD") {
    SGDOptions o;
    o.lr = get("lr", 0);
    o.momentum = get("momentum", 0);
    o.dampening = get("dampening", 0);
    o.weight_decay = get("weight_decay", 0);
    o.nesterov = get("nesterov", 0) != 0;
    return std::make_unique<SGD>(params, o);
  }
  AdamOptions o;
  o.lr = get("lr", 1e-3);
  o.beta1 = get("beta1", 0.9);
  o.beta2 = get("beta2", 0.999);
  o.eps = get("eps", 1e-8);
  o.weight_decay = get("weight_decay", type == "AdamW" ? 1e-2 : 0);
  if (type == "AdamW") return std::make_unique<AdamW>(params, o);
  REQUIRE(type == "Adam");
  return std::make_unique<Adam>(params, o);
}

std::vector<float> values(const Tensor& t) { return t.to_vector(); }

}  // namespace

// ---- optimizers ------------------------------------------------------------------

TEST_CASE("SGD: hand-computed steps (momentum, weight decay, Nesterov, dampening)") {
  // p = 1, g = 2 then 1, lr 0.5, momentum 0.9, wd 0.1:
  //   d = 2 + 0.1·1 = 2.1, buf = 2.1, p = 1 − 0.5·2.1 = −0.05
  //   d = 1 + 0.1·(−0.05) = 0.995, buf = 0.9·2.1 + 0.995 = 2.885, p = −0.05 − 0.5·2.885 = −1.4925
  Tensor p = leaf({1}, {1});
  SGDOptions o{.lr = 0.5, .momentum = 0.9, .weight_decay = 0.1};
  SGD sgd({{"p", p}}, o);
  set_grad(p, {2});
  sgd.step();
  CHECK(p.item() == doctest::Approx(-0.05).epsilon(1e-6));
  set_grad(p, {1});
  sgd.step();
  CHECK(p.item() == doctest::Approx(-1.4925).epsilon(1e-6));

  // Nesterov: d = 2.1, buf = 2.1, d = 2.1 + 0.9·2.1 = 3.99, p = 1 − 0.5·3.99 = −0.995
  Tensor q = leaf({1}, {1});
  o.nesterov = true;
  SGD nag({{"q", q}}, o);
  set_grad(q, {2});
  nag.step();
  CHECK(q.item() == doctest::Approx(-0.995).epsilon(1e-6));

  // Dampening 0.5, no decay: buf = 2 (first step: no dampening), then 0.9·2 + 0.5·1 = 2.3
  Tensor r = leaf({0}, {1});
  SGD damp({{"r", r}}, SGDOptions{.lr = 1, .momentum = 0.9, .dampening = 0.5});
  set_grad(r, {2});
  damp.step();
  set_grad(r, {1});
  damp.step();
  CHECK(r.item() == doctest::Approx(-4.3).epsilon(1e-6));

  // Plain SGD is p −= lr·g, and the version counter moves.
  Tensor s = leaf({1, 2}, {2});
  const uint64_t v0 = s.version();
  SGD plain({{"s", s}}, SGDOptions{.lr = 0.25});
  set_grad(s, {4, -8});
  plain.step();
  CHECK(values(s) == std::vector<float>{0, 4});
  CHECK(s.version() > v0);

  CHECK(contains(error_of([&] { SGD({{"s", s}}, SGDOptions{.lr = 1, .nesterov = true}); }), "Nesterov"));
  CHECK(contains(error_of([&] { SGD({{"s", s}, {"s", s}}, SGDOptions{}); }), "'s' appears twice"));
}

TEST_CASE("Adam and AdamW: hand-computed first step") {
  // First Adam step moves by lr·sign(g) (m̂ = g, v̂ = g²), up to eps:
  // p = 1, g = 2, lr 0.1 → 0.9. AdamW with wd 0.5 first decays p by 1 − 0.1·0.5 → 0.95 − 0.1 = 0.85.
  // Adam with wd 0.5 adds 0.5·p to the gradient (still positive) → 0.9.
  AdamOptions o{.lr = 0.1};
  Tensor a = leaf({1}, {1}), b = leaf({1}, {1}), c = leaf({1}, {1});
  Adam adam({{"a", a}}, o);
  o.weight_decay = 0.5;
  AdamW adamw({{"b", b}}, o);
  Adam adam_l2({{"c", c}}, o);
  for (auto* t : {&a, &b, &c}) set_grad(*t, {2});
  adam.step();
  adamw.step();
  adam_l2.step();
  CHECK(a.item() == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(b.item() == doctest::Approx(0.85).epsilon(1e-6));
  CHECK(c.item() == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(adam.type_name() == "Adam");
  CHECK(adamw.type_name() == "AdamW");
  // Second step, g = 0: m = 0.9·0.2 = 0.18, v = 0.999·0.004; m̂ = 0.18/0.19, v̂ = 0.003996/0.001999.
  set_grad(a, {0});
  adam.step();
  const double mhat = 0.18 / (1 - 0.81), vhat = 0.999 * 0.004 / (1 - 0.999 * 0.999);
  CHECK(a.item() == doctest::Approx(0.9 - 0.1 * mhat / (std::sqrt(vhat) + 1e-8)).epsilon(1e-6));
}

TEST_CASE("optimizers agree with PyTorch: SGD (momentum, Nesterov, dampening), Adam, AdamW, 3 steps") {
  const SafetensorsFile& fx = training_fixture();
  const auto cases = split(meta("optim.cases"));
  CHECK(cases.size() == 7);
  for (const auto& c : cases) {
    CAPTURE(c);
    const std::string pre = "optim." + c + ".";
    Tensor p = fx.get(pre + "p0").clone().detach();
    p.set_requires_grad(true);
    auto opt = optimizer_from_fixture(c, {{"w", p}});
    const Tensor p0 = fx.get(pre + "p0");
    for (int k = 1; k <= std::stoi(meta(pre + "steps")); ++k) {
      p.set_grad(fx.get(pre + "g" + std::to_string(k)).clone());
      opt->step();
      const Tensor ref = fx.get(pre + "p" + std::to_string(k));
      // Parameter and update (p_k − p_0) both checked: the update is what the
      // optimizer computes, and it is small next to p. The stored p_k is
      // rounded to f32, which alone is ~3e-5 of the smallest update (lr 3e-3).
      CHECK(rel_err(p, ref) <= 1e-6);
      CHECK(rel_err(sub(p.detach(), p0), sub(ref, p0)) <= 1e-4);
    }
  }
}

TEST_CASE("optimizer: parameters without a gradient are skipped; per-group lr and weight decay") {
  Tensor a = leaf({1, 1}, {2}), b = leaf({1}, {1});
  SGD sgd({{"a", a}, {"b", b}}, SGDOptions{.lr = 0.1, .momentum = 0.9});
  set_grad(a, {1, 1});
  sgd.step();
  CHECK(b.item() == 1.0f);
  OptimizerState st = sgd.state_dict();
  REQUIRE(st.tensors.size() == 1);
  CHECK(st.tensors[0].first == "optim.state.a.momentum_buffer");
  CHECK(st.tensors[0].second.shape() == Shape{2});

  // Groups: the frozen group (lr 0) does not move, the decayed one shrinks.
  Tensor w = leaf({2}, {1}), bias = leaf({2}, {1});
  std::vector<ParamGroup> groups(2);
  groups[0].params = {{"w", w}};
  groups[0].weight_decay = 0.5;
  groups[1].params = {{"bias", bias}};
  groups[1].lr = 0.0;
  SGD g2(groups, SGDOptions{.lr = 1.0});
  CHECK(g2.param_groups()[0].lr == 1.0);
  CHECK(g2.param_groups()[1].weight_decay == 0.0);  // default
  set_grad(w, {0});
  set_grad(bias, {3});
  g2.step();
  CHECK(w.item() == 1.0f);  // 2 − 1·(0 + 0.5·2)
  CHECK(bias.item() == 2.0f);
  g2.set_lr(0.5);
  CHECK(g2.param_groups()[1].lr == 0.5);
  CHECK(g2.param_groups()[1].initial_lr == 0.0);

  // zero_grad: set to none, or filled with zeros.
  g2.zero_grad(false);
  CHECK(w.grad().defined());
  CHECK(w.grad().item() == 0.0f);
  g2.zero_grad();
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("no_decay_groups: biases and BatchNorm parameters get no weight decay") {
  ModelConfig cfg{1, 10};
  auto model = create_model("resnet20", cfg);
  auto groups = no_decay_groups(model->named_parameters(), 5e-4);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "decay");
  CHECK(groups[0].weight_decay == 5e-4);
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[0].params.size() == 22);  // 21 convs (19 + 2 shortcuts) and fc.weight
  CHECK(groups[1].params.size() == 43);  // 21 BatchNorms × (weight, bias) and fc.bias
  for (auto& [n, t] : groups[0].params) CHECK_MESSAGE(t.dim() >= 2, n);
  for (auto& [n, t] : groups[1].params) CHECK_MESSAGE((contains(n, "bn") || contains(n, "downsample.1") || n == "fc.bias"), n);
  SGD opt(groups, SGDOptions{.lr = 0.1, .momentum = 0.9});
  CHECK(opt.parameters().size() == model->parameters().size());
}

TEST_CASE("optimizer state_dict: resuming continues bit for bit; bad states are rejected by key") {
  for (int adam = 0; adam < 2; ++adam) {
    CAPTURE(adam);
    auto make = [&](const NamedTensors& ps) -> std::unique_ptr<Optimizer> {
      if (adam) return std::make_unique<AdamW>(ps, AdamOptions{.lr = 0.01, .weight_decay = 0.1});
      return std::make_unique<SGD>(no_decay_groups(ps, 1e-3), SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
    };
    manual_seed(7);
    Tensor w = randn({3, 4}), bias = randn({4});
    std::vector<Tensor> grads;
    for (int i = 0; i < 4; ++i) grads.push_back(randn({3, 4})), grads.push_back(randn({4}));
    Tensor w1 = w.clone(), b1 = bias.clone(), w2 = w.clone(), b2 = bias.clone();
    for (auto* t : {&w1, &b1, &w2, &b2}) t->set_requires_grad(true);
    auto straight = make({{"w", w1}, {"bias", b1}});
    auto first = make({{"w", w2}, {"bias", b2}});
    for (int s = 0; s < 4; ++s) {
      w1.set_grad(grads[2 * s]);
      b1.set_grad(grads[2 * s + 1]);
      straight->step();
    }
    for (int s = 0; s < 2; ++s) {
      w2.set_grad(grads[2 * s]);
      b2.set_grad(grads[2 * s + 1]);
      first->step();
    }
    first->param_groups()[0].lr = 0.123;  // a schedule's write survives the round trip
    OptimizerState st = first->state_dict();
    auto resumed = make({{"w", w2}, {"bias", b2}});
    resumed->load_state_dict(st);
    CHECK(resumed->steps() == 2);
    CHECK(resumed->param_groups()[0].lr == 0.123);
    resumed->param_groups()[0].lr = straight->param_groups()[0].lr;
    for (int s = 2; s < 4; ++s) {
      w2.set_grad(grads[2 * s]);
      b2.set_grad(grads[2 * s + 1]);
      resumed->step();
    }
    CHECK(values(w2) == values(w1));
    CHECK(values(b2) == values(b1));
  }

  Tensor p = leaf({1, 2}, {2});
  SGD sgd({{"p", p}}, SGDOptions{.lr = 0.1, .momentum = 0.5});
  set_grad(p, {1, 1});
  sgd.step();
  OptimizerState st = sgd.state_dict();
  CHECK(st.scalars.at("optim.type") == "SGD");
  CHECK(st.scalars.at("optim.group.0.lr") == "0.10000000000000001");  // exact decimal
  Adam adam({{"p", p}}, AdamOptions{});
  CHECK(contains(error_of([&] { adam.load_state_dict(st); }), "for SGD, this optimizer is Adam"));
  Tensor other = leaf({1, 2}, {2});
  SGD renamed({{"q", other}}, SGDOptions{.lr = 0.1});
  CHECK(contains(error_of([&] { renamed.load_state_dict(st); }), "optim.group.0.params"));
  OptimizerState bad = st;
  bad.tensors[0].second = Tensor::zeros({3});
  CHECK(contains(error_of([&] { sgd.load_state_dict(bad); }), "'optim.state.p.momentum_buffer' has shape [3], expected [2]"));
  bad = st;
  bad.tensors.emplace_back("optim.state.ghost.momentum_buffer", Tensor::zeros({2}));
  CHECK(contains(error_of([&] { sgd.load_state_dict(bad); }), "'optim.state.ghost.momentum_buffer' belongs to no parameter"));
  bad = st;
  bad.scalars.erase("optim.momentum");
  CHECK(contains(error_of([&] { sgd.load_state_dict(bad); }), "missing scalar 'optim.momentum'"));
  // A rejected state leaves the optimizer as it was.
  CHECK(sgd.state_dict().tensors[0].second.to_vector() == st.tensors[0].second.to_vector());
}

// ---- schedules ---------------------------------------------------------------------

TEST_CASE("LR schedules: hand values") {
  StepLR step(2, 0.5);
  std::vector<double> got;
  for (int t = 0; t < 5; ++t) got.push_back(step.lr(t, 1.0));
  CHECK(got == std::vector<double>{1, 1, 0.5, 0.5, 0.25});
  MultiStepLR ms({1, 3}, 0.1);
  CHECK(ms.lr(0, 1.0) == 1.0);
  CHECK(ms.lr(1, 1.0) == doctest::Approx(0.1));
  CHECK(ms.lr(3, 1.0) == doctest::Approx(0.01));
  CosineAnnealingLR cos(10, 0.1);
  CHECK(cos.lr(0, 1.0) == 1.0);
  CHECK(cos.lr(5, 1.0) == doctest::Approx(0.55));
  CHECK(cos.lr(10, 1.0) == doctest::Approx(0.1));
  LinearWarmup warm(4, 0.2);
  CHECK(warm.lr(0, 1.0) == doctest::Approx(0.2));
  CHECK(warm.lr(2, 1.0) == doctest::Approx(0.6));
  CHECK(warm.lr(9, 1.0) == doctest::Approx(1.0));
  auto wc = warmup_then(2, 0.5, std::make_shared<CosineAnnealingLR>(4));
  CHECK(wc->lr(0, 1.0) == doctest::Approx(0.5));
  CHECK(wc->lr(1, 1.0) == doctest::Approx(0.75));
  CHECK(wc->lr(2, 1.0) == doctest::Approx(1.0));  // the cosine's t = 0
  CHECK(wc->lr(4, 1.0) == doctest::Approx(0.5));
  CHECK(contains(error_of([] { MultiStepLR({3, 2}); }), "milestones must increase"));
  CHECK(contains(error_of([] { SequentialLR({std::make_shared<ConstantLR>()}, {1}); }), "1 schedules need 0 milestones"));

  // apply_schedule scales each group's initial lr.
  Tensor a = leaf({1}, {1}), b = leaf({1}, {1});
  std::vector<ParamGroup> groups(2);
  groups[0].params = {{"a", a}};
  groups[1].params = {{"b", b}};
  groups[1].lr = 0.01;
  SGD opt(groups, SGDOptions{.lr = 0.1});
  apply_schedule(opt, step, 2);
  CHECK(opt.param_groups()[0].lr == doctest::Approx(0.05));
  CHECK(opt.param_groups()[1].lr == doctest::Approx(0.005));
}

TEST_CASE("LR schedules agree with torch.optim.lr_scheduler (per-epoch sequences)") {
  const SafetensorsFile& fx = training_fixture();
  auto i = [](const std::string& k) { return (int64_t)meta_double(k); };
  for (const auto& c : split(meta("sched.cases"))) {
    CAPTURE(c);
    const std::string pre = "sched." + c + ".";
    std::shared_ptr<LrSchedule> s;
    if (c == "step") s = std::make_shared<StepLR>(i(pre + "step_size"), meta_double(pre + "gamma"));
    else if (c == "multistep") {
      std::vector<int64_t> ms;
      for (auto& v : split(meta(pre + "milestones"))) ms.push_back(std::stoll(v));
      s = std::make_shared<MultiStepLR>(ms, meta_double(pre + "gamma"));
    } else if (c == "cosine") s = std::make_shared<CosineAnnealingLR>(i(pre + "T_max"), meta_double(pre + "eta_min"));
    else if (c == "linear") s = std::make_shared<LinearWarmup>(i(pre + "total_iters"), meta_double(pre + "start_factor"));
    else if (c == "warmup_cosine")
      s = std::const_pointer_cast<LrSchedule>(warmup_then(i(pre + "warmup"), meta_double(pre + "start_factor"),
                                                          std::make_shared<CosineAnnealingLR>(i(pre + "T_max"))));
    REQUIRE_MESSAGE(s, "no lowbit schedule for fixture case ", c);
    const std::vector<float> ref = fx.get(pre + "lr").to_vector();
    const double base = meta_double(pre + "base_lr");
    for (size_t t = 0; t < ref.size(); ++t) {
      CAPTURE(t);
      CHECK(s->lr((int64_t)t, base) == doctest::Approx(ref[t]).epsilon(1e-6));
    }
  }
}

// ---- clipping ------------------------------------------------------------------------

TEST_CASE("clip_grad_norm_: hand values, no gradients, non-finite, non-contiguous") {
  Tensor a = leaf({0, 0}, {2}), b = leaf({0}, {1}), none = leaf({0}, {1});
  set_grad(a, {3, 0});
  set_grad(b, {-4});
  CHECK(clip_grad_norm_({a, b, none}, 10.0) == doctest::Approx(5.0));
  CHECK(values(a.grad()) == std::vector<float>{3, 0});  // under the limit: untouched
  CHECK(clip_grad_norm_({a, b}, 1.0) == doctest::Approx(5.0));
  CHECK(a.grad().to_vector()[0] == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(b.grad().item() == doctest::Approx(-0.8).epsilon(1e-6));
  CHECK(clip_grad_norm_({none}, 1.0) == 0.0);
  set_grad(a, {NAN, 1});
  CHECK(contains(error_of([&] { clip_grad_norm_({a}, 1.0, 2.0, true); }), "cannot clip"));
  CHECK(std::isnan(clip_grad_norm_({a}, 1.0)));
  // A gradient that is a transposed view is scaled through the view.
  Tensor m = leaf({0, 0, 0, 0}, {2, 2});
  m.set_grad(Tensor::from_vector({0, 6, 8, 0}, {2, 2}).transpose(0, 1));
  CHECK(clip_grad_norm_({m}, 5.0) == doctest::Approx(10.0));
  CHECK(m.grad().to_vector()[1] == doctest::Approx(4.0).epsilon(1e-6));
  CHECK(m.grad().to_vector()[2] == doctest::Approx(3.0).epsilon(1e-6));
}

TEST_CASE("clip_grad_norm_ agrees with torch.nn.utils.clip_grad_norm_") {
  const SafetensorsFile& fx = training_fixture();
  for (const auto& c : split(meta("clip.cases"))) {
    CAPTURE(c);
    const std::string pre = "clip." + c + ".";
    const int count = std::stoi(meta(pre + "count"));
    std::vector<Tensor> ps;
    for (int i = 0; i < count; ++i) {
      Tensor g = fx.get(pre + "g" + std::to_string(i));
      Tensor p = Tensor::zeros(g.shape());
      p.set_requires_grad(true);
      p.set_grad(g.clone());
      ps.push_back(p);
    }
    const std::string nt = meta(pre + "norm_type");
    const double norm = clip_grad_norm_(ps, meta_double(pre + "max_norm"), nt == "inf" ? kInfNorm : std::stod(nt));
    CHECK(norm == doctest::Approx(fx.get(pre + "norm").item()).epsilon(1e-6));
    for (int i = 0; i < count; ++i) CHECK(rel_err(ps[i].grad(), fx.get(pre + "clipped" + std::to_string(i))) <= 1e-6);
  }
}

TEST_CASE("divergence: 3 rising windows ending at 2x the first window's mean loss; not a noisy or falling run") {
  auto feed = [](DivergenceMonitor& m, const std::vector<double>& window_means) {
    std::optional<std::string> why;
    int fired_at = -1;
    for (size_t w = 0; w < window_means.size(); ++w)
      for (int i = 0; i < m.rule().window; ++i) {
        // The window's mean, spread ±0.1 so steps differ.
        auto r = m.add_loss(window_means[w] + (i % 2 ? 0.1 : -0.1));
        if (r) {
          CHECK(i == m.rule().window - 1);  // only at a window's end
          why = r, fired_at = (int)w;
        }
      }
    return std::pair{fired_at, why};
  };
  {
    DivergenceMonitor m;  // the demo's QAT w8a8 stage: 0.40, 0.55, 1.83, 4.6 ...
    auto [w, why] = feed(m, {0.40, 0.55, 1.83, 4.6, 6.3, 7.0});
    CHECK(w == 3);
    REQUIRE(why);
    CHECK(*why == "training loss rose for 3 windows of 20 steps to 4.6, 11.5x the first window's 0.4");
  }
  {
    DivergenceMonitor m;  // rising 3 windows but below 2x: a fine-tune settling, not diverging
    CHECK(feed(m, {0.40, 0.45, 0.50, 0.55, 0.50}).first == -1);
  }
  {
    DivergenceMonitor m;  // 2x but not 3 consecutive rises (a spike that recovers)
    CHECK(feed(m, {0.40, 0.90, 0.50, 0.95, 0.60, 1.0}).first == -1);
  }
  {
    DivergenceMonitor m;  // training from scratch: falling
    CHECK(feed(m, {2.3, 1.5, 1.0, 0.8, 0.7}).first == -1);
  }
  {
    DivergenceMonitor m({.window = 2, .rising = 1, .factor = 1.5});  // the rule is a parameter
    CHECK(feed(m, {1.0, 1.6}).first == 1);
  }
}
