// Counter-based random numbers (see generator.h for why).
#include "core/generator.h"

#include <cmath>

namespace lowbit {

uint64_t Generator::at(uint64_t i) const {
  // SplitMix64 finalizer of (seed-derived key + counter): a bijective mix with
  // full avalanche, good enough for initialisation, dropout and shuffling.
  uint64_t z = seed_ * 0x9E3779B97F4A7C15ull + (i + 1) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  // second round so that consecutive seeds give unrelated streams
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

Tensor uniform(const Shape& shape, float lo, float hi, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = Tensor::empty(shape);
  const int64_t n = t.numel();
  const uint64_t base = g.advance(n);
  float* p = t.data<float>();
#pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = lo + (hi - lo) * g.uniform_at(base + i);
  return t;
}

Tensor rand(const Shape& shape, Generator* gen) { return uniform(shape, 0.0f, 1.0f, gen); }

Tensor normal(const Shape& shape, float mean, float std, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = Tensor::empty(shape);
  const int64_t n = t.numel();
  const uint64_t base = g.advance(2 * (uint64_t)n);
  float* p = t.data<float>();
  // Box–Muller from two draws per element (the sine half is dropped so that
  // element i depends on draws 2i and 2i+1 only).
#pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double u1 = ((g.at(base + 2 * i) >> 11) + 1) * (1.0 / 9007199254740993.0);  // (0, 1]
    const double u2 = (g.at(base + 2 * i + 1) >> 11) * (1.0 / 9007199254740992.0);
    p[i] = mean + std * (float)(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  return t;
}

Tensor randn(const Shape& shape, Generator* gen) { return normal(shape, 0.0f, 1.0f, gen); }

}  // namespace lowbit
