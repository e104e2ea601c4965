// Tensor storage, metadata, factories, views, copies and printing.
#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>

#include "core/autograd.h"
#include "core/detail.h"
#include "core/ops.h"
#include "kernels/buffers.h"

namespace lowbit {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::s32: return 4;
    case DType::s8: return 1;
    case DType::u8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::s32: return "s32";
    case DType::s8: return "s8";
    case DType::u8: return "u8";
  }
  return "?";
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int64_t i = (int64_t)shape.size() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

namespace {
thread_local AllocationLimit* t_limit = nullptr;
}  // namespace

AllocationLimit::AllocationLimit(int64_t bytes, std::string what)
    : limit_(bytes), what_(std::move(what)), outer_(t_limit) {
  t_limit = this;
}

AllocationLimit::~AllocationLimit() { t_limit = outer_; }

void AllocationLimit::add(size_t n) {
  if ((int64_t)n > limit_ - allocated_) {
    char b[160];
    std::snprintf(b, sizeof b, " needs more than %.2f GB (%.2f GB with this allocation)", (double)limit_ / (1 << 30),
                  (double)(allocated_ + (int64_t)n) / (1 << 30));
    throw AllocationLimitError(what_ + b);
  }
  allocated_ += (int64_t)n;
}

Storage::Storage(size_t n, bool zero) : nbytes(n) {
  if (t_limit) t_limit->add(n);
  // 64-byte aligned (a cache line, an AVX-512 register); size rounded up as
  // aligned_alloc requires. Zero-filled so a fresh tensor never holds garbage,
  // unless the caller asked for an uninitialized output it overwrites.
  const size_t rounded = kernels::buffer_round(n);
  data = kernels::buffer_take(rounded);
  if (!data) fail("out of memory allocating ", n, " bytes");
  if (zero) std::memset(data, 0, rounded);
}

Storage::~Storage() { kernels::buffer_give(data, kernels::buffer_round(nbytes)); }

TensorImpl::~TensorImpl() = default;

// ---------------------------------------------------------------- factories

namespace {
Tensor allocate(const Shape& shape, DType dtype, bool zero) {
  for (int64_t d : shape) LOWBIT_CHECK(d >= 0, "tensor: negative size in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), zero);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype) { return allocate(shape, dtype, true); }
Tensor Tensor::uninitialized(const Shape& shape, DType dtype) { return allocate(shape, dtype, false); }

Tensor Tensor::zeros(const Shape& shape, DType dtype) { return empty(shape, dtype); }
Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, DType::f32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i) p[i] = (float)i;
  return dtype == DType::f32 ? t : t.to(dtype);
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape) {
  LOWBIT_CHECK((int64_t)v.size() == shape_numel(shape), "from_vector: ", v.size(),
               " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape);
  if (!v.empty()) std::memcpy(t.data<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_vector_s32(const std::vector<int32_t>& v, const Shape& shape) {
  LOWBIT_CHECK((int64_t)v.size() == shape_numel(shape), "from_vector_s32: ", v.size(),
               " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, DType::s32);
  if (!v.empty()) std::memcpy(t.data<int32_t>(), v.data(), v.size() * sizeof(int32_t));
  return t;
}

// ---------------------------------------------------------------- metadata

int64_t Tensor::size(int64_t d) const { return shape()[detail::wrap_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expect) return false;
    expect *= shape()[i];
  }
  return true;
}

template <class T>
static constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::s32;
  else if constexpr (std::is_same_v<T, int8_t>) return DType::s8;
  else return DType::u8;
}

template <class T>
T* Tensor::data() const {
  LOWBIT_CHECK(defined(), "data(): undefined tensor");
  LOWBIT_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">() on a ",
               dtype_name(dtype()), " tensor of shape ", shape_str(shape()));
  return static_cast<T*>(impl_->storage->data) + impl_->offset;
}
template float* Tensor::data<float>() const;
template int32_t* Tensor::data<int32_t>() const;
template int8_t* Tensor::data<int8_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;

// Read element at element-offset `off` of the storage as double.
static double load_as_double(const TensorImpl* t, int64_t off) {
  const void* base = t->storage->data;
  switch (t->dtype) {
    case DType::f32: return static_cast<const float*>(base)[off];
    case DType::s32: return static_cast<const int32_t*>(base)[off];
    case DType::s8: return static_cast<const int8_t*>(base)[off];
    case DType::u8: return static_cast<const uint8_t*>(base)[off];
  }
  return 0;
}

// Store `v` (already in range for integer types) at element-offset `off`.
static void store_from_double(TensorImpl* t, int64_t off, double v) {
  void* base = t->storage->data;
  switch (t->dtype) {
    case DType::f32: static_cast<float*>(base)[off] = (float)v; break;
    case DType::s32: static_cast<int32_t*>(base)[off] = (int32_t)v; break;
    case DType::s8: static_cast<int8_t*>(base)[off] = (int8_t)v; break;
    case DType::u8: static_cast<uint8_t*>(base)[off] = (uint8_t)v; break;
  }
}

float Tensor::item() const {
  LOWBIT_CHECK(defined() && numel() == 1, "item(): tensor of shape ", defined() ? shape_str(shape()) : "undefined",
               " is not a single value");
  return (float)load_as_double(impl_.get(), impl_->offset);
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out;
  out.reserve(numel());
  const TensorImpl* t = impl_.get();
  detail::for_each_row<1>(shape(), {&strides()},
                          [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
                            for (int64_t i = 0; i < n; ++i)
                              out.push_back((float)load_as_double(t, t->offset + off[0] + i * st[0]));
                          });
  return out;
}

// ---------------------------------------------------------------- copies

// Elementwise copy src → dst (same shape; any strides; any dtype pair).
// Integer destinations saturate and round half to even, so converting
// floats to int8 never wraps.
static void copy_elements(const Tensor& dst, const Tensor& src) {
  TensorImpl* d = dst.impl();
  const TensorImpl* s = src.impl();
  if (d->dtype == s->dtype && dst.is_contiguous() && src.is_contiguous()) {
    std::memcpy(static_cast<char*>(d->storage->data) + d->offset * dtype_size(d->dtype),
                static_cast<const char*>(s->storage->data) + s->offset * dtype_size(s->dtype),
                dst.numel() * dtype_size(d->dtype));
    return;
  }
  double lo = -INFINITY, hi = INFINITY;
  if (d->dtype == DType::s32) lo = -2147483648.0, hi = 2147483647.0;
  if (d->dtype == DType::s8) lo = -128, hi = 127;
  if (d->dtype == DType::u8) lo = 0, hi = 255;
  const bool to_int = d->dtype != DType::f32;
  detail::for_each_row<2>(dst.shape(), {&dst.strides(), &src.strides()},
                          [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    const int64_t sd = st[0], ss = st[1];
    for (int64_t i = 0; i < n; ++i) {
      double v = load_as_double(s, s->offset + off[1] + i * ss);
      if (to_int) v = std::min(std::max(std::nearbyint(v), lo), hi);
      store_from_double(d, d->offset + off[0] + i * sd, v);
    }
  });
}

Tensor& Tensor::fill_(double value) {
  detail::check_inplace_allowed(*this, "fill_");
  Tensor src = Tensor::empty({}, dtype());
  store_from_double(src.impl(), 0, dtype() == DType::f32 ? value : std::nearbyint(value));
  copy_elements(*this, src.expand(shape()));
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  detail::check_inplace_allowed(*this, "copy_");
  LOWBIT_CHECK(src.defined(), "copy_: source is undefined");
  Shape b = detail::broadcast_shapes(shape(), src.shape(), "copy_");
  LOWBIT_CHECK(b == shape(), "copy_: cannot broadcast source ", shape_str(src.shape()), " to destination ",
               shape_str(shape()));
  copy_elements(*this, src.expand(shape()));
  bump_version();
  return *this;
}

Tensor Tensor::to(DType t) const {
  Tensor out = Tensor::empty(shape(), t);
  copy_elements(out, *this);
  if (t != DType::f32) out.set_qparams(qparams());
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->dtype = impl_->dtype;
  impl->version = impl_->version;
  impl->qparams = impl_->qparams;
  return Tensor(std::move(impl));
}

// ---------------------------------------------------------------- views

namespace {

// A view of `base` with new geometry (shares storage and version counter).
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  Tensor v = base.detach();
  v.impl()->shape = std::move(shape);
  v.impl()->strides = std::move(strides);
  v.impl()->offset = offset;
  return v;
}

class ReshapeBackward final : public Node {
 public:
  explicit ReshapeBackward(Shape in) : in_(std::move(in)) {}
  const char* name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.reshape(in_)}; }

 private:
  Shape in_;
};

class PermuteBackward final : public Node {
 public:
  explicit PermuteBackward(std::vector<int64_t> inv) : inv_(std::move(inv)) {}
  const char* name() const override { return "PermuteBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.permute(inv_)}; }

 private:
  std::vector<int64_t> inv_;
};

class SliceBackward final : public Node {
 public:
  SliceBackward(Shape in, int64_t dim, int64_t start, int64_t end, int64_t step)
      : in_(std::move(in)), dim_(dim), start_(start), end_(end), step_(step) {}
  const char* name() const override { return "SliceBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor gx = Tensor::zeros(in_);
    gx.slice(dim_, start_, end_, step_).copy_(g);
    return {gx};
  }

 private:
  Shape in_;
  int64_t dim_, start_, end_, step_;
};

class ExpandBackward final : public Node {
 public:
  explicit ExpandBackward(Shape in) : in_(std::move(in)) {}
  const char* name() const override { return "ExpandBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {sum_to(g, in_)}; }

 private:
  Shape in_;
};

class CloneBackward final : public Node {
 public:
  const char* name() const override { return "CloneBackward"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g}; }
};

}  // namespace

Tensor Tensor::view(const Shape& shape_in) const {
  Shape shape = shape_in;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LOWBIT_CHECK(infer < 0, "view: only one dimension can be -1 in ", shape_str(shape_in));
      infer = (int64_t)i;
    } else {
      LOWBIT_CHECK(shape[i] >= 0, "view: invalid size in ", shape_str(shape_in));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    LOWBIT_CHECK(known != 0 && numel() % known == 0, "view: shape ", shape_str(shape_in), " is invalid for input of shape ",
                 shape_str(this->shape()));
    shape[infer] = numel() / known;
  }
  LOWBIT_CHECK(shape_numel(shape) == numel(), "view: shape ", shape_str(shape_in), " is invalid for input of shape ",
               shape_str(this->shape()), " (", numel(), " elements)");
  // Compute strides for the new shape if the old layout allows it (the
  // algorithm of PyTorch's computeStride: split/merge runs of dims that are
  // contiguous with respect to each other).
  Shape new_strides(shape.size());
  const Shape& os = this->shape();
  const Shape& ost = strides();
  if (numel() == 0 || os.empty()) {
    new_strides = contiguous_strides(shape);
  } else {
    int64_t view_d = (int64_t)shape.size() - 1;
    int64_t chunk_base_stride = ost.back();
    int64_t tensor_numel = 1, view_numel = 1;
    bool ok = true;
    for (int64_t td = (int64_t)os.size() - 1; td >= 0; --td) {
      tensor_numel *= os[td];
      if (td == 0 || (os[td - 1] != 1 && ost[td - 1] != tensor_numel * chunk_base_stride)) {
        while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
          new_strides[view_d] = view_numel * chunk_base_stride;
          view_numel *= shape[view_d];
          --view_d;
        }
        if (view_numel != tensor_numel) { ok = false; break; }
        if (td > 0) {
          chunk_base_stride = ost[td - 1];
          tensor_numel = 1;
          view_numel = 1;
        }
      }
    }
    if (ok && view_d != -1) ok = false;
    LOWBIT_CHECK(ok, "view: shape ", shape_str(shape_in), " is not compatible with the strides of input ",
                 shape_str(os), "; use reshape()");
  }
  Tensor out = make_view(*this, shape, new_strides, offset());
  if (any_requires_grad({this})) record(out, std::make_shared<ReshapeBackward>(this->shape()), {this});
  return out;
}

Tensor Tensor::reshape(const Shape& shape) const {
  try {
    return view(shape);
  } catch (const Error&) {
    return contiguous().view(shape);
  }
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  LOWBIT_CHECK((int64_t)dims.size() == dim(), "permute: got ", dims.size(), " dims for a tensor of shape ",
               shape_str(shape()));
  Shape sh(dims.size()), st(dims.size());
  std::vector<int64_t> inv(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = detail::wrap_dim(dims[i], dim(), "permute");
    LOWBIT_CHECK(inv[d] < 0, "permute: dim ", d, " repeated");
    inv[d] = (int64_t)i;
    sh[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, sh, st, offset());
  if (any_requires_grad({this})) record(out, std::make_shared<PermuteBackward>(inv), {this});
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[detail::wrap_dim(d0, dim(), "transpose")], p[detail::wrap_dim(d1, dim(), "transpose")]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = detail::wrap_dim(d, dim(), "slice");
  LOWBIT_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sh = shape(), st = strides();
  sh[d] = (end - start + step - 1) / step;
  st[d] = strides()[d] * step;
  Tensor out = make_view(*this, sh, st, offset() + start * strides()[d]);
  if (any_requires_grad({this})) record(out, std::make_shared<SliceBackward>(shape(), d, start, end, step), {this});
  return out;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = detail::wrap_dim(d, dim(), "select");
  const int64_t n = shape()[d];
  LOWBIT_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of shape ",
               shape_str(shape()));
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = detail::wrap_dim(d, dim() + 1, "unsqueeze");
  Shape sh = shape();
  sh.insert(sh.begin() + d, 1);
  return view(sh);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = detail::wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape sh = shape();
  sh.erase(sh.begin() + d);
  return view(sh);
}

Tensor Tensor::expand(const Shape& target) const {
  LOWBIT_CHECK(target.size() >= shape().size(), "expand: cannot expand ", shape_str(shape()), " to ",
               shape_str(target));
  const size_t lead = target.size() - shape().size();
  Shape st(target.size(), 0);
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) continue;
    const int64_t s = shape()[i - lead];
    if (s == target[i]) st[i] = strides()[i - lead];
    else LOWBIT_CHECK(s == 1, "expand: cannot expand ", shape_str(shape()), " to ", shape_str(target));
  }
  if (target == shape()) return *this;
  Tensor out = make_view(*this, target, st, offset());
  if (any_requires_grad({this})) record(out, std::make_shared<ExpandBackward>(shape()), {this});
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype());
  copy_elements(out, *this);
  out.set_qparams(qparams());
  if (any_requires_grad({this})) record(out, std::make_shared<CloneBackward>(), {this});
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

// ---------------------------------------------------------------- autograd accessors

bool Tensor::requires_grad() const {
  return impl_ && impl_->autograd && (impl_->autograd->requires_grad || impl_->autograd->grad_fn);
}

Tensor& Tensor::set_requires_grad(bool r) {
  LOWBIT_CHECK(defined(), "set_requires_grad: undefined tensor");
  LOWBIT_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad (this one comes from ",
               grad_fn()->name(), "); use detach()");
  LOWBIT_CHECK(!r || dtype() == DType::f32, "set_requires_grad: only f32 tensors can require grad, got ",
               dtype_name(dtype()));
  if (!impl_->autograd) impl_->autograd = std::make_unique<AutogradMeta>();
  impl_->autograd->requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const { return impl_ && impl_->autograd ? impl_->autograd->grad : Tensor(); }

void Tensor::set_grad(const Tensor& g) const {
  if (!impl_->autograd) impl_->autograd = std::make_unique<AutogradMeta>();
  LOWBIT_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient shape ", shape_str(g.shape()),
               " does not match tensor shape ", shape_str(shape()));
  impl_->autograd->grad = g;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  return impl_ && impl_->autograd ? impl_->autograd->grad_fn : none;
}

bool Tensor::is_leaf() const { return grad_fn() == nullptr; }

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  Tensor g = grad_output;
  if (!g.defined()) {
    LOWBIT_CHECK(numel() == 1, "backward: grad can be implicitly created only for a single value, this tensor has shape ",
                 shape_str(shape()));
    g = Tensor::ones(shape());
  }
  LOWBIT_CHECK(g.shape() == shape(), "backward: grad_output shape ", shape_str(g.shape()),
               " does not match tensor shape ", shape_str(shape()));
  run_backward(*this, g, retain_graph);
}

// ---------------------------------------------------------------- printing

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::vector<float> v = t.to_vector();
  const Shape& sh = t.shape();
  const bool is_float = t.dtype() == DType::f32;
  const bool summarize = v.size() > 1000;
  std::ostringstream body;
  body << std::fixed << std::setprecision(4);
  // Recursive printer over dims, PyTorch-style brackets and "..." when large.
  std::vector<int64_t> st = contiguous_strides(sh);
  auto print = [&](auto&& self, int64_t d, int64_t off, int indent) -> void {
    if (d == (int64_t)sh.size()) {
      if (is_float) body << v[off]; else body << (int64_t)v[off];
      return;
    }
    body << '[';
    const int64_t n = sh[d];
    for (int64_t i = 0; i < n; ++i) {
      if (summarize && n > 6 && i == 3) {
        body << "...";
        i = n - 3;
        body << (d + 1 == (int64_t)sh.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
      }
      self(self, d + 1, off + i * st[d], indent + 1);
      if (i + 1 < n) body << (d + 1 == (int64_t)sh.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
    }
    body << ']';
  };
  print(print, 0, 0, 7);
  os << "tensor(" << body.str();
  if (!is_float) os << ", dtype=" << dtype_name(t.dtype());
  if (t.requires_grad()) os << (t.grad_fn() ? std::string(", grad_fn=<") + t.grad_fn()->name() + ">" : ", requires_grad=true");
  return os << ')';
}

}  // namespace lowbit
