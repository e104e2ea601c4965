// train → distill → quantize → int8 in one program (the README's library example).
#include <cstdio>

#include "data/loader.h"
#include "distill/distiller.h"
#include "nn/trainer.h"
#include "quant/convert.h"
#include "quant/engine/runner.h"
#include "quant/qat_schedule.h"
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
  auto fit = [&](const nn::ModulePtr& m, double lr, std::vector<nn::TrainerCallback*> callbacks) {
    nn::TrainerConfig c;  // one epoch of SGD at a constant rate; validates on `test`
    c.optimizer = {.lr = lr, .momentum = 0.9, .weight_decay = 0};
    c.schedule.name = "constant";
    nn::Trainer(m, c, callbacks).fit(train, test);
  };
  nn::ModulePtr teacher = cnn(32);  // 1. train a float teacher
  fit(teacher, 0.05, {});
  teacher->eval();
  nn::ModulePtr student = cnn(8);  // 2. distill a 4-bit student (LSQ fake quantization) from it
  distill::Distiller kd(teacher, {.temperature = 4, .alpha = 0.9f});
  kd.prepare(*student, test.make_batch(0, 0).images);
  const auto [first, last] = quant::first_and_last_layer(*student);
  const quant::QConfig qc = quant::preset("w4a4", first, last);
  auto q = quant::prepare_qat(student, qc);
  distill::DistillLoss kd_loss(kd);
  quant::QatSchedule qat(qc);  // freezes the model after the last epoch
  fit(q, 0.02, {&kd_loss, &qat});
  // 3. convert the frozen model to the integer graph, run it on the int8 kernels
  quant::engine::Runner int8(quant::convert(*q, test.make_batch(0, 0).images));
  std::printf("teacher %.3f  w4a4 student %.3f  int8 engine %.3f\n", nn::evaluate(*teacher, test).top1,
              nn::evaluate(*q, test).top1, nn::evaluate([&](const Tensor& x) { return int8.run(x); }, test).top1);
}
