// flatten, cat, pad and dropout.
#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"

namespace lowbit {

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  if (x.dim() == 0) return x.reshape({1});
  start = detail::wrap_dim(start, x.dim(), "flatten");
  end = detail::wrap_dim(end, x.dim(), "flatten");
  LOWBIT_CHECK(start <= end, "flatten: start_dim ", start, " is after end_dim ", end);
  Shape sh(x.shape().begin(), x.shape().begin() + start);
  int64_t m = 1;
  for (int64_t d = start; d <= end; ++d) m *= x.shape()[d];
  sh.push_back(m);
  sh.insert(sh.end(), x.shape().begin() + end + 1, x.shape().end());
  return x.reshape(sh);
}

namespace {

class CatBackward final : public Node {
 public:
  CatBackward(int64_t dim, std::vector<int64_t> sizes) : dim_(dim), sizes_(std::move(sizes)) {}
  const char* name() const override { return "CatBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    std::vector<Tensor> out;
    int64_t at = 0;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      out.push_back(needs_input_grad(i) ? g.slice(dim_, at, at + sizes_[i]) : Tensor());
      at += sizes_[i];
    }
    return out;
  }

 private:
  int64_t dim_;
  std::vector<int64_t> sizes_;
};

}  // namespace

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  LOWBIT_CHECK(!xs.empty(), "cat: expected a non-empty list of tensors");
  const Tensor& x0 = xs[0];
  detail::check_f32(x0, "cat", "tensor 0");
  dim = detail::wrap_dim(dim, x0.dim(), "cat");
  Shape out_shape = x0.shape();
  out_shape[dim] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < xs.size(); ++i) {
    detail::check_f32(xs[i], "cat", "input");
    bool ok = xs[i].dim() == x0.dim();
    for (int64_t d = 0; ok && d < x0.dim(); ++d) ok = d == dim || xs[i].shape()[d] == x0.shape()[d];
    LOWBIT_CHECK(ok, "cat: tensor ", i, " has shape ", shape_str(xs[i].shape()), ", expected ", shape_str(x0.shape()),
                 " except in dim ", dim);
    sizes.push_back(xs[i].shape()[dim]);
    out_shape[dim] += xs[i].shape()[dim];
  }
  Tensor y = Tensor::empty(out_shape);
  int64_t at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    y.slice(dim, at, at + sizes[i]).copy_(xs[i].detach());
    at += sizes[i];
  }
  bool any = false;
  for (const Tensor& t : xs) any = any || t.requires_grad();
  if (any && grad_enabled()) record(y, std::make_shared<CatBackward>(dim, sizes), xs);
  return y;
}

namespace {

class PadBackward final : public Node {
 public:
  PadBackward(std::vector<std::array<int64_t, 3>> crops) : crops_(std::move(crops)) {}
  const char* name() const override { return "PadBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor v = g;
    for (const auto& [d, begin, end] : crops_) v = v.slice(d, begin, end);
    return {v.contiguous()};
  }

 private:
  std::vector<std::array<int64_t, 3>> crops_;  // {dim, begin, end}
};

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, float value) {
  detail::check_f32(x, "pad", "input");
  LOWBIT_CHECK(pads.size() % 2 == 0 && (int64_t)pads.size() / 2 <= x.dim(), "pad: ", pads.size(),
               " padding values do not fit input ", shape_str(x.shape()), " (need pairs, at most 2 per dim)");
  Shape out_shape = x.shape();
  std::vector<std::array<int64_t, 3>> crops;
  for (size_t i = 0; i < pads.size() / 2; ++i) {
    const int64_t d = x.dim() - 1 - (int64_t)i, lo = pads[2 * i], hi = pads[2 * i + 1];
    LOWBIT_CHECK(lo >= 0 && hi >= 0, "pad: negative padding (", lo, ", ", hi, ") is not supported");
    out_shape[d] += lo + hi;
    crops.push_back({d, lo, lo + x.shape()[d]});
  }
  Tensor y = Tensor::full(out_shape, value);
  Tensor inner = y;
  for (const auto& [d, b, e] : crops) inner = inner.slice(d, b, e);
  inner.copy_(x.detach());
  if (any_requires_grad({&x})) record(y, std::make_shared<PadBackward>(crops), {&x});
  return y;
}

namespace {

class DropoutBackward final : public Node {
 public:
  explicit DropoutBackward(Tensor mask) : mask_(std::move(mask)) {}
  const char* name() const override { return "DropoutBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {mul(g, mask_)}; }
  void release_saved() override { mask_ = Tensor(); }

 private:
  Tensor mask_;  // 0 or 1/(1-p)
};

}  // namespace

Tensor dropout(const Tensor& x, float p, bool training, Generator* gen) {
  detail::check_f32(x, "dropout", "input");
  LOWBIT_CHECK(p >= 0.0f && p <= 1.0f, "dropout: probability ", p, " is not in [0, 1]");
  if (!training || p == 0.0f) return x;
  Generator& g = gen ? *gen : default_generator();
  const int64_t n = x.numel();
  const uint64_t base = g.advance(n);
  Tensor mask = Tensor::empty(x.shape());
  float* pm = mask.data<float>();
  const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) pm[i] = g.uniform_at(base + i) >= p ? keep_scale : 0.0f;
  Tensor y;
  {
    NoGradGuard ng;
    y = mul(x, mask);
  }
  if (any_requires_grad({&x})) record(y, std::make_shared<DropoutBackward>(mask), {&x});
  return y;
}

}  // namespace lowbit
