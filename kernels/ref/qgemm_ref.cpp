// Reference int8 GEMM and convolution: the exact sum Σ (a − a_zp)·w + bias in
// 64-bit, wrapped to int32 (C++20 conversions are modular), then the
// epilogue of quant_math.h. Convolution is the direct 7-deep loop on NHWC;
// taps in the padding are skipped, which is the same as reading the zero point.
#include <cstring>
#include <type_traits>

#include "kernels/int8_util.h"
#include "kernels/ref/int8_ref.h"

namespace lowbit::kernels::ref {
namespace {

template <class AT>
void gemm(void* c, int64_t ldc, const AT* a, int64_t lda, int32_t a_zp, const PackedQGemmWeights& pw,
          const QuantEpilogue& ep, int64_t m, const char* who) {
  int8::check_packed(pw, Isa::ref, kQGemmLayout, who);
  int8::check_epilogue(ep, who);
  int8::check_a_zero_point(a_zp, std::is_signed_v<AT>, who);
  const int8_t* w = reinterpret_cast<const int8_t*>(pw.data.data());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < pw.n; ++j) {
      int64_t acc = ep.bias ? ep.bias[j] : 0;
      for (int64_t t = 0; t < pw.k; ++t) acc += (int64_t{a[i * lda + t]} - a_zp) * w[j * pw.k + t];
      int8::store_scalar(c, i * ldc + j, static_cast<int32_t>(acc), j, ep);
    }
}

}  // namespace

void qgemm_pack(PackedQGemmWeights& out, const int8_t* w, int64_t n, int64_t k) {
  int8::init_packed(out, Isa::ref, kQGemmLayout, w, n, k, 1, static_cast<size_t>(n * k));
  std::memcpy(out.data.data(), w, static_cast<size_t>(n * k));
}

void qu8_qs8_gemm(void* c, int64_t ldc, const uint8_t* a, int64_t lda, int32_t a_zp, const PackedQGemmWeights& w,
                  const QuantEpilogue& ep, int64_t m) {
  gemm(c, ldc, a, lda, a_zp, w, ep, m, "qu8_qs8_gemm (ref)");
}

void qs8_qs8_gemm(void* c, int64_t ldc, const int8_t* a, int64_t lda, int32_t a_zp, const PackedQGemmWeights& w,
                  const QuantEpilogue& ep, int64_t m) {
  gemm(c, ldc, a, lda, a_zp, w, ep, m, "qs8_qs8_gemm (ref)");
}

void qconv2d_pack(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) {
  int8::init_conv_header(out, sh);
  const int64_t kg = sh.k / sh.groups, rsc = sh.r * sh.s * (sh.c / sh.groups);
  int8::init_packed(out.w, Isa::ref, kQGemmLayout, w, kg, rsc, sh.groups, static_cast<size_t>(kg * rsc));
  for (int64_t g = 0; g < sh.groups; ++g)
    std::memcpy(out.w.data.data() + g * out.w.group_bytes, w + g * kg * rsc, static_cast<size_t>(kg * rsc));
}

// y[b][p][q][k] = epilogue(Σ_{r,s,c∈group(k)} (x[b][ih][iw][c] − x_zp)·w[k][r][s][c] + bias[k]),
// ih = p·stride_h − pad_h + r·dil_h (likewise iw); taps outside the input add nothing.
void qu8_qs8_conv2d(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& pw, const QuantEpilogue& ep,
                    const QConv2dShape& sh) {
  const char* who = "qu8_qs8_conv2d (ref)";
  int8::check_conv_packed(pw, sh, Isa::ref, who);
  int8::check_packed(pw.w, Isa::ref, kQGemmLayout, who);
  int8::check_epilogue(ep, who);
  int8::check_a_zero_point(x_zp, false, who);
  const int64_t cg = sh.c / sh.groups, kg = sh.k / sh.groups, P = sh.p(), Q = sh.q();
  for (int64_t b = 0; b < sh.n; ++b)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q)
        for (int64_t k = 0; k < sh.k; ++k) {
          const int64_t g = k / kg;
          const int8_t* wk = reinterpret_cast<const int8_t*>(pw.w.data.data() + g * pw.w.group_bytes) +
                             (k % kg) * sh.r * sh.s * cg;
          int64_t acc = ep.bias ? ep.bias[k] : 0;
          for (int64_t r = 0; r < sh.r; ++r) {
            const int64_t ih = p * sh.stride_h - sh.pad_h + r * sh.dil_h;
            if (ih < 0 || ih >= sh.h) continue;
            for (int64_t s = 0; s < sh.s; ++s) {
              const int64_t iw = q * sh.stride_w - sh.pad_w + s * sh.dil_w;
              if (iw < 0 || iw >= sh.w) continue;
              const uint8_t* xp = x + ((b * sh.h + ih) * sh.w + iw) * sh.c + g * cg;
              const int8_t* wp = wk + (r * sh.s + s) * cg;
              for (int64_t c = 0; c < cg; ++c) acc += (int64_t{xp[c]} - x_zp) * wp[c];
            }
          }
          int8::store_scalar(y, ((b * P + p) * Q + q) * sh.k + k, static_cast<int32_t>(acc), k, ep);
        }
}

}  // namespace lowbit::kernels::ref
