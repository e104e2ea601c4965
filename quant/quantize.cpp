#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <typeinfo>

#include "core/autograd.h"
#include "core/error.h"
#include "nn/trainer.h"

namespace lowbit::quant {

namespace {

struct Slot {
  nn::Module* parent;
  std::string name, path;
  nn::ModulePtr module;
};

// Every (parent, child) pair under root, pre-order, collected before any swap.
std::vector<Slot> slots(nn::Module& root) {
  std::vector<Slot> out;
  root.for_each_module([&](const std::string& path, nn::Module& m) {
    for (auto& [n, c] : m.named_children()) out.push_back({&m, n, path.empty() ? n : path + "." + n, c});
  });
  return out;
}

template <class T>
bool is_exactly(const nn::Module& m) {
  return typeid(m) == typeid(T);
}

void attach(nn::Module& model, const QConfig& qc) {
  for (const Slot& s : slots(model)) {
    nn::Module& m = *s.module;
    // Quantizer subtrees and the members of a fused module are not layers.
    if (dynamic_cast<Quantizer*>(&m) || dynamic_cast<FusedConv2d*>(s.parent)) continue;
    const std::optional<LayerQConfig> lc = qc.for_module(s.path);
    if (!lc) continue;  // kept in float
    if (is_exactly<nn::Conv2d>(m)) {
      auto f = std::make_shared<FusedConv2d>(static_cast<nn::Conv2d&>(m), nullptr, false, Activation::none);
      f->attach(*lc, s.path);
      s.parent->replace_child(s.name, f);
    } else if (is_exactly<nn::Linear>(m)) {
      auto f = std::make_shared<FusedLinear>(static_cast<nn::Linear&>(m), Activation::none);
      f->attach(*lc, s.path);
      s.parent->replace_child(s.name, f);
    } else if (auto* f = dynamic_cast<FusedConv2d*>(&m)) {
      if (!f->weight_quantizer()) f->attach(*lc, s.path);
    } else if (auto* f = dynamic_cast<FusedLinear*>(&m)) {
      if (!f->weight_quantizer()) f->attach(*lc, s.path);
    } else if (is_exactly<nn::Add>(m)) {
      s.parent->replace_child(s.name, std::make_shared<QuantAdd>(static_cast<nn::Add&>(m).act, lc->activation, s.path));
    } else if (is_exactly<nn::AdaptiveAvgPool2d>(m) || is_exactly<nn::AvgPool2d>(m)) {
      s.parent->replace_child(s.name, std::make_shared<QuantPool>(s.module, &lc->activation, s.path));
    } else if (is_exactly<nn::MaxPool2d>(m)) {
      s.parent->replace_child(s.name, std::make_shared<QuantPool>(s.module, nullptr, s.path));
    }
  }
}

QSpec input_spec(const QConfig& qc) {
  const auto lc = qc.for_module("quant");
  return lc ? lc->activation : qc.layer.activation;
}

// QAT updates qparams every step: the histogram-based searches are calibration
// observers, so QAT's STE activations use the moving average (PyTorch's QAT
// default) unless minmax or ema was asked for.
QConfig qat_config(QConfig qc) {
  auto fix = [](LayerQConfig& l) {
    for (QSpec* s : {&l.weight, &l.activation})
      if (s->quantizer == QuantizerKind::ste && s->observer != ObserverKind::minmax && s->observer != ObserverKind::ema)
        s->observer = s == &l.weight ? ObserverKind::minmax : ObserverKind::ema;
  };
  fix(qc.layer);
  for (auto& [n, l] : qc.overrides)
    if (l) fix(*l);
  return qc;
}

}  // namespace

void fuse(nn::Module& model, bool fold_bn) {
  // Plan every chain of a module before swapping any member: Bottleneck's one
  // "relu" ends two chains.
  // Held by shared_ptr: a swapped-out BN may be the last owner of itself.
  std::vector<nn::ModulePtr> keep;
  std::vector<nn::Module*> parents{&model};
  model.for_each_module([&](const std::string&, nn::Module& m) {
    for (auto& [n, c] : m.named_children()) keep.push_back(c), parents.push_back(c.get());
  });
  for (nn::Module* parent : parents) {
    struct Plan {
      std::vector<std::string> chain;
      nn::ModulePtr fused;
    };
    std::vector<Plan> plans;
    for (const auto& chain : parent->fusable_chains()) {
      LOWBIT_CHECK(!chain.empty(), "fuse: ", parent->type_name(), " declares an empty chain");
      std::vector<nn::ModulePtr> mods;
      for (const auto& n : chain) {
        auto c = parent->child(n);
        LOWBIT_CHECK(c != nullptr, "fuse: ", parent->type_name(), " declares a chain with '", n, "', not a child");
        mods.push_back(c);
      }
      const Activation act = nn::activation_of(*mods.back());
      const bool has_bn = mods.size() > 1 && is_exactly<nn::BatchNorm2d>(*mods[1]);
      if (is_exactly<nn::Conv2d>(*mods[0])) {
        plans.push_back({chain, std::make_shared<FusedConv2d>(
                                    static_cast<nn::Conv2d&>(*mods[0]),
                                    has_bn ? std::static_pointer_cast<nn::BatchNorm2d>(mods[1]) : nullptr, fold_bn, act)});
      } else if (is_exactly<nn::Linear>(*mods[0]) && !has_bn) {
        plans.push_back({chain, std::make_shared<FusedLinear>(static_cast<nn::Linear&>(*mods[0]), act)});
      }
      // Anything else (already fused) stays as it is.
    }
    for (const Plan& p : plans) {
      parent->replace_child(p.chain[0], p.fused);
      for (size_t i = 1; i < p.chain.size(); ++i) parent->replace_child(p.chain[i], std::make_shared<nn::Identity>());
    }
  }
}

std::shared_ptr<QuantModel> prepare(const nn::ModulePtr& model, const QConfig& qconfig) {
  qconfig.validate();
  model->eval();
  fuse(*model, true);
  attach(*model, qconfig);
  auto q = std::make_shared<QuantModel>(model, input_spec(qconfig));
  q->eval();
  enable_calibration(*q);
  return q;
}

std::shared_ptr<QuantModel> prepare_qat(const nn::ModulePtr& model, const QConfig& qconfig) {
  qconfig.validate();
  const QConfig qc = qat_config(qconfig);
  fuse(*model, false);
  attach(*model, qc);
  auto q = std::make_shared<QuantModel>(model, input_spec(qc));
  q->train();
  return q;
}

std::vector<std::pair<std::string, Quantizer*>> quantizers(nn::Module& prepared) {
  return nn::modules_of<Quantizer>(prepared);
}

std::vector<CollapsedStep> collapsed_steps(nn::Module& prepared) {
  std::vector<CollapsedStep> out;
  for (auto& [path, q] : quantizers(prepared))
    for (const Quantizer::Collapse& c : q->take_collapses()) {
      std::ostringstream o;
      o << path << ": the LSQ step" << (q->spec().per_channel ? " of channel " + std::to_string(c.channel) : "")
        << " fell to " << c.step << " and was clamped to fp32 epsilon";
      out.push_back({path, o.str()});
    }
  return out;
}

int64_t calibrate(nn::Module& prepared, const BatchSource& data,
                  const std::function<void(int64_t done, int64_t total)>& progress) {
  NoGradGuard ng;
  int64_t done = 0;
  data.for_each(0, [&](const Batch& b) {
    prepared.forward(b.images);
    done += b.labels.numel();
    if (progress) progress(done, data.num_samples());
    return true;
  });
  return done;
}

int64_t reestimate_bn_stats(nn::Module& prepared, const BatchSource& data, int64_t max_batches, uint64_t epoch) {
  LOWBIT_CHECK(max_batches > 0, "reestimate_bn_stats: max_batches must be at least 1, got ", max_batches);
  struct Layer {
    nn::BatchNorm2d* bn;
    LsqQuantizer* steps;  // the per-channel LSQ weight steps that absorb σ_old/σ_new (none: unquantized weights)
    Tensor mean, var;
    std::vector<float> mean0, var0;
    std::vector<double> sum_mean, sum_var;
  };
  std::vector<Layer> layers;
  prepared.for_each_module([&](const std::string&, nn::Module& m) {
    auto* f = dynamic_cast<FusedConv2d*>(&m);
    if (!f || !f->has_bn() || f->bn_stats_frozen()) return;
    Quantizer* wq = f->weight_quantizer();
    const bool quantized = wq && wq->fake_quant_enabled();
    auto* lsq = dynamic_cast<LsqQuantizer*>(wq);
    if (quantized && !(lsq && wq->spec().per_channel)) return;  // no step that could keep its integer weights
    Layer L{static_cast<nn::BatchNorm2d*>(f->child("bn").get()), quantized ? lsq : nullptr, {}, {}, {}, {}, {}, {}};
    for (auto& [n, t] : L.bn->state_dict()) {
      if (n == "running_mean") L.mean = t;
      if (n == "running_var") L.var = t;
    }
    if (!L.mean.defined() || !L.var.defined()) return;
    L.mean0 = L.mean.to_vector(), L.var0 = L.var.to_vector();
    L.sum_mean.assign(L.mean0.size(), 0.0), L.sum_var.assign(L.var0.size(), 0.0);
    layers.push_back(std::move(L));
  });
  if (layers.empty()) return 0;
  auto set = [](Tensor& t, const std::vector<float>& v) {
    std::copy(v.begin(), v.end(), t.data<float>());
    t.bump_version();
  };
  // Restores the mode, every observer switch, the BN momenta and (unless
  // finished) the statistics, also on an error.
  struct Restore {
    nn::Module& m;
    bool training;
    std::vector<Layer>& layers;
    std::vector<std::pair<Quantizer*, bool>> observers;
    std::vector<float> momenta;
    bool done = false;
    ~Restore() {
      for (auto& [q, on] : observers) q->enable_observer(on);
      for (size_t i = 0; i < layers.size(); ++i) {
        layers[i].bn->momentum = momenta[i];
        if (done) continue;
        std::copy(layers[i].mean0.begin(), layers[i].mean0.end(), layers[i].mean.data<float>());
        std::copy(layers[i].var0.begin(), layers[i].var0.end(), layers[i].var.data<float>());
      }
      m.train(training);
    }
  } restore{prepared, prepared.is_training(), layers, {}, {}};
  for (auto& [p, q] : quantizers(prepared)) {
    restore.observers.emplace_back(q, q->observer_enabled());
    q->enable_observer(false);
  }
  for (Layer& L : layers) restore.momenta.push_back(L.bn->momentum);
  NoGradGuard ng;
  prepared.train();
  int64_t k = 0;
  data.for_each(epoch, [&](const Batch& b) {
    // Each batch runs on the trained statistics (so the folded weights, and
    // with them the integer weights, are the trained ones); momentum 1
    // leaves the batch's own statistics in the buffers.
    for (Layer& L : layers) {
      set(L.mean, L.mean0), set(L.var, L.var0);
      L.bn->momentum = 1.0f;
    }
    prepared.forward(b.images);
    for (Layer& L : layers) {
      const std::vector<float> m = L.mean.to_vector(), v = L.var.to_vector();
      for (size_t c = 0; c < m.size(); ++c) L.sum_mean[c] += m[c], L.sum_var[c] += v[c];
    }
    return ++k < max_batches;
  });
  for (Layer& L : layers) {
    std::vector<float> mean(L.mean0.size()), var(L.var0.size()), ratio(L.var0.size());
    for (size_t c = 0; c < mean.size(); ++c) {
      mean[c] = (float)(L.sum_mean[c] / (double)k), var[c] = (float)(L.sum_var[c] / (double)k);
      ratio[c] = std::sqrt((L.var0[c] + L.bn->eps) / (var[c] + L.bn->eps));  // σ_old/σ_new
    }
    set(L.mean, mean), set(L.var, var);
    // The folded weights are W·γ/σ: with σ_new and the steps times σ_old/σ_new
    // they round to the same integers, now scaled by σ_old/σ_new (the BN of
    // the new statistics applied to the trained quantized conv).
    if (L.steps) L.steps->rescale_steps(ratio);
  }
  restore.done = true;
  return k;
}

BnReestimation reestimate_bn_stats_if_better(nn::Module& prepared, const BatchSource& data, int64_t max_batches,
                                             int64_t probe_batches, uint64_t epoch) {
  LOWBIT_CHECK(probe_batches > 0, "reestimate_bn_stats_if_better: probe_batches must be at least 1, got ", probe_batches);
  BnReestimation r;
  // The probe: training batches held in memory, so both statistics see the same images.
  std::vector<Batch> probe;
  data.for_each(epoch + 1, [&](const Batch& b) {
    probe.push_back(b);
    return (int64_t)probe.size() < probe_batches;
  });
  const BatchList probe_data(probe, data.num_classes());
  const bool training = prepared.is_training();
  auto probe_loss = [&] {
    const double loss = nn::evaluate(prepared, probe_data).loss;
    prepared.train(training);
    return loss;
  };
  std::vector<std::pair<Tensor, Tensor>> saved;  // (live tensor, copy)
  for (auto& [n, t] : prepared.state_dict()) saved.emplace_back(t, t.clone());
  r.loss_before = probe_loss();
  r.batches = reestimate_bn_stats(prepared, data, max_batches, epoch);
  if (r.batches == 0) return r;
  r.loss_after = probe_loss();
  r.kept = r.loss_after < r.loss_before;
  if (!r.kept) {
    NoGradGuard ng;
    for (auto& [live, copy] : saved) {
      Tensor(live).copy_(copy);
      live.bump_version();
    }
  }
  return r;
}

void enable_calibration(nn::Module& prepared) {
  for (auto& [p, q] : quantizers(prepared)) {
    q->enable_observer(true);
    q->enable_fake_quant(false);
  }
}

void enable_observers(nn::Module& prepared, bool on) {
  for (auto& [p, q] : quantizers(prepared)) q->enable_observer(on);
}

void freeze_bn_stats(nn::Module& prepared) {
  prepared.for_each_module([](const std::string&, nn::Module& m) {
    if (auto* f = dynamic_cast<FusedConv2d*>(&m)) f->freeze_bn_stats(true);
  });
}

void freeze(nn::Module& prepared) {
  for (auto& [p, q] : quantizers(prepared)) q->freeze();
  freeze_bn_stats(prepared);
  prepared.eval();
  if (auto* qm = dynamic_cast<QuantModel*>(&prepared)) qm->set_frozen(true);
}

ModelSize model_size(nn::Module& prepared) {
  ModelSize s;
  // Walk layers; a quantized conv/linear accounts for its whole subtree (its
  // BN folds into the int32 bias), quantizers hold no model parameters.
  std::function<void(nn::Module&)> walk = [&](nn::Module& m) {
    if (dynamic_cast<Quantizer*>(&m)) return;
    auto* fc = dynamic_cast<FusedConv2d*>(&m);
    auto* fl = dynamic_cast<FusedLinear*>(&m);
    Quantizer* wq = fc ? fc->weight_quantizer() : fl ? fl->weight_quantizer() : nullptr;
    if (wq) {
      for (auto& [n, t] : m.named_parameters())
        if (n.find("fake_quant") == std::string::npos && n.find("post_process") == std::string::npos)
          s.float_bytes += 4 * t.numel();
      const int64_t out = fc ? fc->out_channels : fl->out_features;
      const int64_t channels = wq->spec().per_channel ? out : 1;
      const int64_t w = m.named_parameters()[0].second.numel();
      s.quantized_bytes += (w * wq->spec().bits + 7) / 8 + channels * 8 + out * 4;  // weights, scale+zp, bias
      return;
    }
    for (auto& [n, t] : m.named_parameters())
      if (n.find('.') == std::string::npos) s.float_bytes += 4 * t.numel(), s.quantized_bytes += 4 * t.numel();
    for (auto& [n, c] : m.named_children()) walk(*c);
  };
  walk(prepared);
  return s;
}

std::pair<std::string, std::string> first_and_last_layer(nn::Module& model) {
  std::string first, last;
  model.for_each_module([&](const std::string& path, nn::Module& m) {
    const bool conv = is_exactly<nn::Conv2d>(m) || dynamic_cast<FusedConv2d*>(&m);
    const bool lin = is_exactly<nn::Linear>(m) || dynamic_cast<FusedLinear*>(&m);
    if (conv && first.empty()) first = path;
    if (lin) last = path;
  });
  return {first, last};
}

}  // namespace lowbit::quant
