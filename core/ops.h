// Differentiable functional ops on f32 tensors (PyTorch semantics, PyTorch
// broadcasting). Each op: forward through the kernel table, one Node for
// backward (see core/autograd.h). Non-contiguous inputs are accepted
// everywhere. Shape errors name the op and both shapes.
#pragma once
#include <optional>
#include <vector>

#include "core/generator.h"
#include "core/tensor.h"

namespace lowbit {

// ---- elementwise, broadcasting ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float b);
Tensor mul(const Tensor& a, float b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, float exponent);
Tensor abs(const Tensor& x);
Tensor clamp(const Tensor& x, float lo, float hi);  // gradient 1 inside [lo, hi], 0 outside
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, float b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, float b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, float b) { return mul(a, b); }
inline Tensor operator*(float a, const Tensor& b) { return mul(b, a); }
inline Tensor operator/(const Tensor& a, float b) { return mul(a, 1.0f / b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

// ---- reductions ----
Tensor sum(const Tensor& x);  // all elements → scalar
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Max over one dim; the gradient goes to the first maximal element.
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // s32, not differentiable
// Sum `x` down to `shape` (the adjoint of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra ----
// matmul: 1-D/2-D/batched (…×M×K)·(…×K×N) with batch broadcasting as torch.matmul.
Tensor matmul(const Tensor& a, const Tensor& b);
// linear: x[…×in] · weight[out×in]ᵀ + bias[out]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- convolution and pooling (NCHW) ----
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  static Conv2dOptions make(int64_t stride, int64_t padding, int64_t dilation = 1, int64_t groups = 1) {
    return {stride, stride, padding, padding, dilation, dilation, groups};
  }
};
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dOptions& opt = {});

struct Pool2dOptions {
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h = 0, pad_w = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg_pool2d
  static Pool2dOptions make(int64_t kernel, int64_t stride = -1, int64_t padding = 0) {
    if (stride < 0) stride = kernel;
    return {kernel, kernel, stride, stride, padding, padding};
  }
};
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// ---- normalization ----
// An activation fused into the op that produces its input: act(op(x)) in one
// pass forward and one backward, equal bit for bit to relu(op(x)) /
// relu6(op(x)) unfused, without keeping op(x) alive for the backward.
enum class Activation { none, relu, relu6 };

// training: normalise with batch statistics and update running_mean/var in
// place (momentum, unbiased variance, as PyTorch); eval: use running stats.
// weight/bias may be undefined (affine=false). act: fused activation.
// input_scale (optional, [C], differentiable): batch-normalise x·input_scale
// (per channel) without forming it — the QAT conv+BN's division of the conv
// output by γ/σ, one pass forward and backward instead of two.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, float momentum = 0.1f,
                  float eps = 1e-5f, Activation act = Activation::none, const Tensor& input_scale = Tensor());

// ---- shape ----
Tensor flatten(const Tensor& x, int64_t start_dim = 1, int64_t end_dim = -1);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
// pad: constant padding of the last dims, PyTorch order (left, right, top, bottom, …).
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, float value = 0.0f);

// ---- activations with normalisation ----
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- regularisation ----
// Inverted dropout: keeps with probability 1-p and scales by 1/(1-p). Identity when !training.
Tensor dropout(const Tensor& x, float p, bool training, Generator* gen = nullptr);

// ---- losses (reduction: mean) ----
enum class Reduction { none, mean, sum, batchmean };
// logits[N×C], target s32 [N] class indices; label smoothing as PyTorch.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, float label_smoothing = 0.0f,
                     Reduction reduction = Reduction::mean);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
// kl_div(input = log-probabilities, target = probabilities) as torch.nn.functional.kl_div
// (log_target = false): sum target * (log target - input), 0 where target == 0.
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::batchmean);

}  // namespace lowbit
