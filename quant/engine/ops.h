// The op registry: what each op kind of the integer graph (model.h) is, in
// one place per kind (ops/<kind>.cpp), as XNNPACK's subgraph nodes each
// declare their checks, their definition and their operator. The file
// reader and writer (file.cpp), the checks (model.cpp) and the runner
// (runner.cpp) do the shared part — value ids, input counts, u8 against
// float values, the memory plan — and ask the op's OpDef for the rest.
//
// Adding an op kind: an OpKind value (model.h), a file under ops/ defining
// its OpDef, and its line in registry.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "quant/engine/model.h"

namespace lowbit::quant::engine {

// One op's run on a batch of n images. Buffers: u8 values NHWC ({C,H,W}) or
// {F}, float values as they are; the first op reads the network input
// (float N×C×H×W).
struct Exec {
  const kernels::Int8Kernels& k;
  const Model& m;
  const Op& op;
  int64_t n;
  const uint8_t* in[2];  // the op's inputs (op 0: the float input)
  uint8_t* out;          // its output value
  uint8_t* scratch;      // scratch_bytes() bytes
};

// An op prepared for one kernel path (packed weights, multipliers).
class PreparedOp {
 public:
  virtual ~PreparedOp() = default;
  virtual void run(const Exec& e) = 0;
};

// A graph line's key=value fields, read with the line's errors
// ("FILE: graph line L: …").
class FieldReader {
 public:
  virtual ~FieldReader() = default;
  virtual const std::string& text(const std::string& key) const = 0;
  virtual int64_t integer(const std::string& key, int64_t lo, int64_t hi) const = 0;
  // Exactly `count` comma-separated integers from lo to hi.
  virtual std::vector<int64_t> ints(const std::string& key, size_t count, int64_t lo, int64_t hi) const = 0;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct OpDef {
  OpKind kind = OpKind::quantize;
  const char* name = "";  // in the graph line: "op NAME …"
  int inputs = 1;        // values read; 0: the network input (the first op only)
  bool float_values = false;  // reads and writes float values (dynamic quantization), else u8
  std::vector<std::string> fields = {};  // the graph line's fields besides in= and out=
  // The op's own checks (ids, input count and value kinds are checked before);
  // Error starting with `where` ("FILE: op I (KIND NAME): ").
  void (*validate)(const Model& m, const Op& op, const std::string& where) = nullptr;
  void (*parse)(Op& op, const FieldReader& f) = nullptr;  // fields → op (null: no fields)
  void (*print)(const Op& op, std::ostream& os) = nullptr;  // op → " key=value" fields (null: no fields)
  // Its tensors in the file ("NAME.weight", …), or null: none.
  void (*save)(const Op& op, NamedTensors& out) = nullptr;
  void (*load)(const Model& m, Op& op, const SafetensorsFile& f, const std::string& file) = nullptr;
  size_t (*scratch_bytes)(const Model& m, const Op& op, int64_t n) = nullptr;  // null: none
  std::unique_ptr<PreparedOp> (*prepare)(const Op& op, const kernels::Int8Kernels& k) = nullptr;
};

// `prepare` for an op whose PreparedOp is built from (op, kernels), or from nothing.
template <class P>
std::unique_ptr<PreparedOp> prepare_as(const Op& op, const kernels::Int8Kernels& k) {
  if constexpr (std::is_constructible_v<P, const Op&, const kernels::Int8Kernels&>)
    return std::make_unique<P>(op, k);
  else
    return std::make_unique<P>();
}

const OpDef& op_def(OpKind k);
const OpDef* find_op(const std::string& name);  // null if none is called so
std::string op_names();                          // "quantize, conv, …"

// The definitions (ops/*.cpp), listed by registry.cpp.
const OpDef& quantize_op();
const OpDef& conv_op();
const OpDef& linear_op();
const OpDef& add_op();
const OpDef& max_pool_op();
const OpDef& global_avg_pool_op();
const OpDef& input_op();
const OpDef& dynamic_linear_op();

// ---- shared by the op files -----------------------------------------------------------
constexpr int64_t kMaxDim = 1 << 24;  // any one extent; products are checked separately

inline int64_t spatial(const Shape& s) { return s.size() == 3 ? s[1] * s[2] : 1; }
// Every extent from 1 to 2^31, and so is their product (no overflow).
bool sane_extents(const Shape& s);
// The kernels clamp u8 results to 0..255; a narrower grid (sub-8-bit
// activations) clamps once more.
void clamp_to(uint8_t* y, int64_t n, const Grid& g);
// N×C×HW → N×HW×C u8, rows of pixels in parallel.
void to_nhwc(uint8_t* y, const uint8_t* x, int64_t n, int64_t c, int64_t hw);

// Layer ops (conv, linear, dynamic_linear): weight, bias, weight_scale.
void check_layer_scales(const IntegerLayer& L, const std::string& where);
// conv and linear: weights, bias and scales agree, the grids are the values'.
void check_integer_layer(const Model& m, const Op& op, const std::string& where);
void save_layer(const Op& op, const std::vector<float>* float_bias, NamedTensors& out);
void load_layer(const Model& m, Op& op, const SafetensorsFile& f, const std::string& file, int weight_dims,
                bool float_bias);

}  // namespace lowbit::quant::engine
