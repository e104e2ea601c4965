// Tensor: a cheap handle to a TensorImpl (storage + offset + shape + strides +
// dtype + version counter + optional quantization parameters + autograd meta).
// Views share storage and the version counter, as in PyTorch.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace lowbit {

enum class DType : uint8_t { f32, s32, s8, u8 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);

// 64-byte aligned, zero-initialised buffer. Shared by all views of a tensor.
struct Storage {
  explicit Storage(size_t nbytes, bool zero = true);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t nbytes = 0;
};

// Thrown by an AllocationLimit (below).
struct AllocationLimitError : Error {
  using Error::Error;
};

// While one lives, the tensor storage this thread allocates is counted
// (allocations only, frees not subtracted) and an allocation that would take
// the count past `bytes` throws an Error naming `what`, the limit and the
// count: building something far too large for the machine fails with the
// figure instead of the process being killed for memory. Nested limits: the
// innermost applies.
class AllocationLimit {
 public:
  AllocationLimit(int64_t bytes, std::string what);
  ~AllocationLimit();
  AllocationLimit(const AllocationLimit&) = delete;
  AllocationLimit& operator=(const AllocationLimit&) = delete;
  int64_t allocated() const { return allocated_; }
  void add(size_t n);

 private:
  int64_t limit_, allocated_ = 0;
  std::string what_;
  AllocationLimit* outer_;
};

// Quantization parameters for s8/u8 tensors: per-tensor (axis = -1, one
// scale/zero-point) or per-channel along `axis`.
struct QuantParams {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int axis = -1;
};

class Node;
class Tensor;

struct AutogradMeta;  // defined in core/autograd.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;       // in elements
  DType dtype = DType::f32;
  // Bumped by every in-place write; shared by views so a write through any
  // view invalidates tensors saved for backward from any other view.
  std::shared_ptr<uint64_t> version = std::make_shared<uint64_t>(0);
  std::shared_ptr<QuantParams> qparams;  // null unless quantized
  std::unique_ptr<AutogradMeta> autograd;  // null unless requires_grad or produced by a recorded op
  ~TensorImpl();
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (f32 unless dtype given) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);  // zero-filled storage
  // Contents unspecified (a reused buffer keeps old bytes): only for outputs
  // the caller overwrites entirely, e.g. a kernel whose contract is write-only.
  static Tensor uninitialized(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  static Tensor arange(int64_t n, DType dtype = DType::f32);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);
  static Tensor from_vector_s32(const std::vector<int32_t>& v, const Shape& shape);
  static Tensor scalar(float v) { return from_vector({v}, {}); }

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // ---- metadata ----
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return (int64_t)impl_->shape.size(); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  int64_t offset() const { return impl_->offset; }
  bool is_contiguous() const;
  uint64_t version() const { return *impl_->version; }
  void bump_version() const { ++*impl_->version; }
  bool same_storage(const Tensor& o) const { return impl_->storage == o.impl_->storage; }
  // The only handle on its storage (no other Tensor, view or saved copy): a
  // backward node may overwrite such an incoming gradient in place, since
  // nobody else can see it.
  bool is_exclusive() const { return impl_.use_count() == 1 && impl_->storage.use_count() == 1; }

  // ---- raw data (checked dtype) ----
  template <class T> T* data() const;  // pointer to element 0 of this view
  float item() const;                  // single-element f32/s32 tensor → value
  std::vector<float> to_vector() const;  // any layout, f32 or integer dtypes → floats in logical order

  // ---- quantization slot ----
  const std::shared_ptr<QuantParams>& qparams() const { return impl_->qparams; }
  void set_qparams(std::shared_ptr<QuantParams> q) const { impl_->qparams = std::move(q); }

  // ---- views (share storage; differentiable) ----
  Tensor view(const Shape& shape) const;     // requires compatible strides; one dim may be -1
  Tensor reshape(const Shape& shape) const;  // view if possible, else copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes dim
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // broadcast view (stride 0)
  Tensor contiguous() const;                // self if already contiguous
  Tensor clone() const;                     // contiguous copy (differentiable)
  Tensor detach() const;                    // same storage, no autograd history
  Tensor to(DType dtype) const;             // value conversion (not differentiable)

  // ---- in-place (bump the version counter; not recorded by autograd) ----
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // broadcasting src into this; any dtype pair
  Tensor& zero_() { return fill_(0); }

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r = true);
  Tensor grad() const;           // undefined if none accumulated yet
  void set_grad(const Tensor& g) const;
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const;
  // Gradient of this tensor w.r.t. leaves; this must be a single element
  // unless `grad_output` is given.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Contiguous strides for a shape.
Shape contiguous_strides(const Shape& shape);

}  // namespace lowbit
