// dynamic_linear: f32 → f32, the batch's own input grid, the int8 GEMM, the
// float bias and an optional ReLU (DynamicLinearKernel, shared with the
// DynamicLinear module). s8 weights out×in, f32 bias, f32 weight scales.
// Fields: relu=0|1 reduce_range=0|1.
#include <cmath>

#include "core/error.h"
#include "quant/engine/dynamic_linear.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {
class DynamicLinear final : public PreparedOp {
 public:
  DynamicLinear(const Op& op, const kernels::Int8Kernels& k)
      : kernel_(k, op.layer.weight.data(), op.layer.weight_shape[0], op.layer.weight_shape[1], op.layer.weight_scale,
                op.float_bias, op.relu, op.reduce_range) {}
  void run(const Exec& e) override {
    kernel_.run(reinterpret_cast<const float*>(e.in[0]), e.n, reinterpret_cast<float*>(e.out), scratch_, e.op.name);
  }

 private:
  DynamicLinearKernel kernel_;
  std::vector<uint8_t> scratch_;  // the batch's quantized input
};

void validate(const Model& m, const Op& op, const std::string& where) {
  const IntegerLayer& L = op.layer;
  const Shape& in = m.values[(size_t)op.inputs[0]].shape;
  LOWBIT_CHECK(L.weight_shape.size() == 2 && sane_extents(L.weight_shape), where, "weight shape ",
               shape_str(L.weight_shape), " is not a linear layer's out,in");
  const int64_t k = L.weight_shape[0];
  LOWBIT_CHECK((int64_t)L.weight.size() == shape_numel(L.weight_shape), where, "weight holds ", L.weight.size(),
               " values for shape ", shape_str(L.weight_shape));
  LOWBIT_CHECK(L.weight_shape[1] == shape_numel(in), where, "weight ", shape_str(L.weight_shape),
               " does not take an input of ", shape_str(in));
  LOWBIT_CHECK(L.weight_shape[1] <= 65792, where, L.weight_shape[1],
               " input features; the int8 GEMM's int32 sums are exact up to 65792");
  check_layer_scales(L, where);
  LOWBIT_CHECK((int64_t)op.float_bias.size() == k, where, "bias has ", op.float_bias.size(), " values for ", k,
               " outputs");
  for (float b : op.float_bias) LOWBIT_CHECK(std::isfinite(b), where, "bias value ", b, " is not finite");
  const Shape& out = m.values[(size_t)op.output].shape;
  LOWBIT_CHECK(out == Shape{k}, where, "output ", shape_str(out), " should be [", k, "]");
}
}  // namespace

const OpDef& dynamic_linear_op() {
  static const OpDef d{
      .kind = OpKind::dynamic_linear,
      .name = "dynamic_linear",
      .inputs = 1,
      .float_values = true,
      .fields = {"relu", "reduce_range"},
      .validate = validate,
      .parse = [](Op& op, const FieldReader& f) {
        op.relu = f.integer("relu", 0, 1) == 1;
        op.reduce_range = f.integer("reduce_range", 0, 1) == 1;
      },
      .print = [](const Op& op, std::ostream& g) {
        g << " relu=" << (op.relu ? 1 : 0) << " reduce_range=" << (op.reduce_range ? 1 : 0);
      },
      .save = [](const Op& op, NamedTensors& out) { save_layer(op, &op.float_bias, out); },
      .load = [](const Model& m, Op& op, const SafetensorsFile& f, const std::string& file) {
        load_layer(m, op, f, file, 2, true);
      },
      .prepare = prepare_as<DynamicLinear>,
  };
  return d;
}

}  // namespace lowbit::quant::engine
