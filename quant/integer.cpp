#include "quant/integer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "kernels/quant_math.h"
#include "nn/module.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

namespace qm = kernels::qmath;

Grid grid_of(const Quantizer& q) {
  const QuantParams qp = q.qparams();
  LOWBIT_CHECK(qp.scale.size() == 1 && qp.zero_point.size() == 1, q.path(),
               ": a per-channel activation quantizer has no integer form (the engine's activations are per tensor)");
  return {qp.scale[0], qp.zero_point[0], q.qmin(), q.qmax()};
}

namespace {
// The bias is quantized on s_in·s_w (int32, as QNNPACK; the multiplier then
// carries it to the output grid), so a channel whose weight step is large
// against the output step (M = s_in·s_w/s_out > 1/16) would lose its bias to
// rounding: a 4-bit MobileNetV2's depthwise channel fed by a dead channel has
// folded weights in the hundreds (BN's running variance near 0), an LSQ step
// of 212 and M = 14.8, and its bias, 0.66 (2 output steps and, with its input
// always 0, the channel's whole output) rounded to 0. The same weights have
// other integer forms: q·s = (r·q)·(s/r) for any integer r with r·max|q| ≤ 127,
// and a channel whose weights all round to 0 stays 0 for any step above
// 4·max|w|. Such a channel takes the finer step, down to M = 1/16 (a bias
// error below 1/32 of an output step): the weights it computes with are the
// same, its bias the float one to 1/32 step.
constexpr float kMaxBiasStep = 1.0f / 16;  // the bias grid, in output steps
void refine_coarse_channels(IntegerLayer& L, const float* w) {
  const int64_t k = L.out_channels(), per = (int64_t)L.weight.size() / k;
  const float target = kMaxBiasStep * L.out.scale / L.in.scale;  // the weight step that gives M = 1/16
  if (!(target > 0) || !std::isfinite(target)) return;
  // The simulation sums in fp32, exact below 2^24: r·Σ|q|·max|x − zp| stays
  // below 2^23, the rest left to the bias.
  const double xmax = std::max(1, std::max(L.in.qmax - L.in.zp, L.in.zp - L.in.qmin));
  for (int64_t o = 0; o < k; ++o) {
    float& s = L.weight_scale[(size_t)o];
    if (!(s > target) || !std::isfinite(s)) continue;
    int max_q = 0;
    double sum_q = 0;
    float max_w = 0;
    for (int64_t i = 0; i < per; ++i) {
      const int q = std::abs((int)L.weight[(size_t)(o * per + i)]);
      max_q = std::max(max_q, q), sum_q += q;
      max_w = std::max(max_w, std::fabs(w[o * per + i]));
    }
    if (max_q == 0) {
      const float s0 = std::max(4 * max_w, target);
      if (std::isfinite(s0) && s0 < s) s = s0;
      continue;
    }
    const double r_max = std::min<double>(127 / max_q, std::floor(8388608.0 / (sum_q * xmax)));
    const int r = (int)std::min(r_max, std::ceil((double)s / target));
    if (r < 2) continue;
    for (int64_t i = 0; i < per; ++i) L.weight[(size_t)(o * per + i)] = (int8_t)(r * L.weight[(size_t)(o * per + i)]);
    s /= (float)r;
  }
}
}  // namespace

IntegerLayer integer_layer(const std::string& path, const Tensor& w_in, const Tensor& b_in, const Quantizer& wq,
                           const Grid& in, const Quantizer& oq, Activation act) {
  const QSpec& ws = wq.spec();
  LOWBIT_CHECK(ws.is_signed && ws.bits <= 8, path, ": weights must be signed 8-bit or narrower for the int8 engine (",
               ws.str(), ")");
  LOWBIT_CHECK(!oq.spec().is_signed, path, ": outputs must be unsigned (u8 activations) for the int8 engine (",
               oq.spec().str(), ")");
  const QuantParams wp = wq.qparams();
  for (int32_t z : wp.zero_point)
    LOWBIT_CHECK(z == 0, path, ": weights must be symmetric (zero point 0) for the int8 engine, found ", z);
  const Tensor w = w_in.contiguous();
  const int64_t k = w.shape()[0], per = w.numel() / k;
  LOWBIT_CHECK(wp.scale.size() == 1 || (int64_t)wp.scale.size() == k, path, ": ", wp.scale.size(),
               " weight scales for ", k, " output channels");
  IntegerLayer L;
  L.weight_shape = w.shape();
  L.weight_scale = wp.scale;
  L.in = in;
  L.out = grid_of(oq);
  if (act != Activation::none) L.out.qmin = std::max(L.out.qmin, L.out.zp);
  if (act == Activation::relu6) L.out.qmax = std::min(L.out.qmax, qm::relu6_qmax(L.out.scale, L.out.zp));
  LOWBIT_CHECK(L.out.qmin <= L.out.qmax, path, ": empty output range after folding the activation");
  L.weight.resize((size_t)w.numel());
  const float* pw = w.data<float>();
  for (int64_t o = 0; o < k; ++o) {
    const float inv = qm::inverse_scale(wp.scale[wp.scale.size() == 1 ? 0 : (size_t)o]);
    for (int64_t i = 0; i < per; ++i)
      L.weight[(size_t)(o * per + i)] = (int8_t)qm::quantize(pw[o * per + i], inv, 0, wq.qmin(), wq.qmax());
  }
  if (L.weight_scale.size() == (size_t)k) refine_coarse_channels(L, pw);
  L.bias.assign((size_t)k, 0);
  if (b_in.defined()) {
    const std::vector<float> b = b_in.to_vector();
    LOWBIT_CHECK((int64_t)b.size() == k, path, ": bias has ", b.size(), " values for ", k, " output channels");
    for (int64_t o = 0; o < k; ++o)
      L.bias[(size_t)o] = qm::quantize_bias(b[(size_t)o], in.scale, L.weight_scale[L.weight_scale.size() == 1 ? 0 : (size_t)o]);
  }
  return L;
}

// ---- integer computation on floats ---------------------------------------------------------

Tensor centered_integers(const Tensor& x_in, const Grid& g) {
  const Tensor x = x_in.detach().contiguous();
  Tensor y = Tensor::uninitialized(x.shape());
  const float inv = qm::inverse_scale(g.scale);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) py[i] = (float)qm::round_half_even(px[i] * inv);
  return y;
}

Tensor requantize_accumulators(const Tensor& acc_in, const std::vector<float>& mult, const Grid& out) {
  const Tensor acc = acc_in.detach().contiguous();
  const int64_t n = acc.shape()[0], k = acc.shape()[1], inner = acc.numel() / std::max<int64_t>(1, n * k);
  Tensor y = Tensor::uninitialized(acc.shape());
  const float* pa = acc.data<float>();
  float* py = y.data<float>();
#pragma omp parallel for schedule(static) if (acc.numel() > 65536)
  for (int64_t p = 0; p < n * k; ++p) {
    const float m = mult[mult.size() == 1 ? 0 : (size_t)(p % k)];
    for (int64_t i = 0; i < inner; ++i) {
      // acc holds an integer (exact float sums); the engine converts its int32 the same way.
      // The clamp keeps the cast defined (|acc| ≥ 2^31 is a broken layer anyway).
      const float a = std::fmin(std::fmax(pa[p * inner + i], -2147483648.0f), 2147483520.0f);
      const int32_t q = qm::requantize((int32_t)a, m, out.zp, out.qmin, out.qmax);
      py[p * inner + i] = qm::dequantize(q, out.zp, out.scale);
    }
  }
  return y;
}

Tensor global_average_integer(const Tensor& x_in, const Grid& in, const Grid& out) {
  const Tensor x = centered_integers(x_in, in);
  const int64_t n = x.shape()[0], c = x.shape()[1], hw = x.numel() / std::max<int64_t>(1, n * c);
  Tensor y = Tensor::uninitialized({n, c, 1, 1});
  const float m = qm::avg_multiplier(qm::scale_ratio(in.scale, out.scale), hw);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (int64_t p = 0; p < n * c; ++p) {
    int32_t s = 0;
    for (int64_t i = 0; i < hw; ++i) s += (int32_t)px[p * hw + i];
    py[p] = qm::dequantize(qm::average(s, m, out.zp, out.qmin, out.qmax), out.zp, out.scale);
  }
  return y;
}

// ---- trace ------------------------------------------------------------------------------

int Trace::find(const Tensor& t) const {
  if (!t.defined() || t.dtype() != DType::f32) return -1;
  auto it = by_storage_.find({t.impl()->storage.get(), t.offset()});
  if (it == by_storage_.end()) return -1;
  const TraceValue& v = values_[(size_t)it->second];
  return shape_numel(v.shape) == t.numel() && t.is_contiguous() ? it->second : -1;
}

int Trace::add(const Tensor& t, const Grid& g) {
  const int id = (int)values_.size();
  values_.push_back({g, t.shape()});
  keep_.push_back(t);
  by_storage_[{t.impl()->storage.get(), t.offset()}] = id;
  return id;
}

int Trace::add_float(const Tensor& t) {
  const int id = add(t, Grid{});
  values_[(size_t)id].is_float = true;
  return id;
}

// ---- integer forms --------------------------------------------------------------------------

std::shared_ptr<const LayerForm> make_layer_form(IntegerLayer layer) {
  auto f = std::make_shared<LayerForm>();
  f->weight = Tensor::uninitialized(layer.weight_shape);
  float* pw = f->weight.data<float>();
  for (size_t i = 0; i < layer.weight.size(); ++i) pw[i] = (float)layer.weight[i];
  const std::vector<float> bias(layer.bias.begin(), layer.bias.end());
  f->bias = Tensor::from_vector(bias, {(int64_t)bias.size()});
  f->multipliers = layer.multipliers();
  f->layer = std::move(layer);
  return f;
}

Recording::Recording(nn::Module& root, Trace& t) : modules_(nn::modules_of<Recordable>(root)) {
  for (auto& [path, r] : modules_) r->integer.trace = &t;
}

Recording::~Recording() {
  for (auto& [path, r] : modules_) r->integer.trace = nullptr;
}

void clear_integer_forms(nn::Module& root) {
  for (auto& [path, r] : nn::modules_of<Recordable>(root)) r->integer.clear();
}

}  // namespace lowbit::quant
