// The reference kernels against values computed by hand or by a direct
// (non-lowered) loop, plus CPU detection and path selection.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"
#include "tests/kernels/kernel_test_util.h"

using namespace lowbit::kernels;
using namespace lowbit::kernels::testing;

// ---- CPU features and dispatch ---------------------------------------------

TEST_CASE("cpu_features is consistent with the ISA paths") {
  const CpuFeatures& f = cpu_features();
#if defined(__x86_64__)
  CHECK_FALSE(f.neon);
  CHECK_FALSE(f.dotprod);
  // Every AVX2 CPU shipped so far has FMA3; the avx2 path relies on both.
  if (f.avx2) CHECK(f.fma);
  if (f.avx512bw || f.avx512vl || f.avx512vnni) CHECK(f.avx512f);
  // Built by meson on x86-64, so availability is exactly the CPU check.
  CHECK(isa_built(Isa::avx2));
  CHECK(isa_available(Isa::avx2) == (f.avx2 && f.fma));
#if defined(__AVX2__)
  CHECK(f.avx2);  // this test binary itself was compiled for AVX2
#endif
#elif defined(__aarch64__)
  CHECK_FALSE(f.avx2);
  CHECK(f.neon);  // ASIMD is mandatory on AArch64 Linux
  CHECK(isa_available(Isa::neon));
  CHECK(isa_available(Isa::neondot) == f.dotprod);
#endif
  CHECK(isa_available(Isa::ref));
  for (Isa i : {Isa::ref, Isa::avx2, Isa::avxvnni, Isa::avx512vnni, Isa::neon, Isa::neondot})
    if (isa_available(i)) CHECK(isa_built(i));
}

TEST_CASE("kernel names: family, tile and ISA, from the kernel's own constants") {
  CHECK(tile_name(6, 16, 2) == "6x16c2");
  CHECK(tile_name(6, 16, 1) == "6x16");
  CHECK(kernel_name(std::string("qu8-x")) == kernel_name("qu8-x"));  // interned: one pointer per name
  for (Isa i : {Isa::ref, Isa::avx2, Isa::avxvnni, Isa::avx512vnni, Isa::neon, Isa::neondot}) {
    if (!isa_available(i)) continue;
    const KernelTable t = table_for(i);
    INFO(isa_name(i));
    const std::string gemm = t.q8.gemm_path, conv = t.q8.conv_path, dw = t.q8.depthwise_path;
    CHECK(gemm.rfind("qu8-qc8w-gemm-", 0) == 0);
    CHECK((conv.rfind("qu8-qc8w-igemm-", 0) == 0 || conv.rfind("qu8-qc8w-conv-", 0) == 0));
    CHECK(dw.rfind("qu8-qc8w-dwconv-", 0) == 0);
    CHECK(std::string(t.f32.gemm_path).rfind("f32-gemm-", 0) == 0);
    for (const std::string& n : {gemm, conv, dw, std::string(t.q8.elementwise_path), std::string(t.f32.conv_path)})
      CHECK_MESSAGE(n.find(' ') == std::string::npos, "'", n, "' has a space");
    // The path's own GEMM (not one it inherits) carries its ISA name.
    if (i != Isa::ref) CHECK(gemm.find(std::string("-") + isa_name(i) + "-") != std::string::npos);
  }
}

TEST_CASE("neondot runs its own dot-product kernels, and the CI's CPU has them") {
  // A "neondot" table that silently ran neon's int8 GEMM would pass every
  // bit-exact test while testing nothing new.
  if (isa_built(Isa::neondot)) {
    const std::string gemm = table_for(Isa::neondot).q8.gemm_path;
    CHECK_MESSAGE(gemm.find("-neondot-sdot") != std::string::npos, "neondot table's int8 gemm is '", gemm, "'");
  }
  // tools/run sets this under qemu-aarch64 -cpu max, which has dotprod: the
  // neondot kernels must really run there, not be skipped.
  if (std::getenv("LOWBIT_EXPECT_DOTPROD")) {
    CHECK(cpu_features().dotprod);
    CHECK(isa_available(Isa::neondot));
  }
}

TEST_CASE("isa_from_name: valid names parse, unknown and unavailable names throw a clear error") {
  CHECK(isa_from_name("ref") == Isa::ref);
  for (Isa i : available_isas()) CHECK(isa_from_name(isa_name(i)) == i);

  std::string msg;
  try {
    isa_from_name("avx9000");
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("avx9000") != std::string::npos);
  CHECK(msg.find("unknown") != std::string::npos);
  CHECK(msg.find("ref, avx2, avxvnni, avx512vnni, neon, neondot") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);
  CHECK_THROWS_AS(isa_from_name(""), std::runtime_error);
  CHECK_THROWS_AS(isa_from_name(nullptr), std::runtime_error);

  for (Isa i : {Isa::avx2, Isa::avxvnni, Isa::avx512vnni, Isa::neon, Isa::neondot}) {
    if (isa_available(i)) continue;
    std::string m;
    try {
      isa_from_name(isa_name(i));
    } catch (const std::runtime_error& e) {
      m = e.what();
    }
    INFO(m);
    CHECK(m.find("not available") != std::string::npos);
    CHECK_THROWS_AS(table_for(i), std::runtime_error);
  }
}

TEST_CASE("table: built from the best path (or LOWBIT_ISA), names filled") {
  const KernelTable& t = table();
  CHECK(isa_available(t.isa));
  if (!std::getenv("LOWBIT_ISA")) CHECK(t.isa == best_isa());
  CHECK(t.f32.elementwise_path != nullptr);
  CHECK(t.f32.gemm_path != nullptr);
  CHECK(t.f32.conv_path != nullptr);
  const KernelTable r = table_for(Isa::ref);
  CHECK(std::string(r.f32.gemm_path) == "f32-gemm-ref");
  const bool ref_unary = r.f32.f32_unary == &ref::f32_unary;  // doctest can't print function pointers
  CHECK(ref_unary);
}

TEST_CASE("threads: set_num_threads round-trips and clamps to 1") {
  const int saved = num_threads();
  CHECK(saved >= 1);
  set_num_threads(3);
  CHECK(num_threads() == 3);
  set_num_threads(0);
  CHECK(num_threads() == 1);
  set_num_threads(saved);
}

// ---- elementwise and reductions by hand ---------------------------------------

TEST_CASE("ref unary/binary: hand values") {
  const float x[] = {-7.0f, -0.5f, 0.0f, 2.0f, 6.5f};
  float y[5];
  ref::f32_unary(y, x, Unary::relu6, 5);
  CHECK(std::vector<float>(y, y + 5) == std::vector<float>{0, 0, 0, 2, 6});
  ref::f32_unary(y, x, Unary::sigmoid, 5);
  CHECK(y[2] == 0.5f);
  CHECK(y[3] == doctest::Approx(1.0 / (1.0 + std::exp(-2.0))).epsilon(1e-7));
  const float big[] = {-200.0f, 200.0f};
  ref::f32_unary(y, big, Unary::sigmoid, 2);  // no inf/inf NaN at the extremes
  CHECK(y[0] == 0.0f);
  CHECK(y[1] == 1.0f);
  const float a[] = {1, 2, 3}, b = 10.0f;
  ref::f32_binary(y, a, 1, &b, 0, Binary::sub, 3);
  CHECK(std::vector<float>(y, y + 3) == std::vector<float>{-9, -8, -7});
  const float c[] = {1, 9, 2, 9, 3, 9};
  ref::f32_binary(y, a, 1, c, 2, Binary::mul, 3);  // strided b
  CHECK(std::vector<float>(y, y + 3) == std::vector<float>{1, 4, 9});
}

TEST_CASE("ref moments: biased variance, by hand") {
  // Channel 0 holds {1, 2, 3, 4} across two images, channel 1 {10, 10, 10, 10}.
  const float x[] = {1, 2, 10, 10, 3, 4, 10, 10};
  float mean[2], var[2];
  ref::f32_channel_moments(mean, var, x, 2, 2, 2);
  CHECK(mean[0] == 2.5f);
  CHECK(var[0] == 1.25f);
  CHECK(mean[1] == 10.0f);
  CHECK(var[1] == 0.0f);
}

TEST_CASE("ref gemm: small cases by hand, both transposes") {
  const float a[] = {1, 2, 3, 4, 5, 6};     // 2×3
  const float b[] = {1, 0, 0, 1, 2, 3};     // 3×2
  const float bt[] = {1, 0, 2, 0, 1, 3};    // (3×2)ᵀ stored 2×3
  const float at[] = {1, 4, 2, 5, 3, 6};    // (2×3)ᵀ stored 3×2
  const std::vector<float> want = {7, 11, 16, 23};
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      std::vector<float> c(4, 100.0f);
      ref::f32_gemm(c.data(), 2, ta ? at : a, ta ? 2 : 3, tb ? bt : b, tb ? 3 : 2, ta, tb, 0.0f, 2, 2, 3);
      CHECK(c == want);
      ref::f32_gemm(c.data(), 2, ta ? at : a, ta ? 2 : 3, tb ? bt : b, tb ? 3 : 2, ta, tb, 0.5f, 2, 2, 3);
      CHECK(c == std::vector<float>{10.5f, 16.5f, 24, 34.5f});
    }
}

// ---- convolution: ref lowering against a direct loop ----------------------------

namespace {

// Direct convolution, written from the definition (no im2col, no GEMM).
void direct_conv(std::vector<float>& y, const std::vector<float>& x, const std::vector<float>& w,
                 const Conv2dShape& sh) {
  const int64_t cg = sh.c / sh.groups, kg = sh.k / sh.groups, p = sh.p(), q = sh.q();
  y.assign(sh.n * sh.k * p * q, 0.0f);
  for (int64_t b = 0; b < sh.n; ++b)
    for (int64_t k = 0; k < sh.k; ++k)
      for (int64_t i = 0; i < p; ++i)
        for (int64_t j = 0; j < q; ++j) {
          double s = 0.0;
          const int64_t g = k / kg;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t r = 0; r < sh.r; ++r)
              for (int64_t t = 0; t < sh.s; ++t) {
                const int64_t ih = i * sh.stride_h - sh.pad_h + r * sh.dil_h;
                const int64_t iw = j * sh.stride_w - sh.pad_w + t * sh.dil_w;
                if (ih < 0 || ih >= sh.h || iw < 0 || iw >= sh.w) continue;
                s += double(x[((b * sh.c + g * cg + c) * sh.h + ih) * sh.w + iw]) *
                     w[((k * cg + c) * sh.r + r) * sh.s + t];
              }
          y[((b * sh.k + k) * p + i) * q + j] = float(s);
        }
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

}  // namespace

TEST_CASE("ref conv: forward equals a direct loop; backward is its adjoint") {
  std::vector<Conv2dShape> shapes;
  auto add = [&](int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t r, int64_t s, int64_t st,
                 int64_t pad, int64_t dil, int64_t g) {
    Conv2dShape sh{n, c, h, w, k, r, s};
    sh.stride_h = sh.stride_w = st;
    sh.pad_h = sh.pad_w = pad;
    sh.dil_h = sh.dil_w = dil;
    sh.groups = g;
    shapes.push_back(sh);
  };
  add(2, 3, 7, 8, 4, 3, 3, 1, 1, 1, 1);
  add(1, 4, 9, 9, 6, 3, 3, 2, 1, 1, 2);
  add(1, 13, 6, 7, 13, 3, 3, 1, 1, 1, 13);
  add(1, 3, 11, 10, 2, 3, 3, 1, 2, 2, 1);
  add(2, 5, 4, 5, 3, 1, 1, 1, 0, 1, 1);
  add(1, 2, 9, 9, 3, 5, 5, 2, 2, 1, 1);
  for (const Conv2dShape& sh : shapes) {
    const int64_t xs = sh.n * sh.c * sh.h * sh.w, ws = sh.k * (sh.c / sh.groups) * sh.r * sh.s;
    const int64_t ys = sh.n * sh.k * sh.p() * sh.q();
    auto x = uniform(xs, -1.0f, 1.0f, 1), w = uniform(ws, -1.0f, 1.0f, 2), dy = uniform(ys, -1.0f, 1.0f, 3);
    const float bias0 = 0.25f;
    std::vector<float> bias(sh.k, bias0), y(ys), want;
    ref::f32_conv2d_forward(y.data(), x.data(), w.data(), bias.data(), sh);
    direct_conv(want, x, w, sh);
    for (float& v : want) v += bias0;
    check_close(y, want, 1e-5, 1e-5, "ref forward vs direct, k=" + std::to_string(sh.k));

    // Adjoint identities: <dy, conv(x)> = <dx(dy), x> = <dw(dy, x), w>.
    std::vector<float> y0(ys), dx(xs, NAN), dw(ws, NAN), db(sh.k, NAN);
    ref::f32_conv2d_forward(y0.data(), x.data(), w.data(), nullptr, sh);
    ref::f32_conv2d_backward_input(dx.data(), dy.data(), w.data(), sh);
    ref::f32_conv2d_backward_weight(dw.data(), db.data(), dy.data(), x.data(), sh);
    const double lhs = dot(dy, y0);
    CHECK(dot(dx, x) == doctest::Approx(lhs).epsilon(1e-5));
    CHECK(dot(dw, w) == doctest::Approx(lhs).epsilon(1e-5));
    for (int64_t k = 0; k < sh.k; ++k) {
      double s = 0.0;
      for (int64_t b = 0; b < sh.n; ++b)
        for (int64_t i = 0; i < sh.p() * sh.q(); ++i) s += dy[(b * sh.k + k) * sh.p() * sh.q() + i];
      CHECK(db[k] == doctest::Approx(s).epsilon(1e-5));
    }

    // The GEMM-parameterised entry (which skips im2col for pointwise convs) agrees too.
    std::vector<float> y2(ys), dx2(xs), dw2(ws);
    ref::f32_conv2d_forward_im2col(y2.data(), x.data(), w.data(), bias.data(), sh, &ref::f32_gemm);
    ref::f32_conv2d_backward_input_im2col(dx2.data(), dy.data(), w.data(), sh, &ref::f32_gemm);
    ref::f32_conv2d_backward_weight_im2col(dw2.data(), nullptr, dy.data(), x.data(), sh, &ref::f32_gemm);
    check_close(y2, y, 1e-6, 1e-6, "im2col entry forward");
    check_close(dx2, dx, 1e-6, 1e-6, "im2col entry backward input");
    check_close(dw2, dw, 1e-6, 1e-6, "im2col entry backward weight");
  }
}

TEST_CASE("ref im2col/col2im: padding reads zero, col2im accumulates") {
  Conv2dShape sh{1, 1, 2, 2, 1, 2, 2};
  sh.pad_h = sh.pad_w = 1;  // P = Q = 3
  const float x[] = {1, 2, 3, 4};
  std::vector<float> col(4 * 9);
  ref::f32_im2col(col.data(), x, 1, 2, 2, sh);
  // Tap (0,0) sees x shifted down-right by one: only output (1..2, 1..2) is inside.
  CHECK(std::vector<float>(col.begin(), col.begin() + 9) == std::vector<float>{0, 0, 0, 0, 1, 2, 0, 3, 4});
  // Tap (1,1) sees x at output (0..1, 0..1).
  CHECK(std::vector<float>(col.begin() + 27, col.end()) == std::vector<float>{1, 2, 0, 3, 4, 0, 0, 0, 0});
  std::vector<float> back = {100, 0, 0, 0};
  ref::f32_col2im(back.data(), col.data(), 1, 2, 2, sh);
  // Each input pixel appears once per tap (4 taps): col2im(im2col(x)) = 4x, plus the 100 already there.
  CHECK(back == std::vector<float>{104, 8, 12, 16});
}

// ---- pooling and softmax by hand ----------------------------------------------

namespace {
// One plane H×W, window R×S, same stride and padding on both axes, output P×Q.
ref::Pool2dShape pool(int64_t h, int64_t w, int64_t r, int64_t s, int64_t stride, int64_t pad, int64_t p,
                      int64_t q) {
  ref::Pool2dShape sh{};
  sh.n = sh.c = 1;
  sh.h = h, sh.w = w, sh.r = r, sh.s = s;
  sh.stride_h = sh.stride_w = stride;
  sh.pad_h = sh.pad_w = pad;
  sh.p = p, sh.q = q;
  return sh;
}
}  // namespace

TEST_CASE("ref max pool: 2x2 stride 2, argmax and backward scatter") {
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = float(i);
  ref::Pool2dShape sh = pool(4, 4, 2, 2, 2, 0, 2, 2);
  float y[4];
  int32_t am[4];
  ref::f32_max_pool2d_forward(y, am, x.data(), sh);
  CHECK(std::vector<float>(y, y + 4) == std::vector<float>{5, 7, 13, 15});
  CHECK(std::vector<int32_t>(am, am + 4) == std::vector<int32_t>{5, 7, 13, 15});
  const float dy[] = {1, 2, 3, 4};
  std::vector<float> dx(16, -9.0f);
  ref::f32_max_pool2d_backward(dx.data(), dy, am, sh);
  std::vector<float> want(16, 0.0f);
  want[5] = 1, want[7] = 2, want[13] = 3, want[15] = 4;
  CHECK(dx == want);
}

TEST_CASE("ref max pool: padding, first max wins on ties, NaN propagates") {
  ref::Pool2dShape sh = pool(3, 3, 3, 3, 1, 1, 3, 3);
  std::vector<float> ones(9, 1.0f);
  float y[9];
  int32_t am[9];
  ref::f32_max_pool2d_forward(y, am, ones.data(), sh);
  CHECK(am[0] == 0);  // window rows -1..1, cols -1..1: first valid tap is (0,0)
  CHECK(am[4] == 0);
  CHECK(am[8] == 4);  // window rows 1..3, cols 1..3: first valid tap is (1,1)
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, std::numeric_limits<float>::quiet_NaN()};
  ref::f32_max_pool2d_forward(y, am, x.data(), sh);
  CHECK(y[0] == 5.0f);
  CHECK(am[0] == 4);
  CHECK(std::isnan(y[4]));  // center window contains the NaN
  CHECK(am[4] == 8);
  CHECK(y[2] == 6.0f);
}

TEST_CASE("ref avg pool: 3x3 pad 1, with and without counting padding") {
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  ref::Pool2dShape sh = pool(3, 3, 3, 3, 1, 1, 3, 3);
  float y[9];
  ref::f32_avg_pool2d_forward(y, x.data(), sh);
  CHECK(y[0] == doctest::Approx(12.0 / 9));
  CHECK(y[4] == doctest::Approx(5.0));
  CHECK(y[1] == doctest::Approx(21.0 / 9));
  std::vector<float> ones(9, 1.0f), dx(9, -1.0f);
  ref::f32_avg_pool2d_backward(dx.data(), ones.data(), sh);
  CHECK(dx[0] == doctest::Approx(4.0 / 9));
  CHECK(dx[4] == doctest::Approx(1.0));

  sh.count_include_pad = false;
  ref::f32_avg_pool2d_forward(y, x.data(), sh);
  CHECK(y[0] == doctest::Approx(3.0));
  CHECK(y[1] == doctest::Approx(21.0 / 6));
  ref::f32_avg_pool2d_backward(dx.data(), ones.data(), sh);
  CHECK(dx[0] == doctest::Approx(1.0 / 4 + 1.0 / 6 + 1.0 / 6 + 1.0 / 9));
}

TEST_CASE("ref avg pool: ceil-mode window past the padding is not counted") {
  // H = W = 4, 3×3 stride 2 pad 0, ceil mode → P = Q = 2; the last window
  // covers rows 2..4, of which row 4 lies beyond the input and the padding.
  std::vector<float> x(16, 2.0f);
  ref::Pool2dShape sh = pool(4, 4, 3, 3, 2, 0, 2, 2);
  float y[4];
  ref::f32_avg_pool2d_forward(y, x.data(), sh);
  CHECK(y[0] == 2.0f);
  CHECK(y[3] == 2.0f);  // 4 taps summed / 4, as PyTorch
}

TEST_CASE("ref adaptive avg pool: overlapping bins as PyTorch") {
  const float x[] = {1, 2, 3, 4, 5};  // H = 5, W = 1 → P = 3
  float y[3];
  ref::f32_adaptive_avg_pool2d_forward(y, x, 1, 5, 1, 3, 1);
  // bins [0,2) [1,4) [3,5)
  CHECK(y[0] == doctest::Approx(1.5));
  CHECK(y[1] == doctest::Approx(3.0));
  CHECK(y[2] == doctest::Approx(4.5));
  const float dy[] = {1, 1, 1};
  float dx[5];
  ref::f32_adaptive_avg_pool2d_backward(dx, dy, 1, 5, 1, 3, 1);
  CHECK(dx[0] == doctest::Approx(0.5));
  CHECK(dx[1] == doctest::Approx(0.5 + 1.0 / 3));
  CHECK(dx[2] == doctest::Approx(1.0 / 3));
  CHECK(dx[3] == doctest::Approx(1.0 / 3 + 0.5));
  CHECK(dx[4] == doctest::Approx(0.5));
  // Global pooling (P = Q = 1) is the plane mean.
  const float plane[] = {1, 2, 3, 4, 5, 6};
  ref::f32_adaptive_avg_pool2d_forward(y, plane, 1, 2, 3, 1, 1);
  CHECK(y[0] == doctest::Approx(3.5));
}

TEST_CASE("ref softmax rows: by hand, large logits, log variant") {
  const float x[] = {1, 2, 3, 1000, 1001, 1002};
  float y[6];
  ref::f32_softmax_rows(y, x, 2, 3, false);
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  for (int r = 0; r < 2; ++r) {
    CHECK(y[3 * r + 0] == doctest::Approx(1 / z).epsilon(1e-6));
    CHECK(y[3 * r + 1] == doctest::Approx(std::exp(1.0) / z).epsilon(1e-6));
    CHECK(y[3 * r + 2] == doctest::Approx(std::exp(2.0) / z).epsilon(1e-6));
  }
  ref::f32_softmax_rows(y, x, 2, 3, true);
  CHECK(y[0] == doctest::Approx(-std::log(z)).epsilon(1e-6));
  CHECK(y[5] == doctest::Approx(2 - std::log(z)).epsilon(1e-6));
}
