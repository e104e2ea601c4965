#include "nn/init.h"

#include <cmath>

#include "core/autograd.h"

namespace lowbit::nn::init {

void uniform_(Tensor& t, float lo, float hi, Generator* gen) {
  NoGradGuard ng;
  t.copy_(uniform(t.shape(), lo, hi, gen));
}

void normal_(Tensor& t, float mean, float std, Generator* gen) {
  NoGradGuard ng;
  t.copy_(normal(t.shape(), mean, std, gen));
}

void constant_(Tensor& t, float value) {
  NoGradGuard ng;
  t.fill_(value);
}

static int64_t receptive(const Tensor& t) {
  int64_t r = 1;
  for (int64_t d = 2; d < t.dim(); ++d) r *= t.shape()[d];
  return r;
}

int64_t fan_in(const Tensor& t) {
  LOWBIT_CHECK(t.dim() >= 2, "init: fan_in needs at least 2 dims, got ", shape_str(t.shape()));
  return t.shape()[1] * receptive(t);
}

int64_t fan_out(const Tensor& t) {
  LOWBIT_CHECK(t.dim() >= 2, "init: fan_out needs at least 2 dims, got ", shape_str(t.shape()));
  return t.shape()[0] * receptive(t);
}

void kaiming_normal_fan_out_(Tensor& t, Generator* gen) {
  normal_(t, 0.0f, std::sqrt(2.0f / (float)fan_out(t)), gen);
}

}  // namespace lowbit::nn::init
