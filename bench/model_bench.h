// Whole-model inference: lowbit's float model against its int8 conversion
// (quant::engine) on torchvision-shaped models (3×224×224, 1000 classes),
// random weights, PTQ w8a8 calibrated on random images. Each time is the
// median of `reps` forward passes after `warmup`, on one fixed batch; the
// int8 time includes quantizing the float input and dequantizing the logits.
// bench/compare_int8.py runs PyTorch's float and eager-mode int8 models on
// the same shapes in the same run.
#pragma once
#include <cstdio>
#include <string>

namespace lowbit::bench {

struct ModelBenchOptions {
  std::string model = "resnet18";  // resnet18 | mobilenet_v2 (any nn/ model name)
  int64_t batch = 1, size = 224, channels = 3, classes = 1000;
  int warmup = 3, reps = 10;
  bool json = false;
  bool int8_only = false, float_only = false;
  bool profile = false;  // the int8 model's time per op kind and its slowest ops
};

void run_model_bench(std::FILE* out, const ModelBenchOptions& o);

}  // namespace lowbit::bench
