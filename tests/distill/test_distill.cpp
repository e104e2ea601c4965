// distill/: the losses against PyTorch 1.13 (tests/fixtures/distill.safetensors,
// tools/make_distill_fixtures.py: value and gradient within 1e-5 relative) and
// finite differences; feature taps (nn/taps.h) on float, fused and QAT models;
// the Distiller's frozen teacher, its α = 0 equivalence with plain training, and its
// loss against the terms summed by hand (T, α, label smoothing, hint and attention weights).
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "core/autograd.h"
#include "core/safetensors.h"
#include "distill/distiller.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/taps.h"
#include "quant/quantize.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

using namespace lowbit;
using namespace lowbit::distill;

namespace {

const SafetensorsFile& fixture() {
  static const SafetensorsFile f = load_safetensors(LOWBIT_FIXTURES_DIR "/distill.safetensors");
  return f;
}

using testing::split;

// max |a − b| ≤ tol · max(|b|, tiny)
bool close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  if (a.size() != b.size()) return false;
  double worst = 0, scale = 1e-12;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, (double)std::abs(a[i] - b[i]));
    scale = std::max(scale, (double)std::abs(b[i]));
  }
  return worst <= tol * scale;
}

nn::ModelConfig gray10() {
  nn::ModelConfig c;
  c.in_channels = 1;
  c.num_classes = 10;
  return c;
}

nn::ModulePtr small_mbv2(uint64_t seed) {
  nn::ModelConfig c = gray10();
  c.width_mult = 0.25f;
  c.small_input = true;
  manual_seed(seed);
  return nn::create_model("mobilenet_v2", c);
}

Tensor images(int64_t n, uint64_t seed) {
  Generator g(seed);
  return randn({n, 1, 28, 28}, &g);
}

Tensor labels(int64_t n, uint64_t seed, int64_t classes = 10) {
  std::vector<int32_t> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) v[(size_t)i] = (int32_t)((i * 7 + (int64_t)seed) % classes);
  return Tensor::from_vector_s32(v, {n});
}

std::vector<std::vector<float>> all_state(nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (auto& [n, t] : m.state_dict()) out.push_back(t.to(DType::f32).to_vector());
  return out;
}

}  // namespace

TEST_CASE("distill: logit KD loss and gradient match PyTorch") {
  const auto& f = fixture();
  int n = 0;
  for (const std::string& c : split(f.metadata.at("cases"))) {
    if (c.rfind("kd.", 0) != 0) continue;
    const auto p = split(f.metadata.at(c));
    const float T = std::stof(p[0]), alpha = std::stof(p[1]), ls = std::stof(p[2]);
    Tensor s = f.get(c + ".s").clone().set_requires_grad();
    Tensor loss = soft_target_loss(s, f.get(c + ".t"), f.get(c + ".y"), T, alpha, ls);
    loss.backward();
    INFO(c, " T=", T, " alpha=", alpha);
    CHECK(close(loss.to_vector(), f.get(c + ".loss").to_vector(), 1e-5));
    CHECK(close(s.grad().to_vector(), f.get(c + ".ds").to_vector(), 1e-5));
    ++n;
  }
  CHECK(n == 7);
}

TEST_CASE("distill: attention transfer loss and gradient match PyTorch (same and different spatial sizes)") {
  const auto& f = fixture();
  int n = 0;
  for (const std::string& c : split(f.metadata.at("cases"))) {
    if (c.rfind("at.", 0) != 0) continue;
    const float p = std::stof(f.metadata.at(c));
    Tensor s = f.get(c + ".s").clone().set_requires_grad();
    Tensor loss = attention_loss(s, f.get(c + ".t"), p);
    loss.backward();
    INFO(c, " p=", p);
    CHECK(close(loss.to_vector(), f.get(c + ".loss").to_vector(), 1e-5));
    CHECK(close(s.grad().to_vector(), f.get(c + ".ds").to_vector(), 1e-4));
    ++n;
  }
  CHECK(n == 5);
}

TEST_CASE("distill: finite-difference gradients of every loss") {
  using testing::gradcheck;
  const Tensor t = testing::distinct_values({4, 6}, 3, 0.3f), y = labels(4, 1, 6);
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return kd_loss(in[0], t, 3.0f); },
                  {testing::distinct_values({4, 6}, 1, 0.3f)}) == "");
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return soft_target_loss(in[0], t, y, 2.0f, 0.6f, 0.1f); },
                  {testing::distinct_values({4, 6}, 2, 0.3f)}) == "");
  // Attention: a teacher map of another size (pooled), p = 2 and 3 (away from 0 for |x|^p).
  const Tensor ft = testing::randn_away({2, 3, 4, 4}, 5, {0.0f}, 0.2f);
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return attention_loss(in[0], ft, 2.0f) * 100.0f; },
                  {testing::randn_away({2, 5, 8, 8}, 6, {0.0f}, 0.2f)}) == "");
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return attention_loss(in[0], ft, 3.0f) * 100.0f; },
                  {testing::randn_away({2, 2, 4, 4}, 7, {0.0f}, 0.2f)}) == "");
  // Hint: through the adapter's 1×1 conv and BN (training mode), student 6 → teacher 3 channels, pooled 8×8 → 4×4.
  manual_seed(1);
  HintAdapter adapter(6, 3);
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return hint_loss(adapter, in[0], ft); },
                  {testing::randn_away({2, 6, 8, 8}, 8, {0.0f}, 0.1f)}) == "");
}

TEST_CASE("taps: names, refusals, and the same tensor in the float, fused and QAT forms") {
  manual_seed(4);
  nn::ModulePtr m = nn::create_model("resnet20", gray10());
  const auto names = nn::tap_names(*m);
  CHECK(std::find(names.begin(), names.end(), "layer2") != names.end());
  CHECK(std::find(names.begin(), names.end(), "layer1.0") != names.end());
  CHECK(std::find(names.begin(), names.end(), "layer1.0.conv1") == names.end());  // a chain member
  CHECK_THROWS_WITH_AS(nn::TapScope(*m, {"layer9"}), doctest::Contains("no module 'layer9' to tap in ResNet (valid: layer1, "),
                       Error);
  CHECK_THROWS_WITH_AS(nn::TapScope(*m, {"layer1.0.bn1"}), doctest::Contains("inside a conv → BN → activation chain"),
                       Error);
  // Float in eval mode vs BN folded (quant::fuse): the block outputs agree.
  const Tensor x = images(2, 3);
  NoGradGuard ng;
  m->eval();
  Tensor a;
  {
    nn::TapScope taps(*m, {"layer2", "layer3.2"});
    m->forward(x);
    a = taps.get("layer2");
    CHECK(a.shape() == Shape{2, 32, 14, 14});
    CHECK(taps.get("layer3.2").shape() == Shape{2, 64, 7, 7});
  }
  quant::fuse(*m, true);
  {
    nn::TapScope taps(*m, {"layer2"});
    m->forward(x);
    const std::vector<float> fa = taps.get("layer2").to_vector(), fl = a.to_vector();
    CHECK(close(fa, fl, 1e-5));  // BN folded into the conv: rounding apart
  }
  // A QAT-prepared student: the tap reads inside QuantModel's model.
  nn::ModulePtr s = small_mbv2(2);
  auto q = quant::prepare_qat(s, quant::preset("w8a8"));
  q->train();
  q->forward(x);  // observers see one batch
  q->eval();
  quant::enable_observers(*q, false);
  nn::TapScope taps(tap_root(*q), {"features.5", "features.6"});
  q->forward(x);
  // The tap is the block's own (fake-quantized) output: running the block on
  // the previous tap gives it again, bit for bit.
  const Tensor again = tap_root(*q).child("features")->child("6")->forward(taps.get("features.5"));
  CHECK(taps.get("features.6").dim() == 4);
  CHECK(again.to_vector() == taps.get("features.6").to_vector());
}

TEST_CASE("distiller: the teacher stays frozen (parameters and running stats bit-identical)") {
  manual_seed(5);
  nn::ModulePtr teacher = nn::create_model("resnet20", gray10());
  const auto before = all_state(*teacher);
  DistillConfig cfg;
  cfg.hints = {{"layer3", "features.13"}};
  cfg.attention = {{"layer2", "features.6"}};
  Distiller d(teacher, cfg);
  nn::ModulePtr student = small_mbv2(6);
  d.prepare(*student, Tensor::zeros({2, 1, 28, 28}));
  REQUIRE(d.adapters()->named_children().size() == 1);
  auto params = student->named_parameters();
  for (auto& [n, t] : d.adapters()->named_parameters()) params.emplace_back("aux." + n, t);
  nn::SGD opt(nn::no_decay_groups(params, 5e-4), {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  student->train();
  d.adapters()->train();
  const auto adapter_before = all_state(*d.adapters());
  for (int i = 0; i < 3; ++i) {
    auto s = d.step(*student, images(8, 10 + i), labels(8, i));
    opt.zero_grad();
    s.loss.backward();
    opt.step();
  }
  CHECK(all_state(*teacher) == before);
  CHECK_FALSE(teacher->is_training());
  CHECK(all_state(*d.adapters()) != adapter_before);  // the adapters learn
}

TEST_CASE("distiller: with alpha = 0 the student trains exactly as plain training") {
  auto run = [](bool distill) {
    nn::ModulePtr student = small_mbv2(11);
    std::unique_ptr<Distiller> d;
    if (distill) {
      manual_seed(99);  // the teacher's own initialization…
      nn::ModulePtr teacher = nn::create_model("resnet20", gray10());
      manual_seed(11);  // …then the same generator position as the plain run
      small_mbv2(11);
      DistillConfig cfg;
      cfg.alpha = 0;
      d = std::make_unique<Distiller>(teacher, cfg);
      d->prepare(*student, Tensor::zeros({2, 1, 28, 28}));
    }
    nn::SGD opt(nn::no_decay_groups(student->named_parameters(), 5e-4),
                {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
    student->train();
    for (int i = 0; i < 3; ++i) {
      const Tensor x = images(8, 20 + i), y = labels(8, i);
      Tensor loss = distill ? d->step(*student, x, y).loss : cross_entropy(student->forward(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    return all_state(*student);
  };
  CHECK(run(true) == run(false));
}

namespace {
// The loss terms by hand, in double, from the logits and tapped features.
double kd_by_hand(const Tensor& zs, const Tensor& zt, double T) {
  const int64_t n = zs.shape()[0], c = zs.shape()[1];
  const std::vector<float> s = zs.to_vector(), t = zt.to_vector();
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double ms = -1e300, mt = -1e300, ss = 0, st = 0;
    for (int64_t j = 0; j < c; ++j) ms = std::max(ms, s[i * c + j] / T), mt = std::max(mt, t[i * c + j] / T);
    for (int64_t j = 0; j < c; ++j) ss += std::exp(s[i * c + j] / T - ms), st += std::exp(t[i * c + j] / T - mt);
    for (int64_t j = 0; j < c; ++j) {
      const double log_ps = s[i * c + j] / T - ms - std::log(ss), log_pt = t[i * c + j] / T - mt - std::log(st);
      total += std::exp(log_pt) * (log_pt - log_ps);
    }
  }
  return total / n * T * T;  // KL(p_t ‖ p_s), batch mean, times T²
}

double ce_by_hand(const Tensor& zs, const Tensor& labels, double smoothing) {
  const int64_t n = zs.shape()[0], c = zs.shape()[1];
  const std::vector<float> s = zs.to_vector(), y = labels.to(DType::f32).to_vector();
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double m = -1e300, sum = 0;
    for (int64_t j = 0; j < c; ++j) m = std::max(m, (double)s[i * c + j]);
    for (int64_t j = 0; j < c; ++j) sum += std::exp(s[i * c + j] - m);
    for (int64_t j = 0; j < c; ++j) {
      const double q = (j == (int64_t)y[i] ? 1 - smoothing : 0) + smoothing / c;
      total -= q * (s[i * c + j] - m - std::log(sum));
    }
  }
  return total / n;
}

// N×C×H×W → N×C×h×w by PyTorch's adaptive average pooling windows.
std::vector<double> pool_by_hand(const std::vector<double>& a, int64_t n, int64_t c, int64_t H, int64_t W, int64_t h,
                                 int64_t w) {
  std::vector<double> out((size_t)(n * c * h * w));
  for (int64_t p = 0; p < n * c; ++p)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        const int64_t y0 = i * H / h, y1 = ((i + 1) * H + h - 1) / h, x0 = j * W / w, x1 = ((j + 1) * W + w - 1) / w;
        double acc = 0;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) acc += a[(size_t)((p * H + y) * W + x)];
        out[(size_t)((p * h + i) * w + j)] = acc / (double)((y1 - y0) * (x1 - x0));
      }
  return out;
}

std::vector<double> doubles(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return {v.begin(), v.end()};
}

// mean((a − b)²) with the larger map pooled to the smaller's size.
double mse_pooled_by_hand(const Tensor& a, const Tensor& b) {
  const Shape sa = a.shape(), sb = b.shape();
  std::vector<double> va = doubles(a), vb = doubles(b);
  if (sa[2] * sa[3] > sb[2] * sb[3]) va = pool_by_hand(va, sa[0], sa[1], sa[2], sa[3], sb[2], sb[3]);
  else if (sa[2] * sa[3] < sb[2] * sb[3]) vb = pool_by_hand(vb, sb[0], sb[1], sb[2], sb[3], sa[2], sa[3]);
  REQUIRE(va.size() == vb.size());
  double acc = 0;
  for (size_t i = 0; i < va.size(); ++i) acc += (va[i] - vb[i]) * (va[i] - vb[i]);
  return acc / (double)va.size();
}

// Zagoruyko & Komodakis: mean_c |f|^p per position, each sample's map L2-normalised; mean squared difference.
double attention_by_hand(const Tensor& fs, const Tensor& ft, double p) {
  auto energy = [p](const Tensor& f, int64_t& h, int64_t& w) {
    const Shape s = f.shape();
    h = s[2], w = s[3];
    const std::vector<float> v = f.to_vector();
    std::vector<double> e((size_t)(s[0] * h * w), 0.0);
    for (int64_t n = 0; n < s[0]; ++n)
      for (int64_t c = 0; c < s[1]; ++c)
        for (int64_t i = 0; i < h * w; ++i) e[(size_t)(n * h * w + i)] += std::pow(std::fabs(v[(size_t)((n * s[1] + c) * h * w + i)]), p) / (double)s[1];
    return e;
  };
  int64_t hs, ws, ht, wt;
  std::vector<double> es = energy(fs, hs, ws), et = energy(ft, ht, wt);
  const int64_t n = fs.shape()[0];
  if (hs * ws > ht * wt) es = pool_by_hand(es, n, 1, hs, ws, ht, wt), hs = ht, ws = wt;
  else if (hs * ws < ht * wt) et = pool_by_hand(et, n, 1, ht, wt, hs, ws);
  const int64_t m = hs * ws;
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    double ns = 0, nt = 0;
    for (int64_t j = 0; j < m; ++j) ns += es[(size_t)(i * m + j)] * es[(size_t)(i * m + j)], nt += et[(size_t)(i * m + j)] * et[(size_t)(i * m + j)];
    for (int64_t j = 0; j < m; ++j) {
      const double d = es[(size_t)(i * m + j)] / std::sqrt(ns) - et[(size_t)(i * m + j)] / std::sqrt(nt);
      acc += d * d;
    }
  }
  return acc / (double)(n * m);
}
}  // namespace

TEST_CASE("distiller: step's loss is its terms summed by hand (T = 2, alpha = 0.7, label smoothing, hint and attention weights)") {
  manual_seed(31);
  nn::ModulePtr teacher = nn::create_model("resnet20", gray10());
  DistillConfig cfg;
  cfg.temperature = 2.0f;
  cfg.alpha = 0.7f;
  cfg.label_smoothing = 0.1f;
  cfg.hint_weight = 0.3f;
  cfg.attention_weight = 40.0f;  // β: the loss adds β/2 · attention_loss
  cfg.attention_p = 2.0f;
  cfg.hints = {{"layer3", "features.13"}};
  cfg.attention = {{"layer2", "features.6"}};
  Distiller d(teacher, cfg);
  nn::ModulePtr student = small_mbv2(32);
  d.prepare(*student, Tensor::zeros({2, 1, 28, 28}));
  student->eval();  // BN on running statistics: the same forward twice
  d.adapters()->eval();
  const Tensor x = images(6, 33), y = labels(6, 3);
  const double loss = d.step(*student, x, y).loss.item();

  NoGradGuard ng;
  Tensor zt, zs, ht, at, hs, as;
  {
    nn::TapScope taps(*teacher, {"layer3", "layer2"});
    zt = teacher->forward(x), ht = taps.get("layer3"), at = taps.get("layer2");
  }
  {
    nn::TapScope taps(*student, {"features.13", "features.6"});
    zs = student->forward(x), hs = taps.get("features.13"), as = taps.get("features.6");
  }
  const Tensor adapted = d.adapters()->child("hint0")->forward(hs);
  const double kd = kd_by_hand(zs, zt, 2.0), ce = ce_by_hand(zs, y, 0.1), hint = mse_pooled_by_hand(adapted, ht),
               att = attention_by_hand(as, at, 2.0);
  const double want = 0.7 * kd + 0.3 * ce + 0.3 * hint + 40.0 / 2 * att;
  INFO("kd=", kd, " ce=", ce, " hint=", hint, " attention=", att, " loss=", loss, " by hand=", want);
  CHECK(std::fabs(loss - want) <= 1e-5 * want);
  // Each term weighs enough that a wrong weight (α and 1 − α swapped, T² left
  // out, the hint weight or β/2's half dropped) would miss the tolerance by far.
  for (const double wrong : {0.3 * kd + 0.7 * ce + 0.3 * hint + 20 * att, 0.7 * kd / 4 + 0.3 * ce + 0.3 * hint + 20 * att,
                             0.7 * kd + 0.3 * ce + hint + 20 * att, 0.7 * kd + 0.3 * ce + 0.3 * hint + 40 * att})
    CHECK(std::fabs(wrong - want) > 1e-3 * want);
}

TEST_CASE("distiller: bad configurations are refused with the reason") {
  nn::ModulePtr teacher = nn::create_model("resnet20", gray10());
  DistillConfig c;
  c.temperature = 0;
  CHECK_THROWS_WITH_AS(Distiller(teacher, c), doctest::Contains("temperature must be positive"), Error);
  c = {};
  c.alpha = 1.5f;
  CHECK_THROWS_WITH_AS(Distiller(teacher, c), doctest::Contains("alpha must be in [0, 1]"), Error);
  CHECK_THROWS_WITH_AS(parse_tap_pair("layer2", "--hint"), doctest::Contains("--hint takes TEACHER_MODULE:STUDENT_MODULE"),
                       Error);
  // Class counts.
  nn::ModelConfig c12 = gray10();
  c12.num_classes = 12;
  Distiller d(teacher, {});
  nn::ModulePtr student = nn::create_model("resnet20", c12);
  CHECK_THROWS_WITH_AS(d.prepare(*student, Tensor::zeros({1, 1, 28, 28})), doctest::Contains("the teacher gives 10 classes, the student 12"),
                       Error);
  // A student tap that does not exist lists the student's names.
  c = {};
  c.attention = {{"layer2", "features.99"}};
  Distiller d2(teacher, c);
  nn::ModulePtr mb = small_mbv2(1);
  CHECK_THROWS_WITH_AS(d2.prepare(*mb, Tensor::zeros({1, 1, 28, 28})),
                       doctest::Contains("no module 'features.99' to tap in MobileNetV2 (valid: features, features.0"), Error);
}
