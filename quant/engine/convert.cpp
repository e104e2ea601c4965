// convert: the frozen model's trace (quant/integer.h) becomes the integer graph.
#include <sstream>

#include "core/autograd.h"
#include "core/error.h"
#include "quant/engine/model.h"
#include "quant/qmodules.h"

namespace lowbit::quant::engine {

Model convert(QuantModel& q, const Tensor& sample) {
  LOWBIT_CHECK(q.frozen(), "convert: the model is not frozen (quant::freeze after calibration or QAT)");
  LOWBIT_CHECK(sample.dim() == 4, "convert: the sample input must be N×C×H×W, got ", shape_str(sample.shape()));
  const bool was_training = q.is_training();
  q.eval();
  Trace trace;
  {
    NoGradGuard ng;
    TraceScope scope(trace);
    q.forward(sample);
  }
  q.train(was_training);
  if (!trace.fallbacks().empty()) {
    std::ostringstream os;
    os << "convert: " << trace.fallbacks().size() << " layer" << (trace.fallbacks().size() == 1 ? "" : "s")
       << " cannot run in integers: ";
    for (size_t i = 0; i < trace.fallbacks().size(); ++i) os << (i ? "; " : "") << trace.fallbacks()[i];
    fail(os.str());
  }
  LOWBIT_CHECK(trace.output >= 0, "convert: the model's output is not the output of a quantized layer");
  LOWBIT_CHECK(!trace.ops().empty() && trace.ops()[0].kind == OpKind::quantize,
               "convert: the model does not start by quantizing its input");

  Model m;
  m.input_shape = Shape(sample.shape().begin() + 1, sample.shape().end());
  for (const TraceValue& v : trace.values()) m.values.push_back({Shape(v.shape.begin() + 1, v.shape.end()), v.grid});
  for (const TraceOp& t : trace.ops()) {
    Op op;
    op.kind = t.kind;
    op.name = t.path;
    op.inputs = t.inputs;
    op.output = t.output;
    op.layer = t.layer;
    op.pool = t.pool;
    if (t.kind == OpKind::conv) op.conv = static_cast<const FusedConv2d*>(t.module)->options;
    m.ops.push_back(std::move(op));
  }
  m.output = trace.output;
  validate(m, "convert");
  return m;
}

}  // namespace lowbit::quant::engine
