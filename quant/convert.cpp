// convert: a model's trace (quant/integer.h) becomes the integer graph — a
// frozen static model's (every op in integers), or a dynamically quantized
// model's (float input, dynamic_linear ops).
#include <algorithm>
#include <functional>
#include <sstream>

#include "core/autograd.h"
#include "core/error.h"
#include "quant/convert.h"
#include "quant/dynamic.h"
#include "quant/integer.h"
#include "quant/engine/runner.h"
#include "quant/qmodules.h"

namespace lowbit::quant {

using engine::Model;
using engine::Op;

namespace {

// Runs `forward` (a recording pass on `trace`) once in eval mode, no grad (the
// mode is restored); Error listing every layer that fell back to float.
void trace_forward(nn::Module& m, Trace& trace, const std::function<void()>& forward) {
  const bool was_training = m.is_training();
  m.eval();
  {
    NoGradGuard ng;
    forward();
  }
  m.train(was_training);
  if (trace.fallbacks().empty()) return;
  std::ostringstream os;
  os << "convert: " << trace.fallbacks().size() << " layer" << (trace.fallbacks().size() == 1 ? "" : "s")
     << " cannot run in the int8 engine: ";
  for (size_t i = 0; i < trace.fallbacks().size(); ++i) os << (i ? "; " : "") << trace.fallbacks()[i];
  fail(os.str());
}

// The graph of a trace: values per image, ops with what each kind needs from its module.
Model graph_of(const Trace& trace, const Tensor& sample, int output) {
  Model m;
  m.input_shape = Shape(sample.shape().begin() + 1, sample.shape().end());
  for (const TraceValue& v : trace.values())
    m.values.push_back({Shape(v.shape.begin() + 1, v.shape.end()), v.grid, v.is_float});
  for (const TraceOp& t : trace.ops()) {
    Op op;
    op.kind = t.kind;
    op.name = t.path;
    op.inputs = t.inputs;
    op.output = t.output;
    op.layer = t.layer;
    op.pool = t.pool;
    if (t.kind == OpKind::conv) op.conv = static_cast<const FusedConv2d*>(t.module)->options;
    if (t.kind == OpKind::dynamic_linear) {
      const auto* d = static_cast<const DynamicLinear*>(t.module);
      const Tensor& w = d->weight();
      op.layer.weight.assign(w.data<int8_t>(), w.data<int8_t>() + w.numel());
      op.layer.weight_shape = w.shape();
      op.layer.weight_scale = d->weight_scale().to_vector();
      op.float_bias = d->bias_values();
      op.relu = d->relu();
      op.reduce_range = d->config().reduce_range;
    }
    m.ops.push_back(std::move(op));
  }
  m.output = output;
  engine::validate(m, "convert");
  return m;
}

void check_sample(const Tensor& sample) {
  LOWBIT_CHECK(sample.dim() == 4, "convert: the sample input must be N×C×H×W, got ", shape_str(sample.shape()));
}

}  // namespace

Model convert(QuantModel& q, const Tensor& sample) {
  LOWBIT_CHECK(q.frozen(), "convert: the model is not frozen (quant::freeze after calibration or QAT)");
  check_sample(sample);
  Trace trace;
  trace_forward(q, trace, [&] { q.record(trace, sample); });
  LOWBIT_CHECK(trace.output >= 0, "convert: the model's output is not the output of a quantized layer");
  LOWBIT_CHECK(!trace.ops().empty() && trace.ops()[0].kind == OpKind::quantize,
               "convert: the model does not start by quantizing its input");
  return graph_of(trace, sample, trace.output);
}

Model convert_dynamic(nn::Module& model, const Tensor& sample_in) {
  check_sample(sample_in);
  LOWBIT_CHECK(!dynamic_layers(model).empty(), "convert: the model has no dynamic layer (quant::quantize_dynamic)");
  const Tensor sample = sample_in.detach().contiguous().clone();
  Trace trace;
  Tensor y;
  trace_forward(model, trace, [&] {
    Recording r(model, trace);
    trace.record({OpKind::input, "input", nullptr, {}, trace.add_float(sample), {}, {}});
    y = model.forward(sample);
  });
  const int out = trace.find(y);
  LOWBIT_CHECK(out >= 0 && out == trace.ops().back().output && y.dim() == 2,
               "convert: the model's output is not a dynamic layer's output (float layers after the last dynamic "
               "layer, which the int8 engine cannot run)");
  const Model m = graph_of(trace, sample, out);
  // Every float op between the recorded ones would be a silent hole: the graph
  // must give the module's output bit for bit.
  engine::Runner r(m);
  const Tensor e = r.run(sample);
  LOWBIT_CHECK(e.numel() == y.numel() && std::equal(e.data<float>(), e.data<float>() + e.numel(), y.data<float>(),
                                                    [](float a, float b) { return a == b || (a != a && b != b); }),
               "convert: the integer graph does not reproduce the model's output (a layer between the dynamic "
               "layers changes values the engine cannot see)");
  return m;
}

}  // namespace lowbit::quant
