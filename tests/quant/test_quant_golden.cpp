// quant/ against PyTorch 1.13 (tests/fixtures/quant.safetensors, made by
// tools/make_quant_fixtures.py): observers' scale and zero point (MinMax,
// EMA, per-channel: bit-identical; Histogram: scale within 1e-4 relative),
// fake quantization forward and backward (bit-identical), LSQ/LSQ+ forward
// (bit-identical) and gradients (1e-5 relative to the largest) against a
// plain-autograd LSQ.
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "quant/fake_quant_ops.h"
#include "quant/observer.h"
#include "quant/quantizer.h"
#include "tests/test_util.h"

using namespace lowbit;
using namespace lowbit::quant;

namespace {

const SafetensorsFile& fixture() {
  static const SafetensorsFile f = load_safetensors(LOWBIT_FIXTURES_DIR "/quant.safetensors");
  return f;
}

using testing::split;

std::vector<std::string> cases(const std::string& prefix) {
  std::vector<std::string> out;
  for (auto& c : split(fixture().metadata.at("cases")))
    if (c.rfind(prefix, 0) == 0) out.push_back(c);
  return out;
}

std::vector<int32_t> ints(const Tensor& t) {
  std::vector<int32_t> out;
  for (float f : t.to_vector()) out.push_back((int32_t)f);
  return out;
}

// max |a − b| / max |b|
double rel(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, (double)std::fabs(a[i] - b[i]));
    den = std::max(den, (double)std::fabs(b[i]));
  }
  return den > 0 ? num / den : num;
}

}  // namespace

TEST_CASE("observers equal PyTorch's on the fixture") {
  const auto names = cases("obs.");
  REQUIRE(names.size() >= 10);
  for (const auto& c : names) {
    CAPTURE(c);
    const auto f = split(fixture().metadata.at(c));
    QSpec s;
    s.observer = parse_observer(f[0]);
    s.bits = std::stoi(f[1]);
    s.is_signed = f[2] == "1";
    s.symmetric = f[3] == "1";
    s.per_channel = f[4] == "1";
    s.axis = std::stoi(f[5]);
    s.reduce_range = f[6] == "1";
    auto obs = make_observer(s);
    const int n = std::stoi(fixture().metadata.at(c + ".n"));
    for (int i = 0; i < n; ++i) obs->observe(fixture().get(c + ".x" + std::to_string(i)));
    const QuantParams qp = obs->calculate_qparams();
    const auto want_scale = fixture().get(c + ".scale").to_vector();
    const auto want_zp = ints(fixture().get(c + ".zero_point"));
    if (s.observer == ObserverKind::histogram) {
      CHECK(rel(qp.scale, want_scale) <= 1e-4);
      CHECK(qp.zero_point == want_zp);
    } else {
      CHECK(qp.scale == want_scale);
      CHECK(qp.zero_point == want_zp);
    }
  }
}

TEST_CASE("fake_quantize forward and backward are bit-identical to PyTorch's") {
  const auto names = cases("fq.");
  REQUIRE(names.size() >= 8);
  for (const auto& c : names) {
    CAPTURE(c);
    const auto f = split(fixture().metadata.at(c));
    const int qmin = std::stoi(f[0]), qmax = std::stoi(f[1]), axis = std::stoi(f[2]);
    QuantParams qp;
    qp.scale = fixture().get(c + ".scale").to_vector();
    qp.zero_point = ints(fixture().get(c + ".zero_point"));
    qp.axis = axis;
    Tensor x = fixture().get(c + ".x").clone().set_requires_grad(true);
    Tensor y = fake_quantize(x, qp, qmin, qmax);
    CHECK(y.to_vector() == fixture().get(c + ".y").to_vector());
    y.backward(fixture().get(c + ".gy"));
    CHECK(x.grad().to_vector() == fixture().get(c + ".dx").to_vector());
    // Again with a gradient nobody else holds (mul's backward makes it): the
    // backward then zeroes the clipped elements in place.
    Tensor x2 = fixture().get(c + ".x").clone().set_requires_grad(true);
    sum(mul(fake_quantize(x2, qp, qmin, qmax), fixture().get(c + ".gy"))).backward();
    CHECK(x2.grad().to_vector() == fixture().get(c + ".dx").to_vector());
  }
}

TEST_CASE("fake_quantize on a non-contiguous input equals the contiguous result") {
  const auto& c = std::string("fq.pc_s8_axis1");
  QuantParams qp{fixture().get(c + ".scale").to_vector(), ints(fixture().get(c + ".zero_point")), 1};
  Tensor x = fixture().get(c + ".x");                    // [3, 4, 6, 6]
  Tensor xt = x.permute({0, 1, 3, 2}).contiguous().permute({0, 1, 3, 2});  // same values, transposed strides
  REQUIRE_FALSE(xt.is_contiguous());
  CHECK(fake_quantize(xt, qp, -128, 127).to_vector() == fixture().get(c + ".y").to_vector());
}

TEST_CASE("LSQ and LSQ+ forward and gradients match the PyTorch autograd reference") {
  const auto names = cases("lsq.");
  REQUIRE(names.size() >= 6);
  for (const auto& c : names) {
    CAPTURE(c);
    const auto f = split(fixture().metadata.at(c));
    const int qmin = std::stoi(f[0]), qmax = std::stoi(f[1]), axis = std::stoi(f[2]), zp = std::stoi(f[3]);
    const float g = std::stof(f[4]);
    const bool plus = f[5] == "1";
    Tensor x = fixture().get(c + ".x").clone().set_requires_grad(true);
    Tensor s = fixture().get(c + ".scale").clone().set_requires_grad(true);
    Tensor b = plus ? fixture().get(c + ".offset").clone().set_requires_grad(true) : Tensor();
    Tensor y = lsq_quantize(x, s, b, std::vector<int32_t>((size_t)s.numel(), zp), axis, qmin, qmax, g);
    CHECK(y.to_vector() == fixture().get(c + ".y").to_vector());
    y.backward(fixture().get(c + ".gy"));
    CHECK(rel(x.grad().to_vector(), fixture().get(c + ".dx").to_vector()) <= 1e-5);
    CHECK(rel(s.grad().to_vector(), fixture().get(c + ".dscale").to_vector()) <= 1e-5);
    if (plus) CHECK(rel(b.grad().to_vector(), fixture().get(c + ".doffset").to_vector()) <= 1e-5);
  }
}

TEST_CASE("LSQ's own gradient scale: LsqQuantizer equals PyTorch's learnable fake quant (grad_factor 1/sqrt(numel·quant_max))") {
  // The test above gives lsq_quantize its g; here LsqQuantizer computes g
  // itself, against torch._fake_quantize_learnable_per_{tensor,channel}_affine.
  const auto names = cases("lsqg.");
  REQUIRE(names.size() >= 4);
  for (const auto& c : names) {
    CAPTURE(c);
    const auto f = split(fixture().metadata.at(c));
    QSpec s;
    s.bits = std::stoi(f[0]);
    s.is_signed = s.symmetric = f[1] == "1";
    s.per_channel = f[2] == "1";
    s.axis = std::stoi(f[3]);
    s.quantizer = QuantizerKind::lsq;
    const Tensor want_scale = fixture().get(c + ".scale");
    LsqQuantizer q(s, c, want_scale.numel());
    REQUIRE(q.qmin() == std::stoi(f[4]));
    REQUIRE(q.qmax() == std::stoi(f[5]));
    const Tensor x0 = fixture().get(c + ".x");
    {
      NoGradGuard ng;
      q.forward(x0);  // initialises the steps and the zero point (0: signed, or x ≥ 0)
      Tensor step = q.named_parameters().at(0).second;
      std::copy_n(want_scale.data<float>(), step.numel(), step.data<float>());
      step.bump_version();
    }
    REQUIRE(q.qparams().zero_point == std::vector<int32_t>((size_t)want_scale.numel(), 0));
    Tensor x = x0.clone().set_requires_grad(true);
    Tensor y = q.forward(x);
    CHECK(y.to_vector() == fixture().get(c + ".y").to_vector());
    y.backward(fixture().get(c + ".gy"));
    CHECK(rel(x.grad().to_vector(), fixture().get(c + ".dx").to_vector()) <= 1e-5);
    CHECK(rel(q.named_parameters().at(0).second.grad().to_vector(), fixture().get(c + ".dscale").to_vector()) <= 1e-5);
  }
}
