// Tensor: storage, views, strides, dtype conversion, factories, printing, RNG.
#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>

#include "core/ops.h"

using namespace lowbit;

TEST_CASE("factories, dtypes and aligned storage") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.strides() == Shape{3, 1});
  CHECK(z.numel() == 6);
  CHECK(reinterpret_cast<uintptr_t>(z.data<float>()) % 64 == 0);
  CHECK(Tensor::ones({3}).to_vector() == std::vector<float>{1, 1, 1});
  CHECK(Tensor::full({2}, 2.5).to_vector() == std::vector<float>{2.5f, 2.5f});
  CHECK(Tensor::arange(4).to_vector() == std::vector<float>{0, 1, 2, 3});
  for (DType t : {DType::f32, DType::s32, DType::s8, DType::u8}) {
    Tensor e = Tensor::zeros({5}, t);
    CHECK(e.dtype() == t);
    CHECK(e.impl()->storage->nbytes == 5 * dtype_size(t));
  }
  CHECK_THROWS_AS(Tensor::zeros({2}).data<int8_t>(), Error);
  CHECK_THROWS_AS(Tensor::zeros({-1}), Error);
}

TEST_CASE("dtype conversion rounds half to even and saturates") {
  Tensor x = Tensor::from_vector({-300, -128.5f, -0.5f, 0.5f, 1.5f, 2.5f, 126.6f, 300}, {8});
  CHECK(x.to(DType::s8).to_vector() == std::vector<float>{-128, -128, 0, 0, 2, 2, 127, 127});
  CHECK(x.to(DType::u8).to_vector() == std::vector<float>{0, 0, 0, 0, 2, 2, 127, 255});
  CHECK(x.to(DType::s32).to(DType::f32).to_vector()[7] == 300);
}

TEST_CASE("views share storage and the version counter") {
  Tensor a = Tensor::arange(24).view({2, 3, 4});
  Tensor t = a.transpose(0, 2);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.same_storage(a));
  CHECK(t.contiguous().is_contiguous());
  CHECK(t.contiguous().to_vector()[1] == 12);
  Tensor s = a.slice(2, 1, 4, 2);  // columns 1 and 3
  CHECK(s.shape() == Shape{2, 3, 2});
  CHECK(s.to_vector() == std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
  CHECK(a.select(1, -1).to_vector() == std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23});
  const uint64_t v0 = a.version();
  s.fill_(0);
  CHECK(a.version() == v0 + 1);
  CHECK(a.to_vector()[1] == 0);
  CHECK(a.to_vector()[2] == 2);
  // view needs compatible strides; reshape copies when it must
  CHECK_THROWS_AS(t.view({24}), Error);
  CHECK(t.reshape({24}).to_vector()[1] == 12);
  CHECK(a.view({6, -1}).shape() == Shape{6, 4});
  CHECK(Tensor::zeros({3, 1}).expand({2, 3, 4}).strides() == Shape{0, 1, 0});
  CHECK_THROWS_AS(a.view({5, -1}), Error);
  CHECK_THROWS_AS(a.permute({0, 0, 1}), Error);
}

TEST_CASE("copy_ broadcasts and converts") {
  Tensor dst = Tensor::zeros({2, 3});
  dst.copy_(Tensor::from_vector({1, 2, 3}, {3}));
  CHECK(dst.to_vector() == std::vector<float>{1, 2, 3, 1, 2, 3});
  CHECK_THROWS_AS(dst.copy_(Tensor::zeros({4})), Error);
  Tensor q = Tensor::zeros({3}, DType::u8);
  q.copy_(Tensor::from_vector({-1, 3.5f, 999}, {3}));
  CHECK(q.to_vector() == std::vector<float>{0, 4, 255});
}

TEST_CASE("printing") {
  std::ostringstream os;
  os << Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  CHECK(os.str() == "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]])");
  std::ostringstream os2;
  os2 << Tensor::zeros({2}, DType::s8);
  CHECK(os2.str() == "tensor([0, 0], dtype=s8)");
}

TEST_CASE("generator: seeded, reproducible, sane statistics") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = randn({10000}, &g1), b = randn({10000}, &g2), c = randn({10000}, &g3);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  CHECK(mean(a).item() == doctest::Approx(0.0).epsilon(0.03).scale(1));
  CHECK(mean(mul(a, a)).item() == doctest::Approx(1.0).epsilon(0.05));
  Tensor u = rand({10000}, &g1);
  CHECK(mean(u).item() == doctest::Approx(0.5).epsilon(0.02));
  // the stream is a function of (seed, position): drawing in two calls gives
  // the same numbers as drawing in one call
  Generator h1(5), h2(5);
  Tensor whole = rand({100}, &h1);
  Tensor part1 = rand({40}, &h2), part2 = rand({60}, &h2);
  CHECK(cat({part1, part2}, 0).to_vector() == whole.to_vector());
  // manual_seed resets the default generator
  manual_seed(3);
  Tensor r1 = randn({5});
  manual_seed(3);
  CHECK(randn({5}).to_vector() == r1.to_vector());
}

TEST_CASE("AllocationLimit: counts this thread's tensor storage and refuses past the limit, naming it") {
  {
    AllocationLimit outer(int64_t(8) << 20, "the outer thing");
    Tensor a = Tensor::zeros({1 << 18});  // 1 MB
    CHECK(outer.allocated() >= (int64_t(1) << 20));
    {
      AllocationLimit inner(int64_t(1) << 20, "the test model");
      CHECK_THROWS_WITH_AS(Tensor::zeros({1 << 19}), doctest::Contains("the test model needs more than 0.00 GB"),
                           AllocationLimitError);
    }
    CHECK_THROWS_AS(Tensor::zeros({3 << 20}), AllocationLimitError);  // 12 MB: past the outer 8 MB
  }
  CHECK(Tensor::zeros({3 << 20}).numel() == (3 << 20));  // no limit once they are gone
}
