// max_pool: the max over each window; the output keeps the input's grid.
// Fields: kernel=KH,KW stride=SH,SW pad=PH,PW ceil=0|1.
#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t pad, bool ceil) {
  int64_t o = (in + 2 * pad - k + (ceil ? s - 1 : 0)) / s + 1;
  if (ceil && (o - 1) * s >= in + pad) --o;
  return o;
}

class MaxPool final : public PreparedOp {
 public:
  void run(const Exec& e) override {
    const Value& in = e.m.values[(size_t)e.op.inputs[0]];
    const Value& out = e.m.values[(size_t)e.op.output];
    const Pool2dOptions& o = e.op.pool;
    kernels::QPool2dShape sh{e.n,       in.shape[1], in.shape[2], in.shape[0], o.kernel_h,   o.kernel_w, o.stride_h,
                             o.stride_w, o.pad_h,     o.pad_w,     out.shape[1], out.shape[2], true};
    e.k.qu8_max_pool2d(e.out, e.in[0], sh);
  }
};

void validate(const Model& m, const Op& op, const std::string& where) {
  const Value& in = m.values[(size_t)op.inputs[0]];
  const Value& out = m.values[(size_t)op.output];
  const Pool2dOptions& o = op.pool;
  LOWBIT_CHECK(in.shape.size() == 3, where, "input ", shape_str(in.shape), " is not C,H,W");
  LOWBIT_CHECK(o.kernel_h >= 1 && o.kernel_w >= 1 && o.stride_h >= 1 && o.stride_w >= 1 && o.pad_h >= 0 &&
                   o.pad_w >= 0 && 2 * o.pad_h <= o.kernel_h && 2 * o.pad_w <= o.kernel_w &&
                   o.kernel_h <= in.shape[1] + 2 * o.pad_h && o.kernel_w <= in.shape[2] + 2 * o.pad_w &&
                   o.stride_h <= kMaxDim && o.stride_w <= kMaxDim,
               where, "invalid kernel, stride or padding");
  const Shape want{in.shape[0], pool_out(in.shape[1], o.kernel_h, o.stride_h, o.pad_h, o.ceil_mode),
                   pool_out(in.shape[2], o.kernel_w, o.stride_w, o.pad_w, o.ceil_mode)};
  LOWBIT_CHECK(out.shape == want, where, "output ", shape_str(out.shape), " should be ", shape_str(want));
  LOWBIT_CHECK(in.grid == out.grid, where, "max pooling changes the grid");
}
}  // namespace

const OpDef& max_pool_op() {
  static const OpDef d{
      .kind = OpKind::max_pool,
      .name = "max_pool",
      .inputs = 1,
      .fields = {"kernel", "stride", "pad", "ceil"},
      .validate = validate,
      .parse = [](Op& op, const FieldReader& f) {
        const auto k = f.ints("kernel", 2, 1, kMaxDim), s = f.ints("stride", 2, 1, kMaxDim),
                   p = f.ints("pad", 2, 0, kMaxDim);
        op.pool = {k[0], k[1], s[0], s[1], p[0], p[1], f.integer("ceil", 0, 1) == 1, true};
      },
      .print = [](const Op& op, std::ostream& g) {
        const Pool2dOptions& o = op.pool;
        g << " kernel=" << o.kernel_h << "," << o.kernel_w << " stride=" << o.stride_h << "," << o.stride_w
          << " pad=" << o.pad_h << "," << o.pad_w << " ceil=" << (o.ceil_mode ? 1 : 0);
      },
      .prepare = prepare_as<MaxPool>,
  };
  return d;
}

}  // namespace lowbit::quant::engine
