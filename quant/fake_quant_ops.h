// Differentiable fake quantization: quantize then dequantize in one op, with
// the arithmetic of kernels/quant_math.h (the int8 kernels' arithmetic).
//
//   fake_quantize   x̂ = (clamp(round_half_even(x · (1/s)) + zp, qmin, qmax) − zp) · s
//                   per tensor or per channel (axis); bit-identical to
//                   torch.fake_quantize_per_tensor_affine / _per_channel_affine.
//                   Gradient (straight-through): dx = g where qmin ≤ round(x/s) + zp ≤ qmax,
//                   else 0 — PyTorch's mask.
//
//   lsq_quantize    LSQ (Esser et al. 2020) and LSQ+ (Bhalgat et al. 2020):
//                   v = (x − β) · (1/s),  x̂ = (clamp(round_half_even(v) + zp, qmin, qmax) − zp) · s + β
//                   with a learnable step s (per tensor [1] or per channel [C]), an optional
//                   learnable offset β ([1], LSQ+; undefined for LSQ) and a fixed integer zp.
//                   Gradients (the papers' STE, "inside" meaning qmin ≤ v + zp ≤ qmax before rounding):
//                     dx = g inside, 0 outside
//                     ds = k · Σ g · (round(v) − v inside; qmin − zp below; qmax − zp above)
//                     dβ = grad_scale · Σ g · (0 inside; 1 outside)
//                   k = grad_scale (LsqQuantizer: 1/√(numel·Qp), PyTorch's learnable fake quant),
//                   or, where the step's sum is > 0 (gradient descent shrinks it) and
//                   shrink_grad_scale is given, that step's shrink_grad_scale (LsqQuantizer: the
//                   same times min(1, s/s₀), quantizer.cpp).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace lowbit::quant {

Tensor fake_quantize(const Tensor& x, const QuantParams& qp, int qmin, int qmax);

Tensor lsq_quantize(const Tensor& x, const Tensor& scale, const Tensor& offset, const std::vector<int32_t>& zero_point,
                    int axis, int qmin, int qmax, float grad_scale, const std::vector<float>& shrink_grad_scale = {});

}  // namespace lowbit::quant
