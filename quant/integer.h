// The integer form of a frozen quantized model: what the int8 engine computes,
// and what the simulation computes once the model is frozen.
//
// A frozen model (quant::freeze) simulates integer arithmetic exactly rather
// than approximately. Its tensors still hold floats, but every one of them is
// a dequantized integer, (q − zp)·s, and each layer computes what the engine
// computes, with float ops on integer values:
//
//   conv / linear   acc = Σ (q_x − zp_x)·q_w + bias_q          (conv2d/linear on integer-valued floats,
//                                                                exact while |partial sums| < 2^24)
//                   q_y = clamp(round_half_even(acc · M[k]) + zp_y, qmin, qmax)
//                   with M[k] = s_x·s_w[k]/s_y, bias_q = round(b / (s_x·s_w[k])),
//                   the activation folded into [qmin, qmax]; a channel whose M[k]
//                   exceeds 1/16 (its bias grid coarser than 1/16 of an output step)
//                   computes with the same weights on a step s_w[k]/r (weights r·q,
//                   |r·q| ≤ 127; integer_layer), so its bias is not lost to rounding.
//                   PyTorch's convert keeps the quantizer's step there (see quant/README.md).
//   add             q_y = quantize(dequantize(a) + dequantize(b))   (fp32, as qu8_add)
//   average pool    q_y = clamp(round_half_even(Σ(q_x − zp_x) · (s_x/s_y / count)) + zp_y, qmin, qmax)
//   max pool        the input grid
//
// all through kernels/quant_math.h, so the engine, which runs the same
// numbers through the int8 kernels, agrees bit for bit. (Unfrozen models —
// QAT training, calibration — run the usual float fake-quant path.)
//
// Each quantized module computes its integer form once (quant::freeze, then
// the frozen model's first forward, which is a *recording pass*: every module
// looks up its input's grid in the Trace (by storage), computes its form,
// keeps it and registers its output). Later frozen forwards run the kept forms
// with no lookup and no rebuild; a state loaded anew (a version counter moved)
// or unfreezing drops them. A module whose input is not on a known grid (a
// layer kept in float feeds it) runs the float path and says why; convert
// (quant/convert.h) reads the recording pass's trace to build the integer graph.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "quant/engine/model.h"

namespace lowbit::nn {
class Module;
}

namespace lowbit::quant {

class Quantizer;

using engine::Grid;
using engine::IntegerLayer;
using engine::OpKind;
using engine::op_kind_name;

// Builds the integer layer from float weight w (OIHW or out×in) and bias b
// (may be undefined), the weight quantizer (symmetric: zero points 0), the
// input grid and the output quantizer (per tensor), with `act` folded into
// the output clamp. Throws Error naming `path` when the engine cannot
// represent the layer (asymmetric weights, per-channel or signed outputs).
IntegerLayer integer_layer(const std::string& path, const Tensor& w, const Tensor& b, const Quantizer& wq, const Grid& in,
                           const Quantizer& oq, Activation act);

// A quantizer's grid (per tensor; Error naming the quantizer otherwise).
Grid grid_of(const Quantizer& q);

// ---- integer computation on float tensors (the frozen simulation) ----------------
// q − zp of a dequantized tensor on grid g: round_half_even(x · (1/s)) as floats.
Tensor centered_integers(const Tensor& x, const Grid& g);
// From accumulators acc (N×K×… or N×K, channel axis 1) to the dequantized
// output: (clamp(round_half_even(acc · M[k]) + zp) − zp) · s.
Tensor requantize_accumulators(const Tensor& acc, const std::vector<float>& multipliers, const Grid& out);
// Global average pool N×C×H×W → N×C×1×1 in integers (qu8_global_avg_pool).
Tensor global_average_integer(const Tensor& x, const Grid& in, const Grid& out);

// ---- the trace ----------------------------------------------------------------------
struct TraceValue {
  Grid grid;
  Shape shape;  // as the simulation saw it (NCHW, or N×F)
  bool is_float = false;  // a float tensor (dynamic quantization's values); grid unused
};

struct TraceOp {
  OpKind kind;
  std::string path;          // module path ("layer1.0.conv1"; "quant" for the input)
  nn::Module* module;        // the module that ran it
  std::vector<int> inputs;   // value ids (none for quantize: the float input)
  int output = -1;
  IntegerLayer layer;        // conv / linear
  Pool2dOptions pool{};      // max_pool
};

class Trace {
 public:
  // The value a tensor holds (looked up by storage and element offset; a view
  // of the whole storage, such as a flatten, finds it), or -1.
  int find(const Tensor& t) const;
  const TraceValue& value(int id) const { return values_[(size_t)id]; }
  // The simulation's tensor of a value (dequantized floats, as it ran).
  const Tensor& tensor(int id) const { return keep_[(size_t)id]; }
  // Registers t as a new value (kept alive for the trace's lifetime).
  int add(const Tensor& t, const Grid& g);
  // Registers a float value (dynamic quantization).
  int add_float(const Tensor& t);
  void record(TraceOp op) { ops_.push_back(std::move(op)); }
  // A module that could not run in integers (it ran in float): path and why.
  void fallback(const std::string& path, const std::string& why) { fallbacks_.push_back(path + ": " + why); }

  const std::vector<TraceValue>& values() const { return values_; }
  const std::vector<TraceOp>& ops() const { return ops_; }
  const std::vector<std::string>& fallbacks() const { return fallbacks_; }
  int output = -1;  // the model output's value (set by QuantModel)

 private:
  struct Key {
    const void* storage;
    int64_t offset;
    bool operator==(const Key& o) const { return storage == o.storage && offset == o.offset; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return std::hash<const void*>()(k.storage) ^ (size_t)k.offset * 0x9e3779b9u; }
  };
  std::unordered_map<Key, int, KeyHash> by_storage_;
  std::vector<TraceValue> values_;
  std::vector<Tensor> keep_;
  std::vector<TraceOp> ops_;
  std::vector<std::string> fallbacks_;
};

// ---- integer forms ------------------------------------------------------------------
// A conv/linear layer's integer form and the simulation's operands: the
// integer weights and bias as float tensors, the multipliers.
struct LayerForm {
  IntegerLayer layer;
  Tensor weight, bias;
  std::vector<float> multipliers;
};
std::shared_ptr<const LayerForm> make_layer_form(IntegerLayer layer);

// What a quantized module keeps of its integer form. A recording pass (a
// frozen QuantModel's first forward, or convert) sets `trace` on every module:
// each finds its input's grid, computes its form (or keeps the one it has for
// that grid) and registers its output. Later frozen forwards run the stored
// forms without a trace.
struct IntegerState {
  Trace* trace = nullptr;   // during a recording pass
  bool on = false;          // recorded as running in integers (else: float)
  std::shared_ptr<const LayerForm> layer;  // conv, linear
  Grid in, out;             // global average pooling
  void clear() {
    on = false;
    layer.reset();
  }
};

// The modules that have an integer form (quant/qmodules.h, DynamicLinear).
class Recordable {
 public:
  virtual ~Recordable() = default;
  IntegerState integer;
};

// Sets `t` as the trace of every Recordable module under `root` for its scope
// (a recording pass), and clears it after, also on an error.
class Recording {
 public:
  Recording(nn::Module& root, Trace& t);
  ~Recording();
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;

 private:
  std::vector<std::pair<std::string, Recordable*>> modules_;
};

// Forgets every integer form under `root` (unfrozen, or the state changed).
void clear_integer_forms(nn::Module& root);

}  // namespace lowbit::quant
