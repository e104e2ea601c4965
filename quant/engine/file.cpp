// The integer model's checks and its file (format in engine/model.h).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "core/safetensors.h"
#include "quant/engine/model.h"

namespace lowbit::quant::engine {

namespace {

constexpr int64_t kMaxDim = 1 << 24;  // any one extent; products are checked below

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {  // appends: GCC 12 -O3 warns falsely (-Wrestrict) on operator+ here
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s;
}

std::string fmt_float(float f) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", (double)f);
  return b;
}

bool valid_grid(const Grid& g) {
  return std::isfinite(g.scale) && g.scale > 0 && g.qmin >= 0 && g.qmax <= 255 && g.qmin <= g.qmax && g.zp >= 0 &&
         g.zp <= 255;
}

int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t pad, bool ceil) {
  int64_t o = (in + 2 * pad - k + (ceil ? s - 1 : 0)) / s + 1;
  if (ceil && (o - 1) * s >= in + pad) --o;
  return o;
}

// Each extent from 1 to kMaxWeights, and so is their product (checked before
// each multiplication: no overflow).
constexpr int64_t kMaxWeights = int64_t(1) << 31;
bool sane_extents(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 1 || n > kMaxWeights / d) return false;
    n *= d;
  }
  return true;
}

bool same_grid(const Grid& a, const Grid& b) {
  return a.scale == b.scale && a.zp == b.zp && a.qmin == b.qmin && a.qmax == b.qmax;
}

}  // namespace

// ---- validate ----------------------------------------------------------------------------

void validate(const Model& m, const std::string& what) {
  const std::string at = what + ": ";
  LOWBIT_CHECK(m.input_shape.size() == 3, at, "the input must be C,H,W, got ", shape_str(m.input_shape));
  for (int64_t d : m.input_shape) LOWBIT_CHECK(d >= 1 && d <= kMaxDim, at, "input shape ", shape_str(m.input_shape));
  const int nv = (int)m.values.size();
  for (int i = 0; i < nv; ++i) {
    const Value& v = m.values[(size_t)i];
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
  LOWBIT_CHECK(!m.ops.empty() && (m.ops[0].kind == OpKind::quantize || m.ops[0].kind == OpKind::input), at,
               "the first op must quantize the input (or take it as floats)");
  std::vector<bool> defined((size_t)nv, false);
  for (size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = m.ops[i];
    const std::string where = at + "op " + std::to_string(i) + " (" + op_kind_name(op.kind) + " " + op.name + "): ";
    const bool first = op.kind == OpKind::quantize || op.kind == OpKind::input;
    const size_t want_inputs = first ? 0 : op.kind == OpKind::add ? 2 : 1;
    LOWBIT_CHECK(op.inputs.size() == want_inputs, where, "has ", op.inputs.size(), " inputs, expected ", want_inputs);
    LOWBIT_CHECK(i == 0 || !first, where, "only the first op reads the network input");
    for (int in : op.inputs)
      LOWBIT_CHECK(in >= 0 && in < nv && defined[(size_t)in], where, "reads value ", in,
                   in >= 0 && in < nv ? ", which no earlier op produces" : ", which does not exist");
    LOWBIT_CHECK(op.output >= 0 && op.output < nv, where, "writes value ", op.output, ", which does not exist");
    LOWBIT_CHECK(!defined[(size_t)op.output], where, "writes value ", op.output, " a second time");
    const Value& out = m.values[(size_t)op.output];
    const Value* in = op.inputs.empty() ? nullptr : &m.values[(size_t)op.inputs[0]];
    // Float values are made and read by the float ops only.
    const bool float_op = op.kind == OpKind::input || op.kind == OpKind::dynamic_linear;
    LOWBIT_CHECK(out.is_float == float_op, where, "writes a ", out.is_float ? "float" : "u8", " value");
    for (int v : op.inputs)
      LOWBIT_CHECK(m.values[(size_t)v].is_float == float_op, where, "reads a ",
                   m.values[(size_t)v].is_float ? "float" : "u8", " value");
    switch (op.kind) {
      case OpKind::quantize:
      case OpKind::input:
        LOWBIT_CHECK(out.shape == m.input_shape, where, "output ", shape_str(out.shape), " is not the input shape ",
                     shape_str(m.input_shape));
        break;
      case OpKind::dynamic_linear: {
        const IntegerLayer& L = op.layer;
        LOWBIT_CHECK(L.weight_shape.size() == 2 && sane_extents(L.weight_shape), where, "weight shape ",
                     shape_str(L.weight_shape), " is not a linear layer's out,in");
        const int64_t k = L.weight_shape[0];
        LOWBIT_CHECK((int64_t)L.weight.size() == shape_numel(L.weight_shape), where, "weight holds ", L.weight.size(),
                     " values for shape ", shape_str(L.weight_shape));
        LOWBIT_CHECK(L.weight_shape[1] == shape_numel(in->shape), where, "weight ", shape_str(L.weight_shape),
                     " does not take an input of ", shape_str(in->shape));
        LOWBIT_CHECK(L.weight_shape[1] <= 65792, where, L.weight_shape[1],
                     " input features; the int8 GEMM's int32 sums are exact up to 65792");
        LOWBIT_CHECK((int64_t)L.weight_scale.size() == k || L.weight_scale.size() == 1, where, "has ",
                     L.weight_scale.size(), " weight scales for ", k, " outputs");
        for (float sc : L.weight_scale)
          LOWBIT_CHECK(std::isfinite(sc) && sc > 0, where, "weight scale ", sc, " is not a positive number");
        LOWBIT_CHECK((int64_t)op.float_bias.size() == k, where, "bias has ", op.float_bias.size(), " values for ", k,
                     " outputs");
        for (float b : op.float_bias) LOWBIT_CHECK(std::isfinite(b), where, "bias value ", b, " is not finite");
        LOWBIT_CHECK(out.shape == Shape{k}, where, "output ", shape_str(out.shape), " should be [", k, "]");
        break;
      }
      case OpKind::conv:
      case OpKind::linear: {
        const IntegerLayer& L = op.layer;
        const int64_t k = L.out_channels();
        LOWBIT_CHECK(k >= 1, where, "has no weights");
        LOWBIT_CHECK((int64_t)L.bias.size() == k, where, "bias has ", L.bias.size(), " values for ", k, " outputs");
        LOWBIT_CHECK((int64_t)L.weight_scale.size() == k || L.weight_scale.size() == 1, where, "has ",
                     L.weight_scale.size(), " weight scales for ", k, " outputs");
        for (float s : L.weight_scale)
          LOWBIT_CHECK(std::isfinite(s) && s > 0, where, "weight scale ", s, " is not a positive number");
        LOWBIT_CHECK(same_grid(L.in, in->grid) && same_grid(L.out, out.grid), where,
                     "its quantization parameters disagree with its values'");
        // Every extent ≥ 1 (an empty filter passes the size check below but no
        // kernel runs it) and the product bounded before shape_numel multiplies.
        LOWBIT_CHECK(sane_extents(L.weight_shape), where, "weight shape ", shape_str(L.weight_shape),
                     " has an empty or too large extent");
        LOWBIT_CHECK((int64_t)L.weight.size() == shape_numel(L.weight_shape), where, "weight holds ", L.weight.size(),
                     " values for shape ", shape_str(L.weight_shape));
        if (op.kind == OpKind::linear) {
          LOWBIT_CHECK(L.weight_shape.size() == 2 && L.weight_shape[1] == shape_numel(in->shape), where, "weight ",
                       shape_str(L.weight_shape), " does not take an input of ", shape_str(in->shape));
          LOWBIT_CHECK(out.shape == Shape{k}, where, "output ", shape_str(out.shape), " should be [", k, "]");
          break;
        }
        const Conv2dOptions& o = op.conv;
        LOWBIT_CHECK(in->shape.size() == 3 && L.weight_shape.size() == 4, where, "input ", shape_str(in->shape),
                     " and weight ", shape_str(L.weight_shape), " are not a 2-D convolution's");
        LOWBIT_CHECK(o.stride_h >= 1 && o.stride_w >= 1 && o.dil_h >= 1 && o.dil_w >= 1 && o.pad_h >= 0 &&
                         o.pad_w >= 0 && o.groups >= 1 && o.stride_h <= kMaxDim && o.stride_w <= kMaxDim &&
                         o.dil_h <= kMaxDim && o.dil_w <= kMaxDim && o.pad_h <= kMaxDim && o.pad_w <= kMaxDim,
                     where, "invalid stride, padding, dilation or groups");
        const int64_t c = in->shape[0], g = o.groups;
        LOWBIT_CHECK(c % g == 0 && k % g == 0 && L.weight_shape[1] == c / g, where, "weight ",
                     shape_str(L.weight_shape), " with ", g, " groups does not take ", c, " input channels");
        const int64_t eh = o.dil_h * (L.weight_shape[2] - 1) + 1, ew = o.dil_w * (L.weight_shape[3] - 1) + 1;
        const int64_t p = (in->shape[1] + 2 * o.pad_h - eh) / o.stride_h + 1,
                      q = (in->shape[2] + 2 * o.pad_w - ew) / o.stride_w + 1;
        LOWBIT_CHECK(in->shape[1] + 2 * o.pad_h >= eh && in->shape[2] + 2 * o.pad_w >= ew, where,
                     "the filter is larger than the padded input ", shape_str(in->shape));
        LOWBIT_CHECK(out.shape == (Shape{k, p, q}), where, "output ", shape_str(out.shape), " should be [", k, ", ", p,
                     ", ", q, "]");
        break;
      }
      case OpKind::add:
        LOWBIT_CHECK(m.values[(size_t)op.inputs[1]].shape == in->shape && out.shape == in->shape, where,
                     "adds values of different shapes");
        break;
      case OpKind::max_pool: {
        const Pool2dOptions& o = op.pool;
        LOWBIT_CHECK(in->shape.size() == 3, where, "input ", shape_str(in->shape), " is not C,H,W");
        LOWBIT_CHECK(o.kernel_h >= 1 && o.kernel_w >= 1 && o.stride_h >= 1 && o.stride_w >= 1 && o.pad_h >= 0 &&
                         o.pad_w >= 0 && 2 * o.pad_h <= o.kernel_h && 2 * o.pad_w <= o.kernel_w &&
                         o.kernel_h <= in->shape[1] + 2 * o.pad_h && o.kernel_w <= in->shape[2] + 2 * o.pad_w &&
                         o.stride_h <= kMaxDim && o.stride_w <= kMaxDim,
                     where, "invalid kernel, stride or padding");
        const Shape want{in->shape[0], pool_out(in->shape[1], o.kernel_h, o.stride_h, o.pad_h, o.ceil_mode),
                         pool_out(in->shape[2], o.kernel_w, o.stride_w, o.pad_w, o.ceil_mode)};
        LOWBIT_CHECK(out.shape == want, where, "output ", shape_str(out.shape), " should be ", shape_str(want));
        LOWBIT_CHECK(same_grid(in->grid, out.grid), where, "max pooling changes the grid");
        break;
      }
      case OpKind::global_avg_pool:
        LOWBIT_CHECK(in->shape.size() == 3 && out.shape == (Shape{in->shape[0], 1, 1}), where, "input ",
                     shape_str(in->shape), " and output ", shape_str(out.shape), " are not a global average pool's");
        break;
    }
    defined[(size_t)op.output] = true;
  }
  LOWBIT_CHECK(m.output >= 0 && m.output < nv && defined[(size_t)m.output], at, "the output value ", m.output,
               " is not produced by any op");
}

int64_t model_bytes(const Model& m) {
  int64_t b = 0;
  for (const Op& op : m.ops)
    b += (int64_t)op.layer.weight.size() +
         4 * (int64_t)(op.layer.bias.size() + op.layer.weight_scale.size() + op.float_bias.size());
  return b;
}

// ---- save ----------------------------------------------------------------------------------

namespace {
std::string grid_text(const Grid& g) {
  return "scale=" + fmt_float(g.scale) + " zp=" + std::to_string(g.zp) + " qmin=" + std::to_string(g.qmin) +
         " qmax=" + std::to_string(g.qmax);
}
}  // namespace

void save(const std::string& path, const Model& m) {
  validate(m, path);
  std::ostringstream g;
  g << "input " << join(m.input_shape) << "\n";
  bool has_float = false;
  for (size_t i = 0; i < m.values.size(); ++i) {
    g << "value " << i << " shape=" << join(m.values[i].shape) << " "
      << (m.values[i].is_float ? std::string("dtype=f32") : grid_text(m.values[i].grid)) << "\n";
    has_float |= m.values[i].is_float;
  }
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const Op& op : m.ops) {
    g << "op " << op_kind_name(op.kind) << " " << op.name;
    if (!op.inputs.empty()) g << " in=" << join(std::vector<int64_t>(op.inputs.begin(), op.inputs.end()));
    g << " out=" << op.output;
    if (op.kind == OpKind::conv) {
      const Conv2dOptions& o = op.conv;
      g << " stride=" << o.stride_h << "," << o.stride_w << " pad=" << o.pad_h << "," << o.pad_w << " dil=" << o.dil_h
        << "," << o.dil_w << " groups=" << o.groups;
    }
    if (op.kind == OpKind::max_pool) {
      const Pool2dOptions& o = op.pool;
      g << " kernel=" << o.kernel_h << "," << o.kernel_w << " stride=" << o.stride_h << "," << o.stride_w
        << " pad=" << o.pad_h << "," << o.pad_w << " ceil=" << (o.ceil_mode ? 1 : 0);
    }
    if (op.kind == OpKind::dynamic_linear) g << " relu=" << (op.relu ? 1 : 0) << " reduce_range=" << (op.reduce_range ? 1 : 0);
    g << "\n";
    if (op.kind == OpKind::dynamic_linear) {
      const IntegerLayer& L = op.layer;
      Tensor w = Tensor::empty(L.weight_shape, DType::s8);
      std::copy(L.weight.begin(), L.weight.end(), w.data<int8_t>());
      tensors.emplace_back(op.name + ".weight", w);
      tensors.emplace_back(op.name + ".bias", Tensor::from_vector(op.float_bias, {(int64_t)op.float_bias.size()}));
      tensors.emplace_back(op.name + ".weight_scale",
                           Tensor::from_vector(L.weight_scale, {(int64_t)L.weight_scale.size()}));
    }
    if (op.kind == OpKind::conv || op.kind == OpKind::linear) {
      const IntegerLayer& L = op.layer;
      Tensor w = Tensor::empty(L.weight_shape, DType::s8);
      std::copy(L.weight.begin(), L.weight.end(), w.data<int8_t>());
      Tensor b = Tensor::empty({(int64_t)L.bias.size()}, DType::s32);
      std::copy(L.bias.begin(), L.bias.end(), b.data<int32_t>());
      tensors.emplace_back(op.name + ".weight", w);
      tensors.emplace_back(op.name + ".bias", b);
      tensors.emplace_back(op.name + ".weight_scale",
                           Tensor::from_vector(L.weight_scale, {(int64_t)L.weight_scale.size()}));
    }
  }
  g << "output " << m.output << "\n";
  std::map<std::string, std::string> md = m.info;
  md["format"] = kFormat;
  md["format_version"] = has_float ? "2" : "1";
  md["graph"] = g.str();
  save_safetensors(path, tensors, md);
}

// ---- load ---------------------------------------------------------------------------------

bool is_int8_file(const std::map<std::string, std::string>& md) {
  auto it = md.find("format");
  return it != md.end() && it->second == kFormat;
}

namespace {

class GraphParser {
 public:
  GraphParser(const std::string& file) : file_(file) {}

  [[noreturn]] void error(const std::string& why) const {
    fail(file_, ": graph line ", line_no_, ": ", why);
  }
  int64_t integer(const std::string& s, int64_t lo, int64_t hi) const {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end || errno || v < lo || v > hi)
      error("'" + s + "' is not a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return v;
  }
  std::vector<int64_t> ints(const std::string& s, size_t count_lo, size_t count_hi, int64_t lo, int64_t hi) const {
    std::vector<int64_t> v;
    size_t start = 0;
    while (true) {
      const size_t comma = s.find(',', start);
      v.push_back(integer(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start), lo, hi));
      if (comma == std::string::npos) break;
      start = comma + 1;
      if (v.size() > count_hi) break;
    }
    if (v.size() < count_lo || v.size() > count_hi) error("'" + s + "' has the wrong number of values");
    return v;
  }
  float real(const std::string& s) const {
    char* end = nullptr;
    const float f = std::strtof(s.c_str(), &end);
    if (s.empty() || *end || !std::isfinite(f)) error("'" + s + "' is not a finite number");
    return f;
  }
  // key=value fields after the first `skip` words; every key must be known.
  std::map<std::string, std::string> fields(const std::vector<std::string>& words, size_t skip,
                                            const std::vector<std::string>& keys) const {
    std::map<std::string, std::string> f;
    for (size_t i = skip; i < words.size(); ++i) {
      const size_t eq = words[i].find('=');
      if (eq == std::string::npos) error("'" + words[i] + "' is not key=value");
      const std::string k = words[i].substr(0, eq);
      bool known = false;
      for (const auto& kk : keys) known |= kk == k;
      if (!known) error("unknown field '" + k + "'");
      if (f.count(k)) error("field '" + k + "' given twice");
      f[k] = words[i].substr(eq + 1);
    }
    for (const auto& k : keys)
      if (!f.count(k)) error("missing field '" + k + "'");
    return f;
  }

  Model parse(const std::string& text) {
    Model m;
    std::istringstream in(text);
    std::string line;
    bool have_input = false, have_output = false;
    while (std::getline(in, line)) {
      ++line_no_;
      std::istringstream ls(line);
      std::vector<std::string> w;
      for (std::string t; ls >> t;) w.push_back(t);
      if (w.empty()) continue;
      if (w[0] == "input") {
        if (w.size() != 2 || have_input) error("expected one 'input C,H,W' line");
        m.input_shape = ints(w[1], 3, 3, 1, kMaxDim);
        have_input = true;
      } else if (w[0] == "value") {
        if (w.size() < 2 || integer(w[1], 0, 1 << 20) != (int64_t)m.values.size())
          error("values must be numbered 0, 1, 2, … in order");
        Value v;
        if (w.size() == 4 && w[3].rfind("dtype=", 0) == 0) {
          auto f = fields(w, 2, {"shape", "dtype"});
          if (f["dtype"] != "f32") error("unknown value dtype '" + f["dtype"] + "' (f32, or a u8 grid)");
          v.shape = ints(f["shape"], 1, 3, 1, kMaxDim);
          v.is_float = true;
        } else {
          auto f = fields(w, 2, {"shape", "scale", "zp", "qmin", "qmax"});
          v.shape = ints(f["shape"], 1, 3, 1, kMaxDim);
          v.grid = {real(f["scale"]), (int32_t)integer(f["zp"], 0, 255), (int32_t)integer(f["qmin"], 0, 255),
                    (int32_t)integer(f["qmax"], 0, 255)};
        }
        m.values.push_back(v);
      } else if (w[0] == "op") {
        if (w.size() < 3) error("expected 'op KIND NAME …'");
        Op op;
        op.name = w[2];
        const std::string& kind = w[1];
        const int64_t nv = (int64_t)m.values.size();
        auto ids = [&](const std::string& s, size_t n) {
          std::vector<int> v;
          for (int64_t x : ints(s, n, n, 0, nv - 1)) v.push_back((int)x);
          return v;
        };
        if (kind == "quantize" || kind == "input") {
          op.kind = kind == "input" ? OpKind::input : OpKind::quantize;
          op.output = ids(fields(w, 3, {"out"})["out"], 1)[0];
        } else if (kind == "dynamic_linear") {
          op.kind = OpKind::dynamic_linear;
          auto f = fields(w, 3, {"in", "out", "relu", "reduce_range"});
          op.inputs = ids(f["in"], 1);
          op.output = ids(f["out"], 1)[0];
          op.relu = integer(f["relu"], 0, 1) == 1;
          op.reduce_range = integer(f["reduce_range"], 0, 1) == 1;
        } else if (kind == "conv") {
          op.kind = OpKind::conv;
          auto f = fields(w, 3, {"in", "out", "stride", "pad", "dil", "groups"});
          op.inputs = ids(f["in"], 1);
          op.output = ids(f["out"], 1)[0];
          const auto s = ints(f["stride"], 2, 2, 1, kMaxDim), p = ints(f["pad"], 2, 2, 0, kMaxDim),
                     d = ints(f["dil"], 2, 2, 1, kMaxDim);
          op.conv = {s[0], s[1], p[0], p[1], d[0], d[1], integer(f["groups"], 1, kMaxDim)};
        } else if (kind == "linear" || kind == "global_avg_pool" || kind == "add") {
          op.kind = kind == "linear" ? OpKind::linear : kind == "add" ? OpKind::add : OpKind::global_avg_pool;
          auto f = fields(w, 3, {"in", "out"});
          op.inputs = ids(f["in"], op.kind == OpKind::add ? 2 : 1);
          op.output = ids(f["out"], 1)[0];
        } else if (kind == "max_pool") {
          op.kind = OpKind::max_pool;
          auto f = fields(w, 3, {"in", "out", "kernel", "stride", "pad", "ceil"});
          op.inputs = ids(f["in"], 1);
          op.output = ids(f["out"], 1)[0];
          const auto k = ints(f["kernel"], 2, 2, 1, kMaxDim), s = ints(f["stride"], 2, 2, 1, kMaxDim),
                     p = ints(f["pad"], 2, 2, 0, kMaxDim);
          op.pool = {k[0], k[1], s[0], s[1], p[0], p[1], integer(f["ceil"], 0, 1) == 1, true};
        } else {
          error("unknown op '" + kind +
                "' (this reader knows quantize, conv, linear, add, max_pool, global_avg_pool, input, dynamic_linear)");
        }
        m.ops.push_back(std::move(op));
      } else if (w[0] == "output") {
        if (w.size() != 2 || have_output) error("expected one 'output ID' line");
        m.output = (int)integer(w[1], 0, (int64_t)m.values.size() - 1);
        have_output = true;
      } else {
        error("unknown line '" + w[0] + "'");
      }
    }
    if (!have_input) fail(file_, ": the graph has no 'input' line");
    if (!have_output) fail(file_, ": the graph has no 'output' line");
    return m;
  }

 private:
  std::string file_;
  int line_no_ = 0;
};

Model from_file(const SafetensorsFile& f, const std::string& path) {
  const auto& md = f.metadata;
  if (!is_int8_file(md)) {
    if (md.count("quantization"))
      fail(path, ": is a quantized checkpoint (simulation), not an int8 model; convert it with lowbit quantize --int8-out");
    fail(path, ": is not an int8 model file (no \"format\": \"", kFormat, "\" in its metadata; a float checkpoint?)");
  }
  auto ver = md.find("format_version");
  if (ver == md.end()) fail(path, ": has no format_version");
  if (ver->second != "1" && ver->second != "2") {
    const long v = std::strtol(ver->second.c_str(), nullptr, 10);
    if (v > kFormatVersion)
      fail(path, ": int8 format version ", ver->second, " is newer than this lowbit reads (", kFormatVersion, ")");
    fail(path, ": unknown int8 format version '", ver->second, "'");
  }
  auto graph = md.find("graph");
  if (graph == md.end()) fail(path, ": has no graph in its metadata");
  Model m = GraphParser(path).parse(graph->second);
  for (auto& [k, v] : md)
    if (k != "format" && k != "format_version" && k != "graph") m.info[k] = v;
  // Each conv/linear's tensors, sized from the graph.
  for (Op& op : m.ops) {
    if (op.kind != OpKind::conv && op.kind != OpKind::linear && op.kind != OpKind::dynamic_linear) continue;
    const bool dyn = op.kind == OpKind::dynamic_linear;
    for (int in : op.inputs)
      if (in < 0 || in >= (int)m.values.size()) fail(path, ": op ", op.name, " reads a value that does not exist");
    if (op.output < 0 || op.output >= (int)m.values.size()) fail(path, ": op ", op.name, " writes a value that does not exist");
    IntegerLayer& L = op.layer;
    if (op.inputs.size() != 1) fail(path, ": op ", op.name, " has ", op.inputs.size(), " inputs");
    L.in = m.values[(size_t)op.inputs[0]].grid;
    L.out = m.values[(size_t)op.output].grid;
    auto get = [&](const std::string& suffix, DType dt) -> const Tensor& {
      const std::string name = op.name + suffix;
      if (!f.has(name)) fail(path, ": op ", op.name, " needs tensor '", name, "', which the file does not hold");
      const Tensor& t = f.get(name);
      if (t.dtype() != dt) fail(path, ": tensor '", name, "' is ", dtype_name(t.dtype()), ", expected ", dtype_name(dt));
      return t;
    };
    const Tensor& w = get(".weight", DType::s8);
    const Tensor& b = get(".bias", dyn ? DType::f32 : DType::s32);
    const Tensor& s = get(".weight_scale", DType::f32);
    const int64_t k = w.dim() >= 1 ? w.shape()[0] : 0;
    if (w.dim() != (op.kind == OpKind::conv ? 4 : 2))
      fail(path, ": tensor '", op.name, ".weight' has shape ", shape_str(w.shape()), ", not a ",
           op.kind == OpKind::conv ? "conv's O,I,R,S" : "linear layer's out,in");
    if (b.dim() != 1 || b.numel() != k)
      fail(path, ": tensor '", op.name, ".bias' has shape ", shape_str(b.shape()), " for ", k, " outputs");
    if (s.dim() != 1 || (s.numel() != k && s.numel() != 1))
      fail(path, ": tensor '", op.name, ".weight_scale' has shape ", shape_str(s.shape()), " for ", k, " outputs");
    L.weight_shape = w.shape();
    L.weight.assign(w.data<int8_t>(), w.data<int8_t>() + w.numel());
    if (dyn)
      op.float_bias = b.to_vector();
    else
      L.bias.assign(b.data<int32_t>(), b.data<int32_t>() + b.numel());
    L.weight_scale = s.to_vector();
  }
  validate(m, path);
  return m;
}

}  // namespace

Model load(const std::string& path) { return from_file(load_safetensors(path), path); }

Model load_bytes(const std::string& bytes, const std::string& name) {
  return from_file(load_safetensors_bytes(bytes, name), name);
}

}  // namespace lowbit::quant::engine
