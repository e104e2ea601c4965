#include "quant/qmodules.h"

#include <algorithm>
#include <functional>

#include "core/autograd.h"
#include "quant/fake_quant_ops.h"
#include "quant/integer.h"

namespace lowbit::quant {

namespace {
const char* act_suffix(Activation a) {
  return a == Activation::relu ? "ReLU" : a == Activation::relu6 ? "ReLU6" : "";
}
Quantizer* quantizer_child(const nn::Module& m, const char* name) {
  return static_cast<Quantizer*>(m.child(name).get());
}
Tensor optional_param(const nn::Module& m, const std::string& name) {
  for (auto& [n, t] : m.named_parameters())
    if (n == name) return t;
  return Tensor();
}
// W' = W·γ/σ, b' = (b − μ)·γ/σ + β with σ = √(running_var + ε), as
// PyTorch's fuse_conv_bn_weights (b: the conv bias, zero if none).
std::pair<Tensor, Tensor> fold_bn_into(const Tensor& w, const Tensor& b, const nn::BatchNorm2d& bn) {
  NoGradGuard ng;
  LOWBIT_CHECK(bn.track_running_stats, "fuse: BatchNorm2d without running statistics cannot be folded");
  const int64_t c = w.shape()[0];
  Tensor gamma, beta, mean, var;
  for (auto& [k, t] : bn.state_dict()) {
    if (k == "weight") gamma = t;
    if (k == "bias") beta = t;
    if (k == "running_mean") mean = t;
    if (k == "running_var") var = t;
  }
  if (!gamma.defined()) gamma = Tensor::ones({c});
  if (!beta.defined()) beta = Tensor::zeros({c});
  const Tensor factor = gamma / sqrt(var + bn.eps), bias = b.defined() ? b.detach() : Tensor::zeros({c});
  return {(w.detach() * factor.view({-1, 1, 1, 1})).contiguous(), ((bias - mean) * factor + beta).contiguous()};
}

// The output quantizer, if attached.
Tensor quantize_output(const nn::Module& m, const Tensor& y) {
  auto q = m.child("activation_post_process");
  return q ? q->forward(y) : y;
}

// "layer1.0.conv1" from "layer1.0.conv1.activation_post_process".
std::string layer_path(const Quantizer* q) {
  const std::string& p = q->path();
  const auto dot = p.rfind('.');
  return dot == std::string::npos ? p : p.substr(0, dot);
}

// A frozen conv/linear in integers (quant/integer.h). Outside a recording
// pass: the stored form, or an undefined tensor (the float path runs). In one:
// the form for the input's grid (the stored one, or built from the float
// weights `wb`), the value registered; undefined when the layer cannot run in
// integers (noted in the trace).
template <class Compute>
Tensor integer_forward(IntegerState& s, nn::Module& m, OpKind kind, const Tensor& x, Quantizer* wq, Quantizer* oq,
                       const std::function<std::pair<Tensor, Tensor>()>& wb, Activation act, Compute&& compute) {
  auto run = [&](const LayerForm& f) {
    Tensor acc = compute(centered_integers(x, f.layer.in), f.weight, f.bias);
    return requantize_accumulators(acc, f.multipliers, f.layer.out);
  };
  if (!s.trace) return s.on ? run(*s.layer) : Tensor();
  Trace& t = *s.trace;
  std::shared_ptr<const LayerForm> form = std::move(s.layer);
  s.clear();
  if (!wq || !oq) return Tensor();
  const std::string path = layer_path(wq);
  if (!wq->frozen() || !oq->frozen()) return Tensor();
  const int in = t.find(x);
  if (in < 0 || t.value(in).is_float) {
    t.fallback(path, "its input is not the output of a quantized layer");
    return Tensor();
  }
  if (!form || !(form->layer.in == t.value(in).grid)) {
    try {
      const auto [w, b] = wb();
      form = make_layer_form(integer_layer(path, w, b, *wq, t.value(in).grid, *oq, act));
    } catch (const Error& e) {
      t.fallback(path, e.what());
      return Tensor();
    }
  }
  s.layer = form;
  s.on = true;
  Tensor y = run(*form);
  TraceOp op{kind, path, &m, {in}, -1, form->layer, {}};
  op.output = t.add(y, form->layer.out);
  t.record(std::move(op));
  return y;
}

// A per-tensor output quantizer's forward in integers: fake quantization with
// its frozen grid. In a recording pass the value is registered (the module
// then runs so outside one); undefined when not applicable.
Tensor traced_output(IntegerState& s, const nn::Module& m, OpKind kind, const std::string& path,
                     std::vector<int> inputs, const Tensor& y) {
  auto* q = static_cast<Quantizer*>(m.child("activation_post_process").get());
  if (!s.trace) return s.on ? fake_quantize(y.detach(), q->qparams(), q->qmin(), q->qmax()) : Tensor();
  Trace& t = *s.trace;
  s.clear();
  if (!q || !q->frozen()) return Tensor();
  Grid g;
  try {
    g = grid_of(*q);
  } catch (const Error& e) {
    t.fallback(path, e.what());
    return Tensor();
  }
  Tensor out = fake_quantize(y.detach(), q->qparams(), q->qmin(), q->qmax());
  TraceOp op{kind, path, const_cast<nn::Module*>(&m), std::move(inputs), -1, {}, {}};
  op.output = t.add(out, g);
  t.record(std::move(op));
  s.on = true;
  return out;
}
}  // namespace

// ---- FusedConv2d ---------------------------------------------------------------------

FusedConv2d::FusedConv2d(const nn::Conv2d& conv, std::shared_ptr<nn::BatchNorm2d> bn, bool fold_bn, Activation act)
    : in_channels(conv.in_channels), out_channels(conv.out_channels), kernel_size(conv.kernel_size),
      options(conv.options), act(act) {
  if (bn && fold_bn) {
    auto [w, b] = fold_bn_into(conv.weight(), conv.bias(), *bn);
    register_parameter("weight", w);
    register_parameter("bias", b);
  } else {
    register_parameter("weight", conv.weight());
    if (conv.bias().defined()) register_parameter("bias", conv.bias());
    if (bn) register_module("bn", bn);
  }
}

std::string FusedConv2d::type_name() const {
  return std::string("Conv") + (has_bn() ? "Bn" : "") + act_suffix(act) + "2d";
}

std::string FusedConv2d::extra_repr() const {
  std::string s = std::to_string(in_channels) + ", " + std::to_string(out_channels) +
                  ", kernel_size=" + std::to_string(kernel_size) + ", stride=" + std::to_string(options.stride_h);
  if (options.pad_h) s += ", padding=" + std::to_string(options.pad_h);
  if (options.groups != 1) s += ", groups=" + std::to_string(options.groups);
  return s;
}

Quantizer* FusedConv2d::weight_quantizer() const { return quantizer_child(*this, "weight_fake_quant"); }
Quantizer* FusedConv2d::output_quantizer() const { return quantizer_child(*this, "activation_post_process"); }

void FusedConv2d::attach(const LayerQConfig& qc, const std::string& path) {
  register_module("weight_fake_quant", make_quantizer(qc.weight, path + ".weight_fake_quant", out_channels));
  QSpec a = qc.activation;
  a.axis = 1;  // a per-channel output quantizer works on NCHW's channels
  register_module("activation_post_process", make_quantizer(a, path + ".activation_post_process", out_channels));
}

std::pair<Tensor, Tensor> FusedConv2d::folded_weight_bias() const {
  NoGradGuard ng;
  const Tensor w = param("weight").detach(), b = optional_param(*this, "bias");
  if (has_bn()) return fold_bn_into(w, b, static_cast<const nn::BatchNorm2d&>(*child("bn")));
  return {w, b.defined() ? b.detach() : Tensor::zeros({out_channels})};
}

Tensor FusedConv2d::forward(const Tensor& x) {
  LOWBIT_CHECK(x.dim() == 4 && x.shape()[1] == in_channels, type_name(), "(", in_channels, ", ", out_channels,
               "): input ", shape_str(x.shape()), " does not have ", in_channels, " channels");
  Quantizer* wq = weight_quantizer();
  if (!training_) {
    Tensor y = integer_forward(integer, *this, OpKind::conv, x, wq, output_quantizer(),
                               [&] { return folded_weight_bias(); }, act,
                               [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
                                 NoGradGuard ng;
                                 return conv2d(xi, wi, bi, options);
                               });
    if (y.defined()) return y;
  }
  const Tensor& w = param("weight");
  const Tensor bias = optional_param(*this, "bias");
  Tensor y;
  if (!has_bn()) {
    y = conv2d(x, wq ? wq->forward(w) : w, bias, options);
    y = nn::apply_activation(y, act);
  } else {
    auto bn = std::static_pointer_cast<nn::BatchNorm2d>(child("bn"));
    Tensor gamma = optional_param(*bn, "weight"), beta = optional_param(*bn, "bias");
    const auto bufs = bn->named_buffers();
    Tensor rm = bufs[0].second, rv = bufs[1].second, nbt = bufs[2].second;
    if (!gamma.defined()) gamma = Tensor::ones({out_channels});
    Tensor running_std;
    {
      NoGradGuard ng;
      running_std = sqrt(rv + bn->eps);
    }
    Tensor factor = gamma / running_std;  // γ/σ: the gradient reaches γ through the folded weight too
    Tensor ws = w * factor.view({-1, 1, 1, 1});
    y = conv2d(x, wq ? wq->forward(ws) : ws, Tensor(), options);
    // BN(y / factor [+ bias]): the division is batch_norm's input scale (no
    // extra pass); a conv bias (rare before BN) goes in between.
    Tensor inv_factor = div(Tensor::ones({out_channels}), factor);
    if (bias.defined()) {
      y = y * inv_factor.view({1, -1, 1, 1}) + bias.view({1, -1, 1, 1});
      inv_factor = Tensor();
    }
    const bool batch_stats = training_ && !freeze_bn_;
    if (batch_stats) {
      nbt.data<int32_t>()[0] += 1;
      nbt.bump_version();
    }
    y = batch_norm(y, rm, rv, optional_param(*bn, "weight"), beta, batch_stats, bn->momentum, bn->eps, act, inv_factor);
  }
  return quantize_output(*this, y);
}

// ---- FusedLinear ---------------------------------------------------------------------

FusedLinear::FusedLinear(const nn::Linear& linear, Activation act)
    : in_features(linear.in_features), out_features(linear.out_features), act(act) {
  for (auto& [n, t] : linear.named_parameters()) register_parameter(n, t);
}

std::string FusedLinear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features);
}

Quantizer* FusedLinear::weight_quantizer() const { return quantizer_child(*this, "weight_fake_quant"); }
Quantizer* FusedLinear::output_quantizer() const { return quantizer_child(*this, "activation_post_process"); }

void FusedLinear::attach(const LayerQConfig& qc, const std::string& path) {
  register_module("weight_fake_quant", make_quantizer(qc.weight, path + ".weight_fake_quant", out_features));
  QSpec a = qc.activation;
  a.axis = 1;  // a per-channel output quantizer of a linear layer works on features
  register_module("activation_post_process", make_quantizer(a, path + ".activation_post_process", out_features));
}

Tensor FusedLinear::forward(const Tensor& x) {
  Quantizer* wq = weight_quantizer();
  const Tensor& w = param("weight");
  if (!training_) {
    Tensor y = integer_forward(integer, *this, OpKind::linear, x, wq, output_quantizer(),
                               [&] {
                                 const Tensor b = optional_param(*this, "bias");
                                 return std::pair<Tensor, Tensor>{w.detach(), b.defined() ? b.detach() : Tensor()};
                               },
                               act,
                               [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
                                 NoGradGuard ng;
                                 return linear(xi.dim() == 2 ? xi : flatten(xi, 1), wi, bi);
                               });
    if (y.defined()) return y;
  }
  Tensor y = linear(x, wq ? wq->forward(w) : w, optional_param(*this, "bias"));
  return quantize_output(*this, nn::apply_activation(y, act));
}

// ---- QuantAdd, QuantPool, QuantStub, QuantModel -----------------------------------------------

namespace {
// Residual adds, pools and the input quantize per tensor (the integer engine's
// elementwise kernels take one scale), whatever the layer config says.
QSpec per_tensor(QSpec s) {
  s.per_channel = false;
  return s;
}
}  // namespace

QuantAdd::QuantAdd(Activation act, const QSpec& spec, const std::string& path) : nn::Add(act), path_(path) {
  register_module("activation_post_process", make_quantizer(per_tensor(spec), path + ".activation_post_process", 1));
}

Tensor QuantAdd::forward(const Tensor& a, const Tensor& b) {
  const Tensor y = nn::Add::forward(a, b);
  // dequantize(a) + dequantize(b) in fp32, then quantize: qmath::add's steps.
  if (!training_ && !integer.trace && integer.on) return traced_output(integer, *this, OpKind::add, path_, {}, y);
  if (!training_ && integer.trace) {
    Trace& t = *integer.trace;
    const int ia = t.find(a), ib = t.find(b);
    integer.clear();
    if (ia >= 0 && ib >= 0) {
      Tensor out = traced_output(integer, *this, OpKind::add, path_, {ia, ib}, y);
      if (out.defined()) return out;
    } else {
      t.fallback(path_, "an input is not the output of a quantized layer");
    }
  }
  return quantize_output(*this, y);
}

QuantPool::QuantPool(nn::ModulePtr pool, const QSpec* spec, const std::string& path)
    : pool_(std::move(pool)), path_(path) {
  if (spec)
    register_module("activation_post_process", make_quantizer(per_tensor(*spec), path + ".activation_post_process", 1));
}

Tensor QuantPool::forward(const Tensor& x) {
  auto* mp = dynamic_cast<const nn::MaxPool2d*>(pool_.get());
  const bool max_pool = mp && !child("activation_post_process");
  if (!training_ && !integer.trace && integer.on)  // the max of values on one grid is on that grid
    return max_pool ? pool_->forward(x.detach()) : global_average_integer(x, integer.in, integer.out);
  Trace* t = training_ ? nullptr : integer.trace;
  if (t) integer.clear();
  const int in = t ? t->find(x) : -1;
  if (t && in < 0) t->fallback(path_, "its input is not the output of a quantized layer");
  if (in >= 0) {
    if (max_pool) {
      Tensor y = pool_->forward(x.detach());
      TraceOp op{OpKind::max_pool, path_, this, {in}, -1, {}, mp->options};
      op.output = t->add(y, t->value(in).grid);
      t->record(std::move(op));
      integer.on = true;
      return y;
    }
    auto* q = static_cast<Quantizer*>(child("activation_post_process").get());
    auto* ap = dynamic_cast<const nn::AdaptiveAvgPool2d*>(pool_.get());
    if (ap && ap->out_h == 1 && ap->out_w == 1 && q && q->frozen()) {
      try {
        const Grid g = grid_of(*q);
        Tensor y = global_average_integer(x, t->value(in).grid, g);
        TraceOp op{OpKind::global_avg_pool, path_, this, {in}, -1, {}, {}};
        op.output = t->add(y, g);
        t->record(std::move(op));
        integer.in = t->value(in).grid;
        integer.out = g;
        integer.on = true;
        return y;
      } catch (const Error& e) {
        t->fallback(path_, e.what());
      }
    } else {
      t->fallback(path_, pool_->type_name() + " has no integer form (max pooling and global average pooling have)");
    }
  }
  return quantize_output(*this, pool_->forward(x));
}

QuantStub::QuantStub(const QSpec& spec, const std::string& path) : path_(path) {
  register_module("activation_post_process", make_quantizer(per_tensor(spec), path + ".activation_post_process", 1));
}

Tensor QuantStub::forward(const Tensor& x) {
  if (!training_) {
    Tensor y = traced_output(integer, *this, OpKind::quantize, path_, {}, x);
    if (y.defined()) return y;
  }
  return child("activation_post_process")->forward(x);
}

QuantModel::QuantModel(nn::ModulePtr model, const QSpec& input_spec) : model_(std::move(model)) {
  LOWBIT_CHECK(model_->state_dict().size() == 0 || !model_->named_children().empty(),
               "quantize: model has no children to quantize");
  // The model's own (non-child) tensors would vanish from the state dict.
  size_t child_tensors = 0;
  for (auto& [n, c] : model_->named_children()) child_tensors += c->state_dict().size();
  LOWBIT_CHECK(child_tensors == model_->state_dict().size(), "quantize: ", model_->type_name(),
               " holds parameters of its own outside child modules; wrap them in a module");
  register_module("quant", std::make_shared<QuantStub>(input_spec, "quant"));
  for (auto& [n, c] : model_->named_children()) register_module(n, c);
  training_ = model_->is_training();
}

Tensor QuantModel::forward(const Tensor& x) {
  if (!frozen_ || training_) return model_->forward(child("quant")->forward(x));
  if (recorded_version_ != state_version()) {  // the first frozen forward, or a state loaded since
    Trace t;
    return record(t, x);
  }
  return model_->forward(child("quant")->forward(x));
}

Tensor QuantModel::record(Trace& t, const Tensor& x) {
  LOWBIT_CHECK(frozen_, "record: the model is not frozen (quant::freeze)");
  const uint64_t version = state_version();
  if (version != recorded_version_) clear_integer_forms(*this);  // kept forms are reused only for the same state
  Tensor y;
  {
    Recording r(*this, t);
    y = model_->forward(child("quant")->forward(x));
  }
  t.output = t.find(y);
  recorded_version_ = version;
  return y;
}

uint64_t QuantModel::state_version() const {
  // Version counters only grow: the sum changes whenever any tensor is written in place.
  uint64_t v = 0;
  for (const auto& [name, t] : state_dict()) v += t.version();
  return v;
}

void QuantModel::set_frozen(bool on) {
  frozen_ = on;
  clear_integer_forms(*this);
  recorded_version_ = ~uint64_t(0);
}

void QuantModel::train(bool on) {
  nn::Module::train(on);
  model_->train(on);
}

}  // namespace lowbit::quant
