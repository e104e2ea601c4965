// The integer model's checks (the shared part; each op's own in ops/).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "kernels/quant_math.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace qm = kernels::qmath;

std::vector<float> IntegerLayer::multipliers() const {
  std::vector<float> m;
  for (float ws : weight_scale) m.push_back(qm::requant_multiplier(in.scale, ws, out.scale));
  return m;
}

double IntegerLayer::accumulator_bound() const {
  const int64_t k = out_channels(), per = k ? (int64_t)weight.size() / k : 0;
  const double xmax = std::max(in.qmax - in.zp, in.zp - in.qmin);
  double worst = 0;
  for (int64_t o = 0; o < k; ++o) {
    double s = 0;
    for (int64_t i = 0; i < per; ++i) s += std::abs((int)weight[(size_t)(o * per + i)]);
    worst = std::max(worst, s * xmax + std::abs((double)bias[(size_t)o]));
  }
  return worst;
}

namespace {
bool valid_grid(const Grid& g) {
  return std::isfinite(g.scale) && g.scale > 0 && g.qmin >= 0 && g.qmax <= 255 && g.qmin <= g.qmax && g.zp >= 0 &&
         g.zp <= 255;
}

void validate_values(const Model& m, const std::string& at) {
  LOWBIT_CHECK(m.input_shape.size() == 3, at, "the input must be C,H,W, got ", shape_str(m.input_shape));
  for (int64_t d : m.input_shape) LOWBIT_CHECK(d >= 1 && d <= kMaxDim, at, "input shape ", shape_str(m.input_shape));
  for (size_t i = 0; i < m.values.size(); ++i) {
    const Value& v = m.values[i];
    LOWBIT_CHECK(v.shape.size() == 1 || v.shape.size() == 3, at, "value ", i, " has shape ", shape_str(v.shape),
                 " (C,H,W or F)");
    int64_t n = 1;
    for (int64_t d : v.shape) {
      LOWBIT_CHECK(d >= 1 && d <= kMaxDim, at, "value ", i, " has shape ", shape_str(v.shape));
      n *= d;
      LOWBIT_CHECK(n <= (int64_t)1 << 31, at, "value ", i, " is too large: ", shape_str(v.shape));
    }
    LOWBIT_CHECK(v.is_float || valid_grid(v.grid), at, "value ", i, " has an invalid grid (scale ", v.grid.scale,
                 ", zero point ", v.grid.zp, ", range ", v.grid.qmin, "..", v.grid.qmax, ")");
  }
}
}  // namespace

void validate(const Model& m, const std::string& what) {
  const std::string at = what + ": ";
  validate_values(m, at);
  LOWBIT_CHECK(!m.ops.empty() && op_def(m.ops[0].kind).inputs == 0, at,
               "the first op must quantize the input (or take it as floats)");
  const int nv = (int)m.values.size();
  std::vector<bool> defined((size_t)nv, false);
  for (size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = m.ops[i];
    const OpDef& def = op_def(op.kind);
    const std::string where = at + "op " + std::to_string(i) + " (" + def.name + " " + op.name + "): ";
    const bool first = def.inputs == 0;
    LOWBIT_CHECK(op.inputs.size() == (size_t)def.inputs, where, "has ", op.inputs.size(), " inputs, expected ",
                 def.inputs);
    LOWBIT_CHECK(i == 0 || !first, where, "only the first op reads the network input");
    for (int in : op.inputs)
      LOWBIT_CHECK(in >= 0 && in < nv && defined[(size_t)in], where, "reads value ", in,
                   in >= 0 && in < nv ? ", which no earlier op produces" : ", which does not exist");
    LOWBIT_CHECK(op.output >= 0 && op.output < nv, where, "writes value ", op.output, ", which does not exist");
    LOWBIT_CHECK(!defined[(size_t)op.output], where, "writes value ", op.output, " a second time");
    // Float values are made and read by the float ops only.
    const Value& out = m.values[(size_t)op.output];
    LOWBIT_CHECK(out.is_float == def.float_values, where, "writes a ", out.is_float ? "float" : "u8", " value");
    for (int v : op.inputs)
      LOWBIT_CHECK(m.values[(size_t)v].is_float == def.float_values, where, "reads a ",
                   m.values[(size_t)v].is_float ? "float" : "u8", " value");
    def.validate(m, op, where);
    defined[(size_t)op.output] = true;
  }
  LOWBIT_CHECK(m.output >= 0 && m.output < nv && defined[(size_t)m.output], at, "the output value ", m.output,
               " is not produced by any op");
  LOWBIT_CHECK(m.output == m.ops.back().output, at, "the output value ", m.output, " is not the last op's (value ",
               m.ops.back().output, "): the ops after it would run for nothing");
}

int64_t model_bytes(const Model& m) {
  int64_t b = 0;
  for (const Op& op : m.ops)
    b += (int64_t)op.layer.weight.size() +
         4 * (int64_t)(op.layer.bias.size() + op.layer.weight_scale.size() + op.float_bias.size());
  return b;
}

}  // namespace lowbit::quant::engine
