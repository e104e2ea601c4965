// The QAT training variant (lowbit qat; lowbit distill with --qconfig): the
// flags into prepare_qat and quant::QatSchedule (the schedule switches per
// epoch, frozen after the last), and --int8-out after that.
#pragma once
#include <cstdio>
#include <string>

#include "quant/checkpoint.h"
#include "quant/qat_schedule.h"
#include "quant/quantize.h"
#include "tools/common.h"
#include "core/json.h"

namespace lowbit::cli {

class QatVariant : public TrainVariant {
 public:
  // weights_flag: the float checkpoint to start from ("--weights"; distill: "--init", optional).
  explicit QatVariant(const Args& a, std::string weights_flag = "--weights") : a_(a), weights_flag_(std::move(weights_flag)) {
    if (a.has("--int8-out")) check_output_path("--int8-out", a.get("--int8-out", ""));
    const int64_t epochs = a.get_int("--epochs");
    if (epochs < 1) throw UsageError("--epochs must be at least 1");
    sc_.freeze_bn_after = a.get_int("--freeze-bn-after", epochs);
    sc_.freeze_observers_after = a.get_int("--freeze-observers-after", epochs);
    if (sc_.freeze_bn_after < 0) throw UsageError("--freeze-bn-after must be 0 or more");
    if (sc_.freeze_observers_after < 0) throw UsageError("--freeze-observers-after must be 0 or more");
    sc_.bn_reestimate_batches = a.get_int("--bn-reestimate", sc_.bn_reestimate_batches);
    if (sc_.bn_reestimate_batches < 0) throw UsageError("--bn-reestimate must be 0 (off) or a number of batches");
    sc_.quantize_activations_after = a.get_int("--quantize-activations-after");
    if (sc_.quantize_activations_after < 0 || sc_.quantize_activations_after >= epochs)
      throw UsageError("--quantize-activations-after must be between 0 and --epochs − 1");
  }

  nn::ModulePtr build(const nn::ModulePtr& float_model, const nn::ModelConfig& cfg, bool resuming) override {
    if (!resuming && a_.has(weights_flag_)) {
      const std::string w = a_.get(weights_flag_, "");
      const nn::Metadata md = nn::load_checkpoint(w, *float_model, nullptr, true);
      if (md.count("model") && md.at("model") != a_.get("--model", ""))
        throw UsageError(w + " holds a " + md.at("model") + ", not a " + a_.get("--model", ""));
    }
    return prepare(float_model, cfg);
  }
  // prepare_qat with the flags' qconfig (the float model already holds its weights).
  nn::ModulePtr prepare(const nn::ModulePtr& float_model, const nn::ModelConfig& cfg) {
    cfg_ = cfg;
    quant::QConfig qc = qconfig_from_flags(a_, float_model.get(), true);
    schedule_ = std::make_unique<quant::QatSchedule>(qc, sc_);
    return quant::prepare_qat(float_model, qc);
  }
  const quant::QConfig& qconfig() const { return schedule_->qconfig(); }
  std::vector<nn::TrainerCallback*> callbacks() override { return {schedule_.get()}; }

  // After the schedule froze the model: --int8-out.
  bool finish(nn::Module& model, const BatchSource& train) override {
    (void)train;
    if (!a_.has("--int8-out")) return false;
    nn::Metadata md = cfg_.to_metadata();
    md["model"] = a_.get("--model", "");
    md["quantization"] = "qat";
    md["qconfig"] = quant::qconfig_to_string(qconfig());
    const int64_t bytes = write_int8(a_.get("--int8-out", ""), static_cast<quant::QuantModel&>(model), *train_data,
                                     data_flags(a_), md);
    if (!a_.has("--json"))
      std::fprintf(stderr, "int8 model: %s (%.3f MB)\n", a_.get("--int8-out", "").c_str(), (double)bytes / 1e6);
    return false;
  }

  void json_fields(nn::Module& model, Json& out) override {
    const quant::ModelSize s = quant::model_size(model);
    const quant::BnReestimation& re = schedule_->bn_reestimation();
    out["qconfig"] = qconfig().name;
    out["quantizer"] = quant::quantizer_name(qconfig().layer.activation.quantizer);
    out["float_mb"] = (double)s.float_bytes / 1e6;
    out["quantized_mb"] = (double)s.quantized_bytes / 1e6;
    out["bn_reestimation"] = re.batches == 0 ? "off" : re.kept ? "kept" : "discarded";
  }

 private:
  Args a_;
  std::string weights_flag_;
  nn::ModelConfig cfg_;
  quant::QatScheduleConfig sc_;
  std::unique_ptr<quant::QatSchedule> schedule_;
};


}  // namespace lowbit::cli
