#include "distill/losses.h"

#include <limits>

#include "core/error.h"

namespace lowbit::distill {

Tensor kd_loss(const Tensor& s, const Tensor& t, float temperature) {
  LOWBIT_CHECK(temperature > 0, "kd_loss: temperature must be positive, got ", temperature);
  LOWBIT_CHECK(s.dim() == 2 && s.shape() == t.shape(), "kd_loss: student logits ", shape_str(s.shape()),
               " and teacher logits ", shape_str(t.shape()), " must be the same N×classes");
  const float inv = 1.0f / temperature;
  Tensor log_p_s = log_softmax(s * inv, 1);
  Tensor p_t = softmax(t.detach() * inv, 1);
  return kl_div(log_p_s, p_t, Reduction::batchmean) * (temperature * temperature);
}

Tensor soft_target_loss(const Tensor& s, const Tensor& t, const Tensor& labels, float temperature, float alpha,
                        float label_smoothing) {
  LOWBIT_CHECK(alpha >= 0 && alpha <= 1, "soft_target_loss: alpha must be in [0, 1], got ", alpha);
  // One formula for every α (no shortcut at 0 or 1): α = 0 still evaluates the
  // KD term and its backward, and equals plain training bit for bit (x·1 and
  // x + 0 are exact), which the distiller's α = 0 test checks.
  return kd_loss(s, t, temperature) * alpha + cross_entropy(s, labels, label_smoothing) * (1.0f - alpha);
}

std::pair<Tensor, Tensor> match_spatial(const Tensor& a, const Tensor& b, const char* what) {
  LOWBIT_CHECK(a.dim() == 4 && b.dim() == 4 && a.shape()[0] == b.shape()[0], what, ": feature maps ",
               shape_str(a.shape()), " and ", shape_str(b.shape()), " must be N×C×H×W with the same N");
  const int64_t ha = a.shape()[2], wa = a.shape()[3], hb = b.shape()[2], wb = b.shape()[3];
  if (ha == hb && wa == wb) return {a, b};
  if (ha * wa > hb * wb) return {adaptive_avg_pool2d(a, hb, wb), b};
  return {a, adaptive_avg_pool2d(b, ha, wa)};
}

namespace {
// mean_c |a|^p as N×1×H×W.
Tensor channel_energy(const Tensor& a, float p) { return mean(pow(abs(a), p), {1}, true); }
Tensor normalize_rows(const Tensor& m) {
  // F.normalize(dim=1, eps=1e-12): m / max(‖m‖₂, eps)
  Tensor norm = sqrt(sum(m * m, {1}, true));
  return m / clamp(norm, 1e-12f, std::numeric_limits<float>::max());
}
}  // namespace

Tensor attention_map(const Tensor& a, float p) {
  LOWBIT_CHECK(a.dim() == 4, "attention_map: features must be N×C×H×W, got ", shape_str(a.shape()));
  LOWBIT_CHECK(p > 0, "attention_map: p must be positive, got ", p);
  return normalize_rows(flatten(channel_energy(a, p), 1));
}

Tensor attention_loss(const Tensor& s, const Tensor& t, float p) {
  LOWBIT_CHECK(p > 0, "attention_loss: p must be positive, got ", p);
  auto [es, et] = match_spatial(channel_energy(s, p), channel_energy(t.detach(), p), "attention_loss");
  Tensor d = normalize_rows(flatten(es, 1)) - normalize_rows(flatten(et, 1));
  return mean(d * d);
}

HintAdapter::HintAdapter(int64_t sc, int64_t tc) : student_channels(sc), teacher_channels(tc) {
  register_module("conv", std::make_shared<nn::Conv2d>(sc, tc, 1, 1, 0, 1, 1, false));
  register_module("bn", std::make_shared<nn::BatchNorm2d>(tc));
}

Tensor HintAdapter::forward(const Tensor& x) {
  LOWBIT_CHECK(x.dim() == 4 && x.shape()[1] == student_channels, "hint adapter: student features ",
               shape_str(x.shape()), " should have ", student_channels, " channels");
  return child("bn")->forward(child("conv")->forward(x));
}

Tensor hint_loss(HintAdapter& adapter, const Tensor& s, const Tensor& t) {
  LOWBIT_CHECK(t.dim() == 4 && t.shape()[1] == adapter.teacher_channels, "hint_loss: teacher features ",
               shape_str(t.shape()), " should have ", adapter.teacher_channels, " channels");
  auto [a, b] = match_spatial(adapter.forward(s), t.detach(), "hint_loss");
  return mse_loss(a, b);
}

}  // namespace lowbit::distill
