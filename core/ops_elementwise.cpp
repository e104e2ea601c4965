// Elementwise ops with PyTorch broadcasting. Forward goes through the kernel
// table (contiguous runs, stride 0 for broadcast); backward formulas are
// written with ops and the detail::map helpers.
#include <cmath>

#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"

namespace lowbit {

using kernels::Binary;
using kernels::Unary;

namespace {

Tensor binary_forward(const Tensor& a, const Tensor& b, Binary op, const char* name) {
  detail::check_f32(a, name, "a");
  detail::check_f32(b, name, "b");
  const Shape out_shape = detail::broadcast_shapes(a.shape(), b.shape(), name);
  Tensor y = Tensor::empty(out_shape);
  const auto& k = detail::fk();
  const int64_t n = y.numel();
  if (n == 0) return y;
  if (a.shape() == out_shape && b.shape() == out_shape && a.is_contiguous() && b.is_contiguous()) {
    k.f32_binary(y.data<float>(), a.data<float>(), 1, b.data<float>(), 1, op, n);
    return y;
  }
  if (a.shape() == out_shape && a.is_contiguous() && b.numel() == 1) {
    k.f32_binary(y.data<float>(), a.data<float>(), 1, b.data<float>(), 0, op, n);
    return y;
  }
  if (b.shape() == out_shape && b.is_contiguous() && a.numel() == 1) {
    k.f32_binary(y.data<float>(), a.data<float>(), 0, b.data<float>(), 1, op, n);
    return y;
  }
  const Tensor ae = a.detach().expand(out_shape), be = b.detach().expand(out_shape);
  float* py = y.data<float>();
  const float* pa = ae.data<float>();
  const float* pb = be.data<float>();
  detail::for_each_row<3>(out_shape, {&y.strides(), &ae.strides(), &be.strides()},
                          [&](const std::array<int64_t, 3>& off, int64_t len, const std::array<int64_t, 3>& st) {
                            // y is contiguous: its step along any row is 1
                            k.f32_binary(py + off[0], pa + off[1], st[1], pb + off[2], st[2], op, len);
                          });
  return y;
}

class AddBackward final : public Node {
 public:
  AddBackward(Shape a, Shape b, float alpha) : a_(std::move(a)), b_(std::move(b)), alpha_(alpha) {}
  const char* name() const override { return alpha_ > 0 ? "AddBackward" : "SubBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(g, a_);
    if (needs_input_grad(1)) gb = alpha_ > 0 ? sum_to(g, b_) : neg(sum_to(g, b_));
    return {ga, gb};
  }

 private:
  Shape a_, b_;
  float alpha_;
};

class MulBackward final : public Node {
 public:
  MulBackward(const Tensor& a, const Tensor& b) : a_(a, "MulBackward"), b_(b, "MulBackward") {}
  const char* name() const override { return "MulBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor a = a_.unpack(), b = b_.unpack(), ga, gb;
    if (needs_input_grad(0)) ga = sum_to(mul(g, b), a.shape());
    if (needs_input_grad(1)) gb = sum_to(mul(g, a), b.shape());
    return {ga, gb};
  }
  void release_saved() override { a_.release(); b_.release(); }

 private:
  SavedTensor a_, b_;
};

class DivBackward final : public Node {
 public:
  DivBackward(const Tensor& a, const Tensor& b) : a_(a, "DivBackward"), b_(b, "DivBackward") {}
  const char* name() const override { return "DivBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor a = a_.unpack(), b = b_.unpack(), ga, gb;
    Tensor g_over_b = div(g, b);
    if (needs_input_grad(0)) ga = sum_to(g_over_b, a.shape());
    if (needs_input_grad(1)) gb = sum_to(neg(mul(g_over_b, div(a, b))), b.shape());
    return {ga, gb};
  }
  void release_saved() override { a_.release(); b_.release(); }

 private:
  SavedTensor a_, b_;
};

// Unary op whose gradient is g * f'(saved) for one saved tensor (the input
// or the output, whichever the derivative is cheaper in).
template <class Deriv>
class UnaryBackward final : public Node {
 public:
  UnaryBackward(const char* name, const Tensor& saved, Deriv d) : name_(name), saved_(saved, name), d_(d) {}
  const char* name() const override { return name_; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor s = saved_.unpack();
    return {detail::map2(g, s, d_)};
  }
  void release_saved() override { saved_.release(); }

 private:
  const char* name_;
  SavedTensor saved_;
  Deriv d_;
};

Tensor unary_forward(const Tensor& x, Unary op, const char* name) {
  detail::check_f32(x, name, "input");
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::uninitialized(x.shape());
  if (y.numel()) detail::fk().f32_unary(y.data<float>(), xc.data<float>(), op, y.numel());
  return y;
}

// y = op(x); grad = g * deriv(saved) with saved = x (save_input) or y.
template <class Deriv>
Tensor unary(const Tensor& x, Unary op, const char* name, bool save_input, Deriv deriv) {
  Tensor y = unary_forward(x, op, name);
  if (any_requires_grad({&x}))
    record(y, std::make_shared<UnaryBackward<Deriv>>(name, save_input ? x : y.detach(), deriv), {&x});
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(a, b, Binary::add, "add");
  if (any_requires_grad({&a, &b})) record(y, std::make_shared<AddBackward>(a.shape(), b.shape(), 1.0f), {&a, &b});
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(a, b, Binary::sub, "sub");
  if (any_requires_grad({&a, &b})) record(y, std::make_shared<AddBackward>(a.shape(), b.shape(), -1.0f), {&a, &b});
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(a, b, Binary::mul, "mul");
  if (any_requires_grad({&a, &b}))
    record(y, std::make_shared<MulBackward>(a, b), {&a, &b});
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(a, b, Binary::div, "div");
  if (any_requires_grad({&a, &b})) record(y, std::make_shared<DivBackward>(a, b), {&a, &b});
  return y;
}

Tensor add(const Tensor& a, float b) { return add(a, Tensor::scalar(b)); }
Tensor mul(const Tensor& a, float b) { return mul(a, Tensor::scalar(b)); }

Tensor neg(const Tensor& x) {
  return unary(x, Unary::neg, "NegBackward", true, [](float g, float) { return -g; });
}

Tensor exp(const Tensor& x) {
  return unary(x, Unary::exp, "ExpBackward", false, [](float g, float y) { return g * y; });
}

Tensor log(const Tensor& x) {
  return unary(x, Unary::log, "LogBackward", true, [](float g, float x) { return g / x; });
}

Tensor sqrt(const Tensor& x) {
  return unary(x, Unary::sqrt, "SqrtBackward", false, [](float g, float y) { return g / (2.0f * y); });
}

Tensor abs(const Tensor& x) {
  // d|x|/dx = sign(x), 0 at 0 (as PyTorch).
  return unary(x, Unary::abs, "AbsBackward", true,
               [](float g, float x) { return x > 0 ? g : (x < 0 ? -g : 0.0f); });
}

Tensor relu(const Tensor& x) {
  return unary(x, Unary::relu, "ReluBackward", false,
               [](float g, float y) { return kernels::act_passes(kernels::Act::relu, y) ? g : 0.0f; });
}

Tensor relu6(const Tensor& x) {
  // PyTorch's relu6 is hardtanh(0, 6): gradient 0 at and beyond both edges
  // (act_passes on the input, which is inside (0, 6) exactly when the output is).
  return unary(x, Unary::relu6, "Relu6Backward", true,
               [](float g, float x) { return kernels::act_passes(kernels::Act::relu6, x) ? g : 0.0f; });
}

Tensor sigmoid(const Tensor& x) {
  return unary(x, Unary::sigmoid, "SigmoidBackward", false, [](float g, float y) { return g * y * (1.0f - y); });
}

Tensor tanh(const Tensor& x) {
  return unary(x, Unary::tanh, "TanhBackward", false, [](float g, float y) { return g * (1.0f - y * y); });
}

namespace {

class PowBackward final : public Node {
 public:
  PowBackward(const Tensor& x, float e) : x_(x, "PowBackward"), e_(e) {}
  const char* name() const override { return "PowBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const float e = e_;
    if (e == 0.0f) return {Tensor::zeros(g.shape())};
    return {detail::map2(g, x_.unpack(), [e](float g, float x) { return g * e * std::pow(x, e - 1.0f); })};
  }
  void release_saved() override { x_.release(); }

 private:
  SavedTensor x_;
  float e_;
};

class ClampBackward final : public Node {
 public:
  ClampBackward(const Tensor& x, float lo, float hi) : x_(x, "ClampBackward"), lo_(lo), hi_(hi) {}
  const char* name() const override { return "ClampBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const float lo = lo_, hi = hi_;
    return {detail::map2(g, x_.unpack(), [lo, hi](float g, float x) { return x >= lo && x <= hi ? g : 0.0f; })};
  }
  void release_saved() override { x_.release(); }

 private:
  SavedTensor x_;
  float lo_, hi_;
};

}  // namespace

Tensor pow(const Tensor& x, float e) {
  detail::check_f32(x, "pow", "input");
  Tensor y;
  if (e == 2.0f) y = unary_forward(x, Unary::square, "pow");
  else if (e == 1.0f) y = x.detach().clone();
  else if (e == 0.5f) y = unary_forward(x, Unary::sqrt, "pow");
  else if (e == -1.0f) y = unary_forward(x, Unary::reciprocal, "pow");
  else y = detail::map1(x, [e](float v) { return std::pow(v, e); });
  if (any_requires_grad({&x})) record(y, std::make_shared<PowBackward>(x, e), {&x});
  return y;
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  detail::check_f32(x, "clamp", "input");
  LOWBIT_CHECK(lo <= hi, "clamp: min ", lo, " is greater than max ", hi);
  Tensor y = detail::map1(x, [lo, hi](float v) { return std::isnan(v) ? v : std::min(std::max(v, lo), hi); });
  if (any_requires_grad({&x})) record(y, std::make_shared<ClampBackward>(x, lo, hi), {&x});
  return y;
}

}  // namespace lowbit
