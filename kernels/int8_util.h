// Shared, ISA-independent pieces of the int8 kernels: argument checks, the
// packed-weights header, and the epilogue's scalar store. No intrinsics; used
// by ref/ and by every ISA folder (kernels/int8.cpp defines the functions).
#pragma once
#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/quant_math.h"

namespace lowbit::kernels::int8 {

// Each throws std::invalid_argument with a message naming `who` and the problem.
void check_epilogue(const QuantEpilogue& ep, const char* who);
void check_a_zero_point(int32_t a_zp, bool a_signed, const char* who);
void check_packed(const PackedQGemmWeights& w, Isa isa, const char* layout, const char* who);
// Shape sanity (positive sizes, groups divide C and K, output at least 1×1)
// and agreement of the packed filter with the shape.
void check_conv_shape(const QConv2dShape& sh, const char* who);
void check_conv_packed(const PackedQConvWeights& w, const QConv2dShape& sh, Isa isa, const char* who);
void check_pool_shape(const QPool2dShape& sh, const char* who);

// Fills the header of `out` (isa, layout, sizes, row sums of the `groups`
// consecutive n×k blocks of w) and allocates groups·group_bytes zeroed bytes.
void init_packed(PackedQGemmWeights& out, Isa isa, const char* layout, const int8_t* w, int64_t n, int64_t k,
                 int64_t groups, size_t group_bytes);
// The filter fields of a PackedQConvWeights.
void init_conv_header(PackedQConvWeights& out, const QConv2dShape& sh);

// Byte size of one output element.
inline int64_t out_bytes(QOut o) { return o == QOut::f32 ? 4 : 1; }

// Stores epilogue(acc) for output column `col` at y[index] (index in elements of ep.out's type).
inline void store_scalar(void* y, int64_t index, int32_t acc, int64_t col, const QuantEpilogue& ep) {
  const float m = ep.multiplier[ep.per_channel ? col : 0];
  switch (ep.out) {
    case QOut::f32: static_cast<float*>(y)[index] = qmath::dequantize_acc(acc, m); break;
    case QOut::u8:
      static_cast<uint8_t*>(y)[index] = static_cast<uint8_t>(qmath::requantize(acc, m, ep.out_zp, ep.qmin, ep.qmax));
      break;
    case QOut::s8:
      static_cast<int8_t*>(y)[index] = static_cast<int8_t>(qmath::requantize(acc, m, ep.out_zp, ep.qmin, ep.qmax));
      break;
  }
}

}  // namespace lowbit::kernels::int8
