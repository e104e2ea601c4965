// Every int8 kernel of every available path against the reference, bit for
// bit, with XNNPACK-style edge sweeps: K equal to / smaller / larger than the
// tile, partial M and N tiles, odd channel counts (1, 3, 13, 17), strides,
// padding, dilation, groups, depthwise 3×3/5×5 at stride 1 and 2, the
// saturation probe (all-255 activations × all-(−128) weights, long K), zero
// points at both ends, per-tensor and per-channel scales, every output type
// and clamp. Hand-computed values for the reference are in test_int8_ref.cpp.
//
// A path that was built but that this CPU cannot run is counted as skipped
// in the suite's summary (it is not silently counted as passed).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/quant_math.h"
#include "tests/kernels/kernel_test_util.h"

using namespace lowbit::kernels;
using namespace lowbit::kernels::testing;

namespace {

std::vector<uint8_t> random_u8(int64_t n, uint32_t seed, int lo = 0, int hi = 255) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<uint8_t>(d(gen));
  return v;
}

std::vector<int8_t> random_s8(int64_t n, uint32_t seed, int lo = -128, int hi = 127) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<int8_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<int8_t>(d(gen));
  return v;
}

std::vector<int32_t> random_s32(int64_t n, uint32_t seed, int32_t lo, int32_t hi) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> d(lo, hi);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(gen);
  return v;
}

// An epilogue and the storage its pointers refer to.
struct Epi {
  std::vector<float> mult;
  std::vector<int32_t> bias;
  QuantEpilogue ep;
  std::string name;
};

// Variant v of the epilogue for n output channels and reduction length k:
// output type, per-tensor/per-channel, bias or not, zero point, clamp
// (none, ReLU, ReLU6-like, narrow), and multipliers that either spread the
// accumulators over the output range or are powers of two (exact ties,
// which exercise round-half-even).
Epi make_epilogue(int v, int64_t n, int64_t k, uint32_t seed) {
  Epi e;
  std::mt19937 gen(seed);
  const QOut outs[] = {QOut::u8, QOut::s8, QOut::f32};
  e.ep.out = outs[v % 3];
  e.ep.per_channel = (v / 3) % 2 == 1;
  const bool with_bias = (v / 6) % 2 == 0;
  const bool ties = (v / 12) % 2 == 1;
  const int clamp = (v / 24) % 4;
  // |acc| is about 128·74·sqrt(k) for uniform data; aim the typical value at ±100.
  const float spread = 100.0f / (128.0f * 74.0f * std::sqrt(static_cast<float>(k)));
  std::uniform_real_distribution<float> d(0.5f, 2.0f);
  const int64_t nm = e.ep.per_channel ? n : 1;
  for (int64_t j = 0; j < nm; ++j)
    e.mult.push_back(ties ? std::ldexp(1.0f, -static_cast<int>(gen() % 4) - (k > 64 ? 8 : 2)) : spread * d(gen));
  if (with_bias) e.bias = random_s32(n, seed + 1, -200000, 200000);
  e.ep.multiplier = e.mult.data();
  e.ep.bias = with_bias ? e.bias.data() : nullptr;
  const int32_t lo = e.ep.out == QOut::s8 ? -128 : 0, hi = e.ep.out == QOut::s8 ? 127 : 255;
  e.ep.out_zp = e.ep.out == QOut::s8 ? static_cast<int32_t>(gen() % 256) - 128 : static_cast<int32_t>(gen() % 256);
  e.ep.qmin = lo;
  e.ep.qmax = hi;
  if (clamp == 1) e.ep.qmin = e.ep.out_zp;  // ReLU
  if (clamp == 2) {                          // ReLU6-like
    e.ep.qmin = e.ep.out_zp;
    e.ep.qmax = std::min(hi, e.ep.out_zp + 40);
  }
  if (clamp == 3) {
    e.ep.qmin = lo + 7;
    e.ep.qmax = hi - 9;
  }
  e.name = std::string("out ") + (e.ep.out == QOut::u8 ? "u8" : e.ep.out == QOut::s8 ? "s8" : "f32") +
           (e.ep.per_channel ? " per-channel" : " per-tensor") + (with_bias ? " bias" : "") +
           (ties ? " pow2-mult" : "") + " clamp " + std::to_string(clamp) + " zp " + std::to_string(e.ep.out_zp);
  return e;
}

// Bytes after the last output row that no kernel may write.
constexpr size_t kGuardBytes = 64;
constexpr uint8_t kSentinel = 0xA5;

// Output buffer of m rows × ldc elements of the epilogue's type plus guard
// bytes, prefilled with a sentinel so writes outside the n columns or past
// the last row are caught.
std::vector<uint8_t> out_buffer(const QuantEpilogue& ep, int64_t rows, int64_t ldc) {
  return std::vector<uint8_t>(static_cast<size_t>(rows * ldc * (ep.out == QOut::f32 ? 4 : 1)) + kGuardBytes, kSentinel);
}

// Equal bytes, or INFO with the first differing element.
void check_same(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, const QuantEpilogue& ep,
                const std::string& what) {
  REQUIRE(got.size() == want.size());
  INFO(what);
  for (size_t i = got.size() - kGuardBytes; i < got.size(); ++i)
    if (got[i] != kSentinel || want[i] != kSentinel) {
      FAIL_CHECK("a kernel wrote guard byte " << i - (got.size() - kGuardBytes) << " after the last row");
      return;
    }
  const size_t es = ep.out == QOut::f32 ? 4 : 1;
  size_t bad = got.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      bad = i / es;
      break;
    }
  if (bad < got.size() / es) {
    if (ep.out == QOut::f32) {
      float g, w;
      std::memcpy(&g, &got[bad * 4], 4);
      std::memcpy(&w, &want[bad * 4], 4);
      INFO("first difference at element " << bad << ": got " << g << " want " << w);
      CHECK(false);
    } else {
      const int g = ep.out == QOut::u8 ? int(got[bad]) : int(int8_t(got[bad]));
      const int w = ep.out == QOut::u8 ? int(want[bad]) : int(int8_t(want[bad]));
      INFO("first difference at element " << bad << ": got " << g << " want " << w);
      CHECK(false);
    }
  } else {
    CHECK(true);
  }
}

struct GemmCase {
  int64_t m, n, k, lda, ldc;
  int32_t a_zp;
};

// One GEMM on path t vs ref, u8 and s8 activations.
void compare_gemm(const KernelTable& t, const KernelTable& r, const GemmCase& gc, const std::vector<uint8_t>& a,
                  const std::vector<int8_t>& w, const Epi& e) {
  const std::string what = std::string(isa_name(t.isa)) + " gemm m=" + std::to_string(gc.m) +
                           " n=" + std::to_string(gc.n) + " k=" + std::to_string(gc.k) +
                           " lda=" + std::to_string(gc.lda) + " ldc=" + std::to_string(gc.ldc) +
                           " a_zp=" + std::to_string(gc.a_zp) + " " + e.name;
  PackedQGemmWeights pt, pr;
  t.q8.qgemm_pack(pt, w.data(), gc.n, gc.k);
  r.q8.qgemm_pack(pr, w.data(), gc.n, gc.k);
  auto got = out_buffer(e.ep, gc.m, gc.ldc), want = got;
  t.q8.qu8_qs8_gemm(got.data(), gc.ldc, a.data(), gc.lda, gc.a_zp, pt, e.ep, gc.m);
  r.q8.qu8_qs8_gemm(want.data(), gc.ldc, a.data(), gc.lda, gc.a_zp, pr, e.ep, gc.m);
  check_same(got, want, e.ep, "u8 " + what);
  // s8 activations: the same bytes read as signed, zero point shifted into s8 range.
  const int32_t s_zp = gc.a_zp - 128;
  const int8_t* as = reinterpret_cast<const int8_t*>(a.data());
  got = out_buffer(e.ep, gc.m, gc.ldc);
  want = got;
  t.q8.qs8_qs8_gemm(got.data(), gc.ldc, as, gc.lda, s_zp, pt, e.ep, gc.m);
  r.q8.qs8_qs8_gemm(want.data(), gc.ldc, as, gc.lda, s_zp, pr, e.ep, gc.m);
  check_same(got, want, e.ep, "s8 " + what);
}

}  // namespace

TEST_CASE("int8 gemm: every path matches ref exactly over tile-edge sweeps") {
  const KernelTable r = table_for(Isa::ref);
  const int64_t ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33};
  const int64_t ns[] = {1, 3, 13, 16, 17, 24, 31, 32, 33, 48, 49, 65};
  const int64_t ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 64, 65, 127};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    int v = 0;
    for (int64_t k : ks)
      for (int64_t n : ns) {
        const auto w = random_s8(n * k, static_cast<uint32_t>(n * 1000 + k));
        for (int64_t m : ms) {
          // Strided A and C on every third case; zero points cycle through 0, 255 and the middle.
          const bool strided = v % 3 == 2;
          const GemmCase gc{m, n, k, strided ? k + 5 : k, strided ? n + 3 : n,
                            v % 5 == 0 ? 0 : (v % 5 == 1 ? 255 : static_cast<int32_t>(v * 37 % 256))};
          const auto a = random_u8(gc.m * gc.lda, static_cast<uint32_t>(v));
          const Epi e = make_epilogue(v % 96, n, k, static_cast<uint32_t>(v) + 7);
          compare_gemm(t, r, gc, a, w, e);
          ++v;
        }
      }
  }
}

TEST_CASE("int8 gemm: large and benchmark-like shapes, multithreaded") {
  const KernelTable r = table_for(Isa::ref);
  const GemmCase cases[] = {{1, 1000, 1280, 1280, 1000, 3},
                            {200, 300, 300, 300, 300, 128},
                            {61, 70, 1000, 1000, 70, 255},
                            {97, 64, 576, 576, 64, 0},
                            {3, 7, 5000, 5000, 7, 17}};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    int v = 0;
    for (const GemmCase& gc : cases) {
      const auto a = random_u8(gc.m * gc.lda, 100 + static_cast<uint32_t>(v));
      const auto w = random_s8(gc.n * gc.k, 200 + static_cast<uint32_t>(v));
      for (int ev : {0, 4, 8, 29}) compare_gemm(t, r, gc, a, w, make_epilogue(ev, gc.n, gc.k, 300 + ev));
      ++v;
    }
  }
}

TEST_CASE("int8 gemm: saturation probe and extreme zero points") {
  // all-255 activations × all-(−128) weights: every 16-bit pair product sum
  // (2·255·128 = 65280) overflows int16, so a vpmaddubsw-style shortcut fails here.
  // The bytes 0x80 and 0x7F are the signed extremes −128 and 127 when the
  // same buffer is read as s8 activations (compare_gemm runs both).
  const KernelTable r = table_for(Isa::ref);
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    for (int64_t k : {int64_t{4}, int64_t{63}, int64_t{1024}, int64_t{4099}})
      for (int32_t zp : {0, 255, 128})
        for (uint8_t a_byte : {uint8_t{0x00}, uint8_t{0xFF}, uint8_t{0x80}, uint8_t{0x7F}})
          for (int8_t w_value : {int8_t{-128}, int8_t{127}}) {
            const int64_t m = 9, n = 35;
            std::vector<uint8_t> a(static_cast<size_t>(m * k), a_byte);
            std::vector<int8_t> w(static_cast<size_t>(n * k), w_value);
            std::fill(w.begin(), w.begin() + k, static_cast<int8_t>(w_value == 127 ? -128 : 127));  // one row of the other sign
            for (int ev : {2, 5, 20}) {
              Epi e = make_epilogue(ev, n, k, 5);
              compare_gemm(t, r, {m, n, k, k, n, zp}, a, w, e);
            }
          }
  }
}

TEST_CASE("int8 gemm: packed weights from another path are refused") {
  const KernelTable r = table_for(Isa::ref);
  const auto w = random_s8(8 * 8, 1);
  PackedQGemmWeights pr;
  r.q8.qgemm_pack(pr, w.data(), 8, 8);
  const float mult = 1.0f;
  QuantEpilogue ep;
  ep.multiplier = &mult;
  std::vector<uint8_t> a(64), c(64);
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    INFO(isa_name(isa));
    if (std::string(t.q8.gemm_path) == r.q8.gemm_path) continue;  // path has no GEMM of its own
    CHECK_THROWS_AS(t.q8.qu8_qs8_gemm(c.data(), 8, a.data(), 8, 0, pr, ep, 8), std::invalid_argument);
    PackedQGemmWeights pt;
    t.q8.qgemm_pack(pt, w.data(), 8, 8);
    CHECK_THROWS_AS(r.q8.qu8_qs8_gemm(c.data(), 8, a.data(), 8, 0, pt, ep, 8), std::invalid_argument);
  }
}

namespace {

struct ConvCase {
  QConv2dShape sh;
  int32_t x_zp;
};

QConv2dShape conv(int64_t n, int64_t hw, int64_t c, int64_t k, int64_t rs, int64_t stride, int64_t pad,
                  int64_t dil = 1, int64_t groups = 1) {
  QConv2dShape sh{n, hw, hw, c, k, rs, rs};
  sh.stride_h = sh.stride_w = stride;
  sh.pad_h = sh.pad_w = pad;
  sh.dil_h = sh.dil_w = dil;
  sh.groups = groups;
  return sh;
}

std::string describe(const QConv2dShape& sh) {
  return "conv N" + std::to_string(sh.n) + " " + std::to_string(sh.h) + "x" + std::to_string(sh.w) + "x" +
         std::to_string(sh.c) + " -> K" + std::to_string(sh.k) + " " + std::to_string(sh.r) + "x" +
         std::to_string(sh.s) + " stride " + std::to_string(sh.stride_h) + "," + std::to_string(sh.stride_w) +
         " pad " + std::to_string(sh.pad_h) + "," + std::to_string(sh.pad_w) + " dil " + std::to_string(sh.dil_h) +
         "," + std::to_string(sh.dil_w) + " groups " + std::to_string(sh.groups);
}

void compare_conv(const KernelTable& t, const KernelTable& r, const ConvCase& cc, uint32_t seed, int ev) {
  const QConv2dShape& sh = cc.sh;
  const auto x = random_u8(sh.n * sh.h * sh.w * sh.c, seed);
  const auto w = random_s8(sh.k * sh.r * sh.s * (sh.c / sh.groups), seed + 1);
  const Epi e = make_epilogue(ev, sh.k, sh.r * sh.s * sh.c / sh.groups, seed + 2);
  PackedQConvWeights pt, pr;
  t.q8.qconv2d_pack(pt, w.data(), sh);
  r.q8.qconv2d_pack(pr, w.data(), sh);
  const int64_t rows = sh.n * sh.p() * sh.q();
  auto got = out_buffer(e.ep, rows, sh.k), want = got;
  t.q8.qu8_qs8_conv2d(got.data(), x.data(), cc.x_zp, pt, e.ep, sh);
  r.q8.qu8_qs8_conv2d(want.data(), x.data(), cc.x_zp, pr, e.ep, sh);
  check_same(got, want, e.ep,
             std::string(isa_name(t.isa)) + " " + describe(sh) + " x_zp " + std::to_string(cc.x_zp) + " " + e.name);
}

}  // namespace

TEST_CASE("int8 conv: 1x1, kxk, strides, padding, dilation, groups match ref exactly") {
  const KernelTable r = table_for(Isa::ref);
  std::vector<QConv2dShape> shapes;
  for (int64_t c : {1, 3, 13, 17, 64})
    for (int64_t k : {1, 3, 13, 17, 32, 33}) {
      shapes.push_back(conv(1, 5, c, k, 1, 1, 0));
      shapes.push_back(conv(2, 7, c, k, 1, 2, 0));  // 1×1 stride 2 (downsample)
      shapes.push_back(conv(1, 6, c, k, 3, 1, 1));
      shapes.push_back(conv(1, 7, c, k, 3, 2, 1));
    }
  shapes.push_back(conv(1, 9, 3, 16, 7, 2, 3));   // stem
  shapes.push_back(conv(1, 8, 5, 7, 5, 1, 2));    // 5×5
  shapes.push_back(conv(1, 9, 4, 6, 3, 1, 2, 2));  // dilation 2
  shapes.push_back(conv(1, 6, 8, 5, 3, 1, 0));    // no padding
  shapes.push_back(conv(1, 3, 4, 4, 3, 1, 1));    // output tile larger than the image
  shapes.push_back(conv(1, 1, 9, 11, 1, 1, 0));   // 1×1 image
  {
    QConv2dShape a = conv(1, 7, 6, 9, 1, 1, 0);  // asymmetric filter, stride, padding
    a.w = 9;
    a.r = 1;
    a.s = 3;
    a.stride_w = 2;
    a.pad_w = 1;
    shapes.push_back(a);
    QConv2dShape b = conv(2, 6, 5, 4, 3, 1, 0);
    b.s = 1;
    b.stride_h = 2;
    b.pad_h = 2;
    b.dil_h = 2;
    shapes.push_back(b);
  }
  // Grouped (not depthwise): 2, 3 and 4 groups, odd group widths.
  shapes.push_back(conv(1, 6, 4, 6, 3, 1, 1, 1, 2));
  shapes.push_back(conv(1, 7, 9, 6, 3, 2, 1, 1, 3));
  shapes.push_back(conv(2, 5, 68, 36, 1, 1, 0, 1, 4));
  shapes.push_back(conv(1, 5, 26, 34, 3, 1, 1, 1, 2));
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    int v = 0;
    for (const QConv2dShape& sh : shapes) {
      const int32_t zp = v % 4 == 0 ? 0 : (v % 4 == 1 ? 255 : static_cast<int32_t>(v * 53 % 256));
      compare_conv(t, r, {sh, zp}, 1000 + static_cast<uint32_t>(v), v % 48);
      ++v;
    }
  }
}

TEST_CASE("int8 conv: depthwise 3x3 and 5x5, stride 1 and 2, odd channel counts") {
  const KernelTable r = table_for(Isa::ref);
  std::vector<QConv2dShape> shapes;
  for (int64_t c : {1, 3, 13, 16, 17, 32, 33, 64, 65, 96})
    for (int64_t rs : {3, 5})
      for (int64_t stride : {1, 2}) shapes.push_back(conv(1, 9, c, c, rs, stride, rs / 2, 1, c));
  shapes.push_back(conv(2, 6, 24, 24, 3, 1, 0, 1, 24));   // no padding
  shapes.push_back(conv(1, 10, 19, 19, 3, 1, 2, 2, 19));  // dilation 2
  shapes.push_back(conv(1, 7, 8, 8, 7, 1, 3, 1, 8));     // other filter sizes
  shapes.push_back(conv(1, 1, 32, 32, 3, 1, 1, 1, 32));   // 1×1 image: every tap but the centre is padding
  shapes.push_back(conv(1, 5, 8, 16, 3, 1, 1, 1, 8));    // channel multiplier 2 (grouped)
  {
    QConv2dShape a = conv(1, 6, 20, 20, 3, 2, 1, 1, 20);
    a.w = 11;
    a.stride_w = 1;
    a.pad_w = 0;
    shapes.push_back(a);
  }
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    int v = 0;
    for (const QConv2dShape& sh : shapes) {
      const int32_t zp = v % 3 == 0 ? 0 : (v % 3 == 1 ? 255 : static_cast<int32_t>(v * 29 % 256));
      compare_conv(t, r, {sh, zp}, 2000 + static_cast<uint32_t>(v), (v * 7) % 48);
      ++v;
    }
    // Saturation probe through the depthwise kernel.
    const QConv2dShape sh = conv(1, 6, 35, 35, 5, 1, 2, 1, 35);
    const std::vector<uint8_t> x(static_cast<size_t>(6 * 6 * 35), 255);
    const std::vector<int8_t> w(static_cast<size_t>(35 * 25), -128);
    for (int ev : {0, 2, 5}) {
      const Epi e = make_epilogue(ev, sh.k, 25, 9);
      PackedQConvWeights pt, pr;
      t.q8.qconv2d_pack(pt, w.data(), sh);
      r.q8.qconv2d_pack(pr, w.data(), sh);
      auto got = out_buffer(e.ep, 36, 35), want = got;
      for (int32_t zp : {0, 255}) {
        t.q8.qu8_qs8_conv2d(got.data(), x.data(), zp, pt, e.ep, sh);
        r.q8.qu8_qs8_conv2d(want.data(), x.data(), zp, pr, e.ep, sh);
        check_same(got, want, e.ep, std::string(isa_name(isa)) + " depthwise saturation " + e.name);
      }
    }
  }
}

TEST_CASE("int8 conv: ResNet-18 and MobileNetV2 layer shapes (reduced size) match ref") {
  const KernelTable r = table_for(Isa::ref);
  const QConv2dShape shapes[] = {
      conv(1, 20, 3, 64, 7, 2, 3),        conv(1, 14, 64, 64, 3, 1, 1),  conv(1, 14, 64, 128, 3, 2, 1),
      conv(1, 14, 64, 128, 1, 2, 0),      conv(1, 7, 256, 512, 3, 2, 1), conv(1, 12, 32, 32, 3, 1, 1, 1, 32),
      conv(1, 12, 96, 96, 3, 2, 1, 1, 96), conv(1, 10, 16, 96, 1, 1, 0), conv(1, 7, 160, 960, 1, 1, 0),
      conv(1, 7, 960, 960, 3, 1, 1, 1, 960)};
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    int v = 0;
    for (const QConv2dShape& sh : shapes) {
      compare_conv(t, r, {sh, static_cast<int32_t>(v * 41 % 256)}, 3000 + static_cast<uint32_t>(v), v * 5 % 48);
      ++v;
    }
  }
}

namespace {

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Floats for quantization: a spread over several scales, exact ties, values
// beyond the range, ±inf and NaN.
std::vector<float> quant_inputs(int64_t n, uint32_t seed) {
  auto x = uniform(n, -300.0f, 300.0f, seed);
  const float specials[] = {0.5f,  1.5f,   2.5f,  -0.5f, -2.5f, 127.5f, 128.5f, -128.5f, 1e30f, -1e30f,
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f};
  for (size_t i = 0; i < x.size(); i += 7) x[i] = specials[(i / 7) % (sizeof specials / sizeof specials[0])];
  for (size_t i = 3; i < x.size(); i += 7) x[i] = std::round(x[i]) + 0.5f;  // ties at scale 1
  return x;
}

}  // namespace

TEST_CASE("int8 helpers: quantize, dequantize, requantize, add match ref exactly") {
  const KernelTable r = table_for(Isa::ref);
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    INFO(isa_name(isa));
    for (int64_t n : {1, 3, 13, 17, 31, 64, 100, 1007, 100003}) {
      INFO("n " << n);
      const auto x = quant_inputs(n, static_cast<uint32_t>(n));
      // Per tensor (scale 1: ties stay ties), then per channel over a middle axis.
      const float s1[] = {1.0f};
      const int32_t z1[] = {3};
      std::vector<uint8_t> qu(static_cast<size_t>(n)), qu_ref(qu.size());
      std::vector<int8_t> qs(static_cast<size_t>(n)), qs_ref(qs.size());
      t.q8.quantize_f32_u8(qu.data(), x.data(), s1, z1, 1, 1, n);
      r.q8.quantize_f32_u8(qu_ref.data(), x.data(), s1, z1, 1, 1, n);
      CHECK(same_bits(qu, qu_ref));
      t.q8.quantize_f32_s8(qs.data(), x.data(), s1, z1, 1, 1, n);
      r.q8.quantize_f32_s8(qs_ref.data(), x.data(), s1, z1, 1, 1, n);
      CHECK(same_bits(qs, qs_ref));
      for (int64_t channels : {int64_t{1}, int64_t{3}, int64_t{17}}) {
        if (n % channels != 0) continue;
        for (int64_t inner : {int64_t{1}, n / channels}) {
          const int64_t outer = n / channels / inner;
          if (outer * channels * inner != n) continue;
          const auto sc = uniform(channels, 0.01f, 3.0f, 5);
          const auto zp = random_s32(channels, 6, 0, 255);
          const auto zps = random_s32(channels, 7, -128, 127);
          t.q8.quantize_f32_u8(qu.data(), x.data(), sc.data(), zp.data(), outer, channels, inner);
          r.q8.quantize_f32_u8(qu_ref.data(), x.data(), sc.data(), zp.data(), outer, channels, inner);
          CHECK(same_bits(qu, qu_ref));
          t.q8.quantize_f32_s8(qs.data(), x.data(), sc.data(), zps.data(), outer, channels, inner);
          r.q8.quantize_f32_s8(qs_ref.data(), x.data(), sc.data(), zps.data(), outer, channels, inner);
          CHECK(same_bits(qs, qs_ref));
          std::vector<float> f(static_cast<size_t>(n)), f_ref(f.size());
          t.q8.dequantize_u8_f32(f.data(), qu.data(), sc.data(), zp.data(), outer, channels, inner);
          r.q8.dequantize_u8_f32(f_ref.data(), qu.data(), sc.data(), zp.data(), outer, channels, inner);
          CHECK(same_bits(f, f_ref));
          t.q8.dequantize_s8_f32(f.data(), qs.data(), sc.data(), zps.data(), outer, channels, inner);
          r.q8.dequantize_s8_f32(f_ref.data(), qs.data(), sc.data(), zps.data(), outer, channels, inner);
          CHECK(same_bits(f, f_ref));
        }
      }
      const auto a = random_u8(n, 11), b = random_u8(n, 12);
      t.q8.requantize_u8(qu.data(), a.data(), 0.37f, 131, 0.21f, 7, n);
      r.q8.requantize_u8(qu_ref.data(), a.data(), 0.37f, 131, 0.21f, 7, n);
      CHECK(same_bits(qu, qu_ref));
      t.q8.requantize_u8(qu.data(), a.data(), 0.5f, 0, 1.0f, 255, n);  // ties
      r.q8.requantize_u8(qu_ref.data(), a.data(), 0.5f, 0, 1.0f, 255, n);
      CHECK(same_bits(qu, qu_ref));
      for (int32_t qmin : {0, 77}) {
        t.q8.qu8_add(qu.data(), a.data(), 0.05f, 120, b.data(), 0.11f, 3, 0.13f, 77, qmin, 255, n);
        r.q8.qu8_add(qu_ref.data(), a.data(), 0.05f, 120, b.data(), 0.11f, 3, 0.13f, 77, qmin, 255, n);
        CHECK(same_bits(qu, qu_ref));
        t.q8.qu8_add(qu.data(), a.data(), 0.5f, 0, b.data(), 0.25f, 255, 0.5f, 128, qmin, 200, n);  // ties
        r.q8.qu8_add(qu_ref.data(), a.data(), 0.5f, 0, b.data(), 0.25f, 255, 0.5f, 128, qmin, 200, n);
        CHECK(same_bits(qu, qu_ref));
      }
    }
  }
}

// Rounding differences between a vector path and ref are rare on random
// data: an add whose product was fused into an FMA (the compiler contracts
// a*b + c unless told not to) differs on about one (a, b) pair in ten
// million. So: every pair, under 300 seeded scale sets.
TEST_CASE("qu8_add matches ref on every (a, b) pair for many scales (no fused multiply-add)") {
  const KernelTable r = table_for(Isa::ref);
  std::vector<uint8_t> a(65536), b(65536), y(65536), y_ref(65536);
  for (int i = 0; i < 65536; ++i) a[(size_t)i] = (uint8_t)(i >> 8), b[(size_t)i] = (uint8_t)(i & 255);
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    std::mt19937 g(5);
    std::uniform_real_distribution<float> u(-6, -1);
    int64_t diff = 0;
    constexpr int kScaleSets = 300;
    for (int k = 0; k < kScaleSets; ++k) {
      const float sa = std::exp(u(g)), sb = std::exp(u(g)), sy = std::exp(u(g));
      const int32_t za = (int32_t)(g() % 256), zb = (int32_t)(g() % 256), zy = (int32_t)(g() % 256);
      t.q8.qu8_add(y.data(), a.data(), sa, za, b.data(), sb, zb, sy, zy, 0, 255, 65536);
      r.q8.qu8_add(y_ref.data(), a.data(), sa, za, b.data(), sb, zb, sy, zy, 0, 255, 65536);
      for (int i = 0; i < 65536; ++i) diff += y[(size_t)i] != y_ref[(size_t)i];
    }
    INFO(isa_name(isa));
    CHECK(diff == 0);
  }
}

TEST_CASE("int8 helpers: pools and layout changes match ref exactly") {
  const KernelTable r = table_for(Isa::ref);
  for (Isa isa : fast_isas()) {
    const KernelTable t = table_for(isa);
    INFO(isa_name(isa));
    for (int64_t c : {1, 3, 13, 17, 64, 65}) {
      INFO("c " << c);
      struct P {
        int64_t n, hw, rs, stride, pad;
        bool include_pad;
      };
      for (const P& pp : {P{1, 7, 3, 2, 1, true}, P{2, 8, 2, 2, 0, true}, P{1, 9, 3, 1, 1, false},
                          P{1, 6, 5, 3, 2, false}, P{1, 5, 3, 2, 1, true}}) {
        QPool2dShape sh{pp.n, pp.hw, pp.hw, c, pp.rs, pp.rs, pp.stride, pp.stride, pp.pad, pp.pad, 0, 0,
                        pp.include_pad};
        sh.p = (pp.hw + 2 * pp.pad - pp.rs) / pp.stride + 1;
        sh.q = sh.p;
        INFO("pool " << pp.hw << " window " << pp.rs << " stride " << pp.stride << " pad " << pp.pad);
        const auto x = random_u8(sh.n * sh.h * sh.w * c, static_cast<uint32_t>(c + pp.hw));
        std::vector<uint8_t> y(static_cast<size_t>(sh.n * sh.p * sh.q * c)), y_ref(y.size());
        t.q8.qu8_max_pool2d(y.data(), x.data(), sh);
        r.q8.qu8_max_pool2d(y_ref.data(), x.data(), sh);
        CHECK(same_bits(y, y_ref));
        t.q8.qu8_avg_pool2d(y.data(), x.data(), 0.1f, 100, 0.07f, 90, sh);
        r.q8.qu8_avg_pool2d(y_ref.data(), x.data(), 0.1f, 100, 0.07f, 90, sh);
        CHECK(same_bits(y, y_ref));
        t.q8.qu8_avg_pool2d(y.data(), x.data(), 1.0f, 0, 1.0f, 0, sh);  // ties
        r.q8.qu8_avg_pool2d(y_ref.data(), x.data(), 1.0f, 0, 1.0f, 0, sh);
        CHECK(same_bits(y, y_ref));
      }
      for (int64_t hw : {1, 3, 49, 50}) {
        const auto x = random_u8(2 * hw * c, static_cast<uint32_t>(hw));
        std::vector<uint8_t> y(static_cast<size_t>(2 * c)), y_ref(y.size());
        t.q8.qu8_global_avg_pool(y.data(), x.data(), 0.2f, 128, 0.1f, 10, 2, hw, c);
        r.q8.qu8_global_avg_pool(y_ref.data(), x.data(), 0.2f, 128, 0.1f, 10, 2, hw, c);
        CHECK(same_bits(y, y_ref));
        std::vector<uint8_t> u(x.size()), u_ref(x.size());
        t.q8.u8_nchw_to_nhwc(u.data(), x.data(), 2, c, hw);
        r.q8.u8_nchw_to_nhwc(u_ref.data(), x.data(), 2, c, hw);
        CHECK(same_bits(u, u_ref));
        t.q8.u8_nhwc_to_nchw(u.data(), x.data(), 2, c, hw);
        r.q8.u8_nhwc_to_nchw(u_ref.data(), x.data(), 2, c, hw);
        CHECK(same_bits(u, u_ref));
        const auto xf = uniform(2 * hw * c, -1.0f, 1.0f, 3);
        std::vector<float> f(xf.size()), f_ref(xf.size());
        t.q8.f32_nchw_to_nhwc(f.data(), xf.data(), 2, c, hw);
        r.q8.f32_nchw_to_nhwc(f_ref.data(), xf.data(), 2, c, hw);
        CHECK(same_bits(f, f_ref));
        t.q8.f32_nhwc_to_nchw(f.data(), xf.data(), 2, c, hw);
        r.q8.f32_nhwc_to_nchw(f_ref.data(), xf.data(), 2, c, hw);
        CHECK(same_bits(f, f_ref));
      }
    }
  }
}

TEST_CASE("int8 paths: every table entry is set") {
  for (Isa isa : available_isas()) {
    const KernelTable t = table_for(isa);
    INFO(isa_name(isa));
    const Int8Kernels& k = t.q8;
    CHECK((k.qgemm_pack && k.qu8_qs8_gemm && k.qs8_qs8_gemm && k.qconv2d_pack && k.qu8_qs8_conv2d));
    CHECK((k.quantize_f32_u8 && k.quantize_f32_s8 && k.dequantize_u8_f32 && k.dequantize_s8_f32 && k.requantize_u8 &&
           k.qu8_add));
    CHECK((k.qu8_max_pool2d && k.qu8_avg_pool2d && k.qu8_global_avg_pool && k.u8_nchw_to_nhwc &&
           k.u8_nhwc_to_nchw && k.f32_nchw_to_nhwc && k.f32_nhwc_to_nchw));
    CHECK((k.gemm_path && k.conv_path && k.depthwise_path && k.elementwise_path));
  }
}
