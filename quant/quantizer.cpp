#include "quant/quantizer.h"

#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "quant/fake_quant_ops.h"

namespace lowbit::quant {

namespace {
constexpr float kMinStep = 1.1920929e-07f;  // fp32 epsilon, as torch.finfo(torch.float32).eps

QuantParams read_qparams(const Tensor& scale, const Tensor& zp, const QSpec& spec) {
  QuantParams qp;
  qp.scale = scale.to_vector();
  for (float z : zp.to_vector()) qp.zero_point.push_back((int32_t)z);
  qp.axis = spec.per_channel ? spec.axis : -1;
  return qp;
}

// mean(|x|) per channel of axis (C > 1) or of the whole tensor (C == 1; when
// sample > 0 and n > sample, from every stride-th element, stride = ⌈n/sample⌉
// made odd so that it does not line up with a power-of-two image row).
std::vector<double> mean_abs(const Tensor& x_in, int64_t C, int axis, int64_t sample = 0) {
  const Tensor x = x_in.contiguous();
  const float* v = x.data<float>();
  const int64_t n = x.numel();
  if (C == 1) {
    const int64_t stride = sample > 0 && n > sample ? ((n + sample - 1) / sample) | 1 : 1;
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i += stride, ++count) sum += std::fabs((double)v[i]);
    return {sum / (double)std::max<int64_t>(count, 1)};
  }
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < x.dim(); ++d) inner *= x.shape()[d];
  std::vector<double> sum((size_t)C, 0.0);
  for (int64_t o = 0; o < n / (C * inner); ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < inner; ++j) sum[(size_t)c] += std::fabs((double)v[(o * C + c) * inner + j]);
  for (double& m : sum) m /= (double)std::max<int64_t>(n / C, 1);
  return sum;
}

void write_qparams(const Tensor& scale, const Tensor& zp, const QuantParams& qp) {
  LOWBIT_CHECK((int64_t)qp.scale.size() == scale.numel(), "quantizer: ", qp.scale.size(), " scales for a ",
               scale.numel(), "-channel quantizer");
  NoGradGuard ng;
  float* s = scale.data<float>();
  int32_t* z = zp.data<int32_t>();
  for (size_t c = 0; c < qp.scale.size(); ++c) s[c] = qp.scale[c], z[c] = qp.zero_point[c];
  scale.bump_version();
  zp.bump_version();
}
}  // namespace

Quantizer::Quantizer(const QSpec& spec, std::string path) : spec_(spec), path_(std::move(path)) {
  spec_.validate(path_.empty() ? "quantizer" : path_);
}

QuantizerPtr make_quantizer(const QSpec& spec, const std::string& path, int64_t channels) {
  if (spec.quantizer == QuantizerKind::ste) return std::make_shared<FakeQuantize>(spec, path, channels);
  return std::make_shared<LsqQuantizer>(spec, path, channels);
}

// ---- FakeQuantize ------------------------------------------------------------------

FakeQuantize::FakeQuantize(const QSpec& spec, std::string path, int64_t channels)
    : Quantizer(spec, std::move(path)), observer_(make_observer(spec)) {
  observer_->name = path_;
  const int64_t c = spec.per_channel ? channels : 1;
  register_buffer("scale", Tensor::ones({c}));
  register_buffer("zero_point", Tensor::zeros({c}, DType::s32));
  // A running min/max observer's range, so a resumed QAT run continues
  // exactly (+inf/−inf: nothing observed, or an observer that cannot resume).
  register_buffer("min_val", Tensor::full({c}, INFINITY));
  register_buffer("max_val", Tensor::full({c}, -INFINITY));
}

QuantParams FakeQuantize::qparams() const { return read_qparams(buffer("scale"), buffer("zero_point"), spec_); }

void FakeQuantize::compute_qparams() {
  if (!observer_->has_data()) {
    LOWBIT_CHECK(computed_ || frozen_, path_, ": no data observed (run calibration batches first)");
    return;
  }
  write_qparams(buffer("scale"), buffer("zero_point"), observer_->calculate_qparams());
  computed_ = true;
}

Tensor FakeQuantize::forward(const Tensor& x) {
  if (observer_enabled_) {
    Tensor lo = buffer("min_val"), hi = buffer("max_val");
    if (!observer_->has_data()) observer_->restore(lo.to_vector(), hi.to_vector());  // a loaded state
    observer_->observe(x.detach());
    // Running min/max observers only: a histogram's range() is a search.
    const auto* mm = dynamic_cast<const MinMaxObserver*>(observer_.get());
    const auto [l, h] = mm ? mm->range() : std::pair<std::vector<float>, std::vector<float>>{};
    if (mm && (int64_t)l.size() == lo.numel()) {
      NoGradGuard ng;
      std::copy(l.begin(), l.end(), lo.data<float>());
      std::copy(h.begin(), h.end(), hi.data<float>());
      lo.bump_version();
      hi.bump_version();
    }
    // QAT: fresh qparams every step. PTQ calibration (fake-quant off) asks
    // once, at freeze: a histogram search per batch would be wasted.
    if (fake_quant_enabled_) compute_qparams();
  }
  if (!fake_quant_enabled_) return x;
  LOWBIT_CHECK(computed_ || frozen_ || observer_->has_data(), path_, ": fake-quantizing before any data was observed");
  return fake_quantize(x, qparams(), qmin(), qmax());
}

void FakeQuantize::freeze() {
  if (observer_enabled_ && observer_->has_data()) compute_qparams();
  else LOWBIT_CHECK(computed_ || frozen_, path_, ": no data observed (run calibration batches first)");
  observer_enabled_ = false;
  fake_quant_enabled_ = true;
  frozen_ = true;
}

// ---- LSQ / LSQ+ -------------------------------------------------------------------

LsqQuantizer::LsqQuantizer(const QSpec& spec, std::string path, int64_t channels) : Quantizer(spec, std::move(path)) {
  const int64_t c = spec.per_channel ? channels : 1;
  register_parameter("scale", Tensor::ones({c}));
  if (plus()) register_parameter("offset", Tensor::zeros({1}));
  register_buffer("zero_point", Tensor::zeros({c}, DType::s32));
  // 1 once the step was initialised from data (or loaded): a loaded
  // checkpoint must not be re-initialised by its first batch.
  register_buffer("initialized", Tensor::zeros({1}, DType::s32));
}

void LsqQuantizer::initialize(const Tensor& x_in) {
  NoGradGuard ng;
  const QSpec& s = spec_;
  MinMaxObserver mm(s, false);
  mm.name = path_;
  mm.observe(x_in);
  const QuantParams range_qp = mm.calculate_qparams();
  Tensor scale = param("scale"), zp = buffer("zero_point");
  if (plus()) {
    // LSQ+ min/max initialisation: s = (max − min)/(qmax − qmin), β = min − qmin·s, zp = 0.
    const auto [lo, hi] = mm.range();
    const float st = std::max((hi[0] - lo[0]) / (float)(qmax() - qmin()), kMinStep);
    write_qparams(scale, zp, QuantParams{{st}, {0}, -1});
    Tensor off = param("offset");
    off.data<float>()[0] = lo[0] - (float)qmin() * st;
    off.bump_version();
  } else if (s.lsq_init == LsqInit::observer || (s.lsq_init == LsqInit::automatic && s.bits >= 8)) {
    // The step (and zero point) PTQ would pick from this tensor.
    const ObserverPtr obs = make_observer(s);
    obs->name = path_;
    obs->observe(x_in);
    write_qparams(scale, zp, obs->calculate_qparams());
  } else {
    // LSQ: s = 2·mean(|x|)/√Qp per scale, with the zero point of the
    // observed range (0 for weights and ReLU outputs).
    const std::vector<double> mean = mean_abs(x_in, scale.numel(), s.axis);
    QuantParams qp = range_qp;
    for (size_t c = 0; c < mean.size(); ++c) {
      const double qp_pos = std::max(1, qmax() - qp.zero_point[c]);
      qp.scale[c] = std::max((float)(2.0 * mean[c] / std::sqrt(qp_pos)), kMinStep);
    }
    write_qparams(scale, zp, qp);
  }
  Tensor init = buffer("initialized");
  init.data<int32_t>()[0] = 1;
  init.bump_version();
}

void LsqQuantizer::clamp_step() {
  // As PyTorch's _LearnableFakeQuantize: a step the optimizer pushed to or
  // below zero is clamped to fp32 epsilon (a dead channel's step learns
  // towards 0); NaN or Inf is an error naming the quantizer.
  const Tensor& scale = param("scale");
  NoGradGuard ng;
  float* st = scale.data<float>();
  bool clamped = false;
  for (int64_t c = 0; c < scale.numel(); ++c) {
    LOWBIT_CHECK(std::isfinite(st[c]), path_, ": LSQ step ", st[c], " is not finite (learning rate too high?)");
    if (st[c] < kMinStep) {
      collapses_.push_back({c, st[c]});
      st[c] = kMinStep, clamped = true;
    }
  }
  if (clamped) scale.bump_version();
}

Tensor LsqQuantizer::forward(const Tensor& x) {
  if (buffer("initialized").data<int32_t>()[0] == 0) {
    LOWBIT_CHECK(observer_enabled_, path_, ": the LSQ step was never initialised (no data seen before freezing)");
    initialize(x.detach());
  }
  if (!fake_quant_enabled_) return x;
  clamp_step();
  const Tensor& scale = param("scale");
  std::vector<int32_t> zp;
  for (float z : buffer("zero_point").to_vector()) zp.push_back((int32_t)z);
  // The step's gradient scale g = 1/√(N·Qp) with N the whole tensor's
  // element count, per channel too, as PyTorch's _LearnableFakeQuantize
  // (1/√(numel·quant_max)). N per channel made a per-channel step's gradient
  // √C times larger: an 8-bit weight step starts at max|w|/127 (its largest
  // weight on the clip boundary, where one clipped weight weighs Qp = 127 in
  // the gradient against ≤ 0.5 inside), so SGD at lr 0.01 with momentum moved
  // it by its own size in a few steps, to the clamp (every weight clipped,
  // gradient ~Qp·Σg) and back up 1000×, where the channel rounds to zero.
  //
  // g is the paper's for a step near its nominal size s₀ = 2·mean(|x|)/√Qp
  // (the LSQ initialisation, for which the paper balances the step's relative
  // update against the weights'). A step below s₀ (an 8-bit step starts at
  // max|x|/Qp, about 5× below it) moves by the same absolute amount, so its
  // relative moves are that much larger: a random walk whose stride is the
  // step's own size (a first conv or depthwise channel: few weights, large
  // gradients) reaches zero and collapses the channel. So a gradient that
  // shrinks a step below s₀ is scaled by s/s₀ per channel (the step's relative
  // moves down stay those of a step at s₀: it decays at worst geometrically,
  // and rarely reaches zero); a gradient that grows it keeps g, so a step can
  // follow weights that grow (training from random weights, where damping
  // both ways left the steps behind: every weight clipped, the student at
  // chance). Weakly trained MobileNetV2, one epoch of w8a8 LSQ + KD: 27.75%
  // with g alone, 75.30% with this; quant/README.md.
  const double q_pos = std::max(1, qmax() - zp[0]);
  const double g = 1.0 / std::sqrt((double)x.numel() * q_pos);
  Tensor offset = plus() ? param("offset") : Tensor();
  std::vector<float> shrink_scale;
  if (any_requires_grad({&scale})) {  // (not when frozen or in evaluation: no pass over x)
    const std::vector<float> st = scale.to_vector();
    // s₀ of a per-tensor step from 65,536 strided elements (a threshold, not a
    // statistic to track exactly: no full pass over an activation); per channel from all.
    const std::vector<double> mean = mean_abs(x.detach(), (int64_t)st.size(), spec_.axis, 65536);
    for (size_t c = 0; c < st.size(); ++c) {
      const double s0 = 2.0 * mean[c] / std::sqrt(std::max(1, qmax() - zp[c]));
      shrink_scale.push_back((float)(s0 > 0 ? g * std::min(1.0, (double)st[c] / s0) : g));
    }
  }
  // LSQ+'s offset β keeps g: the factor is about a step's moves against its own size.
  return lsq_quantize(x, scale, offset, zp, spec_.per_channel ? spec_.axis : -1, qmin(), qmax(), (float)g, shrink_scale);
}

QuantParams LsqQuantizer::qparams() const {
  QuantParams qp = read_qparams(param("scale").detach(), buffer("zero_point"), spec_);
  if (plus()) {  // the integer zero point nearest the learned offset (β = 0 once frozen)
    const float beta = param("offset").item();
    qp.zero_point[0] = std::clamp(qp.zero_point[0] + (int32_t)std::nearbyint(-beta / qp.scale[0]), qmin(), qmax());
  }
  return qp;
}

void LsqQuantizer::rescale_steps(const std::vector<float>& factor) {
  Tensor scale = param("scale");
  LOWBIT_CHECK((int64_t)factor.size() == scale.numel(), path_, ": ", factor.size(), " step factors for ", scale.numel(),
               " steps");
  NoGradGuard ng;
  float* st = scale.data<float>();
  for (size_t c = 0; c < factor.size(); ++c) st[c] *= factor[c];
  scale.bump_version();
}

void LsqQuantizer::freeze() {
  LOWBIT_CHECK(buffer("initialized").data<int32_t>()[0] != 0, path_, ": no data seen (the LSQ step is uninitialised)");
  clamp_step();  // the last optimizer step may have come after the last forward
  if (plus()) {
    const QuantParams qp = qparams();
    write_qparams(param("scale").detach(), buffer("zero_point"), qp);
    NoGradGuard ng;
    Tensor off = param("offset");
    off.data<float>()[0] = 0.0f;
    off.bump_version();
  }
  for (auto& [n, p] : named_parameters()) p.set_requires_grad(false);
  observer_enabled_ = false;
  fake_quant_enabled_ = true;
  frozen_ = true;
}

}  // namespace lowbit::quant
