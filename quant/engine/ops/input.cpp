// input: the float input as it is (N×C×H×W), the first op of a float graph
// (dynamic quantization: dynamic_linear ops read it).
#include <cstring>

#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

void check_takes_input(const Model& m, const Op& op, const std::string& where);  // ops/quantize.cpp

namespace {
class Input final : public PreparedOp {
 public:
  void run(const Exec& e) override {
    std::memcpy(e.out, e.in[0], (size_t)(e.n * shape_numel(e.m.input_shape)) * sizeof(float));
  }
};
}  // namespace

const OpDef& input_op() {
  static const OpDef d{
      .kind = OpKind::input,
      .name = "input",
      .inputs = 0,
      .float_values = true,
      .validate = check_takes_input,
      .prepare = prepare_as<Input>,
  };
  return d;
}

}  // namespace lowbit::quant::engine
