// What the op files share: extents, clamps, the input's layout change, and
// the tensors of the layer ops (conv, linear, dynamic_linear).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

bool sane_extents(const Shape& s) {
  constexpr int64_t kMaxWeights = int64_t(1) << 31;
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 1 || n > kMaxWeights / d) return false;
    n *= d;
  }
  return true;
}

void clamp_to(uint8_t* y, int64_t n, const Grid& g) {
  if (g.qmin == 0 && g.qmax == 255) return;
  const uint8_t lo = (uint8_t)g.qmin, hi = (uint8_t)g.qmax;
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], lo), hi);
}

// Few channels, many pixels: rows of pixels in parallel (the kernels' layout
// change is one thread).
void to_nhwc(uint8_t* y, const uint8_t* x, int64_t n, int64_t c, int64_t hw) {
  constexpr int64_t kRow = 1024;
  const int64_t rows = (hw + kRow - 1) / kRow;
#pragma omp parallel for schedule(static) num_threads(kernels::num_threads()) if (n * c * hw >= (1 << 16))
  for (int64_t r = 0; r < n * rows; ++r) {
    const int64_t b = r / rows, p0 = r % rows * kRow, p1 = std::min(hw, p0 + kRow);
    const uint8_t* xb = x + b * c * hw;
    uint8_t* yb = y + b * hw * c;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = p0; p < p1; ++p) yb[p * c + ch] = xb[ch * hw + p];
  }
}

void check_layer_scales(const IntegerLayer& L, const std::string& where) {
  const int64_t k = L.out_channels();
  LOWBIT_CHECK((int64_t)L.weight_scale.size() == k || L.weight_scale.size() == 1, where, "has ",
               L.weight_scale.size(), " weight scales for ", k, " outputs");
  for (float s : L.weight_scale)
    LOWBIT_CHECK(std::isfinite(s) && s > 0, where, "weight scale ", s, " is not a positive number");
}

void check_integer_layer(const Model& m, const Op& op, const std::string& where) {
  const IntegerLayer& L = op.layer;
  const int64_t k = L.out_channels();
  LOWBIT_CHECK(k >= 1, where, "has no weights");
  LOWBIT_CHECK((int64_t)L.bias.size() == k, where, "bias has ", L.bias.size(), " values for ", k, " outputs");
  check_layer_scales(L, where);
  LOWBIT_CHECK(L.in == m.values[(size_t)op.inputs[0]].grid && L.out == m.values[(size_t)op.output].grid, where,
               "its quantization parameters disagree with its values'");
  // Every extent ≥ 1 (an empty filter passes the size check below but no
  // kernel runs it) and the product bounded before shape_numel multiplies.
  LOWBIT_CHECK(sane_extents(L.weight_shape), where, "weight shape ", shape_str(L.weight_shape),
               " has an empty or too large extent");
  LOWBIT_CHECK((int64_t)L.weight.size() == shape_numel(L.weight_shape), where, "weight holds ", L.weight.size(),
               " values for shape ", shape_str(L.weight_shape));
}

void save_layer(const Op& op, const std::vector<float>* float_bias, NamedTensors& out) {
  const IntegerLayer& L = op.layer;
  Tensor w = Tensor::empty(L.weight_shape, DType::s8);
  std::copy(L.weight.begin(), L.weight.end(), w.data<int8_t>());
  out.emplace_back(op.name + ".weight", w);
  if (float_bias) {
    out.emplace_back(op.name + ".bias", Tensor::from_vector(*float_bias, {(int64_t)float_bias->size()}));
  } else {
    Tensor b = Tensor::empty({(int64_t)L.bias.size()}, DType::s32);
    std::copy(L.bias.begin(), L.bias.end(), b.data<int32_t>());
    out.emplace_back(op.name + ".bias", b);
  }
  out.emplace_back(op.name + ".weight_scale", Tensor::from_vector(L.weight_scale, {(int64_t)L.weight_scale.size()}));
}

void load_layer(const Model& m, Op& op, const SafetensorsFile& f, const std::string& path, int weight_dims,
                bool float_bias) {
  for (int in : op.inputs)
    if (in < 0 || in >= (int)m.values.size()) fail(path, ": op ", op.name, " reads a value that does not exist");
  if (op.output < 0 || op.output >= (int)m.values.size()) fail(path, ": op ", op.name, " writes a value that does not exist");
  IntegerLayer& L = op.layer;
  if (op.inputs.size() != 1) fail(path, ": op ", op.name, " has ", op.inputs.size(), " inputs");
  L.in = m.values[(size_t)op.inputs[0]].grid;
  L.out = m.values[(size_t)op.output].grid;
  auto get = [&](const std::string& suffix, DType dt) -> const Tensor& {
    const std::string name = op.name + suffix;
    if (!f.has(name)) fail(path, ": op ", op.name, " needs tensor '", name, "', which the file does not hold");
    const Tensor& t = f.get(name);
    if (t.dtype() != dt) fail(path, ": tensor '", name, "' is ", dtype_name(t.dtype()), ", expected ", dtype_name(dt));
    return t;
  };
  const Tensor& w = get(".weight", DType::s8);
  const Tensor& b = get(".bias", float_bias ? DType::f32 : DType::s32);
  const Tensor& s = get(".weight_scale", DType::f32);
  const int64_t k = w.dim() >= 1 ? w.shape()[0] : 0;
  if (w.dim() != weight_dims)
    fail(path, ": tensor '", op.name, ".weight' has shape ", shape_str(w.shape()), ", not a ",
         weight_dims == 4 ? "conv's O,I,R,S" : "linear layer's out,in");
  if (b.dim() != 1 || b.numel() != k)
    fail(path, ": tensor '", op.name, ".bias' has shape ", shape_str(b.shape()), " for ", k, " outputs");
  if (s.dim() != 1 || (s.numel() != k && s.numel() != 1))
    fail(path, ": tensor '", op.name, ".weight_scale' has shape ", shape_str(s.shape()), " for ", k, " outputs");
  L.weight_shape = w.shape();
  L.weight.assign(w.data<int8_t>(), w.data<int8_t>() + w.numel());
  if (float_bias)
    op.float_bias = b.to_vector();
  else
    L.bias.assign(b.data<int32_t>(), b.data<int32_t>() + b.numel());
  L.weight_scale = s.to_vector();
}

}  // namespace lowbit::quant::engine
