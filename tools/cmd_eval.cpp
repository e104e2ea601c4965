// `lowbit eval`: accuracy, loss, size and latency of a float checkpoint, a
// quantized one (in simulation) or an int8 model file (on the int8 engine).
// The model's configuration (width, small-input, activation, channels,
// classes) is read from the checkpoint's metadata when present; flags
// override.
//
// --compare-sim (quantized checkpoints): converts the model to the int8
// engine in memory and runs both on every test image, reporting how often
// they agree — top-1, logits within one output step, bit-identical logits —
// on the kernel path this process uses (LOWBIT_ISA picks another).
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <chrono>
#include <cstdio>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "nn/checkpoint.h"
#include "quant/checkpoint.h"
#include "nn/metrics.h"
#include "quant/convert.h"
#include "quant/engine/runner.h"
#include "tools/progress.h"
#include "tools/common.h"
#include "core/json.h"

namespace lowbit::cli {

namespace {

const char* flow(const quant::QuantInfo& q) { return q.dynamic ? "dynamic" : q.qat ? "qat" : "ptq"; }
std::string qname(const quant::QuantInfo& q) { return q.dynamic ? q.dynamic_config.str() : q.qconfig.name; }

double file_mb(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
}

// An int8 model file on the engine.
int eval_int8(const Args& a, const std::string& weights, const SafetensorsFile& file, bool quiet, bool json) {
  quant::engine::Runner runner(quant::engine::load(weights));
  const quant::engine::Model& m = runner.model();
  DataFlags df = data_flags(a);
  // The normalization the model was quantized with, unless flags say otherwise.
  const Int8Classifier cls = int8_classifier(m, weights);
  if (!a.has("--mean") && m.info.count("mean")) df.norm.mean = cls.mean;
  if (!a.has("--std") && m.info.count("std")) df.norm.std = cls.std;
  data::DatasetPtr ds = open_split(df, false, (uint64_t)a.get_int("--seed"));
  const Shape img = ds->get(0).image.shape();
  if (Shape(img.begin(), img.end()) != m.input_shape)
    throw UsageError(weights + " takes " + shape_str(m.input_shape) + " images; the " + df.dataset + " images are " +
                     shape_str(img));
  const int64_t batch = a.get_int("--batch");
  if (batch < 1) throw UsageError("--batch must be at least 1");
  data::DataLoader loader(ds, {.batch_size = batch, .num_workers = (int)a.get_int("--workers")}, eval_transform(df));
  const EvalResult r = evaluate([&](const Tensor& x) { return runner.run(x); }, loader, !quiet, "int8");
  const Tensor one = loader.make_batch(0, 0).images.slice(0, 0, 1).contiguous();
  const double latency = median_ms([&] { runner.run(one); });
  const double throughput = r.seconds > 0 ? (double)r.count / r.seconds : 0.0;
  const std::string model = m.info.count("model") ? m.info.at("model") : "model";
  const char* isa = kernels::table().q8.gemm_path;
  if (json) {
    const Json j = {{"model", model},
                    {"engine", "int8"},
                    {"accuracy", r.top1},
                    {"top5", r.top5},
                    {"loss", r.loss},
                    {"images", r.count},
                    {"file_mb", file_mb(weights)},
                    {"int8_mb", (double)quant::engine::model_bytes(m) / 1e6},
                    {"latency_ms", latency},
                    {"throughput", throughput},
                    {"threads", kernels::num_threads()},
                    {"int8_path", isa}};
    std::printf("%s\n", json_line(j).c_str());
  } else {
    std::printf("%s (int8 engine, %s) on %s test (%lld images)\n", model.c_str(), isa, df.dataset.c_str(),
                (long long)r.count);
    std::printf("  accuracy   %.4f (top-5 %.4f)\n  loss       %.4f\n", r.top1, r.top5, r.loss);
    std::printf("  size       %.3f MB of integer weights, biases and scales; file %.3f MB\n",
                (double)quant::engine::model_bytes(m) / 1e6, file_mb(weights));
    std::printf("  latency    %.3f ms (batch 1, median of 30)\n  throughput %.0f img/s (batch %lld, %d threads)\n",
                latency, throughput, (long long)batch, kernels::num_threads());
  }
  (void)file;
  return 0;
}

// The simulation of a quantized checkpoint against its int8 conversion, image by image.
int compare_sim(quant::QuantModel& q, const data::DataLoader& loader, const std::string& model_name,
                const std::string& dataset, bool quiet, bool json) {
  LOWBIT_CHECK(q.frozen(), "--compare-sim: the checkpoint is not a finished (frozen) quantized model");
  const Shape img = loader.dataset()->get(0).image.shape();
  quant::engine::Runner runner(quant::convert(q, Tensor::zeros({1, img[0], img[1], img[2]})));
  const quant::engine::Model& m = runner.model();
  const float step = m.values[(size_t)m.output].grid.scale;
  nn::ClassificationMeter sim_meter(loader.dataset()->num_classes()), int_meter(loader.dataset()->num_classes());
  int64_t n = 0, same_top1 = 0, within = 0, identical = 0;
  double worst = 0;
  Progress bar("compare", loader.dataset()->size(), "img", quiet);
  NoGradGuard ng;
  for (const data::Batch& b : loader.epoch(0)) {
    const Tensor ys = q.forward(b.images), yi = runner.run(b.images);
    sim_meter.update(ys, b.labels, 0.0);
    int_meter.update(yi, b.labels, 0.0);
    const int64_t bs = ys.shape()[0], k = ys.shape()[1];
    const float* ps = ys.data<float>();
    const float* pi = yi.data<float>();
    for (int64_t i = 0; i < bs; ++i) {
      const float* s = ps + i * k;
      const float* t = pi + i * k;
      double d = 0;
      for (int64_t j = 0; j < k; ++j) d = std::max(d, (double)std::fabs(s[j] - t[j]));
      worst = std::max(worst, d / step);
      same_top1 += std::max_element(s, s + k) - s == std::max_element(t, t + k) - t;
      within += d <= step * 1.0001;
      identical += d == 0;
    }
    n += bs;
    bar.update(n, "");
  }
  const double pn = n ? 100.0 / (double)n : 0.0;
  const char* isa = kernels::table().q8.gemm_path;
  if (json) {
    const Json j = {{"model", model_name},
                    {"images", n},
                    {"int8_path", isa},
                    {"top1_agreement", same_top1 * pn / 100},
                    {"within_one_step", within * pn / 100},
                    {"bit_identical", identical * pn / 100},
                    {"max_diff_steps", worst},
                    {"sim_accuracy", sim_meter.top1()},
                    {"int8_accuracy", int_meter.top1()}};
    std::printf("%s\n", json_line(j).c_str());
  } else {
    std::printf("%s: int8 engine (%s) vs simulation on %s test (%lld images)\n", model_name.c_str(), isa,
                dataset.c_str(), (long long)n);
    std::printf("  same top-1            %.2f%% (%lld)\n", same_top1 * pn, (long long)same_top1);
    std::printf("  logits within 1 step  %.2f%% (%lld; step %.6g)\n", within * pn, (long long)within, (double)step);
    std::printf("  bit-identical logits  %.2f%% (%lld); largest difference %.3g steps\n", identical * pn,
                (long long)identical, worst);
    std::printf("  accuracy              simulation %.4f, int8 %.4f\n", sim_meter.top1(), int_meter.top1());
  }
  return 0;
}

// The model a float, quantized or dynamic checkpoint holds, loaded; qinfo and
// qsize say how it is quantized (nullopt: float).
struct EvalModel {
  nn::ModulePtr model;
  std::optional<quant::QuantInfo> qinfo;
  quant::ModelSize qsize;
};
EvalModel load_eval_model(const Args& a, const std::string& weights, const SafetensorsFile& file,
                          const data::Dataset& ds) {
  nn::ModelConfig cfg = model_config(a, ds);
  nn::check_model_name(a.get("--model", ""));
  check_checkpoint_model(weights, a.get("--model", ""), cfg);  // "F holds a resnet20 (…), not a resnet32 (…)"
  EvalModel e{create_model_that_fits(a.get("--model", ""), cfg, 1), quant::quant_info(file.metadata, weights), {}};
  // A quantized checkpoint (lowbit quantize / qat) evaluates in simulation.
  if (e.qinfo && e.qinfo->dynamic) {
    if (a.has("--compare-sim"))
      throw UsageError("--compare-sim compares a static quantized checkpoint with the engine; " + weights +
                       " is dynamically quantized (its layers already run on the int8 kernels)");
    e.qsize.float_bytes = e.model->num_parameters() * 4;
    e.model = quant::load_dynamic(weights, e.model);
    e.qsize.quantized_bytes = quant::dynamic_model_bytes(*e.model);
  } else if (e.qinfo) {
    e.model = quant::load_quantized(weights, e.model);
    e.qsize = quant::model_size(*e.model);
  } else {
    if (a.has("--compare-sim")) throw UsageError("--compare-sim needs a quantized checkpoint; " + weights + " is float");
    nn::load_checkpoint(weights, *e.model, nullptr, true);
  }
  return e;
}

void print_eval(const Args& a, const EvalModel& e, const EvalResult& r, const std::string& dataset, double latency,
                double mb, int64_t batch) {
  const double throughput = r.seconds > 0 ? (double)r.count / r.seconds : 0.0;
  const std::string model = a.get("--model", "");
  const int64_t params = e.model->num_parameters();
  if (a.has("--json")) {
    Json j = {{"model", model},
              {"accuracy", r.top1},
              {"top5", r.top5},
              {"loss", r.loss},
              {"images", r.count},
              {"file_mb", mb},
              {"parameters", params},
              {"latency_ms", latency},
              {"throughput", throughput},
              {"threads", kernels::num_threads()}};
    if (e.qinfo) {
      j["quantization"] = flow(*e.qinfo);
      j["qconfig"] = qname(*e.qinfo);
      j["float_mb"] = (double)e.qsize.float_bytes / 1e6;
      j["quantized_mb"] = (double)e.qsize.quantized_bytes / 1e6;
    }
    std::printf("%s\n", json_line(j).c_str());
    return;
  }
  std::printf("%s on %s test (%lld images)\n", model.c_str(), dataset.c_str(), (long long)r.count);
  std::printf("  accuracy   %.4f (top-5 %.4f)\n  loss       %.4f\n", r.top1, r.top5, r.loss);
  if (e.qinfo)
    std::printf("  quantized  %s (%s%s): %.3f MB quantized vs %.3f MB float\n", qname(*e.qinfo).c_str(), flow(*e.qinfo),
                e.qinfo->dynamic ? ", int8 kernels" : ", simulated", (double)e.qsize.quantized_bytes / 1e6,
                (double)e.qsize.float_bytes / 1e6);
  if (e.qinfo && e.qinfo->dynamic)
    std::printf("  size       file %.2f MB\n", mb);
  else
    std::printf("  size       %.2f MB of f32 parameters (%lld); file %.2f MB\n", (double)params * 4 / 1e6,
                (long long)params, mb);
  std::printf("  latency    %.3f ms (batch 1, median of 30)\n  throughput %.0f img/s (batch %lld, %d threads)\n",
              latency, throughput, (long long)batch, kernels::num_threads());
}

}  // namespace

int cmd_eval(const Args& a_in) {
  a_in.reject_unknown();
  if (!a_in.has("--weights")) throw UsageError("--weights FILE.safetensors is required");
  const std::string weights = a_in.get("--weights", "");
  // Defaults from the checkpoint's metadata (what `lowbit train` wrote).
  const SafetensorsFile file = load_safetensors(weights);
  const Args a = with_checkpoint_defaults(a_in, file.metadata);
  const bool json = a.has("--json"), quiet = a.has("--quiet") || json;
  if (quant::engine::is_int8_file(file.metadata)) {
    if (a.has("--compare-sim"))
      throw UsageError("--compare-sim takes the quantized checkpoint (lowbit quantize/qat --out), not the int8 file");
    return eval_int8(a, weights, file, quiet, json);
  }
  if (!a.has("--model")) throw UsageError(weights + " does not say which model it holds; pass --model");

  const int64_t batch = a.get_int("--batch");
  if (batch < 1) throw UsageError("--batch must be at least 1");
  const int workers = (int)a.get_int("--workers");
  if (workers < 0) throw UsageError("--workers must be 0 or more");
  DataFlags df = data_flags(a);
  data::DatasetPtr ds = open_split(df, false, (uint64_t)a.get_int("--seed"));
  data::DataLoader loader(ds, {.batch_size = batch, .num_workers = workers}, eval_transform(df));
  const EvalModel e = load_eval_model(a, weights, file, *ds);
  if (a.has("--compare-sim"))
    return compare_sim(static_cast<quant::QuantModel&>(*e.model), loader, a.get("--model", ""), df.dataset, quiet, json);

  EvalResult r = evaluate(*e.model, loader, !quiet, "eval");
  // Latency: batch-1 forward, median of 30 after 5 warm-up runs.
  e.model->eval();
  NoGradGuard ng;
  Tensor one = loader.make_batch(0, 0).images.slice(0, 0, 1).contiguous();
  const double latency = median_ms([&] { e.model->forward(one); });
  struct stat st {};
  const double mb = stat(weights.c_str(), &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
  print_eval(a, e, r, df.dataset, latency, mb, batch);
  return 0;
}

}  // namespace lowbit::cli
