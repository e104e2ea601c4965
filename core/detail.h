// Internal helpers shared by core/*.cpp (not installed): strided iteration,
// broadcasting, argument checks. Nothing here is part of the public API.
#pragma once
#include <array>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

namespace lowbit::detail {

inline const kernels::FloatKernels& fk() { return kernels::table().f32; }

// Normalise a possibly negative dim against `ndim` (error names the op).
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// PyTorch broadcasting of two shapes; error names the op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Throws unless t is a defined f32 tensor.
void check_f32(const Tensor& t, const char* op, const char* arg);

// Walk `shape` row by row. For each row calls f(offsets, row_length, steps):
// offsets[i] is the element offset of the row's first element in operand i
// (strides[i] gives that operand's strides, which may contain zeros for
// broadcast dims) and steps[i] its stride along the row. Rows are visited in
// logical order. Size-1 dims are skipped, and dims that every operand walks
// as one (stride[d] == stride[d+1]·shape[d+1]) are merged into the row, so
// a K×C×1×1 tensor times a K×1×1×1 one runs K rows of C, not K·C rows of 1.
template <size_t K, class F>
void for_each_row(const Shape& shape, const std::array<const Shape*, K>& strides, F&& f) {
  std::array<int64_t, K> off{};
  for (int64_t s : shape) if (s == 0) return;
  // Merged dims, innermost first: sizes and each operand's strides.
  std::vector<int64_t> size;
  std::vector<std::array<int64_t, K>> st;
  for (int64_t d = (int64_t)shape.size() - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    std::array<int64_t, K> sd;
    for (size_t i = 0; i < K; ++i) sd[i] = (*strides[i])[d];
    bool merge = !size.empty();
    for (size_t i = 0; i < K && merge; ++i) merge = sd[i] == st.back()[i] * size.back();
    if (merge) {
      size.back() *= shape[d];
    } else {
      size.push_back(shape[d]);
      st.push_back(sd);
    }
  }
  if (size.empty()) {  // a single element
    f(off, int64_t(1), std::array<int64_t, K>{});
    return;
  }
  const int64_t nd = (int64_t)size.size(), inner = size[0];
  std::vector<int64_t> idx(nd, 0);
  while (true) {
    f(off, inner, st[0]);
    int64_t d = 1;
    for (; d < nd; ++d) {
      ++idx[d];
      for (size_t i = 0; i < K; ++i) off[i] += st[d][i];
      if (idx[d] < size[d]) break;
      for (size_t i = 0; i < K; ++i) off[i] -= st[d][i] * size[d];
      idx[d] = 0;
    }
    if (d >= nd) return;
  }
}

// Elementwise map over contiguous copies: out[i] = f(a[i]) / f(a[i], b[i]).
// Used by backward formulas (masks, derivatives); parallel for large sizes.
template <class F>
Tensor map1(const Tensor& a, F f) {
  Tensor ac = a.contiguous();
  Tensor out = Tensor::uninitialized(a.shape());
  const float* pa = ac.data<float>();
  float* po = out.data<float>();
  const int64_t n = out.numel();
#pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i]);
  return out;
}
template <class F>
Tensor map2(const Tensor& a, const Tensor& b, F f) {
  Tensor ac = a.contiguous(), bc = b.contiguous();
  LOWBIT_CHECK(a.shape() == b.shape(), "internal: map2 shapes ", shape_str(a.shape()), " vs ", shape_str(b.shape()));
  Tensor out = Tensor::uninitialized(a.shape());
  const float* pa = ac.data<float>();
  const float* pb = bc.data<float>();
  float* po = out.data<float>();
  const int64_t n = out.numel();
#pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
  return out;
}
template <class F>
Tensor map3(const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  Tensor ac = a.contiguous(), bc = b.contiguous(), cc = c.contiguous();
  Tensor out = Tensor::uninitialized(a.shape());
  const float* pa = ac.data<float>();
  const float* pb = bc.data<float>();
  const float* pc = cc.data<float>();
  float* po = out.data<float>();
  const int64_t n = out.numel();
#pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i], pc[i]);
  return out;
}

// Refuse in-place writes that would corrupt an autograd graph.
void check_inplace_allowed(const Tensor& t, const char* op);

}  // namespace lowbit::detail
