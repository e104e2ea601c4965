// quantize: the float input (N×C×H×W) onto the input value's grid, u8 NHWC.
// The first op of a static graph.
#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {
class Quantize final : public PreparedOp {
 public:
  void run(const Exec& e) override {
    const Grid& g = e.m.values[(size_t)e.op.output].grid;
    const int64_t c = e.m.input_shape[0], h = e.m.input_shape[1], w = e.m.input_shape[2], hw = h * w;
    // NCHW u8 first (rows of W, so every thread has work), then NHWC into the value.
    uint8_t* nchw = c == 1 ? e.out : e.scratch;
    e.k.quantize_f32_u8(nchw, reinterpret_cast<const float*>(e.in[0]), &g.scale, &g.zp, e.n * c * h, 1, w);
    clamp_to(nchw, e.n * c * hw, g);
    if (c != 1) to_nhwc(e.out, nchw, e.n, c, hw);
  }
};
}  // namespace

// The first op's check, shared with input (ops/input.cpp).
void check_takes_input(const Model& m, const Op& op, const std::string& where) {
  const Value& out = m.values[(size_t)op.output];
  LOWBIT_CHECK(out.shape == m.input_shape, where, "output ", shape_str(out.shape), " is not the input shape ",
               shape_str(m.input_shape));
}

const OpDef& quantize_op() {
  static const OpDef d{
      .kind = OpKind::quantize,
      .name = "quantize",
      .inputs = 0,
      .validate = check_takes_input,
      .scratch_bytes = [](const Model& m, const Op&, int64_t n) { return (size_t)(n * shape_numel(m.input_shape)); },
      .prepare = prepare_as<Quantize>,
  };
  return d;
}

}  // namespace lowbit::quant::engine
