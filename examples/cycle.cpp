// train → distill → quantize → int8 in one program (the README's library example).
#include <cstdio>

#include "core/autograd.h"
#include "data/loader.h"
#include "distill/distiller.h"
#include "nn/optim.h"
#include "quant/engine/runner.h"
#include "quant/quantize.h"
using namespace lowbit;

nn::ModulePtr cnn(int64_t w) {  // any model of your own: here a torch-style Sequential
  using namespace nn;
  return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<Conv2d>(1, w, 3, 1, 1), std::make_shared<BatchNorm2d>(w), std::make_shared<ReLU>(),
      std::make_shared<MaxPool2d>(2), std::make_shared<Conv2d>(w, 2 * w, 3, 1, 1), std::make_shared<BatchNorm2d>(2 * w),
      std::make_shared<ReLU>(), std::make_shared<AdaptiveAvgPool2d>(1), std::make_shared<Flatten>(),
      std::make_shared<Linear>(2 * w, 10)});
}

int main() {
  manual_seed(0);
  auto tf = data::compose({data::to_tensor(), data::normalize({0.286f}, {0.353f})});
  data::DatasetSpec test_spec;
  test_spec.train = false;
  data::DataLoader train(data::limit(data::open_dataset({}), 12000, 0), {.batch_size = 64, .shuffle = true}, tf);
  data::DataLoader test(data::limit(data::open_dataset(test_spec), 1000, 0), {.batch_size = 250}, tf);
  auto fit = [&](nn::Module& m, double lr, const std::function<Tensor(const data::Batch&)>& loss) {
    nn::SGD opt(m.named_parameters(), {.lr = lr, .momentum = 0.9});
    m.train();
    for (const data::Batch& b : train.epoch(0)) {
      Tensor l = loss(b);
      opt.zero_grad();
      l.backward();
      opt.step();
    }
  };
  auto accuracy = [&](const std::function<Tensor(const Tensor&)>& f) {
    NoGradGuard ng;
    int64_t right = 0;
    for (const data::Batch& b : test.epoch(0)) {
      const Tensor p = argmax(f(b.images), 1);
      for (int64_t i = 0; i < p.numel(); ++i) right += p.data<int32_t>()[i] == b.labels.data<int32_t>()[i];
    }
    return right / 1000.0;
  };
  nn::ModulePtr teacher = cnn(32);  // 1. train a float teacher
  fit(*teacher, 0.05, [&](const data::Batch& b) { return cross_entropy(teacher->forward(b.images), b.labels); });
  teacher->eval();
  nn::ModulePtr student = cnn(8);  // 2. distill a 4-bit student (LSQ fake quantization) from it
  distill::Distiller kd(teacher, {.temperature = 4, .alpha = 0.9f});
  kd.prepare(*student, test.make_batch(0, 0).images);
  const auto [first, last] = quant::first_and_last_layer(*student);
  auto q = quant::prepare_qat(student, quant::preset("w4a4", first, last));
  fit(*q, 0.02, [&](const data::Batch& b) { return kd.step(*q, b.images, b.labels).loss; });
  quant::freeze(*q);  // 3. freeze, convert to the integer graph, run it on the int8 kernels
  quant::engine::Runner int8(quant::engine::convert(*q, test.make_batch(0, 0).images));
  std::printf("teacher %.3f  w4a4 student %.3f  int8 engine %.3f\n", accuracy([&](const Tensor& x) { return teacher->forward(x); }),
              accuracy([&](const Tensor& x) { return q->forward(x); }), accuracy([&](const Tensor& x) { return int8.run(x); }));
}
