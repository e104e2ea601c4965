// Hand-computed values for the int8 arithmetic (kernels/quant_math.h) and the
// reference int8 kernels: the spec that every fast path is then held to,
// bit for bit, in test_int8_kernels.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/quant_math.h"
#include "kernels/ref/int8_ref.h"

using namespace lowbit::kernels;
namespace qm = lowbit::kernels::qmath;

TEST_CASE("quant_math: round half to even, clamps, NaN, infinities") {
  CHECK(qm::quantize(0.5f, 1.0f, 0, 0, 255) == 0);
  CHECK(qm::quantize(1.5f, 1.0f, 0, 0, 255) == 2);
  CHECK(qm::quantize(2.5f, 1.0f, 0, 0, 255) == 2);
  CHECK(qm::quantize(-0.5f, 1.0f, 0, -128, 127) == 0);
  CHECK(qm::quantize(-1.5f, 1.0f, 0, -128, 127) == -2);
  CHECK(qm::quantize(-2.5f, 1.0f, 10, -128, 127) == 8);
  CHECK(qm::quantize(1000.0f, 1.0f, 0, 0, 255) == 255);
  CHECK(qm::quantize(-1000.0f, 1.0f, 0, 0, 255) == 0);
  CHECK(qm::quantize(1e30f, 1.0f, 0, -128, 127) == 127);
  CHECK(qm::quantize(std::numeric_limits<float>::infinity(), 1.0f, 128, 0, 255) == 255);
  CHECK(qm::quantize(-std::numeric_limits<float>::infinity(), 1.0f, 128, 0, 255) == 0);
  CHECK(qm::quantize(std::numeric_limits<float>::quiet_NaN(), 1.0f, 128, 0, 255) == 0);  // NaN → qmin
  // x · (1/scale), not x / scale: PyTorch's order. 1/0.1f rounds to exactly 10.
  CHECK(qm::inverse_scale(0.1f) == 10.0f);
  CHECK(qm::quantize(0.25f, qm::inverse_scale(0.1f), 128, 0, 255) == 130);  // 2.5 → 2
  CHECK(qm::quantize(0.35f, qm::inverse_scale(0.1f), 128, 0, 255) == 132);  // 3.5000001 → 4
  CHECK(qm::dequantize(130, 128, 0.5f) == 1.0f);
  CHECK(qm::dequantize(-128, 0, 0.25f) == -32.0f);
  CHECK(qm::requantize(100, 0.5f, 3, 0, 255) == 53);
  CHECK(qm::requantize(5, 0.5f, 3, 0, 255) == 5);  // 2.5 → 2
  CHECK(qm::requantize(7, 0.5f, 3, 0, 255) == 7);  // 3.5 → 4
  CHECK(qm::requantize(-7, 0.5f, 0, -128, 127) == -4);
  CHECK(qm::requantize(std::numeric_limits<int32_t>::max(), 1.0f, 255, 0, 255) == 255);
  CHECK(qm::requantize(std::numeric_limits<int32_t>::min(), 1.0f, 0, -128, 127) == -128);
  // int32 → float rounds to nearest even above 2^24.
  CHECK(qm::dequantize_acc(16777217, 1.0f) == 16777216.0f);
  CHECK(qm::column_offset(10, 3, 4) == -2);
  CHECK(qm::column_offset(0, 255, std::numeric_limits<int32_t>::min()) ==
        std::numeric_limits<int32_t>::min());  // wraps, no UB
  // add: dequantize both, add in fp32, quantize.
  CHECK(qm::add(130, 128, 0.5f, 120, 128, 0.25f, qm::inverse_scale(0.5f), 128, 0, 255) == 126);
  CHECK(qm::add(130, 128, 0.5f, 120, 128, 0.25f, qm::inverse_scale(0.5f), 128, 128, 255) == 128);  // ReLU
  CHECK(qm::average(10, qm::avg_multiplier(1.0f, 4), 0, 0, 255) == 2);   // 2.5 → 2
  CHECK(qm::average(14, qm::avg_multiplier(1.0f, 4), 0, 0, 255) == 4);   // 3.5 → 4
}

TEST_CASE("ref int8 GEMM: hand-computed u8 and f32 outputs") {
  // A (2×3, lda 4 with a junk column), a_zp = 1; W (2×3); bias [10, −5].
  const uint8_t a[] = {1, 2, 3, 99, 4, 5, 6, 99};
  const int8_t w[] = {1, 0, -1, 2, 2, 2};
  const int32_t bias[] = {10, -5};
  // acc = [[8, 1], [8, 19]]
  PackedQGemmWeights pw;
  ref::qgemm_pack(pw, w, 2, 3);
  CHECK(pw.row_sums == std::vector<int32_t>{0, 6});
  const float mult[] = {0.5f, 0.25f};
  QuantEpilogue ep;
  ep.multiplier = mult;
  ep.per_channel = true;
  ep.bias = bias;
  ep.out = QOut::f32;
  float yf[6] = {-1, -1, -1, -1, -1, -1};
  ref::qu8_qs8_gemm(yf, 3, a, 4, 1, pw, ep, 2);
  CHECK(yf[0] == 4.0f);
  CHECK(yf[1] == 0.25f);
  CHECK(yf[2] == -1.0f);  // ldc 3: untouched
  CHECK(yf[3] == 4.0f);
  CHECK(yf[4] == 4.75f);
  ep.out = QOut::u8;
  ep.out_zp = 100;
  ep.qmin = 0;
  ep.qmax = 255;
  uint8_t yu[4] = {};
  ref::qu8_qs8_gemm(yu, 2, a, 4, 1, pw, ep, 2);
  CHECK(yu[0] == 104);
  CHECK(yu[1] == 100);  // 0.25 → 0
  CHECK(yu[2] == 104);
  CHECK(yu[3] == 105);  // 4.75 → 5
  ep.qmax = 103;        // clamp
  ref::qu8_qs8_gemm(yu, 2, a, 4, 1, pw, ep, 2);
  CHECK(yu[0] == 103);
  CHECK(yu[1] == 100);
  // s8 × s8: A − 128 with a_zp − 128 is the same problem.
  const int8_t as[] = {-127, -126, -125, 0, -124, -123, -122, 0};
  ep.out = QOut::f32;
  ref::qs8_qs8_gemm(yf, 2, as, 4, -127, pw, ep, 2);
  CHECK(yf[0] == 4.0f);
  CHECK(yf[3] == 4.75f);
}

TEST_CASE("ref int8 conv: padding is the zero point; groups; wrong packing is an error") {
  // x 1×3×3×1 = 1..9, x_zp = 1, 3×3 all-ones filter, pad 1: Σ (x − 1) over the window.
  uint8_t x[9];
  for (int i = 0; i < 9; ++i) x[i] = static_cast<uint8_t>(i + 1);
  const int8_t w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  QConv2dShape sh{1, 3, 3, 1, 1, 3, 3};
  sh.pad_h = sh.pad_w = 1;
  PackedQConvWeights pw;
  ref::qconv2d_pack(pw, w, sh);
  const float one = 1.0f;
  QuantEpilogue ep;
  ep.multiplier = &one;
  ep.out = QOut::f32;
  float y[9];
  ref::qu8_qs8_conv2d(y, x, 1, pw, ep, sh);
  CHECK(y[0] == 8.0f);   // 0 + 1 + 3 + 4
  CHECK(y[4] == 36.0f);  // 0 + … + 8
  CHECK(y[8] == 24.0f);  // 4 + 5 + 7 + 8
  // Two groups: channel 0 → output 0 (weight 2), channel 1 → output 1 (weight −1), 1×1.
  const uint8_t x2[] = {10, 20, 30, 40};  // 1×1×2×2
  const int8_t w2[] = {2, -1};
  QConv2dShape sg{1, 1, 2, 2, 2, 1, 1};
  sg.groups = 2;
  ref::qconv2d_pack(pw, w2, sg);
  float y2[4];
  ref::qu8_qs8_conv2d(y2, x2, 0, pw, ep, sg);
  CHECK(y2[0] == 20.0f);
  CHECK(y2[1] == -20.0f);
  CHECK(y2[2] == 60.0f);
  CHECK(y2[3] == -40.0f);
  // Stride 2, dilation 2 on a 5×5 input with a 2×2 filter: taps (0,0),(0,2),(2,0),(2,2).
  std::vector<uint8_t> x5(25);
  for (int i = 0; i < 25; ++i) x5[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  const int8_t w4[] = {1, 10, 100, -1};
  QConv2dShape sd{1, 5, 5, 1, 1, 2, 2};
  sd.stride_h = sd.stride_w = 2;
  sd.dil_h = sd.dil_w = 2;
  CHECK(sd.p() == 2);
  ref::qconv2d_pack(pw, w4, sd);
  float y4[4];
  ref::qu8_qs8_conv2d(y4, x5.data(), 0, pw, ep, sd);
  CHECK(y4[0] == 0 * 1 + 2 * 10 + 10 * 100 - 12);
  CHECK(y4[3] == 12 * 1 + 14 * 10 + 22 * 100 - 24);
  // Packed for another shape: error.
  CHECK_THROWS_AS(ref::qu8_qs8_conv2d(y4, x5.data(), 0, pw, ep, sh), std::invalid_argument);
  // Bad clamp: error.
  ep.out = QOut::u8;
  ep.qmin = 10;
  ep.qmax = 5;
  CHECK_THROWS_AS(ref::qu8_qs8_conv2d(y4, x5.data(), 0, pw, ep, sd), std::invalid_argument);
}

TEST_CASE("ref int8 helpers: quantize, dequantize, requantize, add, pools, layouts") {
  const float xs[] = {0.0f, 0.25f, -0.25f, 100.0f, 0.75f, -1.0f};
  const float scales[] = {0.5f, 0.25f};
  const int32_t zps[] = {128, 0};
  uint8_t qu[6];
  ref::quantize_f32_u8(qu, xs, scales, zps, 1, 1, 6);  // per tensor: scale 0.5, zp 128
  CHECK(qu[0] == 128);
  CHECK(qu[1] == 128);  // 0.5 → 0
  CHECK(qu[2] == 128);  // −0.5 → −0
  CHECK(qu[3] == 255);
  CHECK(qu[4] == 130);  // 1.5 → 2
  CHECK(qu[5] == 126);
  int8_t qs[6];
  ref::quantize_f32_s8(qs, xs, scales, zps, 3, 2, 1);  // per channel (inner 1): alternating parameters
  CHECK(qs[0] == 127);   // 0 / 0.5 + 128 → clamps to 127
  CHECK(qs[1] == 1);     // 0.25 / 0.25
  CHECK(qs[3] == 127);   // 100 / 0.25
  CHECK(qs[5] == -4);
  float back[6];
  ref::dequantize_s8_f32(back, qs, scales, zps, 3, 2, 1);
  CHECK(back[1] == 0.25f);
  CHECK(back[5] == -1.0f);
  ref::dequantize_u8_f32(back, qu, scales, zps, 1, 1, 6);
  CHECK(back[4] == 1.0f);
  uint8_t rq[2];
  const uint8_t rin[] = {130, 131};
  ref::requantize_u8(rq, rin, 0.5f, 128, 1.0f, 10, 2);  // 1.0 → 11; 1.5 → 2 → 12
  CHECK(rq[0] == 11);
  CHECK(rq[1] == 12);
  const uint8_t aa[] = {130, 0}, bb[] = {120, 255};
  uint8_t sum[2];
  ref::qu8_add(sum, aa, 0.5f, 128, bb, 0.25f, 128, 0.5f, 128, 0, 255, 2);
  CHECK(sum[0] == 126);
  CHECK(sum[1] == 64);  // −64 + 31.75 = −32.25; / 0.5 = −64.5 → −64 (even); + 128
}

TEST_CASE("ref int8 pools and layout changes") {
  // 1×2×2×1 window 2×2 stride 2.
  const uint8_t x[] = {3, 7, 5, 1};
  QPool2dShape sh{1, 2, 2, 1, 2, 2, 2, 2, 0, 0, 1, 1};
  uint8_t y = 0;
  ref::qu8_max_pool2d(&y, x, sh);
  CHECK(y == 7);
  const uint8_t xa[] = {1, 2, 3, 4};
  ref::qu8_avg_pool2d(&y, xa, 1.0f, 0, 1.0f, 0, sh);
  CHECK(y == 2);  // 2.5 → 2
  // 3×3 window, pad 1, stride 2 on 2×2: one output whose window holds all four inputs
  // and five padding taps; include_pad divides by 9, else by 4.
  QPool2dShape sp{1, 2, 2, 1, 3, 3, 2, 2, 1, 1, 1, 1};
  const uint8_t xb[] = {10, 20, 30, 40};
  ref::qu8_avg_pool2d(&y, xb, 1.0f, 10, 1.0f, 10, sp);
  CHECK(y == 10 + 7);  // (0 + 10 + 20 + 30) / 9 = 6.67 → 7
  sp.count_include_pad = false;
  ref::qu8_avg_pool2d(&y, xb, 1.0f, 10, 1.0f, 10, sp);
  CHECK(y == 10 + 15);  // 60 / 4
  uint8_t g[2];
  const uint8_t xg[] = {0, 100, 1, 100, 2, 100, 4, 101};  // N=1, HW=4, C=2
  ref::qu8_global_avg_pool(g, xg, 1.0f, 0, 0.5f, 3, 1, 4, 2);
  CHECK(g[0] == 3 + 4);    // mean 1.75 / 0.5 = 3.5 → 4
  CHECK(g[1] == 3 + 200);  // 100.25 / 0.5 = 200.5 → 200
  // Layouts: N=1, C=2, HW=3.
  const uint8_t nchw[] = {1, 2, 3, 4, 5, 6};
  uint8_t nhwc[6], round_trip[6];
  ref::u8_nchw_to_nhwc(nhwc, nchw, 1, 2, 3);
  CHECK(nhwc[0] == 1);
  CHECK(nhwc[1] == 4);
  CHECK(nhwc[5] == 6);
  ref::u8_nhwc_to_nchw(round_trip, nhwc, 1, 2, 3);
  for (int i = 0; i < 6; ++i) CHECK(round_trip[i] == nchw[i]);
}
