// Parameter initialisation (in place, under NoGradGuard), as torch.nn.init.
// Draws come from the default generator unless one is given.
#pragma once
#include "core/generator.h"
#include "core/tensor.h"

namespace lowbit::nn::init {

void uniform_(Tensor& t, float lo, float hi, Generator* gen = nullptr);
void normal_(Tensor& t, float mean, float std, Generator* gen = nullptr);
void constant_(Tensor& t, float value);
// fan_in = size(1)·receptive field, fan_out = size(0)·receptive field.
int64_t fan_in(const Tensor& t);
int64_t fan_out(const Tensor& t);
// kaiming_normal_(mode=fan_out, nonlinearity=relu): N(0, √2/√fan_out), as torchvision's ResNet/MobileNetV2.
void kaiming_normal_fan_out_(Tensor& t, Generator* gen = nullptr);

}  // namespace lowbit::nn::init
