#include "quant/dynamic.h"
#include "quant/integer.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/quant_math.h"
#include "quant/observer.h"

namespace lowbit::quant {

namespace qm = kernels::qmath;

// ---- config --------------------------------------------------------------------------------

std::string DynamicConfig::str() const {
  return std::string("dynamic ") + (per_channel ? "per-channel" : "per-tensor") + (reduce_range ? " reduce-range" : "");
}

DynamicConfig DynamicConfig::parse(const std::string& s) {
  for (bool pc : {false, true})
    for (bool rr : {false, true}) {
      const DynamicConfig c{pc, rr};
      if (c.str() == s) return c;
    }
  fail("unknown dynamic quantization config '", s, "' (expected e.g. 'dynamic per-channel')");
}

// ---- module --------------------------------------------------------------------------------

DynamicLinear::DynamicLinear(const nn::Linear& linear, bool relu, const DynamicConfig& cfg)
    : in_features(linear.in_features), out_features(linear.out_features), relu_(relu), cfg_(cfg) {
  LOWBIT_CHECK(in_features <= 65792, "quantize_dynamic: a Linear with ", in_features,
               " input features; the int8 GEMM's int32 sums are exact up to 65792");
  QSpec spec;
  spec.bits = 8;
  spec.is_signed = true;
  spec.symmetric = true;
  spec.per_channel = cfg.per_channel;
  spec.axis = 0;
  spec.observer = ObserverKind::minmax;
  Tensor w;
  for (const auto& [name, t] : linear.named_parameters())
    if (name == "weight") w = t.detach().contiguous();
  ObserverPtr obs = make_observer(spec);
  obs->observe(w);
  const QuantParams qp = obs->calculate_qparams();
  Tensor wq = Tensor::empty(w.shape(), DType::s8);
  const float* pw = w.data<float>();
  int8_t* pq = wq.data<int8_t>();
  for (int64_t o = 0; o < out_features; ++o) {
    const float inv = qm::inverse_scale(qp.scale[qp.scale.size() == 1 ? 0 : (size_t)o]);
    for (int64_t i = 0; i < in_features; ++i)
      pq[o * in_features + i] = (int8_t)qm::quantize(pw[o * in_features + i], inv, 0, spec.qmin(), spec.qmax());
  }
  register_buffer("weight", wq);
  register_buffer("weight_scale", Tensor::from_vector(qp.scale, {(int64_t)qp.scale.size()}));
  for (const auto& [name, t] : linear.named_parameters())
    if (name == "bias") register_buffer("bias", t.detach().clone()), has_bias_ = true;
}

std::string DynamicLinear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) + ", " +
         cfg_.str();
}

std::vector<float> DynamicLinear::bias_values() const {
  return has_bias_ ? buffer("bias").to_vector() : std::vector<float>((size_t)out_features, 0.0f);
}

const DynamicLinearKernel& DynamicLinear::kernel(const kernels::KernelTable& table) const {
  const Tensor& w = buffer("weight");
  const Tensor& s = buffer("weight_scale");
  // Any of the three loaded anew (copy_ bumps the version counter) repacks.
  const uint64_t version = w.version() + s.version() + (has_bias_ ? buffer("bias").version() : 0);
  if (packed_table_ != &table || version != packed_version_) {
    LOWBIT_CHECK(w.dtype() == DType::s8 && w.shape() == (Shape{out_features, in_features}), path,
                 ": weight must be s8 ", out_features, "×", in_features);
    std::vector<float> scales = s.to_vector();
    for (float v : scales)
      LOWBIT_CHECK(std::isfinite(v) && v > 0, path, ": weight scale ", v, " is not a positive number");
    std::vector<float> bias = bias_values();
    kernel_ = DynamicLinearKernel(table.q8, w.data<int8_t>(), out_features, in_features, std::move(scales),
                                  std::move(bias), relu_, cfg_.reduce_range);
    packed_table_ = &table;
    packed_version_ = version;
  }
  return kernel_;
}

Tensor DynamicLinear::forward(const Tensor& x_in) {
  const std::string& name = path.empty() ? type_name() : path;
  LOWBIT_CHECK(x_in.dim() >= 2, name, ": input ", shape_str(x_in.shape()), " needs a batch dimension");
  const Tensor x = (x_in.dim() == 2 ? x_in : flatten(x_in, 1)).detach().contiguous();
  LOWBIT_CHECK(x.shape()[1] == in_features, name, ": input ", shape_str(x_in.shape()), " has ", x.shape()[1],
               " features, the layer takes ", in_features);
  const int64_t n = x.shape()[0];
  Tensor y = Tensor::uninitialized({n, out_features});
  kernel(kernels::table()).run(x.data<float>(), n, y.data<float>(), scratch_, name);
  if (Trace* t = integer.trace) {  // convert_dynamic is recording
    const int in = t->find(x_in);
    if (in < 0 || !t->value(in).is_float) {
      t->fallback(name, "its input does not come from the model input or a dynamic layer (a float layer feeds it)");
    } else {
      TraceOp op{OpKind::dynamic_linear, name, this, {in}, -1, {}, {}};
      op.output = t->add_float(y);
      t->record(std::move(op));
    }
  }
  return y;
}

// ---- quantize_dynamic ------------------------------------------------------------------------

namespace {
template <class T>
bool is_exactly(const nn::Module& m) {
  return typeid(m) == typeid(T);
}
}  // namespace

int quantize_dynamic(nn::Module& model, const std::set<std::string>& targets, const DynamicConfig& cfg) {
  // Which Linear layers: by type name or by path.
  std::set<std::string> chosen, paths_seen;
  std::vector<std::string> linear_paths;
  model.for_each_module([&](const std::string& path, nn::Module& m) {
    paths_seen.insert(path);
    if (!is_exactly<nn::Linear>(m)) return;
    linear_paths.push_back(path);
    if (targets.count(m.type_name()) || targets.count(path)) chosen.insert(path);
  });
  for (const std::string& t : targets) {
    if (t == "Linear") continue;
    if (!paths_seen.count(t)) {
      std::string known;
      for (const auto& p : linear_paths) known += (known.empty() ? "" : ", ") + p;
      fail("quantize_dynamic: no module named '", t, "' (Linear layers: ", known.empty() ? "none" : known, ")");
    }
    LOWBIT_CHECK(chosen.count(t), "quantize_dynamic: '", t, "' is not a Linear layer (only Linear layers are "
                 "quantized dynamically)");
  }
  LOWBIT_CHECK(!chosen.empty(), "quantize_dynamic: the model (", model.type_name(), ") has no Linear layer to quantize");

  // Swap in place, parent by parent; a chosen Linear followed by a ReLU in a
  // fusable chain takes the ReLU in.
  int replaced = 0;
  // Every module is held while we swap (a replaced Linear may be its own last owner).
  std::vector<std::pair<std::string, nn::Module*>> parents{{"", &model}};
  std::vector<nn::ModulePtr> keep;
  model.for_each_module([&](const std::string& path, nn::Module& m) {
    for (auto& [n, c] : m.named_children()) {
      keep.push_back(c);
      parents.emplace_back(path.empty() ? n : path + "." + n, c.get());
    }
  });
  for (auto& [ppath, parent] : parents) {
    const std::string prefix = ppath.empty() ? "" : ppath + ".";
    std::set<std::string> fused_relu;  // Linear child names that take the ReLU after them in
    std::vector<std::string> relus;     // those ReLUs' child names
    std::vector<std::pair<std::string, bool>> swaps;
    for (const auto& chain : parent->fusable_chains()) {
      if (chain.size() != 2 || !chosen.count(prefix + chain[0])) continue;
      auto first = parent->child(chain[0]), act = parent->child(chain[1]);
      if (first && act && is_exactly<nn::Linear>(*first) && is_exactly<nn::ReLU>(*act)) {
        fused_relu.insert(chain[0]);
        relus.push_back(chain[1]);
      }
    }
    for (auto& [name, c] : parent->named_children())
      if (chosen.count(prefix + name) && is_exactly<nn::Linear>(*c)) swaps.emplace_back(name, fused_relu.count(name) > 0);
    for (auto& [name, relu] : swaps) {
      auto lin = std::static_pointer_cast<nn::Linear>(parent->child(name));
      auto d = std::make_shared<DynamicLinear>(*lin, relu, cfg);
      d->path = prefix + name;
      d->train(false);
      parent->replace_child(name, d);
      ++replaced;
    }
    for (const auto& r : relus) parent->replace_child(r, std::make_shared<nn::Identity>());
  }
  return replaced;
}

std::vector<std::pair<std::string, DynamicLinear*>> dynamic_layers(nn::Module& model) {
  return nn::modules_of<DynamicLinear>(model);
}

int64_t dynamic_model_bytes(nn::Module& model) {
  int64_t b = 0;
  for (const auto& [n, t] : model.named_parameters()) b += 4 * t.numel();
  for (const auto& [path, d] : dynamic_layers(model))
    for (const auto& [n, t] : d->named_buffers()) b += (int64_t)dtype_size(t.dtype()) * t.numel();
  return b;
}

}  // namespace lowbit::quant
