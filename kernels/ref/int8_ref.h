// Scalar reference int8 kernels: the definition of correct for every int8
// fast path (contracts in kernels/int8.h, arithmetic in kernels/quant_math.h).
// Plain loops over plain layouts; "packing" for ref is a copy of W.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels::ref {

inline constexpr const char* kQGemmLayout = "ref row-major";

void qgemm_pack(PackedQGemmWeights& out, const int8_t* w, int64_t n, int64_t k);
void qu8_qs8_gemm(void* c, int64_t ldc, const uint8_t* a, int64_t lda, int32_t a_zp, const PackedQGemmWeights& w,
                  const QuantEpilogue& ep, int64_t m);
void qs8_qs8_gemm(void* c, int64_t ldc, const int8_t* a, int64_t lda, int32_t a_zp, const PackedQGemmWeights& w,
                  const QuantEpilogue& ep, int64_t m);
void qconv2d_pack(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh);
void qu8_qs8_conv2d(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w, const QuantEpilogue& ep,
                    const QConv2dShape& sh);

void quantize_f32_u8(uint8_t* y, const float* x, const float* scale, const int32_t* zero_point, int64_t outer,
                     int64_t channels, int64_t inner);
void quantize_f32_s8(int8_t* y, const float* x, const float* scale, const int32_t* zero_point, int64_t outer,
                     int64_t channels, int64_t inner);
void fake_quantize_f32(float* y, uint8_t* mask, const float* x, const float* scale, const int32_t* zero_point,
                       int32_t qmin, int32_t qmax, int64_t outer, int64_t channels, int64_t inner);
bool f32_minmax(float* mn, float* mx, const float* x, int64_t n);
void lsq_backward_f32(float* dx, double* dscale, double* doffset, const float* g, const float* x, float inv,
                      float offset, int32_t zp, int32_t qmin, int32_t qmax, int64_t n);
void dequantize_u8_f32(float* y, const uint8_t* x, const float* scale, const int32_t* zero_point, int64_t outer,
                       int64_t channels, int64_t inner);
void dequantize_s8_f32(float* y, const int8_t* x, const float* scale, const int32_t* zero_point, int64_t outer,
                       int64_t channels, int64_t inner);
void requantize_u8(uint8_t* y, const uint8_t* x, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp,
                   int64_t n);
void qu8_add(uint8_t* y, const uint8_t* a, float a_scale, int32_t a_zp, const uint8_t* b, float b_scale, int32_t b_zp,
             float y_scale, int32_t y_zp, int32_t qmin, int32_t qmax, int64_t n);
void qu8_max_pool2d(uint8_t* y, const uint8_t* x, const QPool2dShape& sh);
void qu8_avg_pool2d(uint8_t* y, const uint8_t* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                    const QPool2dShape& sh);
void qu8_global_avg_pool(uint8_t* y, const uint8_t* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                         int64_t n, int64_t hw, int64_t c);
void u8_nchw_to_nhwc(uint8_t* y, const uint8_t* x, int64_t n, int64_t c, int64_t hw);
void u8_nhwc_to_nchw(uint8_t* y, const uint8_t* x, int64_t n, int64_t c, int64_t hw);
void f32_nchw_to_nhwc(float* y, const float* x, int64_t n, int64_t c, int64_t hw);
void f32_nhwc_to_nchw(float* y, const float* x, int64_t n, int64_t c, int64_t hw);

// The int8 table section of the ref path.
Int8Kernels int8_kernels();

}  // namespace lowbit::kernels::ref
