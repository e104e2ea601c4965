// conv: u8 → u8 2-D convolution (any stride, padding, dilation and groups:
// depthwise too), s8 weights OIHW in the file, s32 bias, per-channel or
// per-tensor weight scales, the activation folded into the output clamp.
// Fields: stride=SH,SW pad=PH,PW dil=DH,DW groups=G.
#include <vector>

#include "core/error.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {
class Conv final : public PreparedOp {
 public:
  Conv(const Op& op, const kernels::Int8Kernels& k) : multipliers_(op.layer.multipliers()) {
    // OIHW (the file's layout) → OHWI (the kernels').
    const IntegerLayer& L = op.layer;
    const int64_t ko = L.weight_shape[0], ci = L.weight_shape[1], r = L.weight_shape[2], s = L.weight_shape[3];
    std::vector<int8_t> ohwi(L.weight.size());
    for (int64_t o = 0; o < ko; ++o)
      for (int64_t c = 0; c < ci; ++c)
        for (int64_t y = 0; y < r * s; ++y) ohwi[(size_t)((o * r * s + y) * ci + c)] = L.weight[(size_t)((o * ci + c) * r * s + y)];
    kernels::QConv2dShape sh{1, r, s, ci * op.conv.groups, ko, r, s};
    sh.groups = op.conv.groups;
    k.qconv2d_pack(packed_, ohwi.data(), sh);
  }
  void run(const Exec& e) override {
    const Value& in = e.m.values[(size_t)e.op.inputs[0]];
    const Value& out = e.m.values[(size_t)e.op.output];
    const Conv2dOptions& o = e.op.conv;
    const Shape& ws = e.op.layer.weight_shape;
    kernels::QConv2dShape sh{e.n,     in.shape[1], in.shape[2], in.shape[0], out.shape[0], ws[2],   ws[3],
                             o.stride_h, o.stride_w, o.pad_h,    o.pad_w,     o.dil_h,      o.dil_w, o.groups};
    kernels::QuantEpilogue ep{multipliers_.data(), multipliers_.size() > 1, e.op.layer.bias.data(), out.grid.zp,
                              out.grid.qmin,       out.grid.qmax,           kernels::QOut::u8};
    e.k.qu8_qs8_conv2d(e.out, e.in[0], in.grid.zp, packed_, ep, sh);
  }

 private:
  kernels::PackedQConvWeights packed_;
  std::vector<float> multipliers_;
};

void validate(const Model& m, const Op& op, const std::string& where) {
  check_integer_layer(m, op, where);
  const IntegerLayer& L = op.layer;
  const Value& in = m.values[(size_t)op.inputs[0]];
  const Value& out = m.values[(size_t)op.output];
  const int64_t k = L.out_channels();
  const Conv2dOptions& o = op.conv;
  LOWBIT_CHECK(in.shape.size() == 3 && L.weight_shape.size() == 4, where, "input ", shape_str(in.shape),
               " and weight ", shape_str(L.weight_shape), " are not a 2-D convolution's");
  LOWBIT_CHECK(o.stride_h >= 1 && o.stride_w >= 1 && o.dil_h >= 1 && o.dil_w >= 1 && o.pad_h >= 0 && o.pad_w >= 0 &&
                   o.groups >= 1 && o.stride_h <= kMaxDim && o.stride_w <= kMaxDim && o.dil_h <= kMaxDim &&
                   o.dil_w <= kMaxDim && o.pad_h <= kMaxDim && o.pad_w <= kMaxDim,
               where, "invalid stride, padding, dilation or groups");
  const int64_t c = in.shape[0], g = o.groups;
  LOWBIT_CHECK(c % g == 0 && k % g == 0 && L.weight_shape[1] == c / g, where, "weight ", shape_str(L.weight_shape),
               " with ", g, " groups does not take ", c, " input channels");
  const int64_t eh = o.dil_h * (L.weight_shape[2] - 1) + 1, ew = o.dil_w * (L.weight_shape[3] - 1) + 1;
  const int64_t p = (in.shape[1] + 2 * o.pad_h - eh) / o.stride_h + 1,
                q = (in.shape[2] + 2 * o.pad_w - ew) / o.stride_w + 1;
  LOWBIT_CHECK(in.shape[1] + 2 * o.pad_h >= eh && in.shape[2] + 2 * o.pad_w >= ew, where,
               "the filter is larger than the padded input ", shape_str(in.shape));
  LOWBIT_CHECK(out.shape == (Shape{k, p, q}), where, "output ", shape_str(out.shape), " should be [", k, ", ", p, ", ",
               q, "]");
}
}  // namespace

const OpDef& conv_op() {
  static const OpDef d{
      .kind = OpKind::conv,
      .name = "conv",
      .inputs = 1,
      .fields = {"stride", "pad", "dil", "groups"},
      .validate = validate,
      .parse = [](Op& op, const FieldReader& f) {
        const auto s = f.ints("stride", 2, 1, kMaxDim), p = f.ints("pad", 2, 0, kMaxDim),
                   d = f.ints("dil", 2, 1, kMaxDim);
        op.conv = {s[0], s[1], p[0], p[1], d[0], d[1], f.integer("groups", 1, kMaxDim)};
      },
      .print = [](const Op& op, std::ostream& g) {
        const Conv2dOptions& o = op.conv;
        g << " stride=" << o.stride_h << "," << o.stride_w << " pad=" << o.pad_h << "," << o.pad_w
          << " dil=" << o.dil_h << "," << o.dil_w << " groups=" << o.groups;
      },
      .save = [](const Op& op, NamedTensors& out) { save_layer(op, nullptr, out); },
      .load = [](const Model& m, Op& op, const SafetensorsFile& f, const std::string& file) {
        load_layer(m, op, f, file, 4, false);
      },
      .prepare = prepare_as<Conv>,
  };
  return d;
}

}  // namespace lowbit::quant::engine
