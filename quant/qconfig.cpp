#include "quant/qconfig.h"

#include <cmath>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace lowbit::quant {

namespace {
const char* const kObserverNames[] = {"minmax", "ema", "histogram", "entropy", "percentile", "mse"};
const char* const kQuantizerNames[] = {"ste", "lsq", "lsq+"};
const char* const kLsqInitNames[] = {"auto", "mean", "observer"};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep))
    if (!cur.empty()) out.push_back(cur);
  return out;
}

QSpec weight_spec(int bits, bool per_channel, QuantizerKind q) {
  QSpec s;
  s.bits = bits;
  s.is_signed = true;
  s.symmetric = true;
  s.per_channel = per_channel;
  s.axis = 0;
  s.observer = ObserverKind::minmax;
  s.quantizer = q;
  return s;
}

QSpec activation_spec(int bits, QuantizerKind q) {
  QSpec s;
  s.bits = bits;
  s.observer = ObserverKind::histogram;
  s.quantizer = q;
  return s;
}

std::string spec_to_string(const QSpec& s) {
  std::ostringstream os;
  os << s.bits << "," << (s.is_signed ? "signed" : "unsigned") << "," << (s.symmetric ? "symmetric" : "affine") << ","
     << (s.per_channel ? "per-channel:" + std::to_string(s.axis) : std::string("per-tensor"))
     << (s.reduce_range ? ",reduce-range" : "") << "," << observer_name(s.observer) << ","
     << quantizer_name(s.quantizer) << ",ema=" << s.ema_constant << ",pct=" << s.percentile;
  if (s.lsq_init != LsqInit::automatic) os << ",init=" << lsq_init_name(s.lsq_init);  // older files: automatic
  return os.str();
}

QSpec spec_from_string(const std::string& text) {
  QSpec s;
  const auto parts = split(text, ',');
  LOWBIT_CHECK(!parts.empty(), "qconfig: empty quantizer spec");
  try {
    s.bits = std::stoi(parts[0]);
  } catch (const std::exception&) {
    fail("qconfig: bad bit width '", parts[0], "' in '", text, "'");
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p == "signed" || p == "unsigned") s.is_signed = p == "signed";
    else if (p == "symmetric" || p == "affine") s.symmetric = p == "symmetric";
    else if (p == "per-tensor") s.per_channel = false;
    else if (p.rfind("per-channel:", 0) == 0) {
      s.per_channel = true;
      s.axis = std::atoi(p.c_str() + 12);
    } else if (p == "reduce-range") s.reduce_range = true;
    else if (p.rfind("ema=", 0) == 0) s.ema_constant = std::strtof(p.c_str() + 4, nullptr);
    else if (p.rfind("pct=", 0) == 0) s.percentile = std::strtof(p.c_str() + 4, nullptr);
    else if (p.rfind("init=", 0) == 0) s.lsq_init = parse_lsq_init(p.substr(5));
    else {
      bool found = false;
      for (int k = 0; k < 6 && !found; ++k)
        if (p == kObserverNames[k]) s.observer = (ObserverKind)k, found = true;
      for (int k = 0; k < 3 && !found; ++k)
        if (p == kQuantizerNames[k]) s.quantizer = (QuantizerKind)k, found = true;
      LOWBIT_CHECK(found, "qconfig: unknown word '", p, "' in '", text, "'");
    }
  }
  return s;
}

std::string layer_to_string(const std::optional<LayerQConfig>& l) {
  return l ? spec_to_string(l->weight) + "/" + spec_to_string(l->activation) : "float";
}

std::optional<LayerQConfig> layer_from_string(const std::string& text) {
  if (text == "float") return std::nullopt;
  const auto slash = text.find('/');
  LOWBIT_CHECK(slash != std::string::npos, "qconfig: '", text, "' is not WEIGHT/ACTIVATION");
  return LayerQConfig{spec_from_string(text.substr(0, slash)), spec_from_string(text.substr(slash + 1))};
}

template <class F>
void for_each_layer(QConfig& c, F f) {
  f(c.layer);
  for (auto& [n, l] : c.overrides)
    if (l) f(*l);
}
}  // namespace

const char* observer_name(ObserverKind k) { return kObserverNames[(int)k]; }
const char* quantizer_name(QuantizerKind k) { return kQuantizerNames[(int)k]; }

ObserverKind parse_observer(const std::string& s) {
  for (int k = 0; k < 6; ++k)
    if (s == kObserverNames[k]) return (ObserverKind)k;
  fail("unknown observer '", s, "' (known: minmax, ema, histogram, entropy, percentile, mse)");
}

QuantizerKind parse_quantizer(const std::string& s) {
  for (int k = 0; k < 3; ++k)
    if (s == kQuantizerNames[k]) return (QuantizerKind)k;
  fail("unknown quantizer '", s, "' (known: ste, lsq, lsq+)");
}

const char* lsq_init_name(LsqInit k) { return kLsqInitNames[(int)k]; }

LsqInit parse_lsq_init(const std::string& s) {
  for (int k = 0; k < 3; ++k)
    if (s == kLsqInitNames[k]) return (LsqInit)k;
  fail("unknown LSQ initialisation '", s, "' (known: auto, mean, observer)");
}

int QSpec::qmin() const {
  const int b = bits - (reduce_range ? 1 : 0);
  return is_signed ? -(1 << (b - 1)) : 0;
}

int QSpec::qmax() const {
  const int b = bits - (reduce_range ? 1 : 0);
  return is_signed ? (1 << (b - 1)) - 1 : (1 << b) - 1;
}

void QSpec::validate(const std::string& where) const {
  LOWBIT_CHECK(bits >= 2 && bits <= 8, where, ": ", bits, " bits is not supported (2 to 8)");
  LOWBIT_CHECK(!(reduce_range && bits < 3), where, ": reduce_range needs at least 3 bits");
  LOWBIT_CHECK(axis >= 0, where, ": per-channel axis ", axis, " is negative");
  LOWBIT_CHECK(percentile > 50 && percentile <= 100, where, ": percentile ", percentile, " must be in (50, 100]");
  LOWBIT_CHECK(ema_constant > 0 && ema_constant <= 1, where, ": EMA constant ", ema_constant, " must be in (0, 1]");
  LOWBIT_CHECK(!(quantizer == QuantizerKind::lsq_plus && symmetric), where,
               ": lsq+ learns an offset, which a symmetric quantizer does not have");
}

std::string QSpec::str() const {
  std::ostringstream os;
  os << (is_signed ? "s" : "u") << bits << (reduce_range ? "(reduced)" : "") << " "
     << (symmetric ? "symmetric" : "affine") << " "
     << (per_channel ? "per-channel(" + std::to_string(axis) + ")" : std::string("per-tensor")) << " "
     << observer_name(observer) << " " << quantizer_name(quantizer);
  if (lsq_init != LsqInit::automatic) os << " init=" << lsq_init_name(lsq_init);
  return os.str();
}

std::optional<LayerQConfig> QConfig::for_module(const std::string& path) const {
  auto it = overrides.find(path);
  if (it != overrides.end()) return it->second;
  return layer;
}

void QConfig::validate() const {
  layer.weight.validate("qconfig " + name + " weights");
  layer.activation.validate("qconfig " + name + " activations");
  for (auto& [n, l] : overrides)
    if (l) {
      l->weight.validate("qconfig override " + n + " weights");
      l->activation.validate("qconfig override " + n + " activations");
    }
}

QConfig preset(const std::string& name, const std::string& first_layer, const std::string& last_layer) {
  QConfig c;
  c.name = name;
  const LayerQConfig w8a8{weight_spec(8, true, QuantizerKind::ste), activation_spec(8, QuantizerKind::ste)};
  if (name == "w8a8") c.layer = w8a8;
  else if (name == "w8a8-per-tensor") c.layer = {weight_spec(8, false, QuantizerKind::ste), activation_spec(8, QuantizerKind::ste)};
  else if (name == "w4a8") c.layer = {weight_spec(4, true, QuantizerKind::lsq), activation_spec(8, QuantizerKind::lsq)};
  else if (name == "w4a4" || name == "w2a2") {
    const int b = name == "w4a4" ? 4 : 2;
    c.layer = {weight_spec(b, true, QuantizerKind::lsq), activation_spec(b, QuantizerKind::lsq)};
    LayerQConfig keep8 = w8a8;
    keep8.weight.quantizer = keep8.activation.quantizer = QuantizerKind::lsq;
    c.overrides["quant"] = keep8;  // the network input: the first layer's input stays 8-bit
    if (!first_layer.empty()) c.overrides[first_layer] = keep8;
    if (!last_layer.empty()) c.overrides[last_layer] = keep8;
  } else {
    fail("unknown qconfig '", name, "' (known: ", preset_names(), ")");
  }
  return c;
}

const char* preset_names() { return "w8a8, w8a8-per-tensor, w4a8, w4a4, w2a2"; }

void set_activation_observer(QConfig& c, ObserverKind k) {
  for_each_layer(c, [&](LayerQConfig& l) { l.activation.observer = k; });
}

void set_quantizer(QConfig& c, QuantizerKind k) {
  for_each_layer(c, [&](LayerQConfig& l) {
    l.weight.quantizer = k == QuantizerKind::lsq_plus ? QuantizerKind::lsq : k;  // weights are symmetric: no offset
    l.activation.quantizer = k;
  });
}

void set_lsq_init(QConfig& c, LsqInit k) {
  for_each_layer(c, [&](LayerQConfig& l) { l.weight.lsq_init = l.activation.lsq_init = k; });
}

void set_weight_per_channel(QConfig& c, bool per_channel) {
  for_each_layer(c, [&](LayerQConfig& l) { l.weight.per_channel = per_channel; });
}

std::string qconfig_to_string(const QConfig& c) {
  std::string s = "name=" + c.name + " layer=" + layer_to_string(c.layer);
  for (auto& [n, l] : c.overrides) s += " " + n + "=" + layer_to_string(l);
  return s;
}

QConfig qconfig_from_string(const std::string& s) {
  QConfig c;
  bool has_layer = false;
  for (const auto& tok : split(s, ' ')) {
    const auto eq = tok.find('=');
    LOWBIT_CHECK(eq != std::string::npos && eq > 0, "qconfig: bad entry '", tok, "'");
    const std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
    if (k == "name") c.name = v;
    else if (k == "layer") {
      auto l = layer_from_string(v);
      LOWBIT_CHECK(l.has_value(), "qconfig: the default layer config cannot be float");
      c.layer = *l;
      has_layer = true;
    } else c.overrides[k] = layer_from_string(v);
  }
  LOWBIT_CHECK(has_layer, "qconfig: '", s, "' has no layer= entry");
  c.validate();
  return c;
}

}  // namespace lowbit::quant
