// `lowbit analyze`: per-layer quantization error of a quantized checkpoint
// (quant/analyze.h) — weight and output SQNR in dB per quantized layer, on a
// batch of training images (--calib N, seeded; eval transforms).
#include <cmath>
#include <cstdio>

#include "core/safetensors.h"
#include "quant/analyze.h"
#include "quant/checkpoint.h"
#include "tools/common.h"
#include "core/json.h"

namespace lowbit::cli {

namespace {
std::string db(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}
}  // namespace

int cmd_analyze(const Args& a_in) {
  a_in.reject_unknown();
  if (!a_in.has("--weights")) throw UsageError("--weights Q.safetensors is required (a quantized checkpoint)");
  const std::string weights = a_in.get("--weights", "");
  const SafetensorsFile file = load_safetensors(weights);
  const auto info = quant::quant_info(file.metadata, weights);
  if (!info || info->dynamic)
    throw UsageError(weights + (info ? " is dynamically quantized" : " is a float checkpoint") +
                     "; analyze takes a static quantized one (lowbit quantize / qat --out)");
  if (!info->frozen) throw UsageError(weights + " is an unfinished QAT checkpoint; analyze its finished (last or .best) file");
  const Args a = with_checkpoint_defaults(a_in, file.metadata);
  if (!a.has("--model")) throw UsageError(weights + " does not say which model it holds; pass --model");
  const int64_t calib = a.get_int("--calib");
  if (calib < 1) throw UsageError("--calib must be at least 1");
  DataFlags df = data_flags(a);
  df.limit = 0;
  data::DatasetPtr train = open_split(df, true, (uint64_t)a.get_int("--seed"));
  if (calib < train->size()) train = data::limit(train, calib, (uint64_t)a.get_int("--seed"));
  data::DataLoader loader(train, {.batch_size = calib}, eval_transform(df));
  const std::string model_name = a.get("--model", "");
  nn::ModulePtr model = nn::create_model(model_name, model_config(a, *train));
  auto q = quant::load_quantized(weights, model);
  const auto layers = quant::analyze(*q, loader.make_batch(0, 0).images);
  if (a.has("--json")) {
    // SQNR: +inf (an exact layer) prints as null, -inf as -1e308.
    auto num = [](double v) { return std::isinf(v) ? (v > 0 ? Json(nullptr) : Json(-1e308)) : Json(v); };
    Json rows = Json::array();
    for (const auto& l : layers)
      rows.push_back({{"layer", l.path},
                      {"kind", l.kind},
                      {"weight_bits", l.weight_bits},
                      {"weight_sqnr_db", l.weight_bits ? num(l.weight_sqnr_db) : Json(nullptr)},
                      {"output_sqnr_db", num(l.output_sqnr_db)}});
    const Json j = {{"model", model_name}, {"qconfig", info->qconfig.name}, {"images", train->size()}, {"layers", rows}};
    std::printf("%s\n", json_line(j).c_str());
    return 0;
  }
  std::printf("%s, %s: quantization error per layer (SQNR, dB; higher is better) on %lld training images\n",
              model_name.c_str(), info->qconfig.name.c_str(), (long long)train->size());
  std::printf("  %-32s %-7s %5s %12s %12s\n", "layer", "kind", "bits", "weights dB", "output dB");
  for (const auto& l : layers)
    std::printf("  %-32s %-7s %5s %12s %12s\n", l.path.c_str(), l.kind.c_str(),
                l.weight_bits ? std::to_string(l.weight_bits).c_str() : "-",
                l.weight_bits ? db(l.weight_sqnr_db).c_str() : "-", db(l.output_sqnr_db).c_str());
  return 0;
}

}  // namespace lowbit::cli
