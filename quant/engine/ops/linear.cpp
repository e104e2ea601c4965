// linear: u8 → u8 fully connected layer, s8 weights out×in, s32 bias; a
// C×H×W input is flattened in C·H·W order (PyTorch's).
#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {
class Linear final : public PreparedOp {
 public:
  Linear(const Op& op, const kernels::Int8Kernels& k) : multipliers_(op.layer.multipliers()) {
    k.qgemm_pack(packed_, op.layer.weight.data(), op.layer.weight_shape[0], op.layer.weight_shape[1]);
  }
  void run(const Exec& e) override {
    const Value& in = e.m.values[(size_t)e.op.inputs[0]];
    const Value& out = e.m.values[(size_t)e.op.output];
    const uint8_t* a = e.in[0];
    if (spatial(in.shape) > 1) {  // NHWC → PyTorch's C·H·W flatten order
      e.k.u8_nhwc_to_nchw(e.scratch, a, e.n, in.shape[0], spatial(in.shape));
      a = e.scratch;
    }
    kernels::QuantEpilogue ep{multipliers_.data(), multipliers_.size() > 1, e.op.layer.bias.data(), out.grid.zp,
                              out.grid.qmin,       out.grid.qmax,           kernels::QOut::u8};
    e.k.qu8_qs8_gemm(e.out, out.shape[0], a, shape_numel(in.shape), in.grid.zp, packed_, ep, e.n);
  }

 private:
  kernels::PackedQGemmWeights packed_;
  std::vector<float> multipliers_;
};

void validate(const Model& m, const Op& op, const std::string& where) {
  check_integer_layer(m, op, where);
  const IntegerLayer& L = op.layer;
  const Shape& in = m.values[(size_t)op.inputs[0]].shape;
  const Shape& out = m.values[(size_t)op.output].shape;
  const int64_t k = L.out_channels();
  LOWBIT_CHECK(L.weight_shape.size() == 2 && L.weight_shape[1] == shape_numel(in), where, "weight ",
               shape_str(L.weight_shape), " does not take an input of ", shape_str(in));
  LOWBIT_CHECK(out == Shape{k}, where, "output ", shape_str(out), " should be [", k, "]");
}
}  // namespace

const OpDef& linear_op() {
  static const OpDef d{
      .kind = OpKind::linear,
      .name = "linear",
      .inputs = 1,
      .validate = validate,
      .save = [](const Op& op, NamedTensors& out) { save_layer(op, nullptr, out); },
      .load = [](const Model& m, Op& op, const SafetensorsFile& f, const std::string& file) {
        load_layer(m, op, f, file, 2, false);
      },
      .scratch_bytes = // A flattened C×H×W input goes through NCHW scratch.
          [](const Model& m, const Op& op, int64_t n) -> size_t {
        const Value& in = m.values[(size_t)op.inputs[0]];
        return spatial(in.shape) > 1 ? ((size_t)(n * shape_numel(in.shape)) + 63) / 64 * 64 : 0;
      },
      .prepare = prepare_as<Linear>,
  };
  return d;
}

}  // namespace lowbit::quant::engine
