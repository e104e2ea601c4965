// add: u8 + u8 → u8, the residual sum (ReLU folded into the output clamp):
// dequantize both, add in fp32, quantize (qu8_add, qmath::add).
#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {
class Add final : public PreparedOp {
 public:
  void run(const Exec& e) override {
    const Grid &a = e.m.values[(size_t)e.op.inputs[0]].grid, &b = e.m.values[(size_t)e.op.inputs[1]].grid;
    const Value& out = e.m.values[(size_t)e.op.output];
    e.k.qu8_add(e.out, e.in[0], a.scale, a.zp, e.in[1], b.scale, b.zp, out.grid.scale, out.grid.zp, out.grid.qmin,
                out.grid.qmax, e.n * shape_numel(out.shape));
  }
};
}  // namespace

const OpDef& add_op() {
  static const OpDef d{
      .kind = OpKind::add,
      .name = "add",
      .inputs = 2,
      .validate = [](const Model& m, const Op& op, const std::string& where) {
        const Shape& a = m.values[(size_t)op.inputs[0]].shape;
        LOWBIT_CHECK(m.values[(size_t)op.inputs[1]].shape == a && m.values[(size_t)op.output].shape == a, where,
                     "adds values of different shapes");
      },
      .prepare = prepare_as<Add>,
  };
  return d;
}

}  // namespace lowbit::quant::engine
