// The flows: fusion, quantizer placement on every model, QAT conv+BN against
// conv → BN, PTQ and QAT end to end, quantized checkpoints and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <typeinfo>

#include "core/autograd.h"
#include "core/generator.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "quant/checkpoint.h"
#include "quant/fake_quant_ops.h"
#include "quant/quantize.h"
#include "tests/test_util.h"

using namespace lowbit;
using namespace lowbit::quant;
using lowbit::testing::error_of;

namespace {

nn::ModelConfig gray10() {
  nn::ModelConfig c;
  c.in_channels = 1;
  c.num_classes = 10;
  return c;
}

nn::ModulePtr model(const std::string& name, uint64_t seed = 0) {
  manual_seed(seed);
  nn::ModelConfig c = gray10();
  if (name == "mobilenet_v2") c.width_mult = 0.25f, c.small_input = true;
  return nn::create_model(name, c);
}

// Random running statistics and affine parameters, so folding is tested on
// something other than the identity.
void randomize_bn(nn::Module& m, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard ng;
  for (auto& [n, t] : m.state_dict()) {
    if (t.dtype() != DType::f32) continue;
    const bool var = n.find("running_var") != std::string::npos;
    const bool bn = var || n.find("running_mean") != std::string::npos ||
                    (n.find("bn") != std::string::npos || n.find(".1.") != std::string::npos);
    if (!bn || t.dim() != 1) continue;
    Tensor r = rand({t.numel()}, &gen);
    Tensor(t).copy_(var ? add(r, 0.5f) : sub(r, Tensor::scalar(0.5f)));
  }
}

int64_t count_type(nn::Module& m, const std::type_info& t) {
  int64_t n = 0;
  m.for_each_module([&](const std::string&, nn::Module& x) { n += typeid(x) == t; });
  return n;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double d = 0;
  for (size_t i = 0; i < va.size(); ++i) d = std::max(d, (double)std::fabs(va[i] - vb[i]));
  return d;
}

double max_abs(const Tensor& a) {
  double d = 0;
  for (float v : a.to_vector()) d = std::max(d, (double)std::fabs(v));
  return d;
}

std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lowbit_test_quant_" + name + ".safetensors")).string();
}

Tensor images(int64_t n, int64_t size, uint64_t seed) {
  Generator gen(seed);
  return randn({n, 1, size, size}, &gen);
}

}  // namespace

TEST_CASE("prepare places one quantizer per materialised tensor on every model") {
  for (const auto& name : nn::model_names()) {
    CAPTURE(name);
    auto m = model(name);
    const int64_t convs = count_type(*m, typeid(nn::Conv2d)), linears = count_type(*m, typeid(nn::Linear));
    const int64_t adds = count_type(*m, typeid(nn::Add)), pools = count_type(*m, typeid(nn::AdaptiveAvgPool2d));
    auto q = prepare(m, preset("w8a8"));
    const auto qs = quantizers(*q);
    // weight + output per conv/linear, one per add and average pool, the input
    CHECK((int64_t)qs.size() == 2 * (convs + linears) + adds + pools + 1);
    CHECK(count_type(*q, typeid(nn::Conv2d)) == 0);
    CHECK(count_type(*q, typeid(nn::BatchNorm2d)) == 0);  // folded
    CHECK(count_type(*q, typeid(nn::Add)) == 0);          // all became QuantAdd
    if (name == "resnet20") CHECK(qs.size() == 55);
    if (name == "resnet18") CHECK(qs.size() == 52);
  }
  // The student: 52 convs, 1 linear, 10 residual adds, the pool, the input.
  nn::ModelConfig c = gray10();
  c.width_mult = 0.5f;
  c.small_input = true;
  CHECK(quantizers(*prepare(nn::create_model("mobilenet_v2", c), preset("w8a8"))).size() == 118);
}

TEST_CASE("prepared names follow PyTorch's prepared models") {
  auto q = prepare_qat(model("resnet20"), preset("w8a8"));
  std::set<std::string> keys;
  for (auto& [n, t] : q->state_dict()) keys.insert(n);
  for (const char* k : {"quant.activation_post_process.scale", "conv1.weight", "conv1.bn.running_mean",
                        "conv1.weight_fake_quant.scale", "conv1.weight_fake_quant.zero_point",
                        "conv1.activation_post_process.scale", "layer1.0.add_relu.activation_post_process.zero_point",
                        "layer2.0.downsample.0.bn.weight", "fc.weight", "fc.activation_post_process.scale",
                        "avgpool.activation_post_process.scale"})
    CHECK_MESSAGE(keys.count(k), k);
  CHECK(q->child("layer1")->child("0")->child("conv1")->type_name() == "ConvBnReLU2d");
  CHECK(q->child("layer1")->child("0")->child("conv2")->type_name() == "ConvBn2d");
  CHECK(q->child("layer1")->child("0")->child("add_relu")->type_name() == "QuantAddReLU");
  auto m = prepare_qat(model("mobilenet_v2"), preset("w4a4", "features.0.0", "classifier.1"));
  std::set<std::string> mk;
  for (auto& [n, t] : m->state_dict()) mk.insert(n);
  CHECK(mk.count("features.0.0.weight_fake_quant.scale"));
  CHECK(mk.count("features.1.conv.0.0.bn.running_var"));
  CHECK(mk.count("features.2.conv.2.weight"));
  CHECK(mk.count("features.3.skip_add.activation_post_process.scale"));
  for (auto& [p, qz] : quantizers(*m)) {
    CAPTURE(p);
    const bool eight = p.rfind("features.0.0.", 0) == 0 || p.rfind("classifier.1.", 0) == 0 || p.rfind("quant.", 0) == 0;
    CHECK(qz->spec().bits == (eight ? 8 : 4));
  }
}

TEST_CASE("fuse with BN folded equals conv → BN → ReLU in eval mode") {
  for (const auto& name : {"resnet20", "mobilenet_v2"}) {
    CAPTURE(name);
    auto a = model(name, 1), b = model(name, 1);
    randomize_bn(*a, 7);
    b->load_state_dict(a->state_dict());
    a->eval();
    b->eval();
    fuse(*b, true);
    CHECK(count_type(*b, typeid(nn::BatchNorm2d)) == 0);
    NoGradGuard ng;
    Tensor x = images(4, 16, 2);
    Tensor ya = a->forward(x), yb = b->forward(x);
    CHECK(max_abs_diff(ya, yb) <= 1e-4 * std::max(1.0, max_abs(ya)));
  }
}

// Relative to the reference's largest magnitude.
double rel_diff(const Tensor& a, const Tensor& b) { return max_abs_diff(a, b) / std::max(1e-30, max_abs(a)); }

TEST_CASE("QAT conv+BN with fake quantization off equals conv → BN in training mode (1e-5)") {
  struct Cfg {
    int64_t in, out, k, stride, groups;
    bool bias;
    Activation act;
  };
  for (const Cfg& c : {Cfg{3, 5, 3, 1, 1, false, Activation::relu}, Cfg{4, 4, 3, 2, 4, false, Activation::relu6},
                       Cfg{6, 7, 1, 1, 1, true, Activation::none}}) {
    CAPTURE(c.groups);
    auto make = [&] {
      auto s = std::make_shared<nn::Sequential>();
      s->push_back(std::make_shared<nn::Conv2d>(c.in, c.out, c.k, c.stride, c.k / 2, 1, c.groups, c.bias));
      s->push_back(std::make_shared<nn::BatchNorm2d>(c.out));
      if (c.act == Activation::relu) s->push_back(std::make_shared<nn::ReLU>());
      if (c.act == Activation::relu6) s->push_back(std::make_shared<nn::ReLU6>());
      return s;
    };
    manual_seed(3);
    auto a = make(), b = make();
    randomize_bn(*a, 4);
    b->load_state_dict(a->state_dict());
    auto q = prepare_qat(b, preset("w8a8"));
    for (auto& [p, qz] : quantizers(*q)) qz->enable_fake_quant(false);
    Generator gen(5);
    Tensor xa = randn({4, c.in, 9, 9}, &gen).set_requires_grad(true), xb = xa.detach().clone().set_requires_grad(true);
    Tensor gy;
    for (int step = 0; step < 2; ++step) {  // two steps: running stats move twice
      Tensor ya = a->forward(xa), yb = q->forward(xb);
      CHECK(rel_diff(ya, yb) <= 1e-5);
      gy = randn(ya.shape(), &gen);
      sum(mul(ya, gy)).backward();
      sum(mul(yb, gy)).backward();
    }
    CHECK(rel_diff(xa.grad(), xb.grad()) <= 1e-5);
    auto pa = a->named_parameters(), pb = q->named_parameters();
    std::map<std::string, Tensor> by_name;
    for (auto& [n, t] : pb) by_name[n] = t;
    auto sb = q->state_dict();
    std::map<std::string, Tensor> sbn;
    for (auto& [n, t] : sb) sbn[n] = t;
    // conv "0.weight" keeps its name; BN "1.x" lives at "0.bn.x"
    auto renamed = [](const std::string& n) { return n.rfind("1.", 0) == 0 ? "0.bn." + n.substr(2) : n; };
    double largest = 0;
    for (auto& [n, t] : pa) largest = std::max(largest, max_abs(t.grad()));
    for (auto& [n, t] : pa) {
      CAPTURE(n);
      // A conv bias before training-mode BN has a zero gradient (the batch mean
      // removes it): both sides hold rounding noise of the other gradients' size.
      const Tensor ga = t.grad(), gb = by_name.at(renamed(n)).grad();
      const bool zero_grad = n == "0.bias";
      CHECK(max_abs_diff(ga, gb) <= 1e-5 * (zero_grad ? largest : max_abs(ga)));
    }
    for (auto& [n, t] : a->state_dict()) {
      if (n.find("running") == std::string::npos && n.find("num_batches") == std::string::npos) continue;
      CAPTURE(n);
      CHECK(max_abs_diff(t, sbn.at(renamed(n))) <= 1e-5 * std::max(1.0, max_abs(t)));
    }
  }
}

TEST_CASE("a QAT conv+BN in eval mode is the conv with its folded weight and bias") {
  manual_seed(6);
  auto conv = std::make_shared<nn::Conv2d>(3, 5, 3, 1, 1, 1, 1, true);
  auto bn = std::make_shared<nn::BatchNorm2d>(5);
  auto seq = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{conv, bn, std::make_shared<nn::ReLU6>()});
  randomize_bn(*seq, 8);
  FusedConv2d f(*conv, bn, false, Activation::relu6);
  f.eval();
  Generator gen(9);
  Tensor x = randn({2, 3, 7, 7}, &gen);
  NoGradGuard ng;
  auto [w, b] = f.folded_weight_bias();
  Tensor want = relu6(conv2d(x, w, b, conv->options));
  CHECK(rel_diff(want, f.forward(x)) <= 1e-5);
  seq->eval();
  CHECK(rel_diff(seq->forward(x), want) <= 1e-5);
}

TEST_CASE("QAT ResNet-20 with fake quantization off follows the float model") {
  auto a = model("resnet20", 2), b = model("resnet20", 2);
  b->load_state_dict(a->state_dict());
  auto q = prepare_qat(b, preset("w8a8"));
  for (auto& [p, qz] : quantizers(*q)) qz->enable_fake_quant(false);
  Tensor x = images(6, 12, 3);
  Tensor ya = a->forward(x), yb = q->forward(x);
  CHECK(rel_diff(ya, yb) <= 1e-5);
  sum(mul(ya, ya)).backward();
  sum(mul(yb, yb)).backward();
  // Through 21 conv+BN pairs the folded form's float rounding adds up; 1e-3 still
  // catches a wrong gradient path.
  std::map<std::string, Tensor> gb;
  for (auto& [k, t] : q->named_parameters()) gb[k] = t.grad();
  for (auto& [na, nb] : std::vector<std::pair<std::string, std::string>>{
           {"conv1.weight", "conv1.weight"}, {"bn1.weight", "conv1.bn.weight"},
           {"layer3.0.downsample.1.bias", "layer3.0.downsample.0.bn.bias"}, {"fc.weight", "fc.weight"}}) {
    CAPTURE(na);
    Tensor ga;
    for (auto& [k, t] : a->named_parameters())
      if (k == na) ga = t.grad();
    CHECK(rel_diff(ga, gb.at(nb)) <= 1e-3);
  }
}

TEST_CASE("PTQ end to end: calibrate, freeze; outputs on the grid; checkpoint round trip is exact") {
  auto m = model("resnet20", 4);
  randomize_bn(*m, 11);
  nn::ModulePtr ref = model("resnet20", 4);
  ref->load_state_dict(m->state_dict());
  ref->eval();
  QConfig qc = preset("w8a8");
  auto q = prepare(m, qc);
  {
    NoGradGuard ng;
    for (int i = 0; i < 3; ++i) q->forward(images(8, 16, 20 + i));
  }
  freeze(*q);
  NoGradGuard ng;
  Tensor x = images(5, 16, 30);
  Tensor y = q->forward(x);
  // logits on the fc output grid
  auto* fcq = dynamic_cast<Quantizer*>(q->child("fc")->child("activation_post_process").get());
  const QuantParams qp = fcq->qparams();
  for (float v : y.to_vector()) {
    const double k = v / qp.scale[0];
    CHECK(std::fabs(k - std::nearbyint(k)) < 1e-3);
  }
  // close to the float model (8 bits, random weights: a loose bound)
  Tensor yf = ref->forward(x);
  CHECK(max_abs_diff(y, yf) <= 0.1 * max_abs(yf));
  // quantized checkpoint round trip: same outputs, bit for bit
  QuantInfo info{false, qc, true};
  nn::Metadata md = quant_metadata(info);
  md["model"] = "resnet20";
  nn::save_checkpoint(tmp_path("ptq"), *q, nullptr, md);
  auto back = load_quantized(tmp_path("ptq"), model("resnet20", 99));
  CHECK(back->forward(x).to_vector() == y.to_vector());
  // size: about 4× smaller
  const ModelSize s = model_size(*q);
  CHECK((double)s.float_bytes / (double)s.quantized_bytes > 3.3);
  CHECK((double)s.float_bytes / (double)s.quantized_bytes < 4.0);
  std::remove(tmp_path("ptq").c_str());
}

TEST_CASE("QAT with LSQ (w4a4) trains, freezes, and round-trips through a checkpoint") {
  auto m = model("resnet20", 5);
  QConfig qc = preset("w4a4", "conv1", "fc");
  auto q = prepare_qat(m, qc);
  nn::SGD opt(q->named_parameters(), nn::SGDOptions{.lr = 0.01, .momentum = 0.9});
  Tensor x = images(10, 12, 40);
  std::vector<int32_t> labels(10);
  for (int i = 0; i < 10; ++i) labels[(size_t)i] = i;
  Tensor target = Tensor::from_vector_s32(labels, {10});
  float first = 0, last = 0;
  for (int step = 0; step < 8; ++step) {
    Tensor loss = cross_entropy(q->forward(x), target);
    if (step == 0) first = loss.item();
    last = loss.item();
    opt.zero_grad();
    loss.backward();
    // every LSQ step receives a gradient
    if (step == 0)
      for (auto& [p, qz] : quantizers(*q))
        for (auto& [n, t] : qz->named_parameters()) {
          CAPTURE(p);
          CHECK(t.grad().defined());
        }
    opt.step();
  }
  CHECK(last < first);
  freeze(*q);
  NoGradGuard ng;
  Tensor y = q->forward(x);
  QuantInfo info{true, qc, true};
  nn::Metadata md = quant_metadata(info);
  nn::save_checkpoint(tmp_path("qat"), *q, nullptr, md);
  auto back = load_quantized(tmp_path("qat"), model("resnet20", 77));
  CHECK(back->forward(x).to_vector() == y.to_vector());
  std::remove(tmp_path("qat").c_str());
}

TEST_CASE("per-channel activations: conv and linear outputs per channel, adds and pools per tensor") {
  QConfig qc = preset("w8a8");
  qc.layer.activation.per_channel = true;
  qc.layer.activation.observer = ObserverKind::minmax;
  auto q = prepare(model("resnet20"), qc);
  {
    NoGradGuard ng;
    q->forward(images(3, 12, 1));
  }
  freeze(*q);
  for (auto& [p, qz] : quantizers(*q)) {
    CAPTURE(p);
    const bool layer_output = p.find("activation_post_process") != std::string::npos &&
                              (p.find("conv") != std::string::npos || p.find("downsample") != std::string::npos ||
                               p.rfind("fc.", 0) == 0);
    const QuantParams qp = qz->qparams();
    if (p.find("weight_fake_quant") != std::string::npos) continue;
    if (layer_output) CHECK(qp.scale.size() > 1);
    else CHECK(qp.scale.size() == 1);
  }
  NoGradGuard ng;
  CHECK(q->forward(images(2, 12, 2)).shape() == Shape{2, 10});
}

TEST_CASE("LSQ+ freeze folds the offset into an integer zero point: exact, and the output moves by at most a step") {
  // s = 0.1, β = −0.52: the frozen zero point is round(−β/s) = round(5.2) = 5 on
  // the 4-bit grid [0, 15]; the grid moves by 0.02, so no output moves by more
  // than a step and most by 0.02. (qparams() folds the offset too, so comparing
  // it before and after the freeze proves nothing; the values here are by hand.)
  QSpec s;
  s.bits = 4;
  s.quantizer = QuantizerKind::lsq_plus;
  LsqQuantizer q(s, "x", 1);
  Generator gen(1);
  const Tensor x = sub(mul(rand({1000}, &gen), 1.6f), Tensor::scalar(0.6f));  // [-0.6, 1.0): both clip edges
  {
    NoGradGuard ng;
    q.forward(x);  // initialises; then set s and β by hand
    auto params = q.named_parameters();
    for (auto& [n, t] : params) t.data<float>()[0] = n == "scale" ? 0.1f : -0.52f, t.bump_version();
  }
  const std::vector<float> unfrozen = q.forward(x).to_vector();
  q.freeze();
  const QuantParams after = q.qparams();
  CHECK(after.scale == std::vector<float>{0.1f});
  CHECK(after.zero_point == std::vector<int32_t>{5});
  const std::vector<float> frozen = q.forward(x).to_vector(), xv = x.to_vector();
  int moved_by_shift = 0, off_grid = 0, moved_too_far = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    const float k = frozen[i] / 0.1f + 5;  // on the frozen grid (k − 5)·0.1, k in [0, 15]
    off_grid += std::fabs(k - std::nearbyint(k)) > 1e-4f || k < -1e-4f || k > 15 + 1e-4f;
    moved_too_far += std::fabs(frozen[i] - unfrozen[i]) > 0.1f - 0.02f + 1e-5f;
    moved_by_shift += std::fabs(std::fabs(frozen[i] - unfrozen[i]) - 0.02f) < 1e-5f;
  }
  CHECK(off_grid == 0);
  CHECK(moved_too_far == 0);
  CHECK(moved_by_shift > 800);  // all but those near a rounding edge (≤ 0.02/0.1 of them)
  // And the standard formula with that integer zero point, bit for bit.
  CHECK(frozen == fake_quantize(x, after, 0, 15).to_vector());
}

TEST_CASE("LSQ initial step: the observer's at 8 bits, 2·mean(|x|)/√Qp below; a step pushed below zero is clamped") {
  Generator gen(3);
  Tensor w = randn({4, 3, 3, 3}, &gen);
  auto spec = [](int bits, LsqInit init) {
    QSpec s;
    s.bits = bits;
    s.is_signed = s.symmetric = s.per_channel = true;
    s.quantizer = QuantizerKind::lsq;
    s.lsq_init = init;
    return s;
  };
  auto mean_abs_step = [&](int64_t c, int qp) {
    const auto v = w.to_vector();
    double acc = 0;
    for (int64_t i = 0; i < 27; ++i) acc += std::fabs(v[(size_t)(c * 27 + i)]);
    return (float)(2.0 * acc / 27 / std::sqrt((double)qp));
  };
  for (LsqInit init : {LsqInit::automatic, LsqInit::observer, LsqInit::mean_abs}) {
    CAPTURE(lsq_init_name(init));
    LsqQuantizer q8(spec(8, init), "conv.weight_fake_quant", 4);
    q8.forward(w);
    MinMaxObserver mm(spec(8, init), false);
    mm.observe(w);
    const QuantParams want = mm.calculate_qparams();
    for (int64_t c = 0; c < 4; ++c) {
      if (init == LsqInit::mean_abs) CHECK(q8.qparams().scale[(size_t)c] == doctest::Approx(mean_abs_step(c, 127)).epsilon(1e-5));
      else CHECK(q8.qparams().scale[(size_t)c] == want.scale[(size_t)c]);
    }
    LsqQuantizer q4(spec(4, init), "conv.weight_fake_quant", 4);
    q4.forward(w);
    for (int64_t c = 0; c < 4; ++c) {
      if (init == LsqInit::observer) CHECK(q4.qparams().scale[(size_t)c] > 0);
      else CHECK(q4.qparams().scale[(size_t)c] == doctest::Approx(mean_abs_step(c, 7)).epsilon(1e-5));
    }
  }
  // The initialisation is part of the spec's text form (checkpoints keep it).
  QSpec s = spec(8, LsqInit::mean_abs);
  QConfig c = preset("w8a8");
  c.layer.weight = s;
  CHECK(qconfig_from_string(qconfig_to_string(c)).layer.weight.lsq_init == LsqInit::mean_abs);
  CHECK(error_of([] { parse_lsq_init("max"); }).find("unknown LSQ initialisation 'max'") != std::string::npos);
  // An optimizer step past zero: clamped to fp32 epsilon at the next forward, as PyTorch's learnable fake quant;
  // a NaN step is an error naming the quantizer.
  LsqQuantizer q(spec(4, LsqInit::automatic), "features.3.weight_fake_quant", 4);
  q.forward(w);
  Tensor step = q.named_parameters().at(0).second;  // "scale"
  {
    NoGradGuard ng;
    step.data<float>()[2] = -1e-3f;
  }
  q.forward(w);
  CHECK(q.qparams().scale[2] == std::numeric_limits<float>::epsilon());
  // The collapse is reported once, naming the quantizer, the channel and the value (training loops warn on it).
  const auto collapses = q.take_collapses();
  REQUIRE(collapses.size() == 1);
  CHECK(collapses[0].channel == 2);
  CHECK(collapses[0].step == -1e-3f);
  CHECK(q.take_collapses().empty());
  {
    auto m = model("resnet20");
    auto prepared = prepare_qat(m, preset("w4a4"));
    Generator g2(5);
    prepared->forward(randn({2, 1, 28, 28}, &g2));
    CHECK(collapsed_steps(*prepared).empty());
    Quantizer* wq = nullptr;
    for (auto& [path, qz] : quantizers(*prepared))
      if (path == "layer1.0.conv1.weight_fake_quant") wq = qz;
    REQUIRE(wq != nullptr);
    REQUIRE(wq->spec().per_channel);
    REQUIRE(wq->spec().quantizer == QuantizerKind::lsq);
    NoGradGuard ng;
    wq->named_parameters().at(0).second.data<float>()[1] = -0.5f;
    prepared->forward(randn({2, 1, 28, 28}, &g2));
    const auto lines = collapsed_steps(*prepared);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].quantizer == "layer1.0.conv1.weight_fake_quant");
    CHECK(lines[0].text == "layer1.0.conv1.weight_fake_quant: the LSQ step of channel 1 fell to -0.5 and was clamped to fp32 epsilon");
  }
  {
    // … and at freeze, where the last optimizer step may come after the last forward.
    LsqQuantizer qf(spec(8, LsqInit::automatic), "fc.weight_fake_quant", 4);
    qf.forward(w);
    NoGradGuard ng;
    qf.named_parameters().at(0).second.data<float>()[0] = -0.02f;
    qf.freeze();
    CHECK(qf.qparams().scale[0] == std::numeric_limits<float>::epsilon());
  }
  {
    NoGradGuard ng;
    step.data<float>()[1] = std::nanf("");
  }
  CHECK(error_of([&] { q.forward(w); }).find("features.3.weight_fake_quant: LSQ step nan is not finite") != std::string::npos);
}

TEST_CASE("LSQ step gradient: scaled by 1/sqrt(numel·Qp) of the whole tensor, per channel too (PyTorch's learnable fake quant); a shrinking step below s0 times s/s0") {
  // Per channel, N is the tensor's element count, not the channel's: with the
  // channel's, an 8-bit per-channel weight step moved by its own size within a
  // few SGD steps at lr 0.01 and collapsed to the clamp (the demo's QAT w8a8 row at 10%).
  QSpec s;
  s.bits = 4;
  s.is_signed = s.symmetric = s.per_channel = true;
  s.quantizer = QuantizerKind::lsq;
  LsqQuantizer q(s, "fc.weight_fake_quant", 2);
  const Tensor x = Tensor::from_vector({0.3f, 0.6f, -0.2f, 2.0f, 0.1f, 0.0f}, {2, 3});
  q.forward(x);  // initialises the steps; set them to 0.5 by hand
  Tensor step = q.named_parameters().at(0).second;
  {
    NoGradGuard ng;
    step.data<float>()[0] = step.data<float>()[1] = 0.5f;
  }
  sum(q.forward(x)).backward();
  // v = x/0.5 = [0.6, 1.2, -0.4 | 4, 0.2, 0]; Σ(round(v) − v) = 0.6 and −0.2; Qp = 7, numel = 6.
  // Channel 0: s = 0.5 ≥ s₀ = 2·mean|x|/√7 = 0.27717, the plain scale. Channel 1: s₀ = 2·0.7/√7 =
  // 0.52915 is above 0.5, but its gradient (−0.2) grows the step: the plain scale too.
  const double s0_0 = 2.0 * (1.1 / 3.0) / std::sqrt(7.0);
  const std::vector<float> g = step.grad().to_vector();
  CHECK(g[0] == doctest::Approx(0.6 / std::sqrt(6.0 * 7)).epsilon(1e-5));
  CHECK(g[1] == doctest::Approx(-0.2 / std::sqrt(6.0 * 7)).epsilon(1e-5));

  // A step below s₀ whose gradient shrinks it is scaled by s/s₀: channel 0 at 0.05
  // (s₀ = 0.27717): v = [6, 12, −4], 12 clipped to Qp = 7, Σ = 7 > 0 (descent shrinks the step).
  {
    NoGradGuard ng;
    step.data<float>()[0] = 0.05f;
  }
  step.set_grad(Tensor());
  sum(q.forward(x)).backward();
  const std::vector<float> g2 = step.grad().to_vector();
  CHECK(g2[0] == doctest::Approx(7.0 / std::sqrt(6.0 * 7) * (0.05 / s0_0)).epsilon(1e-4));
  CHECK(g2[1] == doctest::Approx(-0.2 / std::sqrt(6.0 * 7)).epsilon(1e-5));

  // Per tensor over an activation-sized input (more than the 65,536 elements s₀ reads): the factor
  // from a strided sample. |x| = 1 everywhere, so s₀ = 2/√Qp exactly whatever the sample. A step
  // s = 1/(k + f) near s₀/4 puts every ±1/s at fraction ±f: round(v) − v is ∓0.25 (f = 0.25, the
  // sum grows the step: plain scale) or ±0.25 (f = 0.75, it shrinks it: times s/s₀).
  QSpec a;
  a.bits = 8;
  a.quantizer = QuantizerKind::lsq;
  a.lsq_init = LsqInit::mean_abs;
  LsqQuantizer qa(a, "act", 1);
  std::vector<float> big(4 * 8 * 64 * 64);
  for (size_t i = 0; i < big.size(); ++i) big[i] = i % 3 == 0 ? -1.0f : 1.0f;
  const Tensor xa = Tensor::from_vector(big, {4, 8, 64, 64});
  qa.forward(xa);
  Tensor sa = qa.named_parameters().at(0).second;
  const int zpa = (int)qa.qparams().zero_point[0];
  const double qpos = 255 - zpa, n = (double)big.size(), s0 = 2.0 / std::sqrt(qpos);
  for (const double f : {0.25, 0.75}) {
    {
      NoGradGuard ng;
      sa.data<float>()[0] = (float)(1.0 / (std::floor(4.0 / s0) + f));
    }
    sa.set_grad(Tensor());
    const float s_a = sa.data<float>()[0];
    sum(qa.forward(xa)).backward();
    // Every x is inside the grid (1/s ≈ 2·√Qp < Qp − zp and < zp).
    double plain = 0;
    for (float v : big) plain += std::nearbyint(v / s_a) - v / s_a;
    CHECK((f < 0.5 ? plain < 0 : plain > 0));
    const double factor = f < 0.5 ? 1.0 : s_a / s0;
    CHECK(sa.grad().item() == doctest::Approx(plain / std::sqrt(n * qpos) * factor).epsilon(1e-3));
  }
}

TEST_CASE("bad input: clear errors naming the thing") {
  QConfig nine = preset("w8a8");
  nine.layer.weight.bits = 9;
  CHECK(error_of([&] { prepare(model("resnet20"), nine); }).find("9 bits is not supported") != std::string::npos);
  QConfig one = preset("w8a8");
  one.layer.activation.bits = 1;
  CHECK(error_of([&] { prepare(model("resnet20"), one); }).find("1 bits is not supported") != std::string::npos);
  QConfig axis = preset("w8a8");
  axis.layer.weight.axis = 4;
  auto qa = prepare(model("resnet20"), axis);
  CHECK(error_of([&] { qa->forward(images(2, 12, 1)); }).find("conv1.weight_fake_quant: per-channel axis 4 is out of range") !=
        std::string::npos);
  // NaN in calibration data names the module
  auto q = prepare(model("resnet20"), preset("w8a8"));
  Tensor x = images(2, 12, 1);
  x.data<float>()[7] = std::nanf("");
  CHECK(error_of([&] { q->forward(x); }).find("quant.activation_post_process: observed a non-finite value") !=
        std::string::npos);
  // freezing before calibration
  auto q2 = prepare(model("resnet20"), preset("w8a8"));
  CHECK(error_of([&] { freeze(*q2); }).find("no data observed") != std::string::npos);
  // a quantized checkpoint loaded into another model names a key
  auto q3 = prepare(model("resnet20"), preset("w8a8"));
  {
    NoGradGuard ng;
    q3->forward(images(4, 12, 3));
  }
  freeze(*q3);
  nn::save_checkpoint(tmp_path("bad"), *q3, nullptr, quant_metadata({false, preset("w8a8"), true}));
  const std::string e = error_of([&] { load_quantized(tmp_path("bad"), model("resnet32")); });
  CHECK(e.find(tmp_path("bad")) != std::string::npos);
  CHECK(e.find("layer1.3.conv1.weight") != std::string::npos);
  // a float checkpoint where a quantized one is required
  nn::save_checkpoint(tmp_path("float"), *model("resnet20"), nullptr, {});
  CHECK(error_of([&] { load_quantized(tmp_path("float"), model("resnet20")); }).find("is a float checkpoint") !=
        std::string::npos);
  std::remove(tmp_path("bad").c_str());
  std::remove(tmp_path("float").c_str());
}
