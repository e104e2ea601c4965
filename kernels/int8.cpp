// ISA-independent int8 helpers: aligned buffers, argument checks, packed
// weight headers (see kernels/int8_util.h).
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/int8_util.h"

namespace lowbit::kernels {

void AlignedBytes::allocate(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(64, rounded > 0 ? rounded : 64));
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded > 0 ? rounded : 64);
  ptr.reset(p);
  size = bytes;
}

namespace int8 {
namespace {

[[noreturn]] void fail(const char* who, const std::string& what) {
  throw std::invalid_argument(std::string(who) + ": " + what);
}

std::string n2s(int64_t v) { return std::to_string(v); }

}  // namespace

void check_epilogue(const QuantEpilogue& ep, const char* who) {
  if (!ep.multiplier) fail(who, "epilogue has no multiplier");
  if (ep.out == QOut::f32) return;
  const int32_t lo = ep.out == QOut::u8 ? 0 : -128, hi = ep.out == QOut::u8 ? 255 : 127;
  if (ep.qmin < lo || ep.qmax > hi || ep.qmin > ep.qmax)
    fail(who, "output clamp [" + n2s(ep.qmin) + ", " + n2s(ep.qmax) + "] is not inside [" + n2s(lo) + ", " +
                  n2s(hi) + "] or is empty");
  if (ep.out_zp < lo || ep.out_zp > hi)
    fail(who, "output zero point " + n2s(ep.out_zp) + " is outside [" + n2s(lo) + ", " + n2s(hi) + "]");
}

void check_a_zero_point(int32_t a_zp, bool a_signed, const char* who) {
  const int32_t lo = a_signed ? -128 : 0, hi = a_signed ? 127 : 255;
  if (a_zp < lo || a_zp > hi)
    fail(who, "input zero point " + n2s(a_zp) + " is outside [" + n2s(lo) + ", " + n2s(hi) + "]");
}

void check_packed(const PackedQGemmWeights& w, Isa isa, const char* layout, const char* who) {
  if (w.groups < 1 || !w.data.data()) fail(who, "weights were never packed");
  if (w.isa != isa || std::strcmp(w.layout, layout) != 0)
    fail(who, std::string("weights were packed by path '") + isa_name(w.isa) + "' (layout " + w.layout +
                  "), this kernel is path '" + isa_name(isa) + "' (layout " + layout +
                  "): pack with the same kernel table that runs them");
}

void check_conv_shape(const QConv2dShape& sh, const char* who) {
  if (sh.n < 1 || sh.h < 1 || sh.w < 1 || sh.c < 1 || sh.k < 1 || sh.r < 1 || sh.s < 1)
    fail(who, "sizes must be positive");
  if (sh.stride_h < 1 || sh.stride_w < 1 || sh.dil_h < 1 || sh.dil_w < 1 || sh.pad_h < 0 || sh.pad_w < 0)
    fail(who, "stride and dilation must be ≥ 1 and padding ≥ 0");
  if (sh.groups < 1 || sh.c % sh.groups != 0 || sh.k % sh.groups != 0)
    fail(who, "groups (" + n2s(sh.groups) + ") must divide input channels (" + n2s(sh.c) + ") and output channels (" +
                  n2s(sh.k) + ")");
  if (sh.p() < 1 || sh.q() < 1) fail(who, "filter is larger than the padded input");
}

void check_conv_packed(const PackedQConvWeights& w, const QConv2dShape& sh, Isa isa, const char* who) {
  check_conv_shape(sh, who);
  if (w.groups < 1) fail(who, "weights were never packed");
  if (w.c != sh.c || w.k != sh.k || w.r != sh.r || w.s != sh.s || w.groups != sh.groups)
    fail(who, "weights were packed for C=" + n2s(w.c) + " K=" + n2s(w.k) + " " + n2s(w.r) + "x" + n2s(w.s) +
                  " groups=" + n2s(w.groups) + ", the conv has C=" + n2s(sh.c) + " K=" + n2s(sh.k) + " " +
                  n2s(sh.r) + "x" + n2s(sh.s) + " groups=" + n2s(sh.groups));
  if (w.w.isa != isa) check_packed(w.w, isa, w.w.layout, who);  // names both paths
}

void check_pool_shape(const QPool2dShape& sh, const char* who) {
  if (sh.n < 1 || sh.h < 1 || sh.w < 1 || sh.c < 1 || sh.r < 1 || sh.s < 1 || sh.p < 1 || sh.q < 1)
    fail(who, "sizes must be positive");
  if (sh.stride_h < 1 || sh.stride_w < 1 || sh.pad_h < 0 || sh.pad_w < 0) fail(who, "bad stride or padding");
  if (sh.pad_h * 2 > sh.r || sh.pad_w * 2 > sh.s) fail(who, "padding must be at most half the window");
  // Every window must overlap the input (as PyTorch's output-size rule guarantees).
  if ((sh.p - 1) * sh.stride_h - sh.pad_h >= sh.h || (sh.q - 1) * sh.stride_w - sh.pad_w >= sh.w)
    fail(who, "output size leaves a window entirely in the padding");
}

void init_packed(PackedQGemmWeights& out, Isa isa, const char* layout, const int8_t* w, int64_t n, int64_t k,
                 int64_t groups, size_t group_bytes) {
  if (n < 1 || k < 1 || groups < 1) fail("qgemm_pack", "sizes must be positive");
  out.isa = isa;
  out.layout = layout;
  out.n = n;
  out.k = k;
  out.groups = groups;
  out.group_bytes = (group_bytes + 63) / 64 * 64;
  out.data.allocate(out.group_bytes * static_cast<size_t>(groups));
  out.row_sums.assign(static_cast<size_t>(n * groups), 0);
  for (int64_t j = 0; j < n * groups; ++j) {
    int32_t s = 0;
    for (int64_t i = 0; i < k; ++i) s = qmath::wrap_add(s, w[j * k + i]);
    out.row_sums[static_cast<size_t>(j)] = s;
  }
}

void init_conv_header(PackedQConvWeights& out, const QConv2dShape& sh) {
  check_conv_shape(sh, "qconv2d_pack");
  out.c = sh.c;
  out.k = sh.k;
  out.r = sh.r;
  out.s = sh.s;
  out.groups = sh.groups;
  out.depthwise = sh.depthwise();
}

}  // namespace int8
}  // namespace lowbit::kernels
