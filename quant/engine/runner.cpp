#include "quant/engine/runner.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

struct Runner::Impl {
  Model m;
  const kernels::Int8Kernels* k;
  std::vector<std::unique_ptr<PreparedOp>> prep;  // per op
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
      if (const OpDef& def = op_def(op.kind); def.scratch_bytes)
        scratch_bytes = std::max(scratch_bytes, def.scratch_bytes(m, op, n));
    }
    if (arena.size < top) arena.allocate(top);
    if (scratch.size < scratch_bytes) scratch.allocate(scratch_bytes);
    planned_n = n;
  }

  // Runs the ops from `first` on; op 0 reads `input` (the float images).
  void run_ops(size_t first, int64_t n, const float* input) {
    for (size_t i = first; i < m.ops.size(); ++i) {
      const Op& op = m.ops[i];
      const Exec e{*k,
                   m,
                   op,
                   n,
                   {op.inputs.empty() ? reinterpret_cast<const uint8_t*>(input) : buf(op.inputs[0]),
                    op.inputs.size() > 1 ? buf(op.inputs[1]) : nullptr},
                   buf(op.output),
                   scratch.data()};
      prep[i]->run(e);
      tick(i);
    }
  }

  // The output value, dequantized (u8) or copied (float) into `result`, N×….
  void output(int64_t n, float* result) {
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
  for (const Op& op : impl_->m.ops) impl_->prep.push_back(op_def(op.kind).prepare(op, *impl_->k));
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
  impl_->run_ops(0, n, x.data<float>());
  impl_->output(n, y.data<float>());
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
  impl_->tick(0);
  impl_->run_ops(1, n, nullptr);
  impl_->output(n, y);
}

}  // namespace lowbit::quant::engine
