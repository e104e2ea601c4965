// The autograd engine: accumulation, retain_graph, NoGradGuard, version
// checks, freed graphs, diamond graphs, leaf rules; the gradient checker
// itself (it must fail on wrong and non-finite gradients).
#include <doctest/doctest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "tests/gradcheck.h"
#include "tests/test_util.h"

using namespace lowbit;
using lowbit::testing::error_of;

TEST_CASE("backward accumulates into leaves across calls") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad();
  sum(mul(x, x)).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{2, 4, 6});
  sum(mul(x, 3.0f)).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{5, 7, 9});
  CHECK(x.is_leaf());
  CHECK_FALSE(mul(x, 2.0f).is_leaf());
}

TEST_CASE("diamond graph sums both paths") {
  Tensor x = Tensor::from_vector({2}, {1}).set_requires_grad();
  Tensor a = mul(x, 3.0f), b = exp(x);
  Tensor y = add(mul(a, b), a);  // 3x·eˣ + 3x  → 3eˣ + 3x·eˣ + 3
  y.backward(Tensor::ones({1}));
  CHECK(x.grad().item() == doctest::Approx(3 * std::exp(2.0) + 6 * std::exp(2.0) + 3));
}

TEST_CASE("NoGradGuard records nothing") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  {
    NoGradGuard g;
    Tensor y = mul(x, 2.0f);
    CHECK_FALSE(y.requires_grad());
    CHECK(!grad_enabled());
  }
  CHECK(grad_enabled());
  CHECK(mul(x, 2.0f).requires_grad());
}

TEST_CASE("retain_graph and backward through a freed graph") {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  Tensor y = sum(exp(x));
  y.backward(Tensor(), true);
  y.backward();
  CHECK(x.grad().to_vector()[0] == doctest::Approx(2 * std::exp(1.0)));
  std::string err = error_of([&] { y.backward(); });
  CHECK(err.find("second time") != std::string::npos);
}

TEST_CASE("in-place write to a saved tensor is detected") {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  Tensor w = Tensor::from_vector({3, 4}, {2});
  Tensor y = sum(mul(x, w));
  w.fill_(0);  // w was saved by mul for x's gradient
  std::string err = error_of([&] { y.backward(); });
  CHECK(err.find("modified in place") != std::string::npos);
  // a write through a view bumps the shared counter too
  Tensor v = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor y2 = sum(mul(x, v.select(0, 0)));
  v.select(0, 1).fill_(7);
  CHECK(error_of([&] { y2.backward(); }).find("modified in place") != std::string::npos);
}

TEST_CASE("leaf rules and error messages") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  CHECK(error_of([&] { x.fill_(3); }).find("leaf") != std::string::npos);
  {
    NoGradGuard g;
    x.fill_(3);  // allowed: optimizers update parameters this way
  }
  CHECK(x.to_vector()[0] == 3);
  Tensor y = mul(x, 2.0f);
  CHECK(error_of([&] { y.fill_(0); }).find("autograd graph") != std::string::npos);
  CHECK(error_of([&] { y.backward(); }).find("single value") != std::string::npos);
  CHECK(error_of([&] { Tensor::ones({1}).backward(); }).find("does not require grad") != std::string::npos);
  CHECK_THROWS_AS(Tensor::zeros({2}, DType::s8).set_requires_grad(), Error);
}

TEST_CASE("gradients skip inputs that do not need them") {
  Tensor x = Tensor::ones({3}).set_requires_grad();
  Tensor c = Tensor::ones({3});
  sum(mul(x, c)).backward();
  CHECK(x.grad().defined());
  CHECK_FALSE(c.grad().defined());
  Tensor d = mul(x, 2.0f).detach();
  CHECK_FALSE(d.requires_grad());
}

namespace {

// y = x, with a backward that multiplies the gradient by `factor`: a
// deliberately wrong gradient for checking the gradient checker itself.
struct ScaledIdentityNode final : Node {
  explicit ScaledIdentityNode(float f) : factor(f) {}
  float factor;
  const char* name() const override { return "ScaledIdentity"; }
  std::vector<Tensor> backward(const Tensor& grad) override { return {grad * factor}; }
};

Tensor scaled_identity(const Tensor& x, float factor) {
  Tensor y;
  {
    NoGradGuard ng;
    y = x.clone();
  }
  if (x.requires_grad() && grad_enabled()) record(y, std::make_shared<ScaledIdentityNode>(factor), {&x});
  return y;
}

using V = std::vector<Tensor>;

}  // namespace

TEST_CASE("gradcheck fails on a wrong, NaN or infinite gradient and on a non-finite output") {
  Generator g(3);
  const Tensor x = randn({13, 3}, &g);
  auto mean_of = [](float factor) { return [factor](const V& i) { return mean(scaled_identity(i[0], factor)); }; };
  CHECK(lowbit::testing::gradcheck(mean_of(1.0f), {x}).empty());
  // 5% off on gradients of size 1/39: inside the old fixed atol of 2e-3.
  CHECK_FALSE(lowbit::testing::gradcheck(mean_of(1.05f), {x}).empty());
  CHECK_FALSE(lowbit::testing::gradcheck(mean_of(NAN), {x}).empty());
  CHECK_FALSE(lowbit::testing::gradcheck(mean_of(INFINITY), {x}).empty());
  CHECK_FALSE(lowbit::testing::gradcheck([](const V& i) { return i[0] * NAN; }, {x}).empty());
}

TEST_CASE("gradients of the view and copy ops: clone, transpose, view, squeeze, sum_to") {
  using lowbit::testing::gradcheck;
  using lowbit::testing::noncontig;
  Generator g(5);
  const Tensor x = randn({3, 1, 5}, &g);
  CHECK(gradcheck([](const V& i) { return i[0].clone(); }, {noncontig(x)}).empty());
  CHECK(gradcheck([](const V& i) { return i[0].transpose(0, 2); }, {x}).empty());
  CHECK(gradcheck([](const V& i) { return i[0].view({5, 3}); }, {x}).empty());
  CHECK(gradcheck([](const V& i) { return i[0].squeeze(1); }, {x}).empty());
  CHECK(gradcheck([](const V& i) { return i[0].squeeze(1).unsqueeze(0); }, {noncontig(x)}).empty());
  CHECK(gradcheck([](const V& i) { return sum_to(i[0], {1, 1, 5}); }, {x}).empty());
  CHECK(gradcheck([](const V& i) { return sum_to(i[0], {3, 1, 1}); }, {noncontig(x)}).empty());
  CHECK(gradcheck([](const V& i) { return sum_to(i[0], {5}); }, {x}).empty());
}
