// convert: a trained quantized model becomes the int8 engine's integer graph
// (quant/engine/model.h) — PyTorch's convert step, on lowbit's own graph
// format. The engine runs the result without the training code.
//
//   quant::freeze(*q);                                   // after calibration or QAT
//   engine::Model m = quant::convert(*q, sample);        // sample: N×C×H×W, any values
//   engine::save("model.int8.safetensors", m);
#pragma once
#include "quant/engine/model.h"

namespace lowbit::nn {
class Module;
}

namespace lowbit::quant {

class QuantModel;

// The integer graph of a frozen quantized model (quant::freeze), traced on
// `sample` (N×C×H×W, any values). Error listing every layer that cannot run
// in integers (kept in float, per-channel activations, …).
engine::Model convert(QuantModel& q, const Tensor& sample);

// The graph of a dynamically quantized model (quant::quantize_dynamic): every
// layer must be a DynamicLinear, a Flatten or fused away, so that the float
// input flows only through dynamic layers. Error naming the dynamic layer whose
// input comes from anything else (a float conv, an unfused activation, …
// before it), or saying that float layers follow the last one. The graph is run on
// `sample` and checked to give the module's output bit for bit.
engine::Model convert_dynamic(nn::Module& model, const Tensor& sample);

}  // namespace lowbit::quant
