// Pooling: max, average, adaptive average (NCHW), over the reference kernels.
#include <cmath>

#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"
#include "kernels/ref/ref.h"

namespace lowbit {

using kernels::ref::Pool2dShape;

namespace {

// Output size as PyTorch's pooling_output_shape: with ceil_mode the last
// window must start inside the input or its left padding.
int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  int64_t out = (span + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

Pool2dShape make_shape(const Tensor& x, const Pool2dOptions& o, const char* op) {
  LOWBIT_CHECK(x.dim() == 4, op, ": input must be 4-D NCHW, got ", shape_str(x.shape()));
  LOWBIT_CHECK(o.kernel_h > 0 && o.kernel_w > 0 && o.stride_h > 0 && o.stride_w > 0, op, ": invalid kernel ",
               o.kernel_h, "x", o.kernel_w, " / stride ", o.stride_h, "x", o.stride_w);
  LOWBIT_CHECK(o.pad_h >= 0 && o.pad_w >= 0 && 2 * o.pad_h <= o.kernel_h && 2 * o.pad_w <= o.kernel_w, op,
               ": padding ", o.pad_h, "x", o.pad_w, " must be at most half the kernel ", o.kernel_h, "x", o.kernel_w);
  Pool2dShape s;
  s.n = x.shape()[0]; s.c = x.shape()[1]; s.h = x.shape()[2]; s.w = x.shape()[3];
  s.r = o.kernel_h; s.s = o.kernel_w;
  s.stride_h = o.stride_h; s.stride_w = o.stride_w;
  s.pad_h = o.pad_h; s.pad_w = o.pad_w;
  s.p = pool_out(s.h, s.r, s.pad_h, s.stride_h, 1, o.ceil_mode);
  s.q = pool_out(s.w, s.s, s.pad_w, s.stride_w, 1, o.ceil_mode);
  s.count_include_pad = o.count_include_pad;
  LOWBIT_CHECK(s.p > 0 && s.q > 0, op, ": input ", shape_str(x.shape()), " is too small for kernel ", s.r, "x", s.s);
  return s;
}

class MaxPoolBackward final : public Node {
 public:
  MaxPoolBackward(Pool2dShape s, Tensor argmax) : s_(s), argmax_(std::move(argmax)) {}
  const char* name() const override { return "MaxPool2dBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::empty({s_.n, s_.c, s_.h, s_.w});
    Tensor gc = g.contiguous();
    kernels::ref::f32_max_pool2d_backward(gx.data<float>(), gc.data<float>(), argmax_.data<int32_t>(), s_);
    return {gx};
  }
  void release_saved() override { argmax_ = Tensor(); }

 private:
  Pool2dShape s_;
  Tensor argmax_;
};

class AvgPoolBackward final : public Node {
 public:
  explicit AvgPoolBackward(Pool2dShape s) : s_(s) {}
  const char* name() const override { return "AvgPool2dBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::empty({s_.n, s_.c, s_.h, s_.w});
    Tensor gc = g.contiguous();
    kernels::ref::f32_avg_pool2d_backward(gx.data<float>(), gc.data<float>(), s_);
    return {gx};
  }

 private:
  Pool2dShape s_;
};

class AdaptiveAvgPoolBackward final : public Node {
 public:
  AdaptiveAvgPoolBackward(Shape in, int64_t p, int64_t q) : in_(std::move(in)), p_(p), q_(q) {}
  const char* name() const override { return "AdaptiveAvgPool2dBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::empty(in_);
    Tensor gc = g.contiguous();
    kernels::ref::f32_adaptive_avg_pool2d_backward(gx.data<float>(), gc.data<float>(), in_[0] * in_[1], in_[2], in_[3],
                                                   p_, q_);
    return {gx};
  }

 private:
  Shape in_;
  int64_t p_, q_;
};

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o) {
  detail::check_f32(x, "max_pool2d", "input");
  Pool2dShape s = make_shape(x, o, "max_pool2d");
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty({s.n, s.c, s.p, s.q});
  Tensor idx = Tensor::empty({s.n, s.c, s.p, s.q}, DType::s32);
  kernels::ref::f32_max_pool2d_forward(y.data<float>(), idx.data<int32_t>(), xc.data<float>(), s);
  if (any_requires_grad({&x})) record(y, std::make_shared<MaxPoolBackward>(s, idx), {&x});
  return y;
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o) {
  detail::check_f32(x, "avg_pool2d", "input");
  Pool2dShape s = make_shape(x, o, "avg_pool2d");
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty({s.n, s.c, s.p, s.q});
  kernels::ref::f32_avg_pool2d_forward(y.data<float>(), xc.data<float>(), s);
  if (any_requires_grad({&x})) record(y, std::make_shared<AvgPoolBackward>(s), {&x});
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t p, int64_t q) {
  detail::check_f32(x, "adaptive_avg_pool2d", "input");
  LOWBIT_CHECK(x.dim() == 4, "adaptive_avg_pool2d: input must be 4-D NCHW, got ", shape_str(x.shape()));
  LOWBIT_CHECK(p > 0 && q > 0, "adaptive_avg_pool2d: output size ", p, "x", q, " must be positive");
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty({x.shape()[0], x.shape()[1], p, q});
  kernels::ref::f32_adaptive_avg_pool2d_forward(y.data<float>(), xc.data<float>(), x.shape()[0] * x.shape()[1],
                                                x.shape()[2], x.shape()[3], p, q);
  if (any_requires_grad({&x})) record(y, std::make_shared<AdaptiveAvgPoolBackward>(x.shape(), p, q), {&x});
  return y;
}

}  // namespace lowbit
