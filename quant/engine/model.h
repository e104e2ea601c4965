// The integer model: what `convert` makes of a frozen quantized model, what a
// `.int8.safetensors` file holds, and what the Runner (engine/runner.h) runs.
//
// It is a plain list of integer ops over numbered values — no Module, no
// autograd — so a model a user defined in their own C++ converts, saves and
// runs without its class: the file alone describes it.
//
//   quantize         the float input (N×C×H×W) onto the input grid
//   conv             u8 → u8, any stride/padding/dilation/groups (depthwise too),
//                    bias, per-channel or per-tensor weight scales, the activation
//                    folded into the output clamp
//   linear           u8 → u8; a 3-D input is flattened in C·H·W order (PyTorch's)
//   add              u8 + u8 → u8 (the residual sum, ReLU folded into the clamp)
//   max_pool         keeps the grid
//   global_avg_pool  requantizes onto the output grid
// The output value is dequantized to float. Values are per image: {C, H, W}
// (held NHWC by the runner) or {F}.
//
// Dynamically quantized models (quant/dynamic.h) have float values instead:
//   input            the float input as it is (NCHW), first op instead of quantize
//   dynamic_linear   f32 → f32: the batch's own input grid, int8 GEMM, float bias,
//                    optional ReLU (DynamicLinearKernel, shared with the module)
// and their output is already float.
//
// File (`*.int8.safetensors`, a safetensors file):
//   tensors    <op>.weight        I8   conv O×I/G×R×S (PyTorch's OIHW), linear out×in
//              <op>.bias          I32  out (in accumulator units s_in·s_w); F32 for dynamic_linear
//              <op>.weight_scale  F32  out, or 1 (per tensor)
//   metadata   "format"  "lowbit.int8"; "format_version" "1" ("2" when the graph has
//              float values: a version-1 reader refuses what it cannot run)
//              "graph"   the values and ops, one per line:
//                input C,H,W
//                value ID shape=C,H,W scale=S zp=Z qmin=A qmax=B     (u8)
//                value ID shape=C,H,W dtype=f32                       (float, version 2)
//                op KIND NAME in=ID[,ID] out=ID [stride=… pad=… dil=… groups=G | kernel=… stride=… pad=… ceil=0|1
//                                               | relu=0|1 reduce_range=0|1 (dynamic_linear)]
//                output ID
//              (scales printed with 9 significant digits: they read back bit for bit)
//              plus what the model came from: "model", "qconfig", "quantization",
//              "dataset", "mean", "std", "classes", … (free-form strings)
//
// The engine (this folder) depends on core/ and kernels/ only: it is built
// and installed as its own library, liblowbit_engine, which an application
// links to run `.int8.safetensors` files without the training code. Each op
// kind lives in one file under ops/ that declares its validation, graph-line
// fields, tensors, preparation and run (ops.h); nothing else switches on the
// kind. What makes a Model from a trained network is quant/convert.h.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/ops.h"

namespace lowbit::quant::engine {

// A tensor's grid: per-tensor scale and zero point, and the clamp range.
struct Grid {
  float scale = 1.0f;
  int32_t zp = 0, qmin = 0, qmax = 255;
  bool operator==(const Grid&) const = default;
};

// A conv or linear layer in integers (conv weights OIHW, PyTorch's layout;
// linear weights out×in).
struct IntegerLayer {
  std::vector<int8_t> weight;
  Shape weight_shape;
  std::vector<float> weight_scale;  // one per output channel, or one
  std::vector<int32_t> bias;        // one per output channel (0 without bias)
  Grid in, out;                     // out.qmin/qmax include the folded activation
  int64_t out_channels() const { return weight_shape.empty() ? 0 : weight_shape[0]; }
  // M[k] = s_in·s_w[k]/s_out (qmath::requant_multiplier), one per weight scale.
  std::vector<float> multipliers() const;
  // The largest |acc| a u8 input on `in`'s grid can produce (Σ|q_w|·max|q_x − zp| + |bias|):
  // below 2^24 the simulation's float sums are exact.
  double accumulator_bound() const;
};

// The op kinds (ops.h: what each one is; op_kind_name: its name in the file).
// input and dynamic_linear are the float ops of dynamic quantization.
enum class OpKind { quantize, conv, linear, add, max_pool, global_avg_pool, input, dynamic_linear };
const char* op_kind_name(OpKind k);

inline constexpr const char* kFormat = "lowbit.int8";
inline constexpr int kFormatVersion = 2;  // the newest this reader knows (it reads 1 and 2)

struct Value {
  Shape shape;  // per image
  Grid grid;    // u8 values
  bool is_float = false;
};

struct Op {
  OpKind kind = OpKind::quantize;
  std::string name;
  std::vector<int> inputs;
  int output = -1;
  IntegerLayer layer;    // conv, linear (layer.in/out repeat the values' grids)
  Conv2dOptions conv{};  // conv
  Pool2dOptions pool{};  // max_pool
  // dynamic_linear: layer.weight / weight_shape / weight_scale as linear's
  // (layer.bias, in and out unused), the float bias, ReLU, reduce_range.
  std::vector<float> float_bias;
  bool relu = false, reduce_range = false;
};

struct Model {
  Shape input_shape;  // per image, as the float input: {C, H, W}
  std::vector<Value> values;
  std::vector<Op> ops;  // in execution order
  int output = -1;
  std::map<std::string, std::string> info;  // where it came from (file metadata)
  int64_t num_classes() const { return shape_numel(values.at((size_t)output).shape); }
};

// Checks the graph: ids in range and defined before use, shapes consistent
// with each op, grids valid, weights of the right size. Error naming `what`
// (the file) and the op.
void validate(const Model& m, const std::string& what);

// Atomic write (core/safetensors.h). Error naming the file.
void save(const std::string& path, const Model& m);
// Reads and validates; Error naming the file (a float checkpoint, a newer
// format version, a truncated file, a size that disagrees with the graph, a
// missing tensor, …).
Model load(const std::string& path);
// The same from the file's bytes (`name` in errors): the fuzz target's entry.
Model load_bytes(const std::string& bytes, const std::string& name);
// True if the metadata says this is an int8 model file.
bool is_int8_file(const std::map<std::string, std::string>& metadata);

// Bytes of the integer model as stored (weights, biases, scales).
int64_t model_bytes(const Model& m);

}  // namespace lowbit::quant::engine
