// conv2d: NCHW activations, K×(C/G)×R×S weights; the kernel table picks
// oneDNN or im2col + our GEMM.
#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"
#include "core/profile.h"

namespace lowbit {

OpCounters& op_counters() {
  static OpCounters c;
  return c;
}

namespace {

// 2 · N·K·P·Q·(C/G)·R·S: one direction of a convolution.
int64_t conv_flops(const kernels::Conv2dShape& s) {
  return 2 * s.n * s.k * s.p() * s.q() * (s.c / s.groups) * s.r * s.s;
}

class Conv2dBackward final : public Node {
 public:
  Conv2dBackward(const Tensor& x, const Tensor& w, bool has_bias, const kernels::Conv2dShape& sh)
      : x_(x, "Conv2dBackward"), w_(w, "Conv2dBackward"), has_bias_(has_bias), sh_(sh) {}
  const char* name() const override { return "Conv2dBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor x = x_.unpack(), w = w_.unpack();
    Tensor gc = g.contiguous();
    const auto& k = detail::fk();
    Tensor gx, gw, gb;
    if (needs_input_grad(0)) {
      count_flops(conv_flops(sh_));
      gx = Tensor::uninitialized(x.shape());
      Tensor wc = w.contiguous();
      k.f32_conv2d_backward_input(gx.data<float>(), gc.data<float>(), wc.data<float>(), sh_);
    }
    if (needs_input_grad(1) || needs_input_grad(2)) {
      count_flops(conv_flops(sh_));
      Tensor xc = x.contiguous();
      gw = Tensor::uninitialized(w.shape());
      if (has_bias_) gb = Tensor::uninitialized({sh_.k});
      k.f32_conv2d_backward_weight(gw.data<float>(), has_bias_ ? gb.data<float>() : nullptr, gc.data<float>(),
                                   xc.data<float>(), sh_);
    }
    return {gx, needs_input_grad(1) ? gw : Tensor(), needs_input_grad(2) ? gb : Tensor()};
  }
  void release_saved() override { x_.release(); w_.release(); }

 private:
  SavedTensor x_, w_;
  bool has_bias_;
  kernels::Conv2dShape sh_;
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  detail::check_f32(x, "conv2d", "input");
  detail::check_f32(weight, "conv2d", "weight");
  LOWBIT_CHECK(x.dim() == 4, "conv2d: input must be 4-D NCHW, got ", shape_str(x.shape()));
  LOWBIT_CHECK(weight.dim() == 4, "conv2d: weight must be 4-D [K, C/groups, R, S], got ", shape_str(weight.shape()));
  LOWBIT_CHECK(o.groups >= 1 && o.stride_h >= 1 && o.stride_w >= 1 && o.dil_h >= 1 && o.dil_w >= 1 && o.pad_h >= 0 &&
                   o.pad_w >= 0,
               "conv2d: invalid options (stride ", o.stride_h, "x", o.stride_w, ", padding ", o.pad_h, "x", o.pad_w,
               ", dilation ", o.dil_h, "x", o.dil_w, ", groups ", o.groups, ")");
  kernels::Conv2dShape sh{x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3],
                          weight.shape()[0], weight.shape()[2], weight.shape()[3],
                          o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dil_h, o.dil_w, o.groups};
  LOWBIT_CHECK(sh.c == weight.shape()[1] * o.groups, "conv2d: input ", shape_str(x.shape()), " has ", sh.c,
               " channels, weight ", shape_str(weight.shape()), " with groups=", o.groups, " expects ",
               weight.shape()[1] * o.groups);
  LOWBIT_CHECK(sh.k % o.groups == 0, "conv2d: ", sh.k, " output channels of weight ", shape_str(weight.shape()),
               " are not divisible by groups=", o.groups);
  LOWBIT_CHECK(sh.p() > 0 && sh.q() > 0, "conv2d: input ", shape_str(x.shape()), " is too small for weight ",
               shape_str(weight.shape()), " with padding ", o.pad_h, "x", o.pad_w, " and dilation ", o.dil_h, "x",
               o.dil_w);
  if (bias.defined()) {
    detail::check_f32(bias, "conv2d", "bias");
    LOWBIT_CHECK(bias.dim() == 1 && bias.shape()[0] == sh.k, "conv2d: bias ", shape_str(bias.shape()),
                 " does not match ", sh.k, " output channels of weight ", shape_str(weight.shape()));
  }
  Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous(), bc;
  if (bias.defined()) bc = bias.detach().contiguous();
  Tensor y = Tensor::uninitialized({sh.n, sh.k, sh.p(), sh.q()});
  count_flops(conv_flops(sh));
  if (y.numel())
    detail::fk().f32_conv2d_forward(y.data<float>(), xc.data<float>(), wc.data<float>(),
                                    bias.defined() ? bc.data<float>() : nullptr, sh);
  if (any_requires_grad({&x, &weight, &bias}))
    record(y, std::make_shared<Conv2dBackward>(x, weight, bias.defined(), sh), {&x, &weight, &bias});
  return y;
}

}  // namespace lowbit
