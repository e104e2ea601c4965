// matmul (torch.matmul semantics incl. batch broadcasting) and linear.
// A 2-D operand whose rows or columns are unit-stride goes to the GEMM as is
// (transposed flag + leading dimension); anything else is copied first.
#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"
#include "core/profile.h"

namespace lowbit {

namespace {

// A matrix operand as the GEMM sees it.
struct GemmOperand {
  const float* ptr;
  int64_t ld;
  bool trans;
};

// `m` is a 2-D view (possibly strided). Returns a GEMM-ready operand; `keep`
// holds a contiguous copy when one was needed.
GemmOperand as_gemm_operand(const Tensor& m, Tensor& keep) {
  const int64_t r = m.shape()[0], c = m.shape()[1];
  const int64_t s0 = m.strides()[0], s1 = m.strides()[1];
  if ((s1 == 1 || c == 1) && s0 >= std::max<int64_t>(c, 1)) return {m.data<float>(), std::max<int64_t>(s0, 1), false};
  if ((s0 == 1 || r == 1) && s1 >= std::max<int64_t>(r, 1)) return {m.data<float>(), std::max<int64_t>(s1, 1), true};
  keep = m.contiguous();
  return {keep.data<float>(), std::max<int64_t>(c, 1), false};
}

// y[M×N] (contiguous, written) = a[M×K] · b[K×N]
void gemm2d(float* y, const Tensor& a, const Tensor& b) {
  const int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(y, y + m * n, 0.0f);
    return;
  }
  count_flops(2 * m * n * k);
  Tensor ka, kb;
  GemmOperand A = as_gemm_operand(a, ka), B = as_gemm_operand(b, kb);
  detail::fk().f32_gemm(y, n, A.ptr, A.ld, B.ptr, B.ld, A.trans, B.trans, 0.0f, m, n, k);
}

class MatmulBackward final : public Node {
 public:
  MatmulBackward(const Tensor& a, const Tensor& b) : a_(a, "MatmulBackward"), b_(b, "MatmulBackward") {}
  const char* name() const override { return "MatmulBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    // Both inputs are ≥2-D here (1-D cases are views around this op).
    Tensor a = a_.unpack(), b = b_.unpack(), ga, gb;
    if (needs_input_grad(0)) ga = sum_to(matmul(g, b.transpose(-1, -2)), a.shape());
    if (needs_input_grad(1)) gb = sum_to(matmul(a.transpose(-1, -2), g), b.shape());
    return {ga, gb};
  }
  void release_saved() override { a_.release(); b_.release(); }

 private:
  SavedTensor a_, b_;
};

Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const int64_t m = a.size(-2), k = a.size(-1), k2 = b.size(-2), n = b.size(-1);
  LOWBIT_CHECK(k == k2, "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
               " cannot be multiplied (", k, " vs ", k2, ")");
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = detail::broadcast_shapes(ba, bb, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor y = Tensor::empty(out_shape);
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {m, k});
  eb.insert(eb.end(), {k, n});
  Tensor ax = a.detach().expand(ea), bx = b.detach().expand(eb);
  const int64_t nb = shape_numel(batch);
  // Walk the batch index; offsets via strides of the expanded views.
  std::vector<int64_t> idx(batch.size(), 0);
  for (int64_t i = 0; i < nb; ++i) {
    int64_t oa = 0, ob = 0;
    for (size_t d = 0; d < batch.size(); ++d) {
      oa += idx[d] * ax.strides()[d];
      ob += idx[d] * bx.strides()[d];
    }
    Tensor am = ax.detach(), bm = bx.detach();
    am.impl()->shape = {m, k};
    am.impl()->strides = {ax.strides()[batch.size()], ax.strides()[batch.size() + 1]};
    am.impl()->offset = ax.offset() + oa;
    bm.impl()->shape = {k, n};
    bm.impl()->strides = {bx.strides()[batch.size()], bx.strides()[batch.size() + 1]};
    bm.impl()->offset = bx.offset() + ob;
    gemm2d(y.data<float>() + i * m * n, am, bm);
    for (int64_t d = (int64_t)batch.size() - 1; d >= 0; --d) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  if (any_requires_grad({&a, &b})) record(y, std::make_shared<MatmulBackward>(a, b), {&a, &b});
  return y;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_f32(a, "matmul", "a");
  detail::check_f32(b, "matmul", "b");
  LOWBIT_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need at least 1 dimension, got ",
               shape_str(a.shape()), " and ", shape_str(b.shape()));
  if (a.dim() == 1 && b.dim() == 1) return matmul_nd(a.unsqueeze(0), b.unsqueeze(1)).reshape({});
  if (a.dim() == 1) return matmul_nd(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul_nd(a, b.unsqueeze(1)).squeeze(-1);
  return matmul_nd(a, b);
}

namespace {

class LinearBackward final : public Node {
 public:
  LinearBackward(const Tensor& x2, const Tensor& w, Shape x_shape)
      : x_(x2, "LinearBackward"), w_(w, "LinearBackward"), x_shape_(std::move(x_shape)) {}
  const char* name() const override { return "LinearBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor x = x_.unpack(), w = w_.unpack();
    const int64_t out = w.shape()[0];
    Tensor g2 = g.reshape({-1, out});
    Tensor gx, gw, gb;
    if (needs_input_grad(0)) gx = matmul(g2, w).reshape(x_shape_);    // [M×out]·[out×in]
    if (needs_input_grad(1)) gw = matmul(g2.transpose(0, 1), x);      // [out×M]·[M×in]
    if (needs_input_grad(2)) gb = sum(g2, {0});
    return {gx, gw, gb};
  }
  void release_saved() override { x_.release(); w_.release(); }

 private:
  SavedTensor x_, w_;
  Shape x_shape_;
};

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_f32(x, "linear", "input");
  detail::check_f32(weight, "linear", "weight");
  LOWBIT_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out, in], got ", shape_str(weight.shape()));
  LOWBIT_CHECK(x.dim() >= 1 && x.size(-1) == weight.shape()[1], "linear: input ", shape_str(x.shape()),
               " has ", x.dim() ? x.size(-1) : 0, " features, weight ", shape_str(weight.shape()), " expects ",
               weight.shape()[1]);
  const int64_t out = weight.shape()[0], in = weight.shape()[1];
  if (bias.defined()) {
    detail::check_f32(bias, "linear", "bias");
    LOWBIT_CHECK(bias.dim() == 1 && bias.shape()[0] == out, "linear: bias ", shape_str(bias.shape()),
                 " does not match weight ", shape_str(weight.shape()));
  }
  Tensor x2 = x.detach().reshape({-1, in});
  const int64_t m = x2.shape()[0];
  Shape y_shape = x.shape();
  y_shape.back() = out;
  Tensor y = Tensor::empty(y_shape);
  float* py = y.data<float>();
  gemm2d(py, x2, weight.detach().transpose(0, 1));
  if (bias.defined()) {
    Tensor bc = bias.contiguous();
    const float* pb = bc.data<float>();
    const auto& k = detail::fk();
    for (int64_t i = 0; i < m; ++i) k.f32_binary(py + i * out, py + i * out, 1, pb, 1, kernels::Binary::add, out);
  }
  if (any_requires_grad({&x, &weight, &bias}))
    record(y, std::make_shared<LinearBackward>(x2, weight, x.shape()), {&x, &weight, &bias});
  return y;
}

}  // namespace lowbit
