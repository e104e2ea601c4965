#include "quant/fake_quant_ops.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/quant_math.h"

namespace lowbit::quant {

namespace qm = kernels::qmath;

namespace {

// A contiguous tensor as outer × channels × inner; per tensor: one run of numel.
struct ChannelLayout {
  int64_t channels = 1, inner = 1;
};

ChannelLayout layout(const Tensor& x, int axis, int64_t nparams, const char* op) {
  ChannelLayout l;
  if (axis < 0 || nparams == 1) {
    LOWBIT_CHECK(nparams == 1 || axis >= 0, op, ": ", nparams, " scales need a channel axis");
    l.inner = x.numel();  // one run
    return l;
  }
  LOWBIT_CHECK(axis < x.dim(), op, ": channel axis ", axis, " is out of range for input ", shape_str(x.shape()));
  LOWBIT_CHECK(x.shape()[axis] == nparams, op, ": input ", shape_str(x.shape()), " has ", x.shape()[axis],
               " channels on axis ", axis, ", the quantizer has ", nparams);
  l.channels = nparams;
  for (int64_t d = axis + 1; d < x.dim(); ++d) l.inner *= x.shape()[d];
  return l;
}

// Gradient times a 0/1 mask saved by the forward.
class MaskBackward final : public Node {
 public:
  explicit MaskBackward(std::shared_ptr<std::vector<uint8_t>> mask, Shape shape)
      : mask_(std::move(mask)), shape_(std::move(shape)) {}
  const char* name() const override { return "FakeQuantizeBackward"; }
  std::vector<Tensor> backward(const Tensor& g_in) override {
    const uint8_t* m = mask_->data();
    const int64_t n = shape_numel(shape_);
    if (g_in.is_exclusive() && g_in.is_contiguous()) {
      // Nobody else holds this gradient: zero the clipped elements in place.
      // Most of an activation's mask is ones, so this reads the mask and
      // writes little, where a fresh output reads and writes every element.
      float* pg = g_in.data<float>();
      constexpr int64_t kBlock = 64;
#pragma omp parallel for schedule(static) if (n > 32768)
      for (int64_t b = 0; b < n; b += kBlock) {
        const int64_t e = std::min(n, b + kBlock);
        uint8_t all = 1;
        for (int64_t i = b; i < e; ++i) all &= m[i];
        if (!all)
          for (int64_t i = b; i < e; ++i)
            if (!m[i]) pg[i] = 0.0f;
      }
      return {g_in};
    }
    const Tensor g = g_in.contiguous();
    Tensor gx = Tensor::uninitialized(shape_);
    const float* pg = g.data<float>();
    float* px = gx.data<float>();
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; ++i) px[i] = m[i] ? pg[i] : 0.0f;
    return {gx};
  }
  void release_saved() override { mask_.reset(); }

 private:
  std::shared_ptr<std::vector<uint8_t>> mask_;
  Shape shape_;
};

}  // namespace

Tensor fake_quantize(const Tensor& x_in, const QuantParams& qp, int qmin, int qmax) {
  LOWBIT_CHECK(x_in.dtype() == DType::f32, "fake_quantize: input must be f32, got ", dtype_name(x_in.dtype()));
  LOWBIT_CHECK(!qp.scale.empty() && qp.scale.size() == qp.zero_point.size(),
               "fake_quantize: ", qp.scale.size(), " scales and ", qp.zero_point.size(), " zero points");
  const Tensor x = x_in.contiguous();
  const ChannelLayout l = layout(x, qp.axis, (int64_t)qp.scale.size(), "fake_quantize");
  for (float s : qp.scale)
    LOWBIT_CHECK(s > 0 && std::isfinite(s), "fake_quantize: scale ", s, " is not a positive finite number");
  const bool grad = any_requires_grad({&x_in});
  Tensor y = Tensor::uninitialized(x.shape());
  const int64_t n = x.numel();
  auto mask = grad ? std::make_shared<std::vector<uint8_t>>((size_t)n) : nullptr;
  const int64_t outer = n / (l.channels * l.inner);
  kernels::table().q8.fake_quantize_f32(y.data<float>(), mask ? mask->data() : nullptr, x.data<float>(),
                                        qp.scale.data(), qp.zero_point.data(), qmin, qmax, outer, l.channels, l.inner);
  if (grad) record(y, std::make_shared<MaskBackward>(mask, x.shape()), {&x_in});
  return y;
}

namespace {

class LsqBackward final : public Node {
 public:
  LsqBackward(const Tensor& x, std::vector<float> scale, float offset, std::vector<int32_t> zp, ChannelLayout l,
              int qmin, int qmax, float grad_scale, std::vector<float> shrink_grad_scale, Shape scale_shape, Shape offset_shape, bool has_offset)
      : x_(x, "lsq_quantize"), scale_(std::move(scale)), offset_(offset), zp_(std::move(zp)), l_(l),
        qmin_(qmin), qmax_(qmax), grad_scale_(grad_scale), shrink_grad_scale_(std::move(shrink_grad_scale)), scale_shape_(std::move(scale_shape)),
        offset_shape_(std::move(offset_shape)), has_offset_(has_offset) {}
  const char* name() const override { return "LsqQuantizeBackward"; }
  std::vector<Tensor> backward(const Tensor& g_in) override {
    const Tensor x = x_.unpack(), g = g_in.contiguous();
    const int64_t n = x.numel(), C = (int64_t)scale_.size(), outer = n / (l_.channels * l_.inner);
    Tensor gx = Tensor::uninitialized(x.shape());
    std::vector<double> ds((size_t)C, 0.0);
    double db_total = 0;
    const auto& k = kernels::table().q8;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < l_.channels; ++c) {
        const int64_t begin = (o * l_.channels + c) * l_.inner;
        double s = 0, b = 0;
        k.lsq_backward_f32(gx.data<float>() + begin, &s, &b, g.data<float>() + begin, x.data<float>() + begin,
                           qm::inverse_scale(scale_[(size_t)c]), offset_, zp_[(size_t)c], qmin_, qmax_, l_.inner);
        ds[(size_t)c] += s;
        db_total += b;
      }
    Tensor gs, gb;
    if (needs_input_grad(1)) {
      gs = Tensor::zeros(scale_shape_);
      float* p = gs.data<float>();
      for (int64_t c = 0; c < C; ++c) {  // ds > 0: gradient descent shrinks the step
        const bool shrinks = ds[(size_t)c] > 0 && !shrink_grad_scale_.empty();
        p[c] = (float)(ds[(size_t)c] * (shrinks ? shrink_grad_scale_[(size_t)c] : grad_scale_));
      }
    }
    if (!has_offset_) return {needs_input_grad(0) ? gx : Tensor(), gs};
    if (needs_input_grad(2)) {
      gb = Tensor::full(offset_shape_, db_total * grad_scale_);
    }
    return {needs_input_grad(0) ? gx : Tensor(), gs, gb};
  }
  void release_saved() override { x_.release(); }

 private:
  SavedTensor x_;
  std::vector<float> scale_;
  float offset_;
  std::vector<int32_t> zp_;
  ChannelLayout l_;
  int qmin_, qmax_;
  float grad_scale_;
  std::vector<float> shrink_grad_scale_;  // empty, or one per step
  Shape scale_shape_, offset_shape_;
  bool has_offset_;
};

}  // namespace

Tensor lsq_quantize(const Tensor& x_in, const Tensor& scale_t, const Tensor& offset_t,
                    const std::vector<int32_t>& zero_point, int axis, int qmin, int qmax, float grad_scale,
                    const std::vector<float>& shrink_grad_scale) {
  LOWBIT_CHECK(x_in.dtype() == DType::f32, "lsq_quantize: input must be f32");
  const Tensor x = x_in.contiguous();
  std::vector<float> scale = scale_t.to_vector();
  LOWBIT_CHECK(scale.size() == zero_point.size(), "lsq_quantize: ", scale.size(), " steps and ", zero_point.size(),
               " zero points");
  const ChannelLayout l = layout(x, axis, (int64_t)scale.size(), "lsq_quantize");
  LOWBIT_CHECK(shrink_grad_scale.empty() || shrink_grad_scale.size() == scale.size(), "lsq_quantize: ",
               shrink_grad_scale.size(), " shrink gradient scales for ", scale.size(), " steps");
  LOWBIT_CHECK(!offset_t.defined() || offset_t.numel() == 1, "lsq_quantize: the offset must be a single value");
  const float offset = offset_t.defined() ? offset_t.item() : 0.0f;
  for (float s : scale)
    LOWBIT_CHECK(s > 0 && std::isfinite(s), "lsq_quantize: step ", s,
                 " is not a positive finite number (learning rate too high?)");
  // (x − β) through the fake-quantization kernel, then + β: the same fp32 steps.
  Tensor y = Tensor::uninitialized(x.shape());
  {
    NoGradGuard ng;
    const Tensor shifted = offset != 0.0f ? add(x.detach(), -offset) : x;
    const int64_t outer = x.numel() / (l.channels * l.inner);
    kernels::table().q8.fake_quantize_f32(y.data<float>(), nullptr, shifted.data<float>(), scale.data(),
                                          zero_point.data(), qmin, qmax, outer, l.channels, l.inner);
    if (offset != 0.0f) y = add(y, offset);
  }
  if (offset_t.defined()) {
    if (any_requires_grad({&x_in, &scale_t, &offset_t}))
      record(y, std::make_shared<LsqBackward>(x, scale, offset, zero_point, l, qmin, qmax, grad_scale,
                                              shrink_grad_scale, scale_t.shape(), offset_t.shape(), true), {&x_in, &scale_t, &offset_t});
  } else if (any_requires_grad({&x_in, &scale_t})) {
    record(y, std::make_shared<LsqBackward>(x, scale, 0.0f, zero_point, l, qmin, qmax, grad_scale, shrink_grad_scale, scale_t.shape(),
                                            Shape{}, false), {&x_in, &scale_t});
  }
  return y;
}


}  // namespace lowbit::quant
