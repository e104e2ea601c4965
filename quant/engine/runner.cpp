#include "quant/engine/runner.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "quant/dynamic.h"

namespace lowbit::quant::engine {

namespace {

bool full_range(const Grid& g) { return g.qmin == 0 && g.qmax == 255; }

// The kernels clamp u8 results to 0..255; a narrower grid (sub-8-bit
// activations) clamps once more: clamp(clamp(v, 0, 255), lo, hi) = clamp(v, lo, hi).
void clamp_to(uint8_t* y, int64_t n, const Grid& g) {
  if (full_range(g)) return;
  const uint8_t lo = (uint8_t)g.qmin, hi = (uint8_t)g.qmax;
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], lo), hi);
}

int64_t spatial(const Shape& s) { return s.size() == 3 ? s[1] * s[2] : 1; }

// N×C×HW → N×HW×C for the network input (few channels, many pixels): rows of
// pixels in parallel (the kernels' layout change is one thread).
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

}  // namespace

struct Runner::Impl {
  Model m;
  const kernels::Int8Kernels* k;
  struct Prepared {
    kernels::PackedQConvWeights conv;
    kernels::PackedQGemmWeights gemm;
    std::vector<float> multipliers;
    DynamicLinearKernel dynamic;
  };
  std::vector<uint8_t> dynamic_scratch;  // a dynamic layer's quantized input
  std::vector<Prepared> prep;  // per op
  bool profiling = false;
  std::vector<double> seconds;  // per op, while profiling
  std::chrono::steady_clock::time_point mark;
  void tick(size_t op) {
    if (!profiling) return;
    const auto now = std::chrono::steady_clock::now();
    seconds[op] += std::chrono::duration<double>(now - mark).count();
    mark = now;
  }
  // Memory plan for `planned_n` images: each value's byte offset in the arena.
  int64_t planned_n = -1;
  std::vector<size_t> offset;
  kernels::AlignedBytes arena, scratch;

  uint8_t* buf(int v) { return arena.data() + offset[(size_t)v]; }

  void plan(int64_t n) {
    if (n == planned_n) return;
    const size_t nv = m.values.size();
    std::vector<size_t> last((size_t)nv, 0), bytes(nv);
    for (size_t i = 0; i < m.ops.size(); ++i)
      for (int in : m.ops[i].inputs) last[(size_t)in] = std::max(last[(size_t)in], i);
    last[(size_t)m.output] = m.ops.size();
    for (size_t v = 0; v < nv; ++v)
      bytes[v] = ((size_t)(n * shape_numel(m.values[v].shape)) * (m.values[v].is_float ? 4 : 1) + 63) / 64 * 64;
    // First fit, in op order: an op's output never shares bytes with its inputs
    // (they are freed after it runs).
    struct Block {
      size_t begin, end;
      int value;
    };
    std::vector<Block> live;
    offset.assign(nv, 0);
    size_t top = 0, scratch_bytes = 0;
    for (size_t i = 0; i < m.ops.size(); ++i) {
      const Op& op = m.ops[i];
      const size_t need = bytes[(size_t)op.output];
      std::sort(live.begin(), live.end(), [](const Block& a, const Block& b) { return a.begin < b.begin; });
      size_t at = 0;
      for (const Block& b : live) {
        if (b.begin >= at + need) break;
        at = std::max(at, b.end);
      }
      offset[(size_t)op.output] = at;
      live.push_back({at, at + need, op.output});
      top = std::max(top, at + need);
      live.erase(std::remove_if(live.begin(), live.end(), [&](const Block& b) { return last[(size_t)b.value] <= i; }),
                 live.end());
      // Scratch: the float input's u8 NCHW copy, a flattened linear input.
      if (op.kind == OpKind::quantize) scratch_bytes = std::max(scratch_bytes, (size_t)(n * shape_numel(m.input_shape)));
      if (op.kind == OpKind::linear && spatial(m.values[(size_t)op.inputs[0]].shape) > 1)
        scratch_bytes = std::max(scratch_bytes, bytes[(size_t)op.inputs[0]]);
    }
    if (arena.size < top) arena.allocate(top);
    if (scratch.size < scratch_bytes) scratch.allocate(scratch_bytes);
    planned_n = n;
  }

  void run_op(const Op& op, size_t i, int64_t n) {
    const Value& out = m.values[(size_t)op.output];
    uint8_t* y = buf(op.output);
    const Prepared& p = prep[i];
    switch (op.kind) {
      case OpKind::quantize:
      case OpKind::input:
        break;  // done by the caller
      case OpKind::dynamic_linear:
        p.dynamic.run(reinterpret_cast<const float*>(buf(op.inputs[0])), n, reinterpret_cast<float*>(y),
                      dynamic_scratch, op.name);
        break;
      case OpKind::conv: {
        const Value& in = m.values[(size_t)op.inputs[0]];
        const Conv2dOptions& o = op.conv;
        kernels::QConv2dShape sh{n, in.shape[1], in.shape[2], in.shape[0], out.shape[0], op.layer.weight_shape[2],
                                 op.layer.weight_shape[3], o.stride_h, o.stride_w, o.pad_h, o.pad_w, o.dil_h, o.dil_w,
                                 o.groups};
        kernels::QuantEpilogue ep{p.multipliers.data(), p.multipliers.size() > 1, op.layer.bias.data(), out.grid.zp,
                                  out.grid.qmin, out.grid.qmax, kernels::QOut::u8};
        k->qu8_qs8_conv2d(y, buf(op.inputs[0]), in.grid.zp, p.conv, ep, sh);
        break;
      }
      case OpKind::linear: {
        const Value& in = m.values[(size_t)op.inputs[0]];
        const int64_t f = shape_numel(in.shape);
        const uint8_t* a = buf(op.inputs[0]);
        if (spatial(in.shape) > 1) {  // NHWC → PyTorch's C·H·W flatten order
          k->u8_nhwc_to_nchw(scratch.data(), a, n, in.shape[0], spatial(in.shape));
          a = scratch.data();
        }
        kernels::QuantEpilogue ep{p.multipliers.data(), p.multipliers.size() > 1, op.layer.bias.data(), out.grid.zp,
                                  out.grid.qmin, out.grid.qmax, kernels::QOut::u8};
        k->qu8_qs8_gemm(y, out.shape[0], a, f, in.grid.zp, p.gemm, ep, n);
        break;
      }
      case OpKind::add: {
        const Grid &a = m.values[(size_t)op.inputs[0]].grid, &b = m.values[(size_t)op.inputs[1]].grid;
        k->qu8_add(y, buf(op.inputs[0]), a.scale, a.zp, buf(op.inputs[1]), b.scale, b.zp, out.grid.scale, out.grid.zp,
                   out.grid.qmin, out.grid.qmax, n * shape_numel(out.shape));
        break;
      }
      case OpKind::max_pool: {
        const Value& in = m.values[(size_t)op.inputs[0]];
        const Pool2dOptions& o = op.pool;
        kernels::QPool2dShape sh{n, in.shape[1], in.shape[2], in.shape[0], o.kernel_h, o.kernel_w, o.stride_h,
                                 o.stride_w, o.pad_h, o.pad_w, out.shape[1], out.shape[2], true};
        k->qu8_max_pool2d(y, buf(op.inputs[0]), sh);
        break;
      }
      case OpKind::global_avg_pool: {
        const Value& in = m.values[(size_t)op.inputs[0]];
        k->qu8_global_avg_pool(y, buf(op.inputs[0]), in.grid.scale, in.grid.zp, out.grid.scale, out.grid.zp, n,
                               spatial(in.shape), in.shape[0]);
        clamp_to(y, n * shape_numel(out.shape), out.grid);
        break;
      }
    }
  }

  void run_graph(int64_t n, float* result) {
    tick(0);
    for (size_t i = 1; i < m.ops.size(); ++i) {
      run_op(m.ops[i], i, n);
      tick(i);
    }
    const Value& out = m.values[(size_t)m.output];
    const int64_t numel = n * shape_numel(out.shape);
    const float scale = out.grid.scale;
    const int32_t zp = out.grid.zp;
    if (out.is_float) {  // float values are NCHW already
      std::memcpy(result, buf(m.output), (size_t)numel * sizeof(float));
    } else if (spatial(out.shape) == 1) {
      k->dequantize_u8_f32(result, buf(m.output), &scale, &zp, 1, 1, numel);
    } else {
      std::vector<float> tmp((size_t)numel);
      k->dequantize_u8_f32(tmp.data(), buf(m.output), &scale, &zp, 1, 1, numel);
      k->f32_nhwc_to_nchw(result, tmp.data(), n, out.shape[0], spatial(out.shape));
    }
    tick(m.ops.size() - 1);
  }
};

Runner::Runner(Model m, const kernels::KernelTable* table) : impl_(std::make_unique<Impl>()) {
  validate(m, "engine");
  impl_->m = std::move(m);
  impl_->k = &(table ? *table : kernels::table()).q8;
  const auto* k = impl_->k;
  for (const Op& op : impl_->m.ops) {
    Impl::Prepared p;
    if (op.kind == OpKind::dynamic_linear) {
      const IntegerLayer& L = op.layer;
      p.dynamic = DynamicLinearKernel(*k, L.weight.data(), L.weight_shape[0], L.weight_shape[1], L.weight_scale,
                                      op.float_bias, op.relu, op.reduce_range);
    }
    if (op.kind == OpKind::conv || op.kind == OpKind::linear) {
      const IntegerLayer& L = op.layer;
      p.multipliers = L.multipliers();
      if (op.kind == OpKind::linear) {
        k->qgemm_pack(p.gemm, L.weight.data(), L.weight_shape[0], L.weight_shape[1]);
      } else {
        // OIHW (the file's layout) → OHWI (the kernels').
        const int64_t ko = L.weight_shape[0], ci = L.weight_shape[1], r = L.weight_shape[2], s = L.weight_shape[3];
        std::vector<int8_t> ohwi(L.weight.size());
        for (int64_t o = 0; o < ko; ++o)
          for (int64_t c = 0; c < ci; ++c)
            for (int64_t y = 0; y < r * s; ++y) ohwi[(size_t)((o * r * s + y) * ci + c)] = L.weight[(size_t)((o * ci + c) * r * s + y)];
        kernels::QConv2dShape sh{1, r, s, ci * op.conv.groups, ko, r, s};
        sh.groups = op.conv.groups;
        k->qconv2d_pack(p.conv, ohwi.data(), sh);
      }
    }
    impl_->prep.push_back(std::move(p));
  }
}

Runner::~Runner() = default;
Runner::Runner(Runner&&) noexcept = default;

const Model& Runner::model() const { return impl_->m; }
size_t Runner::arena_bytes() const { return impl_->arena.size; }
void Runner::set_profiling(bool on) {
  impl_->profiling = on;
  impl_->seconds.assign(impl_->m.ops.size(), 0.0);
}
const std::vector<double>& Runner::op_seconds() const { return impl_->seconds; }

Tensor Runner::run(const Tensor& x_in) {
  const Model& m = impl_->m;
  LOWBIT_CHECK(x_in.dim() == 4 && Shape(x_in.shape().begin() + 1, x_in.shape().end()) == m.input_shape,
               "int8 engine: input ", shape_str(x_in.shape()), " does not match the model's input N×",
               m.input_shape[0], "×", m.input_shape[1], "×", m.input_shape[2]);
  const Tensor x = x_in.contiguous();
  const int64_t n = x.shape()[0];
  LOWBIT_CHECK(n >= 1, "int8 engine: an empty batch ", shape_str(x_in.shape()));
  impl_->mark = std::chrono::steady_clock::now();
  impl_->plan(n);
  Shape out_shape{n};
  const Shape& os = m.values[(size_t)m.output].shape;
  out_shape.insert(out_shape.end(), os.begin(), os.end());
  Tensor y = Tensor::uninitialized(out_shape);
  const Op& q = m.ops[0];
  if (q.kind == OpKind::input) {  // a float graph (dynamic quantization) takes the input as it is
    std::memcpy(impl_->buf(q.output), x.data<float>(), (size_t)x.numel() * sizeof(float));
    impl_->run_graph(n, y.data<float>());
    return y;
  }
  // quantize (NCHW u8 in scratch; rows of W so every thread has work), then NHWC into the input value.
  const Grid& g = m.values[(size_t)q.output].grid;
  const int64_t c = m.input_shape[0], h = m.input_shape[1], w = m.input_shape[2], hw = h * w;
  uint8_t* dst = impl_->buf(q.output);
  uint8_t* nchw = c == 1 ? dst : impl_->scratch.data();
  impl_->k->quantize_f32_u8(nchw, x.data<float>(), &g.scale, &g.zp, n * c * h, 1, w);
  clamp_to(nchw, n * c * hw, g);
  if (c != 1) to_nhwc(dst, nchw, n, c, hw);
  impl_->run_graph(n, y.data<float>());
  return y;
}

void Runner::run_u8(const uint8_t* x, int64_t n, float* y) {
  LOWBIT_CHECK(n >= 1, "int8 engine: batch of ", n);
  const Model& m = impl_->m;
  LOWBIT_CHECK(m.ops[0].kind == OpKind::quantize, "int8 engine: this model takes float input (dynamic quantization), "
               "not u8 images");
  impl_->mark = std::chrono::steady_clock::now();
  impl_->plan(n);
  const Op& q = m.ops[0];
  const int64_t c = m.input_shape[0], hw = m.input_shape[1] * m.input_shape[2];
  if (c == 1)
    std::memcpy(impl_->buf(q.output), x, (size_t)(n * hw));
  else
    to_nhwc(impl_->buf(q.output), x, n, c, hw);
  clamp_to(impl_->buf(q.output), n * c * hw, m.values[(size_t)q.output].grid);
  impl_->run_graph(n, y);
}

}  // namespace lowbit::quant::engine
