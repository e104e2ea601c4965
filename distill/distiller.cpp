#include "distill/distiller.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "core/strings.h"
#include "quant/qmodules.h"

namespace lowbit::distill {

namespace {
class AdapterSet : public nn::Module {
 public:
  Tensor forward(const Tensor&) override { fail("the hint adapters have no forward of their own"); }
  std::string type_name() const override { return "HintAdapters"; }
  void add(const std::string& name, nn::ModulePtr m) { register_module(name, std::move(m)); }
};

std::vector<std::string> unique_names(const std::vector<TapPair>& a, const std::vector<TapPair>& b, bool teacher) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto* list : {&a, &b})
    for (const TapPair& p : *list) {
      const std::string& n = teacher ? p.teacher : p.student;
      if (seen.insert(n).second) out.push_back(n);
    }
  return out;
}
}  // namespace

TapPair parse_tap_pair(const std::string& s, const std::string& flag) {
  const size_t colon = s.find(':');
  LOWBIT_CHECK(colon != std::string::npos && colon > 0 && colon + 1 < s.size() && s.find(':', colon + 1) == std::string::npos,
               flag, " takes TEACHER_MODULE:STUDENT_MODULE (e.g. layer2:features.7), got '", s, "'");
  return {s.substr(0, colon), s.substr(colon + 1)};
}

std::vector<TapPair> parse_tap_pairs(const std::string& list, const std::string& flag) {
  std::vector<TapPair> out;
  for (const std::string& item : split_all(list, ',')) out.push_back(parse_tap_pair(item, flag));
  return out;
}

void DistillConfig::validate() const {
  LOWBIT_CHECK(temperature > 0 && std::isfinite(temperature), "temperature must be positive, got ", temperature);
  LOWBIT_CHECK(alpha >= 0 && alpha <= 1, "alpha must be in [0, 1], got ", alpha);
  LOWBIT_CHECK(label_smoothing >= 0 && label_smoothing < 1, "label smoothing must be in [0, 1), got ", label_smoothing);
  LOWBIT_CHECK(hint_weight >= 0 && std::isfinite(hint_weight), "hint weight must be 0 or more, got ", hint_weight);
  LOWBIT_CHECK(attention_weight >= 0 && std::isfinite(attention_weight), "attention weight must be 0 or more, got ",
               attention_weight);
  LOWBIT_CHECK(attention_p > 0 && std::isfinite(attention_p), "attention p must be positive, got ", attention_p);
}

std::string DistillConfig::str() const {
  char b[256];
  std::snprintf(b, sizeof b, "T=%g alpha=%g label_smoothing=%g hint_weight=%g attention_weight=%g attention_p=%g",
                temperature, alpha, label_smoothing, hint_weight, attention_weight, attention_p);
  std::string s = b;
  for (const auto& h : hints) s += " hint=" + h.teacher + ":" + h.student;
  for (const auto& a : attention) s += " attention=" + a.teacher + ":" + a.student;
  return s;
}

nn::Module& tap_root(nn::Module& student) {
  if (auto* q = dynamic_cast<quant::QuantModel*>(&student)) return *q->model();
  return student;
}

Distiller::Distiller(nn::ModulePtr teacher, DistillConfig cfg)
    : teacher_(std::move(teacher)), adapters_(std::make_shared<AdapterSet>()), cfg_(std::move(cfg)) {
  cfg_.validate();
  teacher_->eval();
  teacher_taps_ = unique_names(cfg_.hints, cfg_.attention, true);
  student_taps_ = unique_names(cfg_.hints, cfg_.attention, false);
}

void Distiller::prepare(nn::Module& student, const Tensor& sample) {
  LOWBIT_CHECK(!prepared_, "Distiller::prepare: called twice");
  LOWBIT_CHECK(sample.dim() == 4 && sample.shape()[0] >= 1, "Distiller::prepare: the sample must be N×C×H×W, got ",
               shape_str(sample.shape()));
  const bool was_training = student.is_training();
  student.eval();
  NoGradGuard ng;
  Tensor zt, zs;
  std::vector<Tensor> ft, fs;
  {
    nn::TapScope taps(*teacher_, teacher_taps_);  // Error naming the teacher's valid taps
    zt = teacher_->forward(sample);
    for (const TapPair& h : cfg_.hints) ft.push_back(taps.get(h.teacher));
    for (const TapPair& p : cfg_.attention)
      LOWBIT_CHECK(taps.get(p.teacher).dim() == 4, "attention ", p.teacher, ":", p.student, ": the teacher's ",
                   p.teacher, " gives ", shape_str(taps.get(p.teacher).shape()), ", not an N×C×H×W map");
  }
  {
    nn::TapScope taps(tap_root(student), student_taps_);
    zs = student.forward(sample);
    for (const TapPair& h : cfg_.hints) fs.push_back(taps.get(h.student));
    for (const TapPair& p : cfg_.attention)
      LOWBIT_CHECK(taps.get(p.student).dim() == 4, "attention ", p.teacher, ":", p.student, ": the student's ",
                   p.student, " gives ", shape_str(taps.get(p.student).shape()), ", not an N×C×H×W map");
  }
  student.train(was_training);
  LOWBIT_CHECK(zt.dim() == 2 && zs.dim() == 2 && zt.shape()[1] == zs.shape()[1], "the teacher gives ",
               zt.dim() == 2 ? zt.shape()[1] : -1, " classes, the student ", zs.dim() == 2 ? zs.shape()[1] : -1,
               " (both must classify the same labels)");
  auto& set = static_cast<AdapterSet&>(*adapters_);
  for (size_t i = 0; i < cfg_.hints.size(); ++i) {
    const TapPair& h = cfg_.hints[i];
    LOWBIT_CHECK(ft[i].dim() == 4 && fs[i].dim() == 4, "hint ", h.teacher, ":", h.student, ": features ",
                 shape_str(ft[i].shape()), " and ", shape_str(fs[i].shape()), " must both be N×C×H×W maps");
    set.add("hint" + std::to_string(i), std::make_shared<HintAdapter>(fs[i].shape()[1], ft[i].shape()[1]));
  }
  adapters_->train(was_training);
  prepared_ = true;
}

Distiller::Step Distiller::step(nn::Module& student, const Tensor& images, const Tensor& labels) {
  LOWBIT_CHECK(prepared_, "Distiller::step before prepare");
  Step out;
  std::vector<Tensor> ft, fs;
  {
    NoGradGuard ng;
    nn::TapScope taps(*teacher_, teacher_taps_);
    out.teacher_logits = teacher_->forward(images);
    for (const auto* list : {&cfg_.hints, &cfg_.attention})
      for (const TapPair& p : *list) ft.push_back(taps.get(p.teacher));
  }
  {
    nn::TapScope taps(tap_root(student), student_taps_);
    out.student_logits = student.forward(images);
    for (const auto* list : {&cfg_.hints, &cfg_.attention})
      for (const TapPair& p : *list) fs.push_back(taps.get(p.student));
  }
  out.loss = soft_target_loss(out.student_logits, out.teacher_logits, labels, cfg_.temperature, cfg_.alpha,
                              cfg_.label_smoothing);
  size_t i = 0;
  for (size_t h = 0; h < cfg_.hints.size(); ++h, ++i) {
    auto& adapter = static_cast<HintAdapter&>(*adapters_->child("hint" + std::to_string(h)));
    out.loss = out.loss + hint_loss(adapter, fs[i], ft[i]) * cfg_.hint_weight;
  }
  for (size_t a = 0; a < cfg_.attention.size(); ++a, ++i)
    out.loss = out.loss + attention_loss(fs[i], ft[i], cfg_.attention_p) * (cfg_.attention_weight / 2);
  return out;
}

std::optional<Tensor> DistillLoss::loss(nn::Module& student, const Batch& b, Tensor& logits) {
  Distiller::Step s = d_.step(student, b.images, b.labels);
  logits = s.student_logits;
  return s.loss;
}

nn::Module* DistillLoss::aux() { return d_.adapters()->named_children().empty() ? nullptr : d_.adapters().get(); }

nn::Metadata DistillLoss::metadata(bool) { return {{"distill", d_.config().str()}}; }

void DistillLoss::check_resume(const nn::Metadata& md, const std::string& path) {
  auto it = md.find("distill");
  LOWBIT_CHECK(it != md.end(), path, " is not a lowbit distill checkpoint");
  LOWBIT_CHECK(it->second == d_.config().str(), path, " was distilled with '", it->second, "', the flags ask for '",
               d_.config().str(), "'");
}

}  // namespace lowbit::distill
