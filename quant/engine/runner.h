// The int8 engine: runs an integer Model (engine/model.h) on lowbit's int8
// kernels.
//
//   auto m = quant::engine::load("resnet20.int8.safetensors");
//   quant::engine::Runner r(m);                 // packs weights for this CPU's path
//   Tensor logits = r.run(images);              // N×C×H×W float → N×classes float
//
// Activations are u8, NHWC, between ops; no float round trip inside the
// network. The memory for every value is planned once per batch size (values
// whose lifetimes do not overlap share bytes) and kept, so steady-state runs
// allocate nothing but the output tensor (and the int8 GEMM driver's small
// per-call column vectors). Threads work inside each op (the
// kernels' OpenMP; kernels::set_num_threads). A Runner is not thread-safe:
// one per thread, or a lock.
#pragma once
#include <memory>

#include "kernels/kernels.h"
#include "quant/engine/model.h"

namespace lowbit::quant::engine {

class Runner {
 public:
  // Packs with `table`'s int8 path (default: the process's, kernels::table()).
  explicit Runner(Model m, const kernels::KernelTable* table = nullptr);
  ~Runner();
  Runner(Runner&&) noexcept;

  // x: N×C×H×W float (normalized as the model expects). Returns N×classes
  // (or the output value's shape) float: the dequantized output.
  Tensor run(const Tensor& x);
  // x: N images already on the input grid, u8 NCHW; y: N·num_classes floats.
  void run_u8(const uint8_t* x, int64_t n, float* y);

  const Model& model() const;
  // Per-op wall time, accumulated over runs while profiling is on (index = op;
  // op 0 also counts the input's quantization, the last the output's
  // dequantization). For `lowbit bench models --profile`.
  void set_profiling(bool on);
  const std::vector<double>& op_seconds() const;
  // Bytes of the activation arena planned for the last batch size.
  size_t arena_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::quant::engine
