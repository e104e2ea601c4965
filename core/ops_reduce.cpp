// Reductions (sum, mean, max, argmax), sum_to, softmax and log_softmax.
// Strategy: permute the reduced dims to the end, make that contiguous, then
// reduce rows of length R with the kernel table.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"
#include "kernels/ref/ref.h"

namespace lowbit {

namespace {

struct ReducePlan {
  std::vector<bool> reduced;  // per input dim
  Shape kept_shape;           // output shape with keepdim=true
  Shape out_shape;            // output shape as requested
  int64_t rows = 1, row_len = 1;
  std::vector<int64_t> perm;  // kept dims first, reduced dims last
};

ReducePlan plan_reduce(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, const char* op) {
  ReducePlan p;
  const int64_t nd = x.dim();
  p.reduced.assign(nd, false);
  for (int64_t d : dims) {
    int64_t w = detail::wrap_dim(d, nd, op);
    LOWBIT_CHECK(!p.reduced[w], op, ": dim ", w, " appears twice");
    p.reduced[w] = true;
  }
  for (int64_t d = 0; d < nd; ++d) {
    if (!p.reduced[d]) { p.perm.push_back(d); p.rows *= x.shape()[d]; }
  }
  for (int64_t d = 0; d < nd; ++d) {
    if (p.reduced[d]) { p.perm.push_back(d); p.row_len *= x.shape()[d]; }
  }
  for (int64_t d = 0; d < nd; ++d) {
    p.kept_shape.push_back(p.reduced[d] ? 1 : x.shape()[d]);
    if (!p.reduced[d] || keepdim) p.out_shape.push_back(p.reduced[d] ? 1 : x.shape()[d]);
  }
  return p;
}

// Rows of the reduction as a contiguous [rows × row_len] buffer.
Tensor rows_view(const Tensor& x, const ReducePlan& p) {
  return x.detach().permute(p.perm).contiguous();
}

class SumBackward final : public Node {
 public:
  SumBackward(Shape in, Shape kept, float scale) : in_(std::move(in)), kept_(std::move(kept)), scale_(scale) {}
  const char* name() const override { return scale_ == 1.0f ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor ge = g.reshape(kept_).expand(in_).contiguous();
    return {scale_ == 1.0f ? ge : mul(ge, scale_)};
  }

 private:
  Shape in_, kept_;
  float scale_;
};

Tensor sum_impl(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, float scale, const char* op) {
  detail::check_f32(x, op, "input");
  ReducePlan p = plan_reduce(x, dims, keepdim, op);
  Tensor r = rows_view(x, p);
  Tensor y = Tensor::empty(p.out_shape);
  const float* pr = r.data<float>();
  float* py = y.data<float>();
  const auto& k = detail::fk();
  if (p.rows == 1) {
    py[0] = (float)(k.f32_sum(pr, p.row_len) * scale);
  } else {
#pragma omp parallel for if (p.rows * p.row_len > 65536) schedule(static)
    for (int64_t i = 0; i < p.rows; ++i) py[i] = (float)(k.f32_sum(pr + i * p.row_len, p.row_len) * scale);
  }
  if (any_requires_grad({&x})) record(y, std::make_shared<SumBackward>(x.shape(), p.kept_shape, scale), {&x});
  return y;
}

std::vector<int64_t> all_dims(const Tensor& x) {
  std::vector<int64_t> d(x.dim());
  std::iota(d.begin(), d.end(), 0);
  return d;
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_impl(x, all_dims(x), false, 1.0f, "sum"); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(x, dims, keepdim, 1.0f, "sum");
}

Tensor mean(const Tensor& x) { return mean(x, all_dims(x), false); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[detail::wrap_dim(d, x.dim(), "mean")];
  return sum_impl(x, dims, keepdim, count ? 1.0f / (float)count : NAN, "mean");
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - (int64_t)shape.size();
  LOWBIT_CHECK(lead >= 0, "sum_to: cannot reduce ", shape_str(x.shape()), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) dims.push_back(d);
    else if (shape[d - lead] == 1 && x.shape()[d] != 1) dims.push_back(d);
    else LOWBIT_CHECK(shape[d - lead] == x.shape()[d], "sum_to: cannot reduce ", shape_str(x.shape()), " to ",
                      shape_str(shape));
  }
  return sum(x, dims, true).reshape(shape);
}

// ---------------------------------------------------------------- max / argmax

namespace {

// Index of the first maximum of each row; NaN wins (propagates) as in PyTorch.
void row_argmax(int32_t* idx, float* val, const float* r, int64_t rows, int64_t len) {
#pragma omp parallel for if (rows * len > 65536) schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = r + i * len;
    int64_t best = 0;
    for (int64_t j = 1; j < len; ++j) {
      if (std::isnan(row[best])) break;
      if (row[j] > row[best] || std::isnan(row[j])) best = j;
    }
    idx[i] = (int32_t)best;
    if (val) val[i] = row[best];
  }
}

class MaxBackward final : public Node {
 public:
  MaxBackward(Shape in, int64_t dim, Tensor idx) : in_(std::move(in)), dim_(dim), idx_(std::move(idx)) {}
  const char* name() const override { return "MaxBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    // Scatter g into a zero tensor laid out as [rows × len] (dim moved last).
    const int64_t len = in_[dim_];
    std::vector<int64_t> perm;
    Shape moved;
    for (int64_t d = 0; d < (int64_t)in_.size(); ++d)
      if (d != dim_) { perm.push_back(d); moved.push_back(in_[d]); }
    perm.push_back(dim_);
    moved.push_back(len);
    Tensor gx_moved = Tensor::zeros(moved);
    Tensor gc = g.contiguous();
    const float* pg = gc.data<float>();
    const int32_t* pi = idx_.data<int32_t>();
    float* px = gx_moved.data<float>();
    const int64_t rows = idx_.numel();
    for (int64_t i = 0; i < rows; ++i) px[i * len + pi[i]] = pg[i];
    std::vector<int64_t> inv(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = (int64_t)i;
    return {gx_moved.permute(inv).contiguous()};
  }

 private:
  Shape in_;
  int64_t dim_;
  Tensor idx_;
};

}  // namespace

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  detail::check_f32(x, "max", "input");
  dim = detail::wrap_dim(dim, x.dim(), "max");
  LOWBIT_CHECK(x.dim() == 0 || x.shape()[dim] > 0, "max: dim ", dim, " of shape ", shape_str(x.shape()), " is empty");
  ReducePlan p = plan_reduce(x, {dim}, keepdim, "max");
  Tensor r = rows_view(x, p);
  Tensor y = Tensor::empty(p.out_shape);
  Tensor idx = Tensor::empty({p.rows}, DType::s32);
  row_argmax(idx.data<int32_t>(), y.data<float>(), r.data<float>(), p.rows, p.row_len);
  if (any_requires_grad({&x})) record(y, std::make_shared<MaxBackward>(x.shape(), x.dim() ? dim : 0, idx), {&x});
  return y;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  detail::check_f32(x, "argmax", "input");
  dim = detail::wrap_dim(dim, x.dim(), "argmax");
  ReducePlan p = plan_reduce(x, {dim}, keepdim, "argmax");
  Tensor r = rows_view(x, p);
  Tensor idx = Tensor::empty(p.out_shape, DType::s32);
  row_argmax(idx.data<int32_t>(), nullptr, r.data<float>(), p.rows, p.row_len);
  return idx;
}

// ---------------------------------------------------------------- softmax

namespace {

class SoftmaxBackward final : public Node {
 public:
  SoftmaxBackward(const Tensor& y, int64_t dim, bool log)
      : y_(y, log ? "LogSoftmaxBackward" : "SoftmaxBackward"), dim_(dim), log_(log) {}
  const char* name() const override { return log_ ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    // softmax:     gx = y ⊙ (g − Σ g⊙y)
    // log_softmax: gx = g − exp(y) Σ g
    Tensor y = y_.unpack();
    Tensor yl = y.transpose(dim_, -1).contiguous();
    Tensor gl = g.transpose(dim_, -1).contiguous();
    Tensor gx = Tensor::empty(yl.shape());
    const int64_t len = yl.shape().back(), rows = yl.numel() / std::max<int64_t>(len, 1);
    const float* py = yl.data<float>();
    const float* pg = gl.data<float>();
    float* px = gx.data<float>();
    const bool log = log_;
#pragma omp parallel for if (rows * len > 65536) schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const float* yr = py + i * len;
      const float* gr = pg + i * len;
      float* xr = px + i * len;
      double s = 0;
      if (log) {
        for (int64_t j = 0; j < len; ++j) s += gr[j];
        for (int64_t j = 0; j < len; ++j) xr[j] = gr[j] - std::exp(yr[j]) * (float)s;
      } else {
        for (int64_t j = 0; j < len; ++j) s += (double)gr[j] * yr[j];
        for (int64_t j = 0; j < len; ++j) xr[j] = yr[j] * (gr[j] - (float)s);
      }
    }
    return {gx.transpose(dim_, -1).contiguous()};
  }
  void release_saved() override { y_.release(); }

 private:
  SavedTensor y_;
  int64_t dim_;
  bool log_;
};

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  detail::check_f32(x, op, "input");
  dim = detail::wrap_dim(dim, x.dim(), op);
  if (x.dim() == 0) {
    Tensor y = log ? Tensor::zeros({}) : Tensor::ones({});
    if (any_requires_grad({&x})) record(y, std::make_shared<SoftmaxBackward>(y.detach(), 0, log), {&x});
    return y;
  }
  Tensor xl = x.detach().transpose(dim, -1).contiguous();
  Tensor yl = Tensor::empty(xl.shape());
  const int64_t len = xl.shape().back();
  if (yl.numel()) kernels::ref::f32_softmax_rows(yl.data<float>(), xl.data<float>(), yl.numel() / len, len, log);
  Tensor y = yl.transpose(dim, -1).contiguous();
  if (any_requires_grad({&x})) record(y, std::make_shared<SoftmaxBackward>(y.detach(), dim, log), {&x});
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace lowbit
