// Seeded random numbers, reproducible across runs and thread counts: the
// value drawn for element i of a call depends only on (seed, counter + i),
// never on which thread computes it (a counter-based generator, SplitMix64
// finalizer over a 64-bit counter, as Philox-style generators do).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace lowbit {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) { seed_ = seed; counter_ = 0; }
  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }
  void set_counter(uint64_t c) { counter_ = c; }

  // Reserve n draws; returns the first counter value of the block.
  uint64_t advance(uint64_t n) { uint64_t c = counter_; counter_ += n; return c; }
  // The i-th 64-bit value of the stream (pure function of seed and i).
  uint64_t at(uint64_t i) const;
  // Uniform in [0, 1) with 24 random bits, from stream position i.
  float uniform_at(uint64_t i) const { return (float)(at(i) >> 40) * (1.0f / 16777216.0f); }

  uint64_t next_u64() { return at(advance(1)); }
  float next_uniform() { return uniform_at(advance(1)); }

 private:
  uint64_t seed_ = 0;
  uint64_t counter_ = 0;
};

// The process-wide default generator (`manual_seed` as torch.manual_seed).
Generator& default_generator();
void manual_seed(uint64_t seed);

Tensor rand(const Shape& shape, Generator* gen = nullptr);   // U[0,1)
Tensor randn(const Shape& shape, Generator* gen = nullptr);  // N(0,1), Box–Muller
Tensor uniform(const Shape& shape, float lo, float hi, Generator* gen = nullptr);
Tensor normal(const Shape& shape, float mean, float std, Generator* gen = nullptr);

}  // namespace lowbit
