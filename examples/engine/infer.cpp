// Runs an int8 model with the engine alone (liblowbit_engine: no training
// code, no oneDNN): a batch from a safetensors file, the predicted class of
// each image, and whether the logits equal the file's expected ones.
//
//   infer MODEL.int8.safetensors BATCH.safetensors
//   BATCH: "x" f32 N×C×H×W (normalized as the model expects), optional "y" f32 N×classes
#include <cstdio>

#include "core/error.h"
#include "core/safetensors.h"
#include "quant/engine/runner.h"

int main(int argc, char** argv) {
  using namespace lowbit;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.int8.safetensors BATCH.safetensors\n", argv[0]);
    return 2;
  }
  try {
    quant::engine::Runner r(quant::engine::load(argv[1]));
    const SafetensorsFile batch = load_safetensors(argv[2]);
    LOWBIT_CHECK(batch.has("x"), argv[2], ": no tensor \"x\" (the images)");
    const Tensor y = r.run(batch.get("x"));
    const int64_t n = y.shape()[0], classes = y.numel() / n;
    for (int64_t i = 0; i < n; ++i) {
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c)
        if (y.data<float>()[i * classes + c] > y.data<float>()[i * classes + best]) best = c;
      std::printf("image %lld: class %lld\n", (long long)i, (long long)best);
    }
    if (batch.has("y"))
      std::printf("logits %s the expected ones\n", y.to_vector() == batch.get("y").to_vector() ? "equal" : "DIFFER FROM");
    return batch.has("y") && y.to_vector() != batch.get("y").to_vector() ? 1 : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
