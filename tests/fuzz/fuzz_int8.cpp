// libFuzzer target: the int8 model file (quant/engine/file.cpp: the
// safetensors layer, the metadata, the graph text, the tensors sized from the
// graph, validate()). A file that loads must also run: the Runner is built on
// the reference kernels and runs once on a batch of one zero image. Any input
// must give a model that runs or a lowbit::Error; any other exception escapes
// and the fuzzer reports it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/kernels.h"
#include "quant/engine/model.h"
#include "quant/engine/runner.h"

namespace {

// Legitimately big models (a valid graph of large values, or many MACs on a
// small file) would only slow the fuzzer down: those load and validate, but
// do not run.
constexpr int64_t kMaxActivationBytes = int64_t(16) << 20;  // u8 values, one image
constexpr int64_t kMaxMacs = int64_t(64) << 20;

bool small_enough_to_run(const lowbit::quant::engine::Model& m) {
  using namespace lowbit;
  using lowbit::quant::engine::OpKind;
  int64_t act = 0;
  for (const auto& v : m.values) act += shape_numel(v.shape);
  if (act > kMaxActivationBytes) return false;
  int64_t macs = 0;
  for (const auto& op : m.ops) {
    if (op.kind != OpKind::conv && op.kind != OpKind::linear) continue;
    const int64_t k = op.layer.out_channels();
    const int64_t per_out = k > 0 ? (int64_t)op.layer.weight.size() / k : 0;
    macs += shape_numel(m.values[(size_t)op.output].shape) * per_out;
    if (macs > kMaxMacs) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  namespace engine = lowbit::quant::engine;
  static const kernels::KernelTable table = kernels::make_table(kernels::Isa::ref);
  try {
    engine::Model m = engine::load_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.int8.safetensors");
    if (!small_enough_to_run(m)) return 0;
    const Shape in = m.input_shape;
    const Shape out = m.values.at((size_t)m.output).shape;
    engine::Runner r(std::move(m), &table);
    const Tensor y = r.run(Tensor::zeros({1, in[0], in[1], in[2]}));
    Shape want{1};
    want.insert(want.end(), out.begin(), out.end());
    if (y.shape() != want) __builtin_trap();
    const float* p = y.data<float>();
    float sum = 0;
    for (int64_t i = 0; i < y.numel(); ++i) sum += p[i];
    volatile float sink = sum;
    (void)sink;
  } catch (const Error&) {
  }
  return 0;
}
