// Every differentiable op: hand-computed values, a finite-difference
// gradient check on contiguous and non-contiguous inputs with odd sizes, and
// the error message for bad shapes. PyTorch agreement is in test_golden.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "core/autograd.h"
#include "core/ops.h"
#include "tests/test_util.h"
#include "tests/gradcheck.h"

using namespace lowbit;
using lowbit::testing::error_of;
using lowbit::testing::distinct_values;
using lowbit::testing::gradcheck;
using lowbit::testing::GradcheckOptions;
using lowbit::testing::noncontig;
using lowbit::testing::randn_away;

namespace {

Tensor rn(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, &g);
}

Tensor positive(const Shape& s, uint64_t seed, float lo = 0.5f, float hi = 2.0f) {
  Generator g(seed);
  return uniform(s, lo, hi, &g);
}

std::vector<float> vals(const Tensor& t) { return t.to_vector(); }


#define CHECK_GRAD(...)                       \
  do {                                        \
    std::string r__ = gradcheck(__VA_ARGS__); \
    CHECK_MESSAGE(r__.empty(), r__);          \
  } while (0)

}  // namespace

TEST_CASE("binary ops: values, broadcasting, gradients") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({10, 20, 30}, {3});
  CHECK(vals(add(a, b)) == std::vector<float>{11, 22, 33, 14, 25, 36});
  CHECK(vals(sub(a, b)) == std::vector<float>{-9, -18, -27, -6, -15, -24});
  CHECK(vals(mul(a, b)) == std::vector<float>{10, 40, 90, 40, 100, 180});
  CHECK(vals(div(b, Tensor::scalar(10))) == std::vector<float>{1, 2, 3});
  Tensor col = Tensor::from_vector({1, 2}, {2, 1});
  CHECK(add(col, b).shape() == Shape{2, 3});
  CHECK(vals(add(col, b)) == std::vector<float>{11, 21, 31, 12, 22, 32});

  using V = std::vector<Tensor>;
  for (auto op : {0, 1, 2, 3}) {
    CAPTURE(op);
    auto f = [op](const V& in) {
      switch (op) {
        case 0: return add(in[0], in[1]);
        case 1: return sub(in[0], in[1]);
        case 2: return mul(in[0], in[1]);
        default: return div(in[0], in[1]);
      }
    };
    CHECK_GRAD(f, {rn({3, 13}, 1), positive({3, 13}, 2)});
    CHECK_GRAD(f, {rn({4, 1, 13}, 3), positive({5, 1}, 4)});         // both broadcast
    CHECK_GRAD(f, {noncontig(rn({5, 7}, 5)), positive({7}, 6)});      // strided + row broadcast
    CHECK_GRAD(f, {rn({13}, 7), noncontig(positive({3, 13}, 8))});
  }
  CHECK_GRAD([](const V& in) { return mul(in[0], in[0]); }, {rn({17}, 9)});  // same tensor twice
  std::string err = error_of([&] { add(Tensor::zeros({2, 3}), Tensor::zeros({4})); });
  CHECK(err.find("[2, 3]") != std::string::npos);
  CHECK(err.find("[4]") != std::string::npos);
}

// Element (i0, i1, …) of a float view, read through its own strides.
float at(const Tensor& t, const std::vector<int64_t>& idx) {
  int64_t o = 0;
  for (size_t d = 0; d < idx.size(); ++d) o += idx[d] * t.strides()[d];
  return t.data<float>()[o];
}

TEST_CASE("binary ops on views whose dims merge into longer rows, and on views whose dims do not") {
  // The row walker merges dims that every operand walks as one; the result
  // must not depend on it. Each case: a · b against the product element by
  // element through the views' strides (4-d shapes, b broadcast to a).
  const Tensor base = rn({4, 6, 5, 2}, 11);
  struct Case {
    const char* name;
    Tensor a, b;
  };
  const Case cases[] = {
      {"K×C×1×1 by K×1×1×1", rn({4, 6, 1, 1}, 12), rn({4, 1, 1, 1}, 13)},
      {"K×C×R×S by K×1×1×1", rn({4, 6, 5, 2}, 14), rn({4, 1, 1, 1}, 15)},
      {"sliced dim 1", base.slice(1, 1, 4), rn({1, 3, 5, 2}, 16)},
      {"permuted", base.permute({1, 0, 3, 2}), rn({6, 4, 1, 5}, 17)},
      {"broadcast middle", base, rn({4, 1, 5, 1}, 18)},
      {"both broadcast", rn({4, 1, 5, 2}, 19), rn({1, 6, 1, 1}, 20)},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Tensor y = mul(c.a, c.b);
    const Shape& sh = y.shape();
    REQUIRE(sh.size() == 4);
    const Tensor ae = c.a.expand(sh), be = c.b.expand(sh);
    // The same walker copies views: contiguous() and to_vector() must agree too.
    const std::vector<float> v = ae.contiguous().to_vector();
    int bad_product = 0, bad_copy = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < sh[0]; ++i)
      for (int64_t j = 0; j < sh[1]; ++j)
        for (int64_t k = 0; k < sh[2]; ++k)
          for (int64_t l = 0; l < sh[3]; ++l) {
            bad_product += at(y, {i, j, k, l}) != at(ae, {i, j, k, l}) * at(be, {i, j, k, l});
            bad_copy += v[(size_t)n++] != at(ae, {i, j, k, l});
          }
    CHECK(bad_product == 0);
    CHECK(bad_copy == 0);
  }
}

TEST_CASE("unary ops: values and gradients") {
  using V = std::vector<Tensor>;
  Tensor x = Tensor::from_vector({-2, -0.5f, 0, 0.5f, 7}, {5});
  CHECK(vals(relu(x)) == std::vector<float>{0, 0, 0, 0.5f, 7});
  CHECK(vals(relu6(x)) == std::vector<float>{0, 0, 0, 0.5f, 6});
  CHECK(vals(abs(x)) == std::vector<float>{2, 0.5f, 0, 0.5f, 7});
  CHECK(vals(neg(x)) == std::vector<float>{2, 0.5f, -0.0f, -0.5f, -7});
  CHECK(vals(clamp(x, -1, 1)) == std::vector<float>{-1, -0.5f, 0, 0.5f, 1});
  CHECK(sigmoid(Tensor::scalar(0)).item() == doctest::Approx(0.5));
  CHECK(sigmoid(Tensor::scalar(-100)).item() == doctest::Approx(0.0));
  CHECK(tanh(Tensor::scalar(1)).item() == doctest::Approx(std::tanh(1.0)));
  CHECK(exp(Tensor::scalar(1)).item() == doctest::Approx(std::exp(1.0)));
  CHECK(log(Tensor::scalar(2)).item() == doctest::Approx(std::log(2.0)));
  CHECK(sqrt(Tensor::scalar(9)).item() == doctest::Approx(3.0));
  CHECK(pow(Tensor::scalar(2), 3).item() == doctest::Approx(8.0));
  CHECK(pow(Tensor::scalar(4), -0.5f).item() == doctest::Approx(0.5));

  const Shape sh{3, 13};
  CHECK_GRAD([](const V& in) { return neg(in[0]); }, {noncontig(rn(sh, 1))});
  CHECK_GRAD([](const V& in) { return exp(in[0]); }, {noncontig(rn(sh, 2))});
  CHECK_GRAD([](const V& in) { return log(in[0]); }, {noncontig(positive(sh, 3))});
  CHECK_GRAD([](const V& in) { return sqrt(in[0]); }, {noncontig(positive(sh, 4))});
  for (float e : {2.0f, 3.0f, -1.0f, 0.5f, 1.5f}) {
    CAPTURE(e);
    CHECK_GRAD([e](const V& in) { return pow(in[0], e); }, {noncontig(positive(sh, 5))});
  }
  CHECK_GRAD([](const V& in) { return abs(in[0]); }, {noncontig(randn_away(sh, 6, {0}))});
  CHECK_GRAD([](const V& in) { return clamp(in[0], -0.5f, 0.7f); }, {noncontig(randn_away(sh, 7, {-0.5f, 0.7f}))});
  CHECK_GRAD([](const V& in) { return relu(in[0]); }, {noncontig(randn_away(sh, 8, {0}))});
  CHECK_GRAD([](const V& in) { return relu6(in[0] * 4.0f); }, {noncontig(randn_away(sh, 9, {0, 1.5f}, 0.06f))});
  CHECK_GRAD([](const V& in) { return sigmoid(in[0]); }, {noncontig(rn(sh, 10))});
  CHECK_GRAD([](const V& in) { return tanh(in[0]); }, {noncontig(rn(sh, 11))});
  // contiguous too, odd length
  CHECK_GRAD([](const V& in) { return tanh(exp(in[0])); }, {rn({17}, 12)});
  // PyTorch's conventions at the kinks
  Tensor k = Tensor::from_vector({0, 6, -1, 1}, {4}).set_requires_grad();
  sum(relu6(k)).backward();
  CHECK(vals(k.grad()) == std::vector<float>{0, 0, 0, 1});
  Tensor c = Tensor::from_vector({-1, 1, 0}, {3}).set_requires_grad();
  sum(clamp(c, -1, 1)).backward();
  CHECK(vals(c.grad()) == std::vector<float>{1, 1, 1});
}

TEST_CASE("sum and mean over dims, keepdim") {
  using V = std::vector<Tensor>;
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(sum(a).item() == 21);
  CHECK(vals(sum(a, {0})) == std::vector<float>{5, 7, 9});
  CHECK(vals(sum(a, {1}, true)) == std::vector<float>{6, 15});
  CHECK(sum(a, {1}, true).shape() == Shape{2, 1});
  CHECK(mean(a).item() == doctest::Approx(3.5));
  CHECK(vals(mean(a, {-1})) == std::vector<float>{2, 5});
  CHECK_GRAD([](const V& in) { return sum(in[0]); }, {noncontig(rn({3, 13}, 1))});
  CHECK_GRAD([](const V& in) { return sum(in[0], {0, 2}, true); }, {rn({3, 5, 13}, 2)});
  CHECK_GRAD([](const V& in) { return mean(in[0], {1}); }, {noncontig(rn({3, 5, 7}, 3))});
  CHECK_GRAD([](const V& in) { return mean(in[0]); }, {noncontig(rn({13, 3}, 4))});
  CHECK(error_of([&] { sum(a, {2}); }).find("out of range") != std::string::npos);
}

TEST_CASE("max and argmax over a dim") {
  using V = std::vector<Tensor>;
  Tensor a = Tensor::from_vector({1, 9, 3, 4, 2, 6}, {2, 3});
  CHECK(vals(max(a, 1)) == std::vector<float>{9, 6});
  CHECK(vals(argmax(a, 1)) == std::vector<float>{1, 2});
  CHECK(vals(argmax(a, 0)) == std::vector<float>{1, 0, 1});
  CHECK(argmax(a, 0).dtype() == DType::s32);
  CHECK(max(a, 0, true).shape() == Shape{1, 3});
  // first maximum wins on ties
  CHECK(vals(argmax(Tensor::from_vector({2, 5, 5}, {3}), 0)) == std::vector<float>{1});
  CHECK_GRAD([](const V& in) { return max(in[0], 1); }, {noncontig(distinct_values({4, 13}, 1))});
  CHECK_GRAD([](const V& in) { return max(in[0], 0, true); }, {distinct_values({5, 3, 7}, 2)});
}

TEST_CASE("matmul and linear") {
  using V = std::vector<Tensor>;
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector({1, 0, 0, 1, 1, 1}, {3, 2});
  CHECK(vals(matmul(a, b)) == std::vector<float>{4, 5, 10, 11});
  CHECK(vals(matmul(Tensor::from_vector({1, 1, 1}, {3}), b)) == std::vector<float>{2, 2});
  CHECK(matmul(rn({4, 1, 2, 3}, 1), rn({5, 3, 7}, 2)).shape() == Shape{4, 5, 2, 7});
  CHECK_GRAD([](const V& in) { return matmul(in[0], in[1]); }, {rn({5, 13}, 1), rn({13, 3}, 2)});
  CHECK_GRAD([](const V& in) { return matmul(in[0], in[1]); }, {noncontig(rn({5, 13}, 3)), noncontig(rn({13, 3}, 4))});
  CHECK_GRAD([](const V& in) { return matmul(in[0], in[1]); }, {rn({2, 1, 3, 5}, 5), rn({3, 5, 4}, 6)});
  CHECK_GRAD([](const V& in) { return matmul(in[0], in[1]); }, {rn({7}, 7), rn({7, 3}, 8)});
  CHECK_GRAD([](const V& in) { return matmul(in[0], in[1]); }, {rn({3, 7}, 9), rn({7}, 10)});
  std::string err = error_of([&] { matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})); });
  CHECK(err.find("[2, 3]") != std::string::npos);
  CHECK(err.find("[4, 5]") != std::string::npos);

  Tensor w = Tensor::from_vector({1, 0, 1, 0, 1, 0}, {2, 3});
  Tensor bias = Tensor::from_vector({10, 20}, {2});
  CHECK(vals(linear(a, w, bias)) == std::vector<float>{14, 22, 20, 25});
  CHECK_GRAD([](const V& in) { return linear(in[0], in[1], in[2]); }, {rn({5, 13}, 11), rn({3, 13}, 12), rn({3}, 13)});
  CHECK_GRAD([](const V& in) { return linear(in[0], in[1]); }, {noncontig(rn({2, 4, 13}, 14)), noncontig(rn({3, 13}, 15))});
  err = error_of([&] { linear(Tensor::zeros({2, 5}), Tensor::zeros({3, 4})); });
  CHECK(err.find("[2, 5]") != std::string::npos);
  CHECK(err.find("[3, 4]") != std::string::npos);
}

TEST_CASE("conv2d: values, stride, padding, dilation, groups, gradients") {
  using V = std::vector<Tensor>;
  // 1×1×3×3 input, 1×1×2×2 all-ones filter: sums of 2×2 windows.
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = Tensor::ones({1, 1, 2, 2});
  CHECK(vals(conv2d(x, w)) == std::vector<float>{12, 16, 24, 28});
  CHECK(vals(conv2d(x, w, Tensor::from_vector({1}, {1}), Conv2dOptions::make(2, 1))) ==
        std::vector<float>{2, 6, 12, 29});
  struct Case { Shape x, w; Conv2dOptions o; bool bias; };
  const Case cases[] = {
      {{2, 3, 7, 6}, {5, 3, 3, 3}, Conv2dOptions::make(1, 1), true},
      {{1, 4, 9, 9}, {6, 2, 3, 3}, Conv2dOptions::make(2, 1, 1, 2), false},        // groups, stride 2
      {{1, 13, 7, 7}, {13, 1, 3, 3}, Conv2dOptions::make(1, 1, 1, 13), true},      // depthwise, 13 channels
      {{1, 3, 9, 8}, {4, 3, 3, 3}, Conv2dOptions::make(1, 2, 2), true},            // dilation 2
      {{2, 5, 4, 5}, {3, 5, 1, 1}, Conv2dOptions::make(1, 0), false},              // 1×1
      {{1, 2, 6, 7}, {2, 2, 5, 3}, {2, 1, 2, 1, 1, 1, 1}, true},                   // asymmetric
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.x));
    CAPTURE(shape_str(c.w));
    const Conv2dOptions o = c.o;
    V in{rn(c.x, seed++), rn(c.w, seed++), c.bias ? rn({c.w[0]}, seed++) : Tensor()};
    CHECK_GRAD([o](const V& i) { return conv2d(i[0], i[1], i[2], o); }, in);
  }
  CHECK_GRAD([](const V& i) { return conv2d(i[0], i[1], i[2], Conv2dOptions::make(1, 1)); },
             {noncontig(rn({1, 3, 5, 6}, 40)), noncontig(rn({4, 3, 3, 3}, 41)), rn({4}, 42)});
  std::string err = error_of([&] { conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({4, 1, 3, 3})); });
  CHECK(err.find("[1, 3, 8, 8]") != std::string::npos);
  CHECK(err.find("[4, 1, 3, 3]") != std::string::npos);
}

TEST_CASE("pooling: max, avg, adaptive avg") {
  using V = std::vector<Tensor>;
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 1, 4, 4});
  CHECK(vals(max_pool2d(x, Pool2dOptions::make(2))) == std::vector<float>{6, 8, 14, 16});
  CHECK(vals(avg_pool2d(x, Pool2dOptions::make(2))) == std::vector<float>{3.5f, 5.5f, 11.5f, 13.5f});
  CHECK(vals(adaptive_avg_pool2d(x, 1, 1)) == std::vector<float>{8.5f});
  CHECK(max_pool2d(rn({1, 1, 5, 5}, 1), {2, 2, 2, 2, 0, 0, true}).shape() == Shape{1, 1, 3, 3});
  CHECK(max_pool2d(rn({1, 1, 5, 5}, 1), Pool2dOptions::make(2)).shape() == Shape{1, 1, 2, 2});

  CHECK_GRAD([](const V& i) { return max_pool2d(i[0], Pool2dOptions::make(3, 2, 1)); },
             {noncontig(distinct_values({2, 3, 7, 7}, 2, 0.03f))});
  CHECK_GRAD([](const V& i) { return max_pool2d(i[0], {2, 2, 2, 2, 0, 0, true}); }, {distinct_values({1, 13, 5, 5}, 3)});
  CHECK_GRAD([](const V& i) { return avg_pool2d(i[0], Pool2dOptions::make(3, 2, 1)); }, {noncontig(rn({2, 3, 7, 7}, 4))});
  Pool2dOptions no_pad = Pool2dOptions::make(3, 2, 1);
  no_pad.count_include_pad = false;
  no_pad.ceil_mode = true;
  CHECK_GRAD([no_pad](const V& i) { return avg_pool2d(i[0], no_pad); }, {rn({1, 13, 6, 6}, 5)});
  CHECK_GRAD([](const V& i) { return adaptive_avg_pool2d(i[0], 3, 2); }, {noncontig(rn({2, 3, 7, 5}, 6))});
  CHECK_GRAD([](const V& i) { return adaptive_avg_pool2d(i[0], 1, 1); }, {rn({2, 13, 4, 4}, 7)});
}

TEST_CASE("batch_norm: train updates running stats, eval uses them, gradients") {
  using V = std::vector<Tensor>;
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2, 1});  // channel 0: 1,2,5,6; channel 1: 3,4,7,8
  Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.1f, 0.0f);
  // channel 0 mean 3.5, biased var 4.25, unbiased 17/3
  CHECK(y.to_vector()[0] == doctest::Approx((1 - 3.5) / std::sqrt(4.25)));
  CHECK(rm.to_vector()[0] == doctest::Approx(0.35));
  CHECK(rv.to_vector()[0] == doctest::Approx(0.9 + 0.1 * 17.0 / 3.0));
  Tensor ye = batch_norm(x, rm, rv, Tensor(), Tensor(), false, 0.1f, 0.0f);
  CHECK(ye.to_vector()[0] == doctest::Approx((1 - 0.35) / std::sqrt(0.9 + 0.1 * 17.0 / 3.0)));

  for (bool training : {true, false}) {
    CAPTURE(training);
    Tensor rm2 = rn({13}, 1), rv2 = positive({13}, 2);
    CHECK_GRAD([=](const V& i) { return batch_norm(i[0], rm2.clone(), rv2.clone(), i[1], i[2], training); },
               {noncontig(rn({3, 13, 4, 5}, 3)), positive({13}, 4), rn({13}, 5)});
    CHECK_GRAD([=](const V& i) { return batch_norm(i[0], rm2.clone(), rv2.clone(), Tensor(), Tensor(), training); },
               {rn({5, 13}, 6)});
  }
  std::string err = error_of([&] { batch_norm(Tensor::zeros({2, 3, 4, 4}), Tensor::zeros({4}), Tensor::ones({4}),
                                              Tensor(), Tensor(), true); });
  CHECK(err.find("[4]") != std::string::npos);
  CHECK(err.find("[2, 3, 4, 4]") != std::string::npos);
}

TEST_CASE("batch_norm with an input scale equals batch_norm of the scaled input; its gradients") {
  using V = std::vector<Tensor>;
  // Scales of both signs and magnitudes (the QAT conv+BN passes σ/γ, negative where γ is).
  Tensor s0 = Tensor::from_vector({0.5f, -2.0f, 3.0f, 0.25f, -0.7f, 1.5f, 4.0f}, {7});
  for (bool training : {true, false}) {
    for (Activation act : {Activation::none, Activation::relu6}) {
      CAPTURE(training);
      CAPTURE(int(act));
      // eps 0.5: large enough that the training-mode scale gradient (an eps term) is checked too.
      const float eps = 0.5f;
      Tensor rm = rn({7}, 21), rv = positive({7}, 22);
      if (act == Activation::none)  // (finite differences across relu6's kinks would not agree; the composition check covers it)
        CHECK_GRAD([=](const V& i) { return batch_norm(i[0], rm.clone(), rv.clone(), i[1], i[2], training, 0.1f, eps, act, i[3]); },
                 {noncontig(rn({3, 7, 4, 5}, 23)), positive({7}, 24), rn({7}, 25), s0.clone()});
      // Against the composition batch_norm(x·s): output, running stats and every gradient.
      Tensor seed = rn({3, 7, 4, 5}, 26);
      struct Run {
        Tensor y, x, w, b, s, rm, rv;
      };
      auto run = [&](bool fused) {
        Run r{Tensor(), rn({3, 7, 4, 5}, 27), positive({7}, 28), rn({7}, 29), s0.clone(), rm.clone(), rv.clone()};
        for (Tensor* t : {&r.x, &r.w, &r.b, &r.s}) t->set_requires_grad(true);
        r.y = fused ? batch_norm(r.x, r.rm, r.rv, r.w, r.b, training, 0.1f, 1e-5f, act, r.s)
                    : batch_norm(mul(r.x, r.s.view({1, 7, 1, 1})), r.rm, r.rv, r.w, r.b, training, 0.1f, 1e-5f, act);
        sum(mul(r.y, seed)).backward();
        return r;
      };
      Run f = run(true), u = run(false);
      auto close = [](const Tensor& a, const Tensor& b, double tol) {
        auto va = a.to_vector(), vb = b.to_vector();
        if (va.size() != vb.size()) return false;
        for (size_t i = 0; i < va.size(); ++i)
          if (std::fabs(va[i] - vb[i]) > tol * (1 + std::fabs(vb[i]))) return false;
        return true;
      };
      CHECK(close(f.y, u.y, 1e-5));
      CHECK(close(f.rm, u.rm, 1e-5));
      CHECK(close(f.rv, u.rv, 1e-5));
      CHECK(close(f.x.grad(), u.x.grad(), 1e-4));
      CHECK(close(f.w.grad(), u.w.grad(), 1e-4));
      CHECK(close(f.b.grad(), u.b.grad(), 1e-4));
      CHECK(close(f.s.grad(), u.s.grad(), 1e-3));
    }
  }
  std::string err = error_of([&] { batch_norm(Tensor::zeros({2, 3, 4, 4}), Tensor(), Tensor(), Tensor(), Tensor(), true,
                                              0.1f, 1e-5f, Activation::none, Tensor::ones({2})); });
  CHECK(err.find("input_scale") != std::string::npos);
}

TEST_CASE("batch_norm with a fused relu/relu6 equals the unfused composition bit for bit") {
  auto bits = [](const Tensor& a, const Tensor& b) {
    auto va = a.to_vector(), vb = b.to_vector();
    return va.size() == vb.size() && std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0;
  };
  for (Activation act : {Activation::relu, Activation::relu6}) {
    for (bool training : {true, false}) {
      CAPTURE(int(act));
      CAPTURE(training);
      // Weight ~3 and bias ~3: outputs spread over about [-6, 12], so relu6 gates at both edges.
      Tensor x0 = noncontig(rn({4, 7, 5, 3}, 11)), w0 = positive({7}, 12, 2.0f, 4.0f), b0 = add(rn({7}, 13), 3.0f);
      Tensor seed = rn({4, 7, 5, 3}, 14);
      struct Run {
        Tensor y, x, w, b, rm, rv;
      };
      auto run = [&](bool fused) {
        Run r{Tensor(), x0.detach().clone(), w0.detach().clone(), b0.detach().clone(), rn({7}, 15), positive({7}, 16)};
        for (Tensor* t : {&r.x, &r.w, &r.b}) t->set_requires_grad(true);
        Tensor z = batch_norm(r.x, r.rm, r.rv, r.w, r.b, training, 0.1f, 1e-5f, fused ? act : Activation::none);
        r.y = fused ? z : (act == Activation::relu ? relu(z) : relu6(z));
        sum(mul(r.y, seed)).backward();
        return r;
      };
      Run f = run(true), u = run(false);
      CHECK(bits(f.y, u.y));
      CHECK(bits(f.x.grad(), u.x.grad()));
      CHECK(bits(f.w.grad(), u.w.grad()));
      CHECK(bits(f.b.grad(), u.b.grad()));
      CHECK(bits(f.rm, u.rm));
      CHECK(bits(f.rv, u.rv));
      // The case exercises the gates: some outputs clamped at 0 (and at 6 for relu6), most not.
      int64_t at0 = 0, at6 = 0;
      for (float v : f.y.to_vector()) at0 += v == 0.0f, at6 += v == 6.0f;
      CHECK(at0 > 0);
      CHECK(at0 < f.y.numel() / 2);
      if (act == Activation::relu6) CHECK(at6 > 0);
    }
  }
}

TEST_CASE("softmax and log_softmax") {
  using V = std::vector<Tensor>;
  Tensor x = Tensor::from_vector({1, 2, 3}, {3});
  std::vector<float> s = vals(softmax(x, 0));
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(s[0] == doctest::Approx(std::exp(1.0) / z));
  CHECK(vals(log_softmax(x, 0))[2] == doctest::Approx(3 - std::log(z)));
  CHECK(vals(softmax(Tensor::from_vector({1000, 1000}, {2}), 0))[0] == doctest::Approx(0.5));  // no overflow
  CHECK_GRAD([](const V& i) { return softmax(i[0], 1); }, {noncontig(rn({3, 13}, 1))});
  CHECK_GRAD([](const V& i) { return log_softmax(i[0], 0); }, {noncontig(rn({13, 3}, 2))});
  CHECK_GRAD([](const V& i) { return log_softmax(i[0], 1); }, {rn({2, 5, 3}, 3)});
}

TEST_CASE("losses: cross_entropy (label smoothing), mse, kl_div") {
  using V = std::vector<Tensor>;
  Tensor logits = Tensor::from_vector({0, 0, 0, 1, 2, 3}, {2, 3});
  Tensor t = Tensor::from_vector_s32({0, 2}, {2});
  const double l1 = std::log(3.0), l2 = -(3 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)));
  CHECK(cross_entropy(logits, t).item() == doctest::Approx((l1 + l2) / 2));
  Tensor tg = Tensor::from_vector_s32({4, 0, 12, 7, 1}, {5});
  for (float ls : {0.0f, 0.1f}) {
    CAPTURE(ls);
    CHECK_GRAD([=](const V& i) { return cross_entropy(i[0], tg, ls); }, {noncontig(rn({5, 13}, 1))});
    CHECK_GRAD([=](const V& i) { return cross_entropy(i[0], tg, ls, Reduction::none); }, {rn({5, 13}, 2)});
  }
  CHECK(error_of([&] { cross_entropy(logits, Tensor::from_vector_s32({0, 3}, {2})); }).find("out of range") !=
        std::string::npos);
  CHECK(mse_loss(Tensor::from_vector({1, 2}, {2}), Tensor::from_vector({3, 2}, {2})).item() == doctest::Approx(2.0));
  CHECK_GRAD([](const V& i) { return mse_loss(i[0], i[1]); }, {noncontig(rn({3, 13}, 3)), rn({3, 13}, 4)});
  CHECK_GRAD([](const V& i) { return mse_loss(i[0], i[1], Reduction::sum); }, {rn({7}, 5), rn({7}, 6)});
  // kl_div(log q, p) = Σ p (log p − log q)
  Tensor p = Tensor::from_vector({0.5f, 0.5f}, {1, 2}), q = Tensor::from_vector({0.25f, 0.75f}, {1, 2});
  CHECK(kl_div(log(q), p).item() == doctest::Approx(0.5 * std::log(2.0) + 0.5 * std::log(0.5 / 0.75)));
  CHECK_GRAD([](const V& i) { return kl_div(log_softmax(i[0], 1), softmax(i[1], 1)); },
             {noncontig(rn({4, 13}, 7)), rn({4, 13}, 8)});
}

TEST_CASE("shape ops: flatten, cat, pad, views") {
  using V = std::vector<Tensor>;
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector({5, 6}, {1, 2});
  CHECK(vals(cat({a, b}, 0)) == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(vals(cat({a, b.transpose(0, 1)}, 1)) == std::vector<float>{1, 2, 5, 3, 4, 6});
  CHECK(vals(pad(Tensor::from_vector({1, 2}, {1, 2}), {1, 0, 0, 1}, 9)) == std::vector<float>{9, 1, 2, 9, 9, 9});
  CHECK(flatten(rn({2, 3, 4, 5}, 1)).shape() == Shape{2, 60});
  CHECK(flatten(rn({2, 3, 4, 5}, 1), 0, 1).shape() == Shape{6, 4, 5});
  CHECK_GRAD([](const V& i) { return flatten(i[0]); }, {noncontig(rn({2, 3, 5}, 2))});
  CHECK_GRAD([](const V& i) { return cat({i[0], i[1], i[0]}, 1); }, {noncontig(rn({3, 4}, 3)), rn({3, 13}, 4)});
  CHECK_GRAD([](const V& i) { return pad(i[0], {1, 2, 0, 3}, 0.5f); }, {noncontig(rn({2, 3, 5}, 5))});
  CHECK_GRAD([](const V& i) { return i[0].permute({2, 0, 1}).slice(1, 1, 3).reshape({-1}); }, {rn({3, 4, 5}, 6)});
  CHECK_GRAD([](const V& i) { return i[0].slice(0, 0, 13, 3).select(1, 2).unsqueeze(0).expand({4, 5}); }, {rn({13, 3}, 7)});
  CHECK(error_of([&] { cat({a, Tensor::zeros({2, 3})}, 0); }).find("[2, 3]") != std::string::npos);
}

TEST_CASE("dropout: seeded, scaled, identity in eval") {
  Tensor x = Tensor::ones({1000});
  Generator g1(7), g2(7);
  Tensor y1 = dropout(x, 0.25f, true, &g1), y2 = dropout(x, 0.25f, true, &g2);
  CHECK(vals(y1) == vals(y2));
  int zeros = 0;
  for (float v : vals(y1)) {
    CHECK((v == 0.0f || v == doctest::Approx(1.0f / 0.75f)));
    zeros += v == 0.0f;
  }
  CHECK(zeros > 180);
  CHECK(zeros < 320);
  CHECK(dropout(x, 0.5f, false).same_storage(x));
  Tensor xg = rn({50}, 3).set_requires_grad();
  Generator g3(9);
  Tensor y = dropout(xg, 0.5f, true, &g3);
  y.backward(Tensor::ones({50}));
  std::vector<float> gy = vals(xg.grad()), yv = vals(y);
  for (int i = 0; i < 50; ++i) CHECK(gy[i] == doctest::Approx(yv[i] == 0 ? 0.0 : 2.0));
  // a fresh generator with the same seed per call gives the same mask, so the
  // finite difference sees a fixed linear map
  CHECK_GRAD([](const std::vector<Tensor>& i) {
    Generator g(11);
    return dropout(i[0], 0.3f, true, &g);
  }, {noncontig(rn({7, 13}, 4))});
}
