// The int8 engine against the frozen simulation: every model in nn/ and a
// user-defined one convert; the integer model's output equals the
// simulation's bit for bit on every kernel path this machine has; the file
// round-trips and refuses damaged input with one clear line.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/autograd.h"
#include "core/generator.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "quant/analyze.h"
#include "quant/checkpoint.h"
#include "quant/convert.h"
#include "quant/engine/model.h"
#include "quant/engine/runner.h"
#include "tests/quant/engine_paths.h"
#include "quant/integer.h"
#include "quant/quantize.h"
#include "nn/taps.h"
#include "tests/skip.h"
#include "tests/test_util.h"

using namespace lowbit;
using namespace lowbit::quant;
using lowbit::testing::error_of;

namespace {

Tensor images(int64_t n, int64_t c, int64_t size, uint64_t seed) {
  Generator gen(seed);
  return randn({n, c, size, size}, &gen);
}

// Random BN statistics and affine parameters (folding then does something).
void randomize_bn(nn::Module& m, uint64_t seed) {
  Generator gen(seed);
  NoGradGuard ng;
  m.for_each_module([&](const std::string&, nn::Module& x) {
    if (!dynamic_cast<nn::BatchNorm2d*>(&x)) return;
    for (auto& [n, t] : x.state_dict()) {
      if (t.dtype() != DType::f32) continue;
      Tensor r = rand({t.numel()}, &gen);
      Tensor(t).copy_(n == "running_var" || n == "weight" ? add(r, 0.5f) : sub(r, Tensor::scalar(0.5f)));
    }
  });
}

// A model a user wrote: grouped and dilated conv + BN + ReLU6, a depthwise
// conv, max pooling with ceil_mode, a residual add with ReLU, then a flatten
// of a spatial map into two linear layers (the first with ReLU).
class UserNet : public nn::Module {
 public:
  UserNet() {
    register_module("stem", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                                std::make_shared<nn::Conv2d>(2, 8, 3, 1, 2, 2, 2, false),
                                std::make_shared<nn::BatchNorm2d>(8), std::make_shared<nn::ReLU6>()}));
    register_module("pool", std::make_shared<nn::MaxPool2d>(3, 2, 1, true));
    register_module("dw", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                              std::make_shared<nn::Conv2d>(8, 8, 3, 1, 1, 1, 8, false),
                              std::make_shared<nn::BatchNorm2d>(8), std::make_shared<nn::ReLU>()}));
    register_module("add", std::make_shared<nn::Add>(Activation::relu));
    register_module("fc1", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                               std::make_shared<nn::Linear>(8 * 5 * 5, 16), std::make_shared<nn::ReLU>()}));
    register_module("fc2", std::make_shared<nn::Linear>(16, 5));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = child("pool")->forward(child("stem")->forward(x));
    auto* add = static_cast<nn::Add*>(child("add").get());
    h = add->forward(child("dw")->forward(h), h);
    return child("fc2")->forward(child("fc1")->forward(flatten(h, 1)));
  }
  std::string type_name() const override { return "UserNet"; }
};

struct Case {
  std::string name;
  nn::ModulePtr model;
  int64_t channels, size;
};

Case make_case(const std::string& name, uint64_t seed) {
  manual_seed(seed);
  if (name == "usernet") return {name, std::make_shared<UserNet>(), 2, 9};
  nn::ModelConfig c;
  c.in_channels = 1;
  c.num_classes = 10;
  if (name == "mobilenet_v2") c.width_mult = 0.25f, c.small_input = true;
  const bool imagenet = name == "resnet18" || name == "resnet34" || name == "resnet50";
  return {name, nn::create_model(name, c), 1, imagenet ? 32 : 16};
}

// PTQ (calibrated on random images) and frozen.
std::shared_ptr<QuantModel> quantized(Case& k, const std::string& preset_name) {
  randomize_bn(*k.model, 7);
  const auto [first, last] = first_and_last_layer(*k.model);
  auto q = prepare(k.model, preset(preset_name, first, last));
  {
    NoGradGuard ng;
    for (int i = 0; i < 2; ++i) q->forward(images(4, k.channels, k.size, 100 + i));
  }
  freeze(*q);
  return q;
}

// The engine on one path against the simulation: logits bit-identical.
void check_paths(QuantModel& q, const engine::Model& m, const Tensor& x, const std::string& what) {
  NoGradGuard ng;
  testing::check_engine_on_every_path(m, x, q.forward(x).to_vector(), what);
}

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lowbit_test_engine_" + name)).string();
}

}  // namespace

TEST_CASE("every model converts, and the engine equals the frozen simulation bit for bit on every path") {
  for (const std::string name : {"usernet", "resnet20", "resnet32", "resnet44", "resnet56", "resnet18", "resnet34",
                                 "resnet50", "mobilenet_v2"}) {
    Case k = make_case(name, 3);
    auto q = quantized(k, "w8a8");
    const engine::Model m = convert(*q, images(1, k.channels, k.size, 1));
    CHECK(m.num_classes() == (name == "usernet" ? 5 : 10));
    check_paths(*q, m, images(3, k.channels, k.size, 55), name);
  }
}

TEST_CASE("sub-8-bit grids, per-tensor weights and QAT conv+BN convert exactly too") {
  {
    Case k = make_case("resnet20", 5);
    auto q = quantized(k, "w4a4");
    check_paths(*q, convert(*q, images(1, 1, 16, 1)), images(3, 1, 16, 56), "resnet20 w4a4");
  }
  {
    Case k = make_case("usernet", 6);
    auto q = quantized(k, "w8a8-per-tensor");
    check_paths(*q, convert(*q, images(1, 2, 9, 1)), images(3, 2, 9, 57), "usernet per-tensor");
  }
  {
    // QAT: BN kept in the fused conv, a few training steps, then frozen.
    Case k = make_case("mobilenet_v2", 8);
    randomize_bn(*k.model, 9);
    auto q = prepare_qat(k.model, preset("w8a8"));
    for (int i = 0; i < 2; ++i) q->forward(images(4, 1, 16, 200 + i));
    freeze(*q);
    check_paths(*q, convert(*q, images(1, 1, 16, 1)), images(3, 1, 16, 58), "mobilenet_v2 qat");
  }
}

TEST_CASE("LSQ+ through QAT, freeze and convert: learned offsets become integer zero points, the engine equals the simulation") {
  Case k = make_case("resnet20", 21);
  randomize_bn(*k.model, 22);
  QConfig qc = preset("w4a4", "conv1", "fc");
  set_quantizer(qc, QuantizerKind::lsq_plus);
  auto q = prepare_qat(k.model, qc);
  nn::SGD opt(q->named_parameters(), nn::SGDOptions{.lr = 0.02, .momentum = 0.9});
  std::vector<int32_t> labels(4);
  for (int i = 0; i < 4; ++i) labels[(size_t)i] = i;
  for (int step = 0; step < 4; ++step) {
    Tensor loss = cross_entropy(q->forward(images(4, 1, 16, 300 + step)), Tensor::from_vector_s32(labels, {4}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  freeze(*q);
  int offsets = 0, nonzero_zp = 0;
  for (auto& [p, qz] : quantizers(*q)) {
    if (qz->type_name() != "LsqPlusQuantizer") continue;
    ++offsets;
    nonzero_zp += qz->qparams().zero_point[0] != 0;
  }
  CHECK(offsets > 10);
  CHECK(nonzero_zp > 0);  // the offsets were folded into zero points the engine must honour
  check_paths(*q, convert(*q, images(1, 1, 16, 1)), images(3, 1, 16, 59), "resnet20 w4a4 lsq+");
}

TEST_CASE("freeze: each layer's integer form is computed once and kept; a state loaded anew recomputes it") {
  Case k = make_case("resnet20", 13);
  auto q = quantized(k, "w8a8");
  NoGradGuard ng;
  q->eval();
  auto* conv = dynamic_cast<FusedConv2d*>(q->model()->child("conv1").get());
  REQUIRE(conv);
  CHECK(!conv->integer.on);  // nothing recorded before the first frozen forward
  const Tensor x = images(2, 1, 16, 81);
  const std::vector<float> first = q->forward(x).to_vector();
  REQUIRE(conv->integer.on);
  REQUIRE(conv->integer.layer);
  const LayerForm* form = conv->integer.layer.get();
  // The form is what convert writes for that layer.
  const engine::Model m = convert(*q, images(1, 1, 16, 1));
  bool found = false;
  for (const engine::Op& op : m.ops) {
    if (op.name != "conv1") continue;
    found = true;
    CHECK(op.layer.weight == form->layer.weight);
    CHECK(op.layer.bias == form->layer.bias);
  }
  CHECK(found);
  CHECK(conv->integer.layer.get() == form);  // convert reused it (same input grid): no rebuild
  // Changing a weight behind the version counter's back does not reach the
  // kept form (the forward does not rebuild it)…
  Tensor w;
  for (auto& [n, t] : conv->named_parameters())
    if (n == "weight") w = t;
  const float w0 = w.data<float>()[0];
  w.data<float>()[0] = w0 + 50.0f;
  CHECK(q->forward(x).to_vector() == first);
  CHECK(conv->integer.layer.get() == form);
  // …a write that bumps it (load_state_dict, copy_) does: the form is recomputed.
  w.bump_version();
  CHECK(q->forward(x).to_vector() != first);
  CHECK(conv->integer.layer.get() != form);
  w.data<float>()[0] = w0;
  w.bump_version();
  CHECK(q->forward(x).to_vector() == first);
  // Unfrozen, the forms are gone and the float path runs.
  q->set_frozen(false);
  CHECK(!conv->integer.on);
  q->set_frozen(true);
}

TEST_CASE("the frozen simulation stays within a few output steps of the float fake-quant path") {
  Case k = make_case("resnet20", 10);
  auto q = quantized(k, "w8a8");
  NoGradGuard ng;
  const Tensor x = images(4, 1, 16, 77);
  const std::vector<float> exact = q->forward(x).to_vector();
  q->set_frozen(false);  // the fake-quant float path with the same qparams
  const std::vector<float> approx = q->forward(x).to_vector();
  q->set_frozen(true);
  const float step = grid_of(*static_cast<Quantizer*>(q->child("fc")->child("activation_post_process").get())).scale;
  double worst = 0;
  for (size_t i = 0; i < exact.size(); ++i) worst = std::max(worst, (double)std::fabs(exact[i] - approx[i]) / step);
  CHECK(worst <= 4.0);
}

TEST_CASE("a channel whose weight step dwarfs its output step keeps its bias: the frozen model equals the fake-quant one") {
  // conv1's channel 1 is dead (BN shifts it to −5, ReLU6 makes it 0); the
  // depthwise conv2 folds a BN whose running variance is ~0 on that channel
  // (weights ×300), so its 4-bit weight step is far above the output step
  // and the channel's output is its bias alone, 0.66. With the bias on
  // s_in·s_w that rounded to 0 (the whole channel off by 2 output steps);
  // the channel now computes with the same weights on a finer step.
  using namespace nn;
  manual_seed(12);
  auto c1 = std::make_shared<Conv2d>(1, 2, 3, 1, 1);
  auto b1 = std::make_shared<BatchNorm2d>(2);
  auto c2 = std::make_shared<Conv2d>(2, 2, 3, 1, 1, 1, /*groups=*/2, /*bias=*/false);
  auto b2 = std::make_shared<BatchNorm2d>(2);
  auto net = std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      c1, b1, std::make_shared<ReLU6>(), c2, b2, std::make_shared<ReLU6>(), std::make_shared<Flatten>(),
      std::make_shared<Linear>(2 * 36, 3)});
  {
    NoGradGuard ng;
    for (auto& [n, t] : b1->state_dict())
      if (n == "bias") t.data<float>()[1] = -5.0f;
    for (auto& [n, t] : b2->state_dict()) {
      if (n == "running_var") t.data<float>()[1] = 1e-9f;
      if (n == "running_mean") t.data<float>()[1] = 0.0f;
      if (n == "bias") t.data<float>()[1] = 0.66f;
    }
  }
  auto q = prepare(net, preset("w4a4"));
  {
    NoGradGuard ng;
    for (int i = 0; i < 2; ++i) q->forward(images(8, 1, 6, 300 + i));
  }
  freeze(*q);
  const Tensor x = images(4, 1, 6, 310);
  const std::string conv2 = "3";
  std::vector<float> frozen, fake;
  {
    NoGradGuard ng;
    TapScope taps(*q->model(), {conv2}, true);
    q->forward(x);
    frozen = taps.get(conv2).to_vector();
    q->set_frozen(false);
    q->forward(x);
    fake = taps.get(conv2).to_vector();
    q->set_frozen(true);
  }
  auto* fused = dynamic_cast<FusedConv2d*>(q->model()->child(conv2).get());
  REQUIRE(fused);
  const float step = grid_of(*fused->output_quantizer()).scale;
  CHECK(fused->weight_quantizer()->qparams().scale[1] > 100 * step);  // the pathological step is there
  for (size_t i = 36; i < 72; ++i) {  // image 0, channel 1: the bias alone, 0.66 on the output grid
    CHECK_MESSAGE(frozen[i] == fake[i], i);
    CHECK_MESSAGE(std::fabs(frozen[i] - 0.66f) <= 0.5f * step + 1e-6f, i);
  }
  int64_t differ = 0;
  for (size_t i = 0; i < frozen.size(); ++i) differ += std::fabs(frozen[i] - fake[i]) > 0.5f * step;
  CHECK(differ == 0);
  check_paths(*q, convert(*q, images(1, 1, 6, 1)), x, "coarse channel");
}

TEST_CASE("int8 file: round trip is exact; damaged files are refused with one line naming the file") {
  Case k = make_case("resnet20", 11);
  auto q = quantized(k, "w8a8");
  engine::Model m = convert(*q, images(1, 1, 16, 1));
  m.info["model"] = "resnet20";
  const std::string path = tmp("r20.int8.safetensors");
  engine::save(path, m);
  engine::Model back = engine::load(path);
  CHECK(back.info.at("model") == "resnet20");
  const Tensor x = images(2, 1, 16, 12);
  CHECK(engine::Runner(m).run(x).to_vector() == engine::Runner(back).run(x).to_vector());

  // The int8 file is about a quarter of the float parameters.
  CHECK((double)engine::model_bytes(m) < 0.3 * 4.0 * (double)k.model->num_parameters());

  const SafetensorsFile f = load_safetensors(path);
  auto rewrite = [&](const std::string& name, std::vector<std::pair<std::string, Tensor>> tensors,
                     std::map<std::string, std::string> md) {
    const std::string p = tmp(name);
    save_safetensors(p, tensors, md);
    return p;
  };
  // A float checkpoint given as int8.
  const std::string fl = tmp("float.safetensors");
  nn::save_checkpoint(fl, *make_case("resnet20", 1).model, nullptr, {{"model", "resnet20"}});
  CHECK(error_of([&] { engine::load(fl); }).find("not an int8 model file") != std::string::npos);
  // A newer format version, an unknown one, none.
  auto md = f.metadata;
  md["format_version"] = "3";
  CHECK(error_of([&] { engine::load(rewrite("v3", f.tensors, md)); }).find("format version 3 is newer") !=
        std::string::npos);
  md["format_version"] = "1.5";
  CHECK(error_of([&] { engine::load(rewrite("v1.5", f.tensors, md)); }).find("unknown int8 format version '1.5'") !=
        std::string::npos);
  md.erase("format_version");
  const std::string nover = rewrite("nover", f.tensors, md);
  const std::string e_nover = error_of([&] { engine::load(nover); });
  CHECK(e_nover.find("has no format_version") != std::string::npos);
  CHECK(e_nover.find(nover) != std::string::npos);
  // A truncated file.
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const std::string p = tmp("trunc");
    std::ofstream(p, std::ios::binary).write(bytes.data(), (std::streamsize)(bytes.size() - 100));
    CHECK(error_of([&] { engine::load(p); }).find(p) != std::string::npos);
    CHECK(error_of([&] { engine::load_bytes(bytes.substr(0, bytes.size() / 2), "half"); }).find("half") !=
          std::string::npos);
  }
  // A tensor whose size disagrees with the graph.
  {
    auto t = f.tensors;
    for (auto& [n, v] : t)
      if (n == "conv1.weight") v = Tensor::empty({16, 1, 3, 2}, DType::s8);
    const std::string e = error_of([&] { engine::load(rewrite("size", t, f.metadata)); });
    CHECK(e.find("conv1") != std::string::npos);
  }
  // A graph that references a missing tensor.
  {
    auto t = f.tensors;
    std::erase_if(t, [](const auto& kv) { return kv.first == "fc.bias"; });
    CHECK(error_of([&] { engine::load(rewrite("missing", t, f.metadata)); }).find("fc.bias") != std::string::npos);
  }
  // A graph that references a value no op produced, and garbage in the graph.
  {
    auto md2 = f.metadata;
    std::string& g = md2["graph"];
    const auto pos = g.find("output ");
    g = g.substr(0, pos) + "op add bogus in=0,9999 out=1\n" + g.substr(pos);
    CHECK(error_of([&] { engine::load(rewrite("graph", f.tensors, md2)); }).find("9999") != std::string::npos);
    md2["graph"] = "input 1,16,16\nvalue 0 shape=1,16,16 scale=nan zp=0 qmin=0 qmax=255\n";
    CHECK(error_of([&] { engine::load(rewrite("graph2", f.tensors, md2)); }).find("graph line 2") != std::string::npos);
  }
  // The runner refuses an input of the wrong shape.
  CHECK(error_of([&] { engine::Runner(m).run(images(1, 3, 16, 1)); }).find("does not match") != std::string::npos);
  for (const char* n : {"r20.int8.safetensors", "float.safetensors", "v3", "v1.5", "nover", "trunc", "size", "missing",
                        "graph", "graph2"}) {
    CHECK_MESSAGE(std::filesystem::exists(tmp(n)), n);  // every file this test wrote is removed
    std::filesystem::remove(tmp(n));
  }
}

TEST_CASE("convert refuses what the integer engine cannot run, naming the layer") {
  Case k = make_case("resnet20", 12);
  const auto [first, last] = first_and_last_layer(*k.model);
  QConfig qc = preset("w8a8");
  qc.overrides["layer2.0.conv1"] = std::nullopt;  // kept in float
  auto q = prepare(k.model, qc);
  {
    NoGradGuard ng;
    q->forward(images(2, 1, 16, 3));
  }
  freeze(*q);
  const std::string e = error_of([&] { convert(*q, images(1, 1, 16, 1)); });
  CHECK(e.find("layer2.0") != std::string::npos);
  // The simulation still runs (that layer and what follows it in float).
  NoGradGuard ng;
  CHECK(q->forward(images(1, 1, 16, 2)).shape() == Shape{1, 10});
  // Per-channel activations: the engine's activations are per tensor; refused, naming the quantizer.
  {
    Case kc = make_case("resnet20", 14);
    QConfig pc = preset("w8a8");
    LayerQConfig l = pc.layer;
    l.activation.per_channel = true;
    l.activation.observer = ObserverKind::minmax;  // (the histogram observer is per tensor only)
    pc.overrides["layer1.0.conv1"] = l;
    auto qp = prepare(kc.model, pc);
    {
      NoGradGuard ng2;
      qp->forward(images(2, 1, 16, 4));
    }
    freeze(*qp);
    const std::string ep = error_of([&] { convert(*qp, images(1, 1, 16, 1)); });
    CHECK(ep.find("layer1.0.conv1.activation_post_process") != std::string::npos);
    CHECK(ep.find("per-channel activation quantizer has no integer form") != std::string::npos);
  }
  // Not frozen: refused.
  Case k2 = make_case("resnet20", 13);
  auto q2 = prepare(k2.model, preset("w8a8"));
  CHECK(error_of([&] { convert(*q2, images(1, 1, 16, 1)); }).find("not frozen") != std::string::npos);
}

// Found while adding fuzz_int8 (tests/fuzz/): a conv weight with a 0 extent
// holds no values, so the size check passed. [2, 1, 0, 3] then reached the
// Runner, whose kernels refuse an empty filter with std::invalid_argument (not
// an Error); [2, 1, 0, 2^40] with dilation 2^24 overflowed int64 in validate's
// filter extent (UBSan). validate() now refuses both, naming the op.
TEST_CASE("int8 file: a conv weight with an empty or huge extent is refused, naming the op") {
  auto file = [](const std::string& name, const Shape& weight, const std::string& out, const std::string& pad,
                 const std::string& dil) {
    const std::string graph = "input 1,4,4\n"
                              "value 0 shape=1,4,4 scale=0.0078125 zp=128 qmin=0 qmax=255\n"
                              "value 1 shape=" + out + " scale=0.03125 zp=0 qmin=0 qmax=255\n"
                              "op quantize quant out=0\n"
                              "op conv conv1 in=0 out=1 stride=1,1 pad=" + pad + " dil=" + dil + " groups=1\n"
                              "output 1\n";
    const std::string p = tmp(name);
    save_safetensors(p,
                     {{"conv1.weight", Tensor::empty(weight, DType::s8)},
                      {"conv1.bias", Tensor::from_vector_s32({5, 6}, {2})},
                      {"conv1.weight_scale", Tensor::from_vector({0.01f}, {1})}},
                     {{"format", engine::kFormat}, {"format_version", "1"}, {"graph", graph}});
    return p;
  };
  // A 0-row filter: (4 + 0 − 0)/1 + 1 = 5 output rows, consistent with the graph.
  const std::string zero = file("zero_filter", {2, 1, 0, 3}, "2,5,4", "0,1", "1,1");
  std::string e = error_of([&] { engine::load(zero); });
  CHECK(e.find("conv conv1") != std::string::npos);
  CHECK(e.find("weight shape [2, 1, 0, 3] has an empty or too large extent") != std::string::npos);
  const std::string huge = file("huge_filter", {2, 1, 0, int64_t(1) << 40}, "2,4,4", "1,1", "1,16777216");
  e = error_of([&] { engine::load(huge); });
  CHECK(e.find(huge) != std::string::npos);
  CHECK(e.find("has an empty or too large extent") != std::string::npos);
  // validate() itself, on a model built in memory: the Runner refuses it with an Error too.
  engine::Model m;
  m.input_shape = {1, 4, 4};
  m.values = {{{1, 4, 4}, {0.0078125f, 128, 0, 255}}, {{2, 5, 4}, {0.03125f, 0, 0, 255}}};
  engine::Op q;
  q.kind = OpKind::quantize;
  q.output = 0;
  engine::Op c;
  c.kind = OpKind::conv;
  c.name = "conv1";
  c.inputs = {0};
  c.output = 1;
  c.layer.weight_shape = {2, 1, 0, 3};
  c.layer.bias = {5, 6};
  c.layer.weight_scale = {0.01f};
  c.layer.in = m.values[0].grid;
  c.layer.out = m.values[1].grid;
  c.conv.pad_w = 1;
  m.ops = {q, c};
  m.output = 1;
  CHECK(error_of([&] { engine::Runner r(m); }).find("has an empty or too large extent") != std::string::npos);
  for (const char* n : {"zero_filter", "huge_filter"}) std::remove(tmp(n).c_str());
}

// The seed corpus of fuzz_int8 (tests/fuzz/make_seeds.py, hand-written int8
// files) loads, and runs the same on every kernel path this machine has.
TEST_CASE("int8 file: the fuzz seeds load and run") {
  const std::filesystem::path dir = std::filesystem::path(LOWBIT_FIXTURES_DIR) / ".." / "fuzz" / "seeds" / "int8";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    INFO(e.path().string());
    const engine::Model m = engine::load(e.path().string());
    const Shape s = m.input_shape;
    const Tensor x = images(2, s[0], s[1], 21);
    REQUIRE(s[1] == s[2]);
    const kernels::KernelTable ref = kernels::make_table(kernels::Isa::ref);
    const Tensor want = engine::Runner(m, &ref).run(x);
    CHECK(want.shape() == Shape{2, m.num_classes()});
    CHECK(engine::Runner(m).run(x).to_vector() == want.to_vector());
    ++n;
  }
  CHECK(n == 3);
}

TEST_CASE("analyze: per-layer SQNR, higher at 8 bits than at 4, and the model is unchanged") {
  Case k = make_case("resnet20", 3);
  Case k4 = make_case("resnet20", 3);
  auto q8 = quantized(k, "w8a8"), q4 = quantized(k4, "w4a4");
  const Tensor x = images(4, 1, 16, 31);
  NoGradGuard ng;
  const std::vector<float> before = q8->forward(x).to_vector();
  const auto e8 = analyze(*q8, x), e4 = analyze(*q4, x);
  CHECK(q8->forward(x).to_vector() == before);
  REQUIRE(e8.size() == e4.size());
  REQUIRE(e8.size() == 31);  // 21 convs (stem, 18 in blocks, 2 downsample), 9 residual adds, the fc
  int convs = 0;
  for (size_t i = 0; i < e8.size(); ++i) {
    INFO(e8[i].path);
    CHECK(std::isfinite(e8[i].output_sqnr_db));
    if (e8[i].kind == "conv") {
      ++convs;
      CHECK(e8[i].weight_bits == 8);
      CHECK(e8[i].weight_sqnr_db > 35);  // 8-bit per-channel weights: about 6 dB per bit
      if (e4[i].weight_bits == 4) CHECK(e4[i].weight_sqnr_db < e8[i].weight_sqnr_db - 10);
    }
  }
  CHECK(convs == 21);
  CHECK(sqnr_db(x, x) == std::numeric_limits<double>::infinity());
}
