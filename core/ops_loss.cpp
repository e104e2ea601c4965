// Losses: cross_entropy (with label smoothing), mse_loss, kl_div.
#include <cmath>

#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"

namespace lowbit {

namespace {

Tensor reduce(const Tensor& per_elem, Reduction r, int64_t batch) {
  switch (r) {
    case Reduction::none: return per_elem;
    case Reduction::sum: return sum(per_elem);
    case Reduction::mean: return mean(per_elem);
    case Reduction::batchmean: return mul(sum(per_elem), 1.0f / (float)std::max<int64_t>(batch, 1));
  }
  return per_elem;
}

class CrossEntropyBackward final : public Node {
 public:
  CrossEntropyBackward(Tensor logp, Tensor target, float ls) : logp_(std::move(logp)), target_(std::move(target)), ls_(ls) {}
  const char* name() const override { return "CrossEntropyBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    // loss_i = −(1−ε)·logp[i, t_i] − (ε/C)·Σ_c logp[i, c]
    // d loss_i / d logit[i, c] = softmax[i, c] − (1−ε)·[c = t_i] − ε/C
    const int64_t n = logp_.shape()[0], c = logp_.shape()[1];
    Tensor gx = Tensor::empty({n, c});
    Tensor gc = g.contiguous();
    const float* pl = logp_.data<float>();
    const int32_t* pt = target_.data<int32_t>();
    const float* pg = gc.data<float>();
    float* px = gx.data<float>();
    const float ls = ls_;
    for (int64_t i = 0; i < n; ++i) {
      const float gi = pg[i];
      for (int64_t j = 0; j < c; ++j)
        px[i * c + j] = gi * (std::exp(pl[i * c + j]) - (j == pt[i] ? 1.0f - ls : 0.0f) - ls / (float)c);
    }
    return {gx};
  }
  void release_saved() override { logp_ = Tensor(); }

 private:
  Tensor logp_, target_;
  float ls_;
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, float ls, Reduction reduction) {
  detail::check_f32(logits, "cross_entropy", "input");
  LOWBIT_CHECK(logits.dim() == 2, "cross_entropy: input must be [N, C] logits, got ", shape_str(logits.shape()));
  LOWBIT_CHECK(target.defined() && target.dtype() == DType::s32, "cross_entropy: target must be s32 class indices");
  const int64_t n = logits.shape()[0], c = logits.shape()[1];
  LOWBIT_CHECK(target.dim() == 1 && target.shape()[0] == n, "cross_entropy: target ", shape_str(target.shape()),
               " does not match input ", shape_str(logits.shape()));
  LOWBIT_CHECK(ls >= 0.0f && ls <= 1.0f, "cross_entropy: label_smoothing ", ls, " is not in [0, 1]");
  Tensor t = target.contiguous();
  const int32_t* pt = t.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    LOWBIT_CHECK(pt[i] >= 0 && pt[i] < c, "cross_entropy: target[", i, "] = ", pt[i], " is out of range for ", c,
                 " classes");
  Tensor logp;
  {
    NoGradGuard ng;
    logp = log_softmax(logits, 1);
  }
  Tensor per = Tensor::empty({n});
  const float* pl = logp.data<float>();
  float* pp = per.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += pl[i * c + j];
    pp[i] = -(1.0f - ls) * pl[i * c + pt[i]] - (ls / (float)c) * (float)s;
  }
  if (any_requires_grad({&logits})) record(per, std::make_shared<CrossEntropyBackward>(logp, t, ls), {&logits});
  return reduce(per, reduction, n);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  LOWBIT_CHECK(input.shape() == target.shape(), "mse_loss: input ", shape_str(input.shape()), " and target ",
               shape_str(target.shape()), " differ in shape");
  Tensor d = sub(input, target);
  return reduce(mul(d, d), reduction, input.dim() ? input.shape()[0] : 1);
}

namespace {

class KlDivBackward final : public Node {
 public:
  KlDivBackward(const Tensor& input, const Tensor& target) : in_(input, "KlDivBackward"), t_(target, "KlDivBackward") {}
  const char* name() const override { return "KlDivBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    // l = t·(log t − x):  ∂l/∂x = −t;  ∂l/∂t = log t + 1 − x  (0 where t = 0)
    Tensor x = in_.unpack(), t = t_.unpack(), gx, gt;
    if (needs_input_grad(0)) gx = detail::map2(g, t, [](float g, float t) { return -g * t; });
    if (needs_input_grad(1))
      gt = detail::map3(g, t, x, [](float g, float t, float x) { return t > 0 ? g * (std::log(t) + 1.0f - x) : 0.0f; });
    return {gx, gt};
  }
  void release_saved() override { in_.release(); t_.release(); }

 private:
  SavedTensor in_, t_;
};

}  // namespace

Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction) {
  detail::check_f32(input, "kl_div", "input");
  detail::check_f32(target, "kl_div", "target");
  LOWBIT_CHECK(input.shape() == target.shape(), "kl_div: input ", shape_str(input.shape()), " and target ",
               shape_str(target.shape()), " differ in shape");
  Tensor per = detail::map2(input, target, [](float x, float t) { return t > 0 ? t * (std::log(t) - x) : 0.0f; });
  if (any_requires_grad({&input, &target}))
    record(per, std::make_shared<KlDivBackward>(input, target), {&input, &target});
  return reduce(per, reduction, input.dim() ? input.shape()[0] : 1);
}

}  // namespace lowbit
