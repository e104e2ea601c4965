// `lowbit qat`: quantization-aware training from a float checkpoint — `lowbit
// train`'s loop (schedule, progress, per-epoch validation, .best, exact
// resume) around quant::prepare_qat, frozen after the last epoch.
//
// Defaults differ from train where fine-tuning wants it: --lr 0.01, --epochs 1.
// --freeze-bn-after E: after E epochs BN uses its running statistics;
// --freeze-observers-after E: from then on the STE quantizers keep their
// scales (LSQ steps keep learning); --quantize-activations-after E: weights
// are fake-quantized from the start, activations after E epochs (their
// observers watch meanwhile). Validation runs with observers paused, so it
// never moves a scale.
#include <cstdio>

#include "core/safetensors.h"
#include "quant/checkpoint.h"
#include "tools/common.h"

namespace lowbit::cli {

namespace {

class QatVariant final : public TrainVariant {
 public:
  explicit QatVariant(const Args& a) : a_(a) {
    flags = {"--weights", "--quantizer", "--freeze-bn-after", "--freeze-observers-after", "--quantize-activations-after",
             "--int8-out"};
    if (a.has("--int8-out")) check_output_path("--int8-out", a.get("--int8-out", ""));
    for (auto& n : qconfig_flag_names()) flags.push_back(n);
    const int64_t epochs = a.get_int("--epochs", 1);
    freeze_bn_after_ = a.get_int("--freeze-bn-after", epochs);
    freeze_observers_after_ = a.get_int("--freeze-observers-after", epochs);
    if (freeze_bn_after_ < 0) throw UsageError("--freeze-bn-after must be 0 or more");
    if (freeze_observers_after_ < 0) throw UsageError("--freeze-observers-after must be 0 or more");
    activations_after_ = a.get_int("--quantize-activations-after", 0);
    if (activations_after_ < 0 || activations_after_ >= epochs)
      throw UsageError("--quantize-activations-after must be between 0 and --epochs − 1");
  }

  nn::ModulePtr build(const nn::ModulePtr& float_model, bool resuming) override {
    if (!resuming) {
      const std::string w = a_.get("--weights", "");
      const nn::Metadata md = nn::load_checkpoint(w, *float_model, nullptr, true);
      if (md.count("model") && md.at("model") != a_.get("--model", ""))
        throw UsageError(w + " holds a " + md.at("model") + ", not a " + a_.get("--model", ""));
    }
    qc_ = qconfig_from_flags(a_, float_model.get(), true);
    return quant::prepare_qat(float_model, qc_);
  }

  void check_resume(const nn::Metadata& md, const std::string& path) override {
    const auto info = quant::quant_info(md, path);
    LOWBIT_CHECK(info && info->qat, path, " is not a lowbit qat checkpoint");
    LOWBIT_CHECK(!info->frozen, path, " is a finished (frozen) QAT model; nothing to resume");
    LOWBIT_CHECK(quant::qconfig_to_string(info->qconfig) == quant::qconfig_to_string(qc_), path,
                 " was trained with qconfig '", info->qconfig.name, "', the flags ask for '", qc_.name, "'");
  }

  void on_epoch(nn::Module& model, int64_t epoch) override {
    if (epoch >= freeze_bn_after_) quant::freeze_bn_stats(model);
    observers_on_ = epoch < freeze_observers_after_;
    quant::enable_observers(model, observers_on_);
    // Weights first, activations from epoch E on (their observers still watch).
    for (auto& [path, q] : quant::quantizers(model))
      if (path.find("weight_fake_quant") == std::string::npos) q->enable_fake_quant(epoch >= activations_after_);
  }
  void before_eval(nn::Module& model) override { quant::enable_observers(model, false); }
  void after_eval(nn::Module& model) override { quant::enable_observers(model, observers_on_); }

  nn::Metadata metadata(bool finished) override { return quant::quant_metadata({true, qc_, finished}); }
  void finish(nn::Module& model, const data::Dataset& train) override {
    quant::freeze(model);
    if (!a_.has("--int8-out")) return;
    nn::Metadata md{{"model", a_.get("--model", "")}, {"width", a_.get("--width", "1")},
                    {"small_input", a_.has("--small-input") ? "1" : "0"}, {"act", a_.get("--act", "relu6")},
                    {"quantization", "qat"}, {"qconfig", quant::qconfig_to_string(qc_)}};
    const int64_t bytes = write_int8(a_.get("--int8-out", ""), static_cast<quant::QuantModel&>(model), train,
                                     data_flags(a_), md);
    if (!a_.has("--json"))
      std::fprintf(stderr, "int8 model: %s (%.3f MB)\n", a_.get("--int8-out", "").c_str(), (double)bytes / 1e6);
  }

  std::string json_fields(nn::Module& model) override {
    const quant::ModelSize s = quant::model_size(model);
    char b[256];
    std::snprintf(b, sizeof b, ", \"qconfig\": \"%s\", \"quantizer\": \"%s\", \"float_mb\": %.4f, \"quantized_mb\": %.4f",
                  qc_.name.c_str(), quant::quantizer_name(qc_.layer.activation.quantizer), (double)s.float_bytes / 1e6,
                  (double)s.quantized_bytes / 1e6);
    return b;
  }

 private:
  Args a_;
  quant::QConfig qc_;
  int64_t freeze_bn_after_, freeze_observers_after_, activations_after_;
  bool observers_on_ = true;
};

}  // namespace

int cmd_qat(const Args& a_in) {
  Args a = a_in;
  if (!a.has("--lr")) a.flags["--lr"] = "0.01";
  // Everything that can be refused is refused before any data is read.
  if (a.has("--init")) throw UsageError("qat starts from --weights F (a float checkpoint); --init is train's");
  qconfig_from_flags(a, nullptr, true);
  // The checkpoint says which model it holds: the one resumed, else the float one.
  if (a.has("--resume")) {
    const std::string r = a.get("--resume", "");
    const SafetensorsFile file = load_safetensors(r);
    const auto info = quant::quant_info(file.metadata, r);
    if (!info || !info->qat) throw UsageError(r + " is not a lowbit qat checkpoint");
    if (info->frozen) throw UsageError(r + " is a finished (frozen) QAT model; nothing to resume");
    a = with_checkpoint_defaults(a, file.metadata);
  } else if (a.has("--weights")) {
    const std::string w = a.get("--weights", "");
    const SafetensorsFile file = load_safetensors(w);
    if (quant::quant_info(file.metadata, w)) throw UsageError(w + " is already quantized; pass the float checkpoint");
    a = with_checkpoint_defaults(a, file.metadata);
  } else {
    throw UsageError("--weights FLOAT.safetensors is required (the model to fine-tune)");
  }
  QatVariant v(a);
  return run_training(a, &v);
}

}  // namespace lowbit::cli
