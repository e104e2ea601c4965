// Dynamic quantization (quant/dynamic.h) against PyTorch 1.13's dynamic
// Linear (tests/fixtures/dynamic.safetensors, made by
// tools/make_dynamic_fixtures.py with the onednn engine):
//   - the input grid (torch._choose_qparams_per_tensor): bit-identical
//   - the s8 weights and their scales (default / per-channel dynamic qconfig): bit-identical
//   - the input's u8 codes on that grid: bit-identical
//   - the float output: the integer product is the same, the fp32 epilogue
//     rounds in another order, so each output agrees within
//     kOutputTolerance · (|Σ acc·s_x·s_w| + |b|) (a few fp32 roundings)
// and the module against the int8 engine's dynamic_linear op on every kernel
// path: bit for bit.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/autograd.h"
#include "core/safetensors.h"
#include "kernels/quant_math.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "quant/checkpoint.h"
#include "quant/convert.h"
#include "quant/dynamic.h"
#include "quant/engine/model.h"
#include "quant/engine/runner.h"
#include "tests/quant/engine_paths.h"
#include "tests/test_util.h"

using namespace lowbit;
using namespace lowbit::quant;
namespace qm = lowbit::kernels::qmath;

namespace {

// 2^-21: four fp32 roundings of the largest term.
constexpr double kOutputTolerance = 1.0 / (1 << 21);

const SafetensorsFile& fixture() {
  static const SafetensorsFile f = load_safetensors(LOWBIT_FIXTURES_DIR "/dynamic.safetensors");
  return f;
}

using testing::split;

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lowbit_test_dynamic_" + name)).string();
}

Tensor randn_scaled(const Shape& s, uint64_t seed, float scale = 1.0f) {
  Generator g(seed);
  Tensor t = randn(s, &g);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] *= scale;
  return t;
}

// A small MLP with every layer dynamic.
nn::ModulePtr small_mlp(const std::vector<int64_t>& hidden, uint64_t seed) {
  nn::ModelConfig cfg;
  cfg.in_channels = 1;
  cfg.num_classes = 10;
  cfg.input_h = cfg.input_w = 12;
  cfg.hidden = hidden;
  manual_seed(seed);
  return nn::create_model("mlp", cfg);
}

// The module against the engine on every kernel path: outputs bit-identical.
void check_engine_paths(nn::Module& model, const Tensor& x, const std::string& what) {
  NoGradGuard ng;
  const std::vector<float> mod = model.forward(x).to_vector();
  testing::check_engine_on_every_path(convert_dynamic(model, x.slice(0, 0, 1).contiguous()), x, mod, what);
}

}  // namespace

TEST_CASE("dynamic: the input grid is PyTorch's ChooseQuantizationParams bit for bit") {
  const auto& f = fixture();
  const int n = std::stoi(f.metadata.at("qp.n"));
  REQUIRE(n > 50);
  for (int i = 0; i < n; ++i) {
    const std::string p = "qp." + std::to_string(i);
    const std::vector<float> x = f.get(p + ".x").to_vector();
    const bool rr = f.metadata.at(p) == "1";
    const qm::ChosenQParams g = qm::choose_qparams(std::min(x[0], x[1]), std::max(x[0], x[1]), 0, 255, rr);
    INFO(p, ": range ", x[0], "..", x[1], " reduce_range ", rr);
    CHECK(g.scale == f.get(p + ".scale").to_vector()[0]);
    CHECK(g.zero_point == f.get(p + ".zero_point").data<int32_t>()[0]);
  }
}

TEST_CASE("dynamic: a dynamic Linear matches torch.nn.quantized.dynamic.Linear") {
  const auto& f = fixture();
  const std::vector<std::string> cases = split(f.metadata.at("cases"));
  REQUIRE(cases.size() >= 18);
  double worst = 0;  // the largest |Δ| / (|acc·M| + |b|) over every output
  for (const std::string& c : cases) {
    const auto flags = split(f.metadata.at(c));
    const bool pc = flags[0] == "1", rr = flags[1] == "1", relu = flags[2] == "1";
    const Tensor& w = f.get(c + ".weight");
    const int64_t out = w.shape()[0], in = w.shape()[1];
    nn::Linear lin(in, out);
    lin.load_state_dict({{"weight", w}, {"bias", f.get(c + ".bias")}});
    DynamicLinear d(lin, relu, {pc, rr});
    INFO(c);
    // Weights and scales.
    const Tensor& wq = f.get(c + ".weight_q");
    REQUIRE(d.weight().numel() == wq.numel());
    CHECK(std::equal(wq.data<int8_t>(), wq.data<int8_t>() + wq.numel(), d.weight().data<int8_t>()));
    CHECK(d.weight_scale().to_vector() == f.get(c + ".weight_scale").to_vector());
    // The input's codes on the chosen grid.
    const Tensor& x = f.get(c + ".x");
    const std::vector<float> xv = x.to_vector();
    const auto [mn, mx] = std::minmax_element(xv.begin(), xv.end());
    const qm::ChosenQParams g = qm::choose_qparams(*mn, *mx, 0, 255, rr);
    const Tensor& xq = f.get(c + ".x_q");
    size_t code_diff = 0;
    for (size_t i = 0; i < xv.size(); ++i)
      code_diff += qm::quantize(xv[i], qm::inverse_scale(g.scale), g.zero_point, 0, 255) != xq.data<uint8_t>()[i];
    CHECK(code_diff == 0);
    // The output.
    const std::vector<float> y = d.forward(x).to_vector(), want = f.get(c + ".y").to_vector();
    REQUIRE(y.size() == want.size());
    const std::vector<float> ws = d.weight_scale().to_vector(), b = lin.named_parameters()[1].second.to_vector();
    const int64_t m = x.shape()[0];
    size_t bad = 0;
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < out; ++j) {
        int64_t acc = 0;
        for (int64_t k = 0; k < in; ++k)
          acc += (int64_t)(xq.data<uint8_t>()[r * in + k] - g.zero_point) * wq.data<int8_t>()[j * in + k];
        const double mag = std::abs((double)acc * g.scale * ws[pc ? (size_t)j : 0]) + std::abs((double)b[(size_t)j]);
        const double delta = std::abs((double)y[(size_t)(r * out + j)] - want[(size_t)(r * out + j)]);
        if (mag > 0) worst = std::max(worst, delta / mag);
        bad += delta > kOutputTolerance * mag + 1e-30;
      }
    CHECK(bad == 0);
  }
  MESSAGE("dynamic Linear vs PyTorch 1.13 (onednn): largest |difference| / (|acc·s_x·s_w| + |b|) = ", worst);
}

TEST_CASE("dynamic: module and int8 engine agree bit for bit on every path (mlp, per-tensor and per-channel)") {
  for (const DynamicConfig cfg : {DynamicConfig{false, false}, DynamicConfig{true, false}, DynamicConfig{true, true}}) {
    nn::ModulePtr model = small_mlp({48, 40}, 7);
    CHECK(quantize_dynamic(*model, {"Linear"}, cfg) == 3);
    // The ReLUs were fused into the first two layers.
    const auto layers = dynamic_layers(*model);
    REQUIRE(layers.size() == 3);
    CHECK(layers[0].second->relu());
    CHECK(layers[1].second->relu());
    CHECK_FALSE(layers[2].second->relu());
    check_engine_paths(*model, randn_scaled({5, 1, 12, 12}, 3), cfg.str());
    check_engine_paths(*model, randn_scaled({1, 1, 12, 12}, 4, 3.0f), cfg.str() + " batch 1");
  }
}

namespace {
// One dynamic linear layer in scalar loops (no kernel table): the input's
// grid from its own min/max, u8 codes, int64 dot products with the s8
// weights, and quant_math's epilogue. The arithmetic is quant_math's; the
// loops are the test's own.
std::vector<float> dynamic_linear_by_hand(const std::vector<float>& x, int64_t m, const DynamicLinear& d) {
  const Tensor& w = d.weight();
  const int64_t out = w.shape()[0], in = w.shape()[1];
  REQUIRE((int64_t)x.size() == m * in);
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  const qm::ChosenQParams g = qm::choose_qparams(std::min(*lo, 0.0f), std::max(*hi, 0.0f), 0, 255, d.config().reduce_range);
  const std::vector<float> ws = d.weight_scale().to_vector(), b = d.bias_values();
  std::vector<float> y((size_t)(m * out));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < out; ++j) {
      int64_t acc = 0;
      for (int64_t k = 0; k < in; ++k) {
        const int32_t code = qm::quantize(x[(size_t)(r * in + k)], qm::inverse_scale(g.scale), g.zero_point, 0, 255);
        acc += (int64_t)(code - g.zero_point) * w.data<int8_t>()[j * in + k];
      }
      const float mult = qm::dynamic_multiplier(g.scale, ws[ws.size() == 1 ? 0 : (size_t)j]);
      y[(size_t)(r * out + j)] = qm::dynamic_output(qm::dequantize_acc((int32_t)acc, mult), b[(size_t)j], d.relu());
    }
  return y;
}
}  // namespace

TEST_CASE("dynamic: module and engine equal a scalar reference of their own arithmetic, bit for bit") {
  // The module and the engine share DynamicLinearKernel, so their agreement
  // alone proves nothing about it: both are held to loops written here.
  for (const DynamicConfig cfg : {DynamicConfig{false, false}, DynamicConfig{true, false}, DynamicConfig{true, true}}) {
    CAPTURE(cfg.str());
    nn::ModulePtr model = small_mlp({48, 40}, 17);
    REQUIRE(quantize_dynamic(*model, {"Linear"}, cfg) == 3);
    const Tensor x = randn_scaled({5, 1, 12, 12}, 19, 2.0f);
    std::vector<float> h = x.to_vector();
    for (auto& [name, layer] : dynamic_layers(*model)) h = dynamic_linear_by_hand(h, 5, *layer);
    NoGradGuard ng;
    CHECK(model->forward(x).to_vector() == h);
    testing::check_engine_on_every_path(convert_dynamic(*model, x.slice(0, 0, 1).contiguous()), x, h, cfg.str());
  }
}

TEST_CASE("dynamic: the module's output follows the float model closely") {
  nn::ModulePtr model = small_mlp({64}, 11);
  const Tensor x = randn_scaled({16, 1, 12, 12}, 5);
  NoGradGuard ng;
  model->eval();
  const std::vector<float> ref = model->forward(x).to_vector();
  quantize_dynamic(*model);
  const std::vector<float> got = model->forward(x).to_vector();
  double err = 0, mag = 0;
  for (size_t i = 0; i < ref.size(); ++i) err = std::max(err, (double)std::abs(ref[i] - got[i])), mag = std::max(mag, (double)std::abs(ref[i]));
  CHECK(err < 0.05 * mag);
  CHECK(err > 0);  // it did quantize
}

TEST_CASE("dynamic: int8 file round trip is exact, and checkpoints reload") {
  nn::ModulePtr model = small_mlp({32}, 21);
  quantize_dynamic(*model, {"Linear"}, {true, true});
  const Tensor x = randn_scaled({3, 1, 12, 12}, 9);
  NoGradGuard ng;
  const std::vector<float> want = model->forward(x).to_vector();

  const engine::Model m = convert_dynamic(*model, x);
  const std::string f = tmp("mlp.int8.safetensors");
  engine::save(f, m);
  CHECK(load_safetensors(f).metadata.at("format_version") == "2");
  engine::Runner r(engine::load(f));
  CHECK(r.run(x).to_vector() == want);
  CHECK_THROWS_WITH_AS(r.run_u8(nullptr, 1, nullptr), doctest::Contains("takes float input"), Error);

  // A dynamic checkpoint: the float model's layout plus int8 layers.
  const std::string ck = tmp("mlp.dyn.safetensors");
  nn::save_checkpoint(ck, *model, nullptr, dynamic_metadata(*model, {true, true}));
  nn::ModulePtr fresh = small_mlp({32}, 99);  // other random weights: the load must replace them all
  nn::ModulePtr loaded = load_dynamic(ck, fresh);
  CHECK(loaded->forward(x).to_vector() == want);
  CHECK_THROWS_WITH_AS(load_quantized(ck, small_mlp({32}, 1)), doctest::Contains("dynamically quantized"), Error);
  std::filesystem::remove(f);
  std::filesystem::remove(ck);
}

TEST_CASE("dynamic: loading new weights into a dynamic layer repacks it") {
  nn::Linear a(20, 6), b(20, 6);
  DynamicLinear da(a, false, {}), db(b, false, {});
  const Tensor x = randn_scaled({2, 20}, 1);
  NoGradGuard ng;
  const std::vector<float> before = da.forward(x).to_vector();
  da.load_state_dict(db.state_dict());
  const std::vector<float> after = da.forward(x).to_vector();
  CHECK(after != before);
  CHECK(after == db.forward(x).to_vector());
}

TEST_CASE("dynamic: refusals name the layer or the model") {
  // No Linear layer at all.
  auto convs = std::make_shared<nn::Sequential>();
  convs->push_back(std::make_shared<nn::Conv2d>(1, 4, 3));
  convs->push_back(std::make_shared<nn::ReLU>());
  CHECK_THROWS_WITH_AS(quantize_dynamic(*convs), doctest::Contains("has no Linear layer"), Error);
  // A path that is not there, or not a Linear layer.
  nn::ModulePtr mlp = small_mlp({8}, 1);
  CHECK_THROWS_WITH_AS(quantize_dynamic(*mlp, {"fc"}), doctest::Contains("no module named 'fc' (Linear layers: 1, 3)"),
                       Error);
  CHECK_THROWS_WITH_AS(quantize_dynamic(*mlp, {"2"}), doctest::Contains("'2' is not a Linear layer"), Error);
  // resnet20 with a dynamic fc runs, but the engine cannot take its float convs.
  nn::ModelConfig cfg;
  cfg.in_channels = 1;
  cfg.num_classes = 10;
  nn::ModulePtr r20 = nn::create_model("resnet20", cfg);
  CHECK(quantize_dynamic(*r20, {"fc"}) == 1);
  const Tensor x = randn_scaled({2, 1, 28, 28}, 2);
  {
    NoGradGuard ng;
    r20->eval();
    CHECK(r20->forward(x).shape() == Shape{2, 10});
  }
  CHECK_THROWS_WITH_AS(convert_dynamic(*r20, x), doctest::Contains("fc: its input does not come from"), Error);
  // NaN in the input: the layer cannot choose a grid.
  nn::ModulePtr m2 = small_mlp({8}, 2);
  quantize_dynamic(*m2);
  Tensor bad = randn_scaled({1, 1, 12, 12}, 3);
  bad.data<float>()[5] = std::nanf("");
  NoGradGuard ng;
  CHECK_THROWS_WITH_AS(m2->forward(bad), doctest::Contains("1: the input holds NaN or Inf"), Error);
}
