#include "core/detail.h"

namespace lowbit::detail {

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t n = std::max<int64_t>(ndim, 1);
  LOWBIT_CHECK(dim >= -n && dim < n, op, ": dim ", dim, " out of range for a ", ndim, "-d tensor");
  return dim < 0 ? dim + n : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    LOWBIT_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                 " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void check_f32(const Tensor& t, const char* op, const char* arg) {
  LOWBIT_CHECK(t.defined(), op, ": ", arg, " is undefined");
  LOWBIT_CHECK(t.dtype() == DType::f32, op, ": ", arg, " must be f32, got ", dtype_name(t.dtype()), " of shape ",
               shape_str(t.shape()));
}

void check_inplace_allowed(const Tensor& t, const char* op) {
  LOWBIT_CHECK(t.defined(), op, ": undefined tensor");
  if (!grad_enabled()) return;
  LOWBIT_CHECK(!(t.is_leaf() && t.requires_grad()), op, ": a leaf tensor of shape ", shape_str(t.shape()),
               " that requires grad cannot be written in place while recording (use NoGradGuard)");
  LOWBIT_CHECK(t.is_leaf(), op, ": in-place write to a tensor of shape ", shape_str(t.shape()),
               " that is part of an autograd graph (produced by ", t.grad_fn()->name(), ") is not supported");
}

}  // namespace lowbit::detail
