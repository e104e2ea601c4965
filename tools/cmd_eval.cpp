// `lowbit eval`: accuracy, loss, size and latency of a float checkpoint.
// The model's configuration (width, small-input, activation, channels,
// classes) is read from the checkpoint's metadata when present; flags
// override.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "nn/checkpoint.h"
#include "quant/checkpoint.h"
#include "tools/common.h"

namespace lowbit::cli {

int cmd_eval(const Args& a_in) {
  std::vector<std::string> known{"--weights", "--batch", "--quiet"};
  for (auto& n : data_flag_names()) known.push_back(n);
  for (auto& n : model_flag_names()) known.push_back(n);
  a_in.reject_unknown(known);
  if (!a_in.has("--weights")) throw UsageError("--weights FILE.safetensors is required");
  const std::string weights = a_in.get("--weights", "");
  // Defaults from the checkpoint's metadata (what `lowbit train` wrote).
  const SafetensorsFile file = load_safetensors(weights);
  const Args a = with_checkpoint_defaults(a_in, file.metadata);
  if (!a.has("--model")) throw UsageError(weights + " does not say which model it holds; pass --model");
  const bool json = a.has("--json"), quiet = a.has("--quiet") || json;

  const int64_t batch = a.get_int("--batch", 256);
  if (batch < 1) throw UsageError("--batch must be at least 1");
  const int workers = (int)a.get_int("--workers", 2);
  if (workers < 0) throw UsageError("--workers must be 0 or more");
  DataFlags df = data_flags(a);
  data::DatasetPtr ds = open_split(df, false, (uint64_t)a.get_int("--seed", 0));
  data::DataLoader loader(ds, {.batch_size = batch, .num_workers = workers}, eval_transform(df));
  nn::ModelConfig cfg = model_config(a, *ds);
  nn::check_model_name(a.get("--model", ""));
  check_checkpoint_model(weights, a.get("--model", ""), cfg);  // "F holds a resnet20 (…), not a resnet32 (…)"
  nn::ModulePtr model = nn::create_model(a.get("--model", ""), cfg);
  // A quantized checkpoint (lowbit quantize / qat) evaluates in simulation.
  const auto qinfo = quant::quant_info(file.metadata, weights);
  quant::ModelSize qsize;
  if (qinfo) {
    model = quant::load_quantized(weights, model);
    qsize = quant::model_size(*model);
  } else {
    nn::load_checkpoint(weights, *model, nullptr, true);
  }

  EvalResult r = evaluate(*model, loader, !quiet, "eval");

  // Latency: batch-1 forward, median of 30 after 5 warm-up runs.
  model->eval();
  NoGradGuard ng;
  Tensor one = loader.make_batch(0, 0).images.slice(0, 0, 1).contiguous();
  std::vector<double> ms;
  for (int i = 0; i < 35; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    model->forward(one);
    auto t1 = std::chrono::steady_clock::now();
    if (i >= 5) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double latency = ms[ms.size() / 2];
  struct stat st {};
  const double mb = stat(weights.c_str(), &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
  const double throughput = r.seconds > 0 ? (double)r.count / r.seconds : 0.0;
  std::string qjson;
  if (qinfo) {
    char b[256];
    std::snprintf(b, sizeof b, ", \"quantization\": \"%s\", \"qconfig\": \"%s\", \"float_mb\": %.4f, \"quantized_mb\": %.4f",
                  qinfo->qat ? "qat" : "ptq", qinfo->qconfig.name.c_str(), (double)qsize.float_bytes / 1e6,
                  (double)qsize.quantized_bytes / 1e6);
    qjson = b;
  }
  if (json) {
    std::printf("{\"model\": \"%s\", \"accuracy\": %.6f, \"top5\": %.6f, \"loss\": %.6f, \"images\": %lld, "
                "\"file_mb\": %.3f, \"parameters\": %lld, \"latency_ms\": %.3f, \"throughput\": %.1f, \"threads\": %d%s}\n",
                a.get("--model", "").c_str(), r.top1, r.top5, r.loss, (long long)r.count, mb,
                (long long)model->num_parameters(), latency, throughput, kernels::num_threads(), qjson.c_str());
  } else {
    std::printf("%s on %s test (%lld images)\n", a.get("--model", "").c_str(), df.dataset.c_str(), (long long)r.count);
    std::printf("  accuracy   %.4f (top-5 %.4f)\n  loss       %.4f\n", r.top1, r.top5, r.loss);
    if (qinfo)
      std::printf("  quantized  %s (%s, simulated): %.3f MB quantized vs %.3f MB float\n", qinfo->qconfig.name.c_str(),
                  qinfo->qat ? "qat" : "ptq", (double)qsize.quantized_bytes / 1e6, (double)qsize.float_bytes / 1e6);
    std::printf("  size       %.2f MB of f32 parameters (%lld); file %.2f MB\n",
                (double)model->num_parameters() * 4 / 1e6, (long long)model->num_parameters(), mb);
    std::printf("  latency    %.3f ms (batch 1, median of 30)\n  throughput %.0f img/s (batch %lld, %d threads)\n",
                latency, throughput, (long long)loader.options().batch_size, kernels::num_threads());
  }
  return 0;
}

}  // namespace lowbit::cli
