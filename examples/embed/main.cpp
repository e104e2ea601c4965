// Uses lowbit as a library: a model of the zoo, dynamic quantization of its
// linear layers, the int8 engine. With a directory argument it also writes
// the int8 model (mlp.int8.safetensors) and its input and output
// (batch.safetensors: "x", "y"), which examples/engine runs with the engine
// library alone.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/autograd.h"
#include "core/safetensors.h"
#include "nn/models.h"
#include "quant/convert.h"
#include "quant/dynamic.h"
#include "quant/engine/model.h"
#include "quant/engine/runner.h"

int main(int argc, char** argv) {
  using namespace lowbit;
  manual_seed(0);
  nn::ModelConfig cfg;
  cfg.in_channels = 1;
  cfg.num_classes = 10;
  cfg.hidden = {64};
  nn::ModulePtr mlp = nn::create_model("mlp", cfg);
  const Tensor x = randn({4, 1, 28, 28});
  NoGradGuard ng;
  mlp->eval();
  const Tensor y_float = mlp->forward(x);
  quant::quantize_dynamic(*mlp);
  const quant::engine::Model model = quant::convert_dynamic(*mlp, x);
  quant::engine::Runner int8(model);
  const Tensor y_int8 = int8.run(x);
  if (argc > 1) {
    const std::string dir = argv[1];
    quant::engine::save(dir + "/mlp.int8.safetensors", model);
    save_safetensors(dir + "/batch.safetensors", {{"x", x}, {"y", y_int8}});
  }
  // The int8 model against the float one it came from (the engine against
  // the module is the library's own test): the largest logit difference
  // relative to the largest logit.
  const std::vector<float> f = y_float.to_vector(), q = y_int8.to_vector();
  double diff = 0, mag = 0;
  for (size_t i = 0; i < f.size(); ++i) diff = std::max(diff, (double)std::fabs(q[i] - f[i])), mag = std::max(mag, (double)std::fabs(f[i]));
  const double rel = diff / mag;
  const bool ok = q.size() == f.size() && rel <= 0.05;
  std::printf("lowbit embedded: float logit %.4f, int8 logit %.4f (int8 within %.2f%% of float: %s)\n", f[0], q[0],
              100 * rel, ok ? "ok" : "TOO FAR");
  return ok ? 0 : 1;
}
