#include "tools/common.h"

#include <cmath>
#include <sstream>

#include "core/autograd.h"
#include "core/ops.h"
#include "nn/metrics.h"
#include "quant/quantize.h"
#include "tools/progress.h"

namespace lowbit::cli {

std::vector<float> parse_floats(const std::string& flag, const std::string& s) {
  std::vector<float> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    float v = std::strtof(item.c_str(), &end);
    if (item.empty() || *end || !std::isfinite(v))
      throw UsageError(flag + " expects comma-separated finite numbers, got '" + s + "'");
    out.push_back(v);
  }
  if (out.empty()) throw UsageError(flag + " expects comma-separated numbers, got '" + s + "'");
  return out;
}

const std::vector<std::string>& data_flag_names() {
  static const std::vector<std::string> names{"--dataset", "--data", "--limit", "--mean", "--std", "--workers"};
  return names;
}

DataFlags data_flags(const Args& a) {
  DataFlags f;
  f.dataset = a.get("--dataset", "fashion-mnist");
  f.dir = a.get("--data", "");
  f.limit = a.get_int("--limit", 0);
  if (f.limit < 0) throw UsageError("--limit must be positive");
  f.norm = data::default_normalization(f.dataset);
  if (a.has("--mean")) f.norm.mean = parse_floats("--mean", a.get("--mean", ""));
  if (a.has("--std")) f.norm.std = parse_floats("--std", a.get("--std", ""));
  if (f.norm.mean.size() != f.norm.std.size())
    throw UsageError("--mean has " + std::to_string(f.norm.mean.size()) + " values but --std has " +
                     std::to_string(f.norm.std.size()));
  return f;
}

data::DatasetPtr open_split(const DataFlags& f, bool train, uint64_t seed) {
  data::DatasetSpec spec;
  spec.name = f.dataset;
  spec.dir = f.dir;
  spec.train = train;
  data::DatasetPtr ds = data::open_dataset(spec);
  if (f.limit > 0 && f.limit < ds->size()) ds = data::limit(ds, f.limit, seed);
  return ds;
}

data::TransformPtr train_transform(const DataFlags& f, const data::Dataset& ds, bool augment) {
  std::vector<data::TransformPtr> t;
  if (augment) {
    const Tensor img = ds.get(0).image;  // C×H×W
    const int64_t h = img.shape()[1], w = img.shape()[2];
    const int64_t pad = h <= 28 ? 2 : 4;  // the usual Fashion-MNIST / CIFAR recipes
    t.push_back(data::random_crop(h, w, {pad, pad, pad, pad}));
    t.push_back(data::random_horizontal_flip());
  }
  t.push_back(data::to_tensor());
  t.push_back(data::normalize(f.norm.mean, f.norm.std));
  return data::compose(t);
}

data::TransformPtr eval_transform(const DataFlags& f) {
  return data::compose({data::to_tensor(), data::normalize(f.norm.mean, f.norm.std)});
}

const std::vector<std::string>& model_flag_names() {
  static const std::vector<std::string> names{"--model", "--width", "--small-input", "--act", "--in-channels",
                                              "--num-classes"};
  return names;
}

nn::ModelConfig model_config(const Args& a, const data::Dataset& ds) {
  nn::ModelConfig c;
  c.in_channels = a.get_int("--in-channels", ds.get(0).image.shape()[0]);
  c.num_classes = a.get_int("--num-classes", ds.num_classes());
  c.width_mult = (float)a.get_double("--width", 1.0);
  c.small_input = a.has("--small-input");
  const std::string act = a.get("--act", "relu6");
  if (act != "relu" && act != "relu6") throw UsageError("--act must be relu or relu6, got '" + act + "'");
  c.relu6 = act == "relu6";
  if (c.in_channels < 1) throw UsageError("--in-channels must be at least 1");
  if (c.num_classes < 2) throw UsageError("--num-classes must be at least 2");
  if (!(c.width_mult > 0)) throw UsageError("--width must be positive");
  return c;
}

Args with_checkpoint_defaults(const Args& a_in, const std::map<std::string, std::string>& md) {
  Args a = a_in;
  auto from_meta = [&](const char* meta_key, const char* flag, bool is_switch = false) {
    auto it = md.find(meta_key);
    if (it == md.end() || a.has(flag)) return;
    if (is_switch) {
      if (it->second == "1") a.flags[flag] = "";
    } else {
      a.flags[flag] = it->second;
    }
  };
  from_meta("model", "--model");
  from_meta("dataset", "--dataset");
  from_meta("width", "--width");
  from_meta("act", "--act");
  from_meta("in_channels", "--in-channels");
  from_meta("num_classes", "--num-classes");
  from_meta("small_input", "--small-input", true);
  return a;
}

const std::vector<std::string>& qconfig_flag_names() {
  static const std::vector<std::string> names{"--qconfig", "--observer", "--per-channel", "--per-tensor"};
  return names;
}

quant::QConfig qconfig_from_flags(const Args& a, nn::Module* model, bool qat) {
  const auto [first, last] = model ? quant::first_and_last_layer(*model) : std::pair<std::string, std::string>{};
  quant::QConfig qc;
  try {
    qc = quant::preset(a.get("--qconfig", "w8a8"), first, last);
    if (a.has("--observer")) quant::set_activation_observer(qc, quant::parse_observer(a.get("--observer", "")));
    if (qat && a.has("--quantizer")) quant::set_quantizer(qc, quant::parse_quantizer(a.get("--quantizer", "")));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (a.has("--per-channel") && a.has("--per-tensor")) throw UsageError("--per-channel and --per-tensor contradict each other");
  if (a.has("--per-channel")) quant::set_weight_per_channel(qc, true);
  if (a.has("--per-tensor")) quant::set_weight_per_channel(qc, false);
  qc.validate();
  return qc;
}

EvalResult evaluate(nn::Module& model, const data::DataLoader& loader, bool progress, const std::string& label) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  nn::ClassificationMeter meter(loader.dataset()->num_classes());
  Progress bar(label, loader.dataset()->size(), "img", !progress);
  EvalResult r;
  int64_t done = 0;
  for (const data::Batch& b : loader.epoch(0)) {
    Tensor logits = model.forward(b.images);
    LOWBIT_CHECK(logits.dim() == 2 && logits.shape()[1] == meter.num_classes(), "evaluate: model gives logits ",
                 shape_str(logits.shape()), " but the data set has ", meter.num_classes(), " classes");
    const double loss = cross_entropy(logits, b.labels).item();
    meter.update(logits, b.labels, loss);
    done += b.labels.numel();
    bar.update(done, "acc " + std::to_string(meter.top1()).substr(0, 6));
  }
  r.top1 = meter.top1();
  r.top5 = meter.top5();
  r.loss = meter.mean_loss();
  r.count = meter.count();
  r.seconds = bar.elapsed();
  model.train(was_training);
  return r;
}

}  // namespace lowbit::cli
