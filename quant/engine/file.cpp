// The integer model's file (format in model.h): the graph text and the
// tensors, each op's part through its OpDef (ops.h).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "core/safetensors.h"
#include "quant/engine/ops.h"

namespace lowbit::quant::engine {

namespace {

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

}  // namespace

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
  NamedTensors tensors;
  for (const Op& op : m.ops) {
    const OpDef& def = op_def(op.kind);
    g << "op " << def.name << " " << op.name;
    if (!op.inputs.empty()) g << " in=" << join(std::vector<int64_t>(op.inputs.begin(), op.inputs.end()));
    g << " out=" << op.output;
    if (def.print) def.print(op, g);
    g << "\n";
    if (def.save) def.save(op, tensors);
  }
  g << "output " << m.output << "\n";
  std::map<std::string, std::string> md = m.info;
  md["format"] = kFormat;
  md["format_version"] = std::to_string(has_float ? 2 : 1);
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

  // One op line's fields, read with this line's errors.
  class LineFields final : public FieldReader {
   public:
    LineFields(const GraphParser& p, std::map<std::string, std::string> f, int64_t values)
        : p_(p), f_(std::move(f)), values_(values) {}
    const std::string& text(const std::string& key) const override { return f_.at(key); }
    int64_t integer(const std::string& key, int64_t lo, int64_t hi) const override {
      return p_.integer(f_.at(key), lo, hi);
    }
    std::vector<int64_t> ints(const std::string& key, size_t count, int64_t lo, int64_t hi) const override {
      return p_.ints(f_.at(key), count, count, lo, hi);
    }
    std::vector<int> ids(const std::string& key, size_t count) const {
      std::vector<int> v;
      for (int64_t x : ints(key, count, 0, values_ - 1)) v.push_back((int)x);
      return v;
    }

   private:
    const GraphParser& p_;
    std::map<std::string, std::string> f_;
    int64_t values_;
  };

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
        const OpDef* def = find_op(w[1]);
        if (!def) error("unknown op '" + w[1] + "' (this reader knows " + op_names() + ")");
        Op op;
        op.kind = def->kind;
        op.name = w[2];
        std::vector<std::string> keys;
        if (def->inputs > 0) keys.push_back("in");
        keys.push_back("out");
        keys.insert(keys.end(), def->fields.begin(), def->fields.end());
        const LineFields f(*this, fields(w, 3, keys), (int64_t)m.values.size());
        if (def->inputs > 0) op.inputs = f.ids("in", (size_t)def->inputs);
        op.output = f.ids("out", 1)[0];
        if (def->parse) def->parse(op, f);
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
  // Each op's tensors, sized from the graph.
  for (Op& op : m.ops)
    if (const OpDef& def = op_def(op.kind); def.load) def.load(m, op, f, path);
  validate(m, path);
  return m;
}

}  // namespace

Model load(const std::string& path) { return from_file(load_safetensors(path), path); }

Model load_bytes(const std::string& bytes, const std::string& name) {
  return from_file(load_safetensors_bytes(bytes, name), name);
}

}  // namespace lowbit::quant::engine
