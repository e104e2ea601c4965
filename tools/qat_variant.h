// The QAT training variant (lowbit qat; lowbit distill with --qconfig):
// prepare_qat around train's loop, the schedule switches per epoch, frozen
// and optionally converted to the int8 engine after the last epoch.
#pragma once
#include <cstdio>
#include <string>

#include "quant/checkpoint.h"
#include "quant/quantize.h"
#include "tools/common.h"

namespace lowbit::cli {

class QatVariant : public TrainVariant {
 public:
  // weights_flag: the float checkpoint to start from ("--weights"; distill: "--init", optional).
  explicit QatVariant(const Args& a, std::string weights_flag = "--weights") : a_(a), weights_flag_(std::move(weights_flag)) {
    flags = {"--weights", "--quantizer", "--lsq-init", "--freeze-bn-after", "--freeze-observers-after", "--quantize-activations-after",
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

  nn::ModulePtr build(const nn::ModulePtr& float_model, const nn::ModelConfig&, bool resuming) override {
    if (!resuming && a_.has(weights_flag_)) {
      const std::string w = a_.get(weights_flag_, "");
      const nn::Metadata md = nn::load_checkpoint(w, *float_model, nullptr, true);
      if (md.count("model") && md.at("model") != a_.get("--model", ""))
        throw UsageError(w + " holds a " + md.at("model") + ", not a " + a_.get("--model", ""));
    }
    return prepare(float_model);
  }
  // prepare_qat with the flags' qconfig (the float model already holds its weights).
  nn::ModulePtr prepare(const nn::ModulePtr& float_model) {
    qc_ = qconfig_from_flags(a_, float_model.get(), true);
    return quant::prepare_qat(float_model, qc_);
  }
  const quant::QConfig& qconfig() const { return qc_; }

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
  std::vector<quant::CollapsedStep> collapses(nn::Module& model) override { return quant::collapsed_steps(model); }
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
  std::string weights_flag_;
  quant::QConfig qc_;
  int64_t freeze_bn_after_, freeze_observers_after_, activations_after_;
  bool observers_on_ = true;
};


}  // namespace lowbit::cli
