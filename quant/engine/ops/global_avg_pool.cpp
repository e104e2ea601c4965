// global_avg_pool: C×H×W → C×1×1, the sum of q − zp requantized onto the
// output grid (qu8_global_avg_pool, qmath::average).
#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {
class GlobalAvgPool final : public PreparedOp {
 public:
  void run(const Exec& e) override {
    const Value& in = e.m.values[(size_t)e.op.inputs[0]];
    const Value& out = e.m.values[(size_t)e.op.output];
    e.k.qu8_global_avg_pool(e.out, e.in[0], in.grid.scale, in.grid.zp, out.grid.scale, out.grid.zp, e.n,
                            spatial(in.shape), in.shape[0]);
    clamp_to(e.out, e.n * shape_numel(out.shape), out.grid);
  }
};
}  // namespace

const OpDef& global_avg_pool_op() {
  static const OpDef d{
      .kind = OpKind::global_avg_pool,
      .name = "global_avg_pool",
      .inputs = 1,
      .validate = [](const Model& m, const Op& op, const std::string& where) {
        const Shape &in = m.values[(size_t)op.inputs[0]].shape, &out = m.values[(size_t)op.output].shape;
        LOWBIT_CHECK(in.size() == 3 && out == (Shape{in[0], 1, 1}), where, "input ", shape_str(in), " and output ",
                     shape_str(out), " are not a global average pool's");
      },
      .prepare = prepare_as<GlobalAvgPool>,
  };
  return d;
}

}  // namespace lowbit::quant::engine
