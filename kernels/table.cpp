// The kernel table: which implementation each entry points to, chosen once.
//
// A path is used only if it was built and the CPU supports it
// (isa_available). Each table starts from the reference kernels and the ISA
// folders overwrite the entries they implement, so a path with a partial set
// of fast kernels is still complete. The int8-only paths (avxvnni,
// avx512vnni, neondot) take the float kernels of the path they extend.
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "kernels/kernels.h"
#include "kernels/ref/int8_ref.h"
#include "kernels/ref/ref.h"
#if defined(LOWBIT_BUILT_AVX2)
#include "kernels/avx2/avx2.h"
#endif
#if defined(LOWBIT_BUILT_AVXVNNI)
#include "kernels/avxvnni/avxvnni.h"
#endif
#if defined(LOWBIT_BUILT_AVX512VNNI)
#include "kernels/avx512vnni/avx512vnni.h"
#endif
#if defined(LOWBIT_BUILT_DNNL)
#include "kernels/dnnl/dnnl_conv.h"
#endif
#if defined(LOWBIT_BUILT_NEON)
#include "kernels/neon/neon.h"
#endif

namespace lowbit::kernels {
namespace {

constexpr Isa kAllIsas[] = {Isa::ref, Isa::avx2, Isa::avxvnni, Isa::avx512vnni, Isa::neon, Isa::neondot};

FloatKernels ref_float_kernels() {
  FloatKernels k{};
  k.f32_unary = ref::f32_unary;
  k.f32_binary = ref::f32_binary;
  k.f32_axpby = ref::f32_axpby;
  k.f32_sum = ref::f32_sum;
  k.f32_max = ref::f32_max;
  k.f32_channel_moments = ref::f32_channel_moments;
  k.f32_channel_affine = ref::f32_channel_affine;
  k.f32_bn_backward = ref::f32_bn_backward;
  k.f32_gemm = ref::f32_gemm;
  k.f32_conv2d_forward = ref::f32_conv2d_forward;
  k.f32_conv2d_backward_input = ref::f32_conv2d_backward_input;
  k.f32_conv2d_backward_weight = ref::f32_conv2d_backward_weight;
  k.elementwise_path = "f32-elementwise-ref";
  k.gemm_path = "f32-gemm-ref";
  k.conv_path = "f32-conv-im2col-ref";
  return k;
}

PeakProbes ref_peak_probes() {
  return {ref::peak_f32_fma, ref::peak_s8_dot, "ref: plain C++ multiply-add chains"};
}

std::string name_list(bool available_only) {
  std::string s;
  for (Isa i : kAllIsas) {
    if (available_only && !isa_available(i)) continue;
    if (!s.empty()) s += ", ";
    s += isa_name(i);
  }
  return s;
}

}  // namespace

const char* kernel_name(const std::string& name) {
  static std::mutex mu;
  static std::set<std::string> names;  // nodes never move: the pointers stay valid
  std::lock_guard<std::mutex> lock(mu);
  return names.insert(name).first->c_str();
}

std::string tile_name(int64_t mr, int64_t nr, int64_t kgroup) {
  std::string s = std::to_string(mr) + "x" + std::to_string(nr);
  return kgroup > 1 ? s + "c" + std::to_string(kgroup) : s;
}

KernelTable make_table(Isa isa) {
  if (!isa_available(isa))
    throw std::runtime_error(std::string("kernel path '") + isa_name(isa) +
                             "' is not available here (available: " + name_list(true) + ")");
  KernelTable t{isa, ref_float_kernels(), ref_peak_probes(), ref::int8_kernels()};
  switch (isa) {
    case Isa::ref: break;
    case Isa::avx2:
    case Isa::avxvnni:
    case Isa::avx512vnni:
#if defined(LOWBIT_BUILT_AVX2)
      fill_avx2_float(t.f32);
      fill_avx2_gemm(t.f32);
      fill_avx2_peak(t.peak);
      fill_avx2_int8_gemm(t.q8);
      fill_avx2_int8_elementwise(t.q8);
#endif
#if defined(LOWBIT_BUILT_AVXVNNI)
      if (isa == Isa::avxvnni) fill_avxvnni_int8_gemm(t.q8);
#endif
#if defined(LOWBIT_BUILT_AVX512VNNI)
      if (isa == Isa::avx512vnni) {
        fill_avx512vnni_peak(t.peak);
        fill_avx512vnni_int8_gemm(t.q8);
      }
#endif
#if defined(LOWBIT_BUILT_DNNL)
      // oneDNN's blocked-format conv: 2-4x faster than im2col + our GEMM on 3x3
      // convs, ~25x on depthwise, equal on 1x1 (N=32 ResNet/MobileNet shapes, 2 cores).
      fill_dnnl_conv(t.f32);
#endif
      break;
    case Isa::neon:
    case Isa::neondot:
#if defined(LOWBIT_BUILT_NEON)
      fill_neon_float(t.f32);
      fill_neon_gemm(t.f32);
      fill_neon_int8(t.q8);
      fill_neon_int8_elementwise(t.q8);
#endif
#if defined(LOWBIT_BUILT_NEONDOT)
      if (isa == Isa::neondot) fill_neondot_int8_gemm(t.q8);
#endif
      break;
  }
  return t;
}

Isa best_isa() {
  // Most capable first.
  for (Isa i : {Isa::avx512vnni, Isa::avxvnni, Isa::avx2, Isa::neondot, Isa::neon})
    if (isa_available(i)) return i;
  return Isa::ref;
}

Isa isa_from_name(const char* name) {
  const std::string s = name ? name : "";
  for (Isa i : kAllIsas) {
    if (s != isa_name(i)) continue;
    if (!isa_available(i))
      throw std::runtime_error("LOWBIT_ISA=" + s + ": path not available on this build/CPU (available: " +
                               name_list(true) + ")");
    return i;
  }
  throw std::runtime_error("LOWBIT_ISA=" + s + ": unknown path (valid: " + name_list(false) +
                           "; available: " + name_list(true) + ")");
}

const KernelTable& table() {
  // A throwing initializer leaves the static uninitialized, so a bad
  // LOWBIT_ISA fails every call instead of silently falling back.
  static const KernelTable t = [] {
    const char* env = std::getenv("LOWBIT_ISA");
    return make_table(env && *env ? isa_from_name(env) : best_isa());
  }();
  return t;
}

}  // namespace lowbit::kernels
