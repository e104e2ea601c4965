// `lowbit quantize`: post-training static quantization of a float
// checkpoint — fuse (BN folded), observe --calib training images, freeze —
// and the quantized model's accuracy in simulation next to the float one.
//
// Calibration images come from the training split (seeded sample, eval
// transforms): calibrating on the test images would leak them into the
// reported accuracy.
//
// --dynamic: dynamic quantization (quant/dynamic.h) of the Linear layers
// (--layers picks by type or path): no calibration; reports accuracy, size and
// batch-1 / batch-32 latency of the float and the dynamic model side by side.
#include <cstdio>
#include <set>

#include "core/autograd.h"
#include "core/safetensors.h"
#include "core/strings.h"
#include "nn/checkpoint.h"
#include "quant/checkpoint.h"
#include "quant/convert.h"
#include "quant/dynamic.h"
#include "tools/common.h"
#include "core/json.h"
#include "tools/progress.h"

namespace lowbit::cli {

namespace {
// How the quantized files describe their model: ModelConfig's keys, the
// model's name and its data set (the float checkpoint's, as the flags default to).
nn::Metadata model_metadata(const Args& a, const nn::ModelConfig& mc) {
  nn::Metadata md = mc.to_metadata();
  md["model"] = a.get("--model", "");
  md["dataset"] = a.get("--dataset");
  return md;
}
// --weights F (a float checkpoint) and --out: the flags with F's model
// description as defaults.
Args open_float_weights(const Args& a_in) {
  if (!a_in.has("--weights")) throw UsageError("--weights FLOAT.safetensors is required");
  if (!a_in.has("--out")) throw UsageError("--out Q.safetensors is required");
  const std::string weights = a_in.get("--weights", "");
  const SafetensorsFile file = load_safetensors(weights);
  if (quant::quant_info(file.metadata, weights))
    throw UsageError(weights + " is already quantized; pass the float checkpoint");
  Args a = with_checkpoint_defaults(a_in, file.metadata);
  if (!a.has("--model")) throw UsageError(weights + " does not say which model it holds; pass --model");
  return a;
}

std::set<std::string> split_commas(const std::string& s) {
  std::set<std::string> out;
  for (const std::string& item : split_all(s, ',')) {
    if (item.empty()) throw UsageError("--layers takes module types or paths separated by commas, got '" + s + "'");
    out.insert(item);
  }
  return out;
}

struct DynamicSummary {
  std::string model, config;
  int layers;
  EvalResult fr, qr;
  int64_t float_bytes, qbytes;
  double f1, f32, q1, q32;  // batch-1 and batch-32 latency, float and dynamic (ms)
  std::string out, int8_out;
  int64_t int8_bytes;
};
void print_dynamic(bool json, const DynamicSummary& d) {
  const double fmb = (double)d.float_bytes / 1e6, qmb = (double)d.qbytes / 1e6;
  if (json) {
    const Json j = {{"model", d.model},
                    {"qconfig", d.config},
                    {"layers", d.layers},
                    {"float_accuracy", d.fr.top1},
                    {"accuracy", d.qr.top1},
                    {"float_loss", d.fr.loss},
                    {"loss", d.qr.loss},
                    {"float_mb", fmb},
                    {"quantized_mb", qmb},
                    {"float_ms_b1", d.f1},
                    {"float_ms_b32", d.f32},
                    {"dynamic_ms_b1", d.q1},
                    {"dynamic_ms_b32", d.q32},
                    {"threads", kernels::num_threads()},
                    {"images", d.qr.count},
                    {"out", d.out},
                    {"int8_out", d.int8_out},
                    {"int8_mb", (double)d.int8_bytes / 1e6}};
    std::printf("%s\n", json_line(j).c_str());
    return;
  }
  std::printf("%s, %s: %d Linear layer%s quantized (s8 weights, u8 activations from each batch's range)\n",
              d.model.c_str(), d.config.c_str(), d.layers, d.layers == 1 ? "" : "s");
  std::printf("  float      accuracy %.4f  loss %.4f  %.3f MB  latency %.3f ms (batch 1)  %.3f ms (batch 32)\n",
              d.fr.top1, d.fr.loss, fmb, d.f1, d.f32);
  std::printf("  dynamic    accuracy %.4f  loss %.4f  %.3f MB  latency %.3f ms (batch 1)  %.3f ms (batch 32)\n",
              d.qr.top1, d.qr.loss, qmb, d.q1, d.q32);
  std::printf("  %.2fx smaller; %.2fx / %.2fx the float speed at batch 1 / 32 (%d threads, median of 30)\n",
              fmb / qmb, d.f1 / d.q1, d.f32 / d.q32, kernels::num_threads());
  std::printf("  wrote %s\n", d.out.c_str());
  if (!d.int8_out.empty()) std::printf("  wrote %s (int8 engine, %.3f MB)\n", d.int8_out.c_str(), (double)d.int8_bytes / 1e6);
}

int quantize_dynamic_cmd(const Args& a_in) {
  for (const char* f : {"--calib", "--qconfig", "--observer"})
    if (a_in.has(f))
      throw UsageError(std::string("--dynamic quantizes each batch's activations from that batch's own range; ") + f +
                       " (static calibration) contradicts it");
  a_in.reject_unknown();
  if (a_in.has("--per-channel") && a_in.has("--per-tensor"))
    throw UsageError("--per-channel and --per-tensor contradict each other");
  const Args a = open_float_weights(a_in);
  const std::string weights = a.get("--weights", ""), out = a.get("--out", "");
  const int64_t batch = a.get_int("--batch");
  if (batch < 1) throw UsageError("--batch must be at least 1");
  const bool json = a.has("--json"), quiet = a.has("--quiet") || json;
  const std::set<std::string> targets = split_commas(a.get("--layers"));
  check_distinct_files(a, false);
  check_output_path("--out", out);
  const std::string int8_out = a.get("--int8-out", "");
  if (a.has("--int8-out")) check_output_path("--int8-out", int8_out);
  const quant::DynamicConfig cfg{a.has("--per-channel"), a.has("--reduce-range")};

  DataFlags df = data_flags(a);
  data::DatasetPtr test = open_split(df, false, (uint64_t)a.get_int("--seed"));
  data::DataLoader loader(test, {.batch_size = batch, .num_workers = (int)a.get_int("--workers")},
                          eval_transform(df));
  const std::string model_name = a.get("--model", "");
  const nn::ModelConfig mc = model_config(a, *test);
  check_checkpoint_model(weights, model_name, mc);
  // The float model and its dynamic copy; the copy is quantized (and converted)
  // first, so a refusal comes before any work.
  nn::ModulePtr fmodel = nn::create_model(model_name, mc), model = nn::create_model(model_name, mc);
  nn::load_checkpoint(weights, *fmodel, nullptr, true);
  nn::load_checkpoint(weights, *model, nullptr, true);
  fmodel->eval();
  model->eval();
  const int64_t float_bytes = fmodel->num_parameters() * 4;
  int layers = 0;
  try {
    layers = quant::quantize_dynamic(*model, targets, cfg);
  } catch (const Error& e) {
    throw UsageError(std::string(e.what()) + "; dynamic quantization needs Linear layers (" + model_name + ")");
  }
  quant::engine::Model im;
  if (!int8_out.empty())
    im = quant::convert_dynamic(*model, loader.make_batch(0, 0).images.slice(0, 0, 2).contiguous());

  // Latency of batch 1 and 32 (the first test images), median of 30.
  data::DataLoader lat_loader(test, {.batch_size = 32}, eval_transform(df));
  auto latencies = [&](nn::Module& m) {
    NoGradGuard ng;
    const Tensor b32 = lat_loader.make_batch(0, 0).images;  // 32 images (fewer only if the test set is smaller)
    const Tensor b1 = b32.slice(0, 0, 1).contiguous();
    return std::pair{median_ms([&] { m.forward(b1); }), median_ms([&] { m.forward(b32); })};
  };
  const EvalResult fr = evaluate(*fmodel, loader, !quiet, "float");
  const auto [f1, f32] = latencies(*fmodel);
  const EvalResult qr = evaluate(*model, loader, !quiet, "dynamic");
  const auto [q1, q32] = latencies(*model);
  const int64_t qbytes = quant::dynamic_model_bytes(*model);

  nn::Metadata md = model_metadata(a, mc);
  for (auto& [k, v] : quant::dynamic_metadata(*model, cfg)) md[k] = v;
  md["float_accuracy"] = std::to_string(fr.top1);
  md["accuracy"] = std::to_string(qr.top1);
  nn::save_checkpoint(out, *model, nullptr, md);
  int64_t int8_bytes = 0;
  if (!int8_out.empty()) {
    nn::Metadata info = model_metadata(a, mc);
    info["quantization"] = "dynamic";
    info["qconfig"] = cfg.str();
    int8_bytes = save_int8(int8_out, std::move(im), *test, df, info);
  }
  print_dynamic(a.has("--json"), {model_name, cfg.str(), layers, fr, qr, float_bytes, qbytes, f1, f32, q1, q32, out, int8_out,
                                  int8_bytes});
  return 0;
}

}  // namespace

int cmd_quantize(const Args& a_in) {
  if (a_in.has("--dynamic")) return quantize_dynamic_cmd(a_in);
  a_in.reject_unknown();
  const Args a = open_float_weights(a_in);
  const std::string weights = a.get("--weights", ""), out = a.get("--out", "");
  const int64_t calib = a.get_int("--calib"), batch = a.get_int("--batch");
  if (calib < 1) throw UsageError("--calib must be at least 1 (images from the training split)");
  if (batch < 1) throw UsageError("--batch must be at least 1");
  const bool json = a.has("--json"), quiet = a.has("--quiet") || json;
  qconfig_from_flags(a, nullptr, false);  // refuse bad flags before reading any data
  check_distinct_files(a, false);
  check_output_path("--out", out);
  const std::string int8_out = a.get("--int8-out", "");
  if (a.has("--int8-out")) check_output_path("--int8-out", int8_out);
  const uint64_t seed = (uint64_t)a.get_int("--seed");
  const int workers = (int)a.get_int("--workers");

  DataFlags df = data_flags(a);
  data::DatasetPtr test = open_split(df, false, seed);
  DataFlags cf = df;
  cf.limit = 0;
  data::DatasetPtr train = open_split(cf, true, seed);
  if (calib < train->size()) train = data::limit(train, calib, seed);
  data::DataLoader test_loader(test, {.batch_size = batch, .num_workers = workers}, eval_transform(df));
  data::DataLoader calib_loader(train, {.batch_size = std::min<int64_t>(batch, 64), .num_workers = workers},
                                eval_transform(df));

  const std::string model_name = a.get("--model", "");
  const nn::ModelConfig mc = model_config(a, *test);
  check_checkpoint_model(weights, model_name, mc);
  nn::ModulePtr model = nn::create_model(model_name, mc);
  nn::load_checkpoint(weights, *model, nullptr, true);
  const EvalResult fr = evaluate(*model, test_loader, !quiet, "float");

  const quant::QConfig qc = qconfig_from_flags(a, model.get(), false);
  auto q = quant::prepare(model, qc);
  {
    Progress bar("calibrate", train->size(), "img", quiet);
    quant::calibrate(*q, calib_loader, [&](int64_t done, int64_t) { bar.update(done, ""); });
  }
  quant::freeze(*q);
  const EvalResult qr = evaluate(*q, test_loader, !quiet, "quantized");
  const quant::ModelSize size = quant::model_size(*q);

  nn::Metadata md = model_metadata(a, mc);
  for (auto& [k, v] : quant::quant_metadata({false, qc, true})) md[k] = v;
  md["float_accuracy"] = std::to_string(fr.top1);
  md["accuracy"] = std::to_string(qr.top1);
  md["calib"] = std::to_string(train->size());
  nn::save_checkpoint(out, *q, nullptr, md);
  int64_t int8_bytes = 0;
  if (!int8_out.empty()) {
    nn::Metadata im = model_metadata(a, mc);
    im["quantization"] = "ptq";
    im["qconfig"] = quant::qconfig_to_string(qc);
    int8_bytes = write_int8(int8_out, *q, *train, df, im);
  }

  const double fmb = (double)size.float_bytes / 1e6, qmb = (double)size.quantized_bytes / 1e6;
  if (json) {
    const Json j = {{"model", model_name}, {"qconfig", qc.name},
                    {"observer", quant::observer_name(qc.layer.activation.observer)}, {"calib", train->size()},
                    {"float_accuracy", fr.top1}, {"accuracy", qr.top1},
                    {"float_loss", fr.loss}, {"loss", qr.loss}, {"float_mb", fmb},
                    {"quantized_mb", qmb}, {"images", qr.count}, {"out", out}, {"int8_out", int8_out},
                    {"int8_mb", (double)int8_bytes / 1e6}};
    std::printf("%s\n", json_line(j).c_str());
  } else {
    std::printf("%s, %s (weights %s; activations %s), %lld calibration images\n", model_name.c_str(), qc.name.c_str(),
                qc.layer.weight.str().c_str(), qc.layer.activation.str().c_str(), (long long)train->size());
    std::printf("  float      accuracy %.4f  loss %.4f  %.3f MB\n", fr.top1, fr.loss, fmb);
    std::printf("  quantized  accuracy %.4f  loss %.4f  %.3f MB (simulated; %.2fx smaller)\n", qr.top1, qr.loss, qmb,
                fmb / qmb);
    std::printf("  wrote %s\n", out.c_str());
    if (!int8_out.empty()) std::printf("  wrote %s (int8 engine, %.3f MB)\n", int8_out.c_str(), (double)int8_bytes / 1e6);
  }
  return 0;
}

}  // namespace lowbit::cli
