// `lowbit distill`: teacher–student training (distill/distiller.h) on train's
// loop — schedule, progress, per-epoch validation, .best, exact resume — with
// a frozen teacher loaded from a checkpoint and any student: float (from
// scratch or --init), or low-bit with --qconfig (prepare_qat after --init, as
// `lowbit qat`; its output converts with --int8-out like any QAT model).
//
// The teacher's model configuration comes from its checkpoint's metadata;
// --teacher-model must name the model it holds. Defaults as train (lr 0.1),
// or as qat (lr 0.01) with --qconfig.
#include <cstdio>

#include "core/generator.h"
#include "core/safetensors.h"
#include "distill/distiller.h"
#include "quant/checkpoint.h"
#include "tools/common.h"
#include "tools/qat_variant.h"

namespace lowbit::cli {

namespace {

std::vector<distill::TapPair> tap_pairs(const Args& a, const char* flag) {
  if (!a.has(flag)) return {};
  try {
    return distill::parse_tap_pairs(a.get(flag, ""), flag);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

distill::DistillConfig distill_config(const Args& a) {
  distill::DistillConfig c;
  c.temperature = (float)a.get_double("--temperature");
  c.alpha = (float)a.get_double("--alpha");
  c.label_smoothing = (float)a.get_double("--label-smoothing");
  c.hint_weight = (float)a.get_double("--hint-weight");
  c.attention_weight = (float)a.get_double("--attention-weight");
  c.attention_p = (float)a.get_double("--attention-p");
  c.hints = tap_pairs(a, "--hint");
  c.attention = tap_pairs(a, "--attention");
  if (!(c.temperature > 0)) throw UsageError("--temperature must be positive, got " + a.get("--temperature", ""));
  if (!(c.alpha >= 0 && c.alpha <= 1)) throw UsageError("--alpha must be in [0, 1], got " + a.get("--alpha", ""));
  try {
    c.validate();
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  return c;
}

class DistillVariant final : public TrainVariant {
 public:
  explicit DistillVariant(const Args& a) : a_(a), cfg_(distill_config(a)) {
    loads_init = true;
    if (a.has("--qconfig") || a.has("--quantizer")) {
      qat_ = std::make_unique<QatVariant>(a, "--init");
    }
    teacher_path_ = a.get("--teacher", "");
    teacher_model_ = a.get("--teacher-model", "");
  }

  nn::ModulePtr build(const nn::ModulePtr& float_model, const nn::ModelConfig& student_cfg, bool resuming) override {
    // The teacher, built without touching the default generator: the student
    // draws exactly the random numbers plain training would.
    const SafetensorsFile tf = load_safetensors(teacher_path_);
    if (quant::quant_info(tf.metadata, teacher_path_))
      throw UsageError("--teacher " + teacher_path_ + " is quantized; the teacher must be a float checkpoint");
    // The student's data shapes; the rest as the teacher's file describes it.
    nn::ModelConfig base = student_cfg;
    base.width_mult = 1.0f, base.small_input = false, base.relu6 = true;
    const nn::ModelConfig tc = nn::ModelConfig::from_metadata(tf.metadata, base);
    if (tc.num_classes != student_cfg.num_classes)
      throw UsageError("the teacher " + teacher_path_ + " classifies " + std::to_string(tc.num_classes) +
                       " classes, the student " + std::to_string(student_cfg.num_classes) +
                       " (teacher and student must share the labels)");
    check_checkpoint_model(teacher_path_, teacher_model_, tc);
    const uint64_t counter = default_generator().counter();
    nn::ModulePtr teacher = create_model_that_fits(teacher_model_, tc, 1);
    default_generator().set_counter(counter);
    nn::load_checkpoint(teacher_path_, *teacher, nullptr, true);

    if (!resuming && a_.has("--init")) {
      check_checkpoint_model(a_.get("--init", ""), a_.get("--model", ""), student_cfg);
      nn::load_checkpoint(a_.get("--init", ""), *float_model, nullptr, true);
    }
    d_ = std::make_unique<distill::Distiller>(teacher, cfg_);
    kd_ = std::make_unique<distill::DistillLoss>(*d_);
    try {
      d_->prepare(*float_model, Tensor::zeros({2, student_cfg.in_channels, student_cfg.input_h, student_cfg.input_w}));
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
    return qat_ ? qat_->prepare(float_model, student_cfg) : float_model;
  }

  std::vector<nn::TrainerCallback*> callbacks() override {
    std::vector<nn::TrainerCallback*> c{kd_.get()};
    if (qat_) {
      qat_->train_data = train_data;
      qat_->quiet = quiet;
      for (nn::TrainerCallback* q : qat_->callbacks()) c.push_back(q);
      c.push_back(qat_.get());  // --int8-out after the schedule froze the model
    }
    return c;
  }

  void check_resume(const nn::Metadata& md, const std::string& path) override {
    if (!qat_) LOWBIT_CHECK(!quant::quant_info(md, path), path, " holds a quantized student; pass its --qconfig");
  }

  void on_train_begin(nn::Module&, const BatchSource& val) override {
    teacher_acc_ = evaluate(*d_->teacher(), val, !quiet, "teacher").top1;
    if (!quiet)
      std::fprintf(stderr, "teacher %s (%s): val accuracy %.4f; %s\n", teacher_model_.c_str(), teacher_path_.c_str(),
                   teacher_acc_, cfg_.str().c_str());
  }

  nn::Metadata metadata(bool) override {
    char b[32];
    std::snprintf(b, sizeof b, "%.6f", teacher_acc_);
    return {{"teacher", teacher_path_}, {"teacher_model", teacher_model_}, {"teacher_accuracy", b}};
  }
  void json_fields(nn::Module& model, Json& out) override {
    out["teacher_model"] = teacher_model_;
    out["teacher_accuracy"] = teacher_acc_;
    // The float settings as they were typed (0.9, not 0.8999999761581421).
    auto typed = [](float v) { return std::strtod(std::to_string(v).c_str(), nullptr); };
    out["temperature"] = typed(cfg_.temperature);
    out["alpha"] = typed(cfg_.alpha);
    if (qat_) qat_->json_fields(model, out);
  }

 private:
  Args a_;
  distill::DistillConfig cfg_;
  std::unique_ptr<QatVariant> qat_;
  std::unique_ptr<distill::Distiller> d_;
  std::unique_ptr<distill::DistillLoss> kd_;
  std::string teacher_path_, teacher_model_;
  double teacher_acc_ = 0;
};

}  // namespace

int cmd_distill(const Args& a_in) {
  Args a = a_in;
  // Refuse what can be refused before any data is read.
  if (!a.has("--teacher")) throw UsageError("--teacher T.safetensors is required (a float checkpoint)");
  if (!a.has("--teacher-model")) throw UsageError("--teacher-model M is required (the model the teacher file holds)");
  nn::check_model_name(a.get("--teacher-model", ""));
  {
    const std::string t = a.get("--teacher", "");
    if (quant::quant_info(load_safetensors(t).metadata, t))
      throw UsageError("--teacher " + t + " is quantized; the teacher must be a float checkpoint");
  }
  distill_config(a);
  const bool quantized = a.has("--qconfig") || a.has("--quantizer");
  if (quantized) qconfig_from_flags(a, nullptr, true);
  if (a.has("--resume")) {
    const std::string r = a.get("--resume", "");
    a = with_checkpoint_defaults(a, load_safetensors(r).metadata);
  } else if (a.has("--init")) {
    const std::string w = a.get("--init", "");
    const SafetensorsFile file = load_safetensors(w);
    if (quant::quant_info(file.metadata, w)) throw UsageError(w + " is already quantized; --init takes a float checkpoint");
    a = with_checkpoint_defaults(a, file.metadata);
  }
  DistillVariant v(a);
  return run_training(a, &v);
}

}  // namespace lowbit::cli
