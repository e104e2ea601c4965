// Uses lowbit as a library: a model of the zoo, dynamic quantization of its
// linear layers, the int8 engine.
#include <cstdio>

#include "core/autograd.h"
#include "nn/models.h"
#include "quant/convert.h"
#include "quant/dynamic.h"
#include "quant/engine/model.h"
#include "quant/engine/runner.h"

int main() {
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
  quant::engine::Runner int8(quant::convert_dynamic(*mlp, x));
  const Tensor y_int8 = int8.run(x);
  std::printf("lowbit embedded: float logit %.4f, int8 logit %.4f (%s)\n", y_float.data<float>()[0],
              y_int8.data<float>()[0], y_int8.to_vector() == mlp->forward(x).to_vector() ? "module = engine" : "MISMATCH");
  return y_int8.to_vector() == mlp->forward(x).to_vector() ? 0 : 1;
}
