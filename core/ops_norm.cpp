// batch_norm over N×C×(H×W…), as torch.nn.functional.batch_norm.
// Training: batch mean and biased variance normalise; running stats get the
// unbiased variance (n/(n-1)), momentum-weighted. Eval: running stats.
// A fused activation is applied in the same pass; its backward gates the
// incoming gradient by the saved output inside the batch-norm backward kernel.
#include <cmath>

#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"

namespace lowbit {

namespace {

static_assert(int(Activation::none) == int(kernels::Act::none) && int(Activation::relu) == int(kernels::Act::relu) &&
              int(Activation::relu6) == int(kernels::Act::relu6));

class BatchNormBackward final : public Node {
 public:
  // scale_a/scale_b: with an input scale c, dL/dc = a·(dL/dγ-like Σ g·x̂) + b·Σ g (see batch_norm).
  BatchNormBackward(const Tensor& x, Tensor mean, Tensor invstd, const Tensor& weight, bool training,
                    kernels::Act act, const Tensor& y, std::vector<float> scale_a, std::vector<float> scale_b)
      : x_(x, name_of(act)), mean_(std::move(mean)), invstd_(std::move(invstd)), w_(weight, name_of(act)),
        y_(act == kernels::Act::none ? Tensor() : y.detach(), name_of(act)), training_(training), act_(act),
        scale_a_(std::move(scale_a)), scale_b_(std::move(scale_b)) {}
  const char* name() const override { return name_of(act_); }
  static const char* name_of(kernels::Act a) {
    return a == kernels::Act::relu ? "BatchNormReluBackward"
           : a == kernels::Act::relu6 ? "BatchNormRelu6Backward" : "BatchNormBackward";
  }

  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor x = x_.unpack().contiguous(), gc = g.contiguous();
    Tensor w = w_.defined() ? w_.unpack().contiguous() : Tensor();
    Tensor y = y_.defined() ? y_.unpack() : Tensor();  // made contiguous by the forward
    const int64_t n = x.shape()[0], c = x.shape()[1], hw = x.numel() / std::max<int64_t>(n * c, 1);
    Tensor gx = needs_input_grad(0) ? Tensor::uninitialized(x.shape()) : Tensor();
    Tensor gw = Tensor::empty({c}), gb = Tensor::empty({c});
    detail::fk().f32_bn_backward(gx.defined() ? gx.data<float>() : nullptr, gb.data<float>(), gw.data<float>(),
                                 x.data<float>(), gc.data<float>(), y.defined() ? y.data<float>() : nullptr, act_,
                                 mean_.data<float>(), invstd_.data<float>(),
                                 w.defined() ? w.data<float>() : nullptr, training_, n, c, hw);
    Tensor gs;
    if (needs_input_grad(3)) {
      gs = Tensor::empty({c});
      for (int64_t i = 0; i < c; ++i)
        gs.data<float>()[i] = scale_a_[(size_t)i] * gw.data<float>()[i] + scale_b_[(size_t)i] * gb.data<float>()[i];
    }
    return {gx, needs_input_grad(1) ? gw : Tensor(), needs_input_grad(2) ? gb : Tensor(), gs};
  }
  void release_saved() override { x_.release(); w_.release(); y_.release(); }

 private:
  SavedTensor x_;
  Tensor mean_, invstd_;
  SavedTensor w_, y_;
  bool training_;
  kernels::Act act_;
  std::vector<float> scale_a_, scale_b_;
};

void check_channel_vec(const Tensor& t, int64_t c, const char* what, const Shape& xs) {
  if (!t.defined()) return;
  detail::check_f32(t, "batch_norm", what);
  LOWBIT_CHECK(t.dim() == 1 && t.shape()[0] == c, "batch_norm: ", what, " ", shape_str(t.shape()),
               " does not match the ", c, " channels of input ", shape_str(xs));
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, float momentum, float eps, Activation act,
                  const Tensor& input_scale) {
  const auto kact = static_cast<kernels::Act>(act);
  detail::check_f32(x, "batch_norm", "input");
  LOWBIT_CHECK(x.dim() >= 2, "batch_norm: input must be at least 2-D [N, C, ...], got ", shape_str(x.shape()));
  const int64_t n = x.shape()[0], c = x.shape()[1], hw = x.numel() / std::max<int64_t>(n * c, 1);
  check_channel_vec(running_mean, c, "running_mean", x.shape());
  check_channel_vec(running_var, c, "running_var", x.shape());
  check_channel_vec(weight, c, "weight", x.shape());
  check_channel_vec(bias, c, "bias", x.shape());
  check_channel_vec(input_scale, c, "input_scale", x.shape());
  LOWBIT_CHECK(training || (running_mean.defined() && running_var.defined()),
               "batch_norm: eval mode needs running_mean and running_var");
  const int64_t count = n * hw;
  LOWBIT_CHECK(!training || count > 1, "batch_norm: expected more than 1 value per channel when training, got input ",
               shape_str(x.shape()));

  Tensor xc = x.detach().contiguous();
  const auto& k = detail::fk();
  // The input scale c: the op normalises x' = c·x without forming it. Batch
  // statistics of x' are c·mean(x) and c²·var(x); x̂ = (x' − mean')/√(var' + eps)
  // = (x − mean(x))·invstd with invstd = c/√(c²·var(x) + eps), so the kernels
  // run on x with that invstd (eval: mean = running_mean/c, invstd = c/√(rv + eps)).
  std::vector<float> cs((size_t)c, 1.0f);
  if (input_scale.defined()) cs = input_scale.detach().contiguous().to_vector();
  Tensor mean = Tensor::empty({c}), var = Tensor::empty({c});
  if (training) {
    k.f32_channel_moments(mean.data<float>(), var.data<float>(), xc.data<float>(), n, c, hw);
    if (running_mean.defined()) {
      NoGradGuard ng;
      // running = (1 − momentum)·running + momentum·batch (unbiased variance).
      // Computed in a contiguous copy, written back with copy_ (which bumps
      // the version counter), so strided running-stat views work too.
      Tensor rm = running_mean.detach().clone(), rv = running_var.detach().clone();
      float* prm = rm.data<float>();
      float* prv = rv.data<float>();
      const float* pm = mean.data<float>();
      const float* pv = var.data<float>();
      const float unbias = (float)count / (float)(count - 1);
      for (int64_t i = 0; i < c; ++i) {
        const float ci = cs[(size_t)i];
        prm[i] = (1 - momentum) * prm[i] + momentum * (ci * pm[i]);
        prv[i] = (1 - momentum) * prv[i] + momentum * (ci * ci * pv[i]) * unbias;
      }
      Tensor(running_mean).copy_(rm);
      Tensor(running_var).copy_(rv);
    }
  } else {
    mean.copy_(running_mean.detach());
    var.copy_(running_var.detach());
  }
  // y = x·scale + shift with scale = w·invstd, shift = b − mean·scale; with an
  // input scale, dL/dc = a·Σ g·x̂ + b·Σ g per channel:
  //   training  a = w·eps/(c·(c²·var + eps)), b = 0   (the batch statistics
  //             absorb c but for eps)
  //   eval      a = w/c, b = w·running_mean·invstd_running/c
  Tensor invstd = Tensor::empty({c}), scale = Tensor::empty({c}), shift = Tensor::empty({c});
  std::vector<float> ga, gb;
  if (input_scale.defined()) ga.assign((size_t)c, 0.0f), gb.assign((size_t)c, 0.0f);
  {
    float* pm = mean.data<float>();
    const float* pv = var.data<float>();
    float* pi = invstd.data<float>();
    float* ps = scale.data<float>();
    float* psh = shift.data<float>();
    Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
    Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
    for (int64_t i = 0; i < c; ++i) {
      const float w = wc.defined() ? wc.data<float>()[i] : 1.0f, ci = cs[(size_t)i];
      if (!input_scale.defined()) {
        pi[i] = 1.0f / std::sqrt(pv[i] + eps);
      } else if (training) {
        const float v2 = ci * ci * pv[i] + eps;
        pi[i] = ci / std::sqrt(v2);
        ga[(size_t)i] = w * eps / (ci * v2);
      } else {
        const float inv_r = 1.0f / std::sqrt(pv[i] + eps);
        ga[(size_t)i] = w / ci;
        gb[(size_t)i] = w * pm[i] * inv_r / ci;
        pi[i] = ci * inv_r;
        pm[i] = pm[i] / ci;
      }
      ps[i] = pi[i] * w;
      psh[i] = (bc.defined() ? bc.data<float>()[i] : 0.0f) - pm[i] * ps[i];
    }
  }
  Tensor y = Tensor::uninitialized(x.shape());
  if (y.numel()) k.f32_channel_affine(y.data<float>(), xc.data<float>(), scale.data<float>(), shift.data<float>(), kact, n, c, hw);
  if (any_requires_grad({&x, &weight, &bias, &input_scale}))
    record(y, std::make_shared<BatchNormBackward>(x, mean, invstd, weight, training, kact, y, std::move(ga), std::move(gb)),
           {&x, &weight, &bias, &input_scale});
  return y;
}

}  // namespace lowbit
