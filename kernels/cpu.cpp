// CPU feature detection and the list of ISA paths.
//
// x86: a feature counts only when CPUID reports it AND the OS saves the
// register state it needs (XGETBV on XCR0). A hypervisor can expose AVX-512
// in CPUID while the kernel does not enable ZMM state; using it then faults.
// aarch64 (Linux): HWCAP from the auxiliary vector, which is what the kernel
// promises to support for user space.
#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace lowbit::kernels {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
  return r;
}

// XGETBV(0) = XCR0: which register files the OS saves on context switch.
unsigned long long xgetbv0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

bool bit(unsigned v, int i) { return (v >> i) & 1u; }

CpuFeatures detect() {
  CpuFeatures f;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1) return f;
  Regs l1 = cpuid(1, 0);
  bool osxsave = bit(l1.c, 27);
  bool cpu_avx = bit(l1.c, 28);
  unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  // XCR0 bits: 1 SSE, 2 AVX (YMM upper), 5-7 AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM),
  // 17-18 AMX (TILECFG, TILEDATA).
  bool os_avx = (xcr0 & 0x6) == 0x6;
  bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;
  bool os_amx = (xcr0 & 0x60000) == 0x60000;
  if (max_leaf < 7) return f;
  Regs l7 = cpuid(7, 0);
  bool avx = cpu_avx && os_avx;
  f.avx2 = avx && bit(l7.b, 5);
  f.fma = avx && bit(l1.c, 12);
  f.avx512f = os_avx512 && bit(l7.b, 16);
  f.avx512bw = f.avx512f && bit(l7.b, 30);
  f.avx512vl = f.avx512f && bit(l7.b, 31);
  f.avx512vnni = f.avx512f && bit(l7.c, 11);
  f.amx_int8 = os_amx && bit(l7.d, 25) && bit(l7.d, 24);  // AMX-INT8 needs AMX-TILE
  if (l7.a >= 1) {
    Regs l71 = cpuid(7, 1);
    f.avxvnni = avx && bit(l71.a, 4);  // VEX-encoded VNNI: YMM state suffices
  }
  return f;
}

#elif defined(__aarch64__)
CpuFeatures detect() {
  CpuFeatures f;
#if defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP);
  f.neon = (hw & HWCAP_ASIMD) != 0;
  f.dotprod = (hw & HWCAP_ASIMDDP) != 0;
#else
  f.neon = true;  // ASIMD is mandatory in AArch64
#endif
  return f;
}

#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::ref: return "ref";
    case Isa::avx2: return "avx2";
    case Isa::avxvnni: return "avxvnni";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::neon: return "neon";
    case Isa::neondot: return "neondot";
  }
  return "?";
}

bool isa_built(Isa isa) {
  switch (isa) {
    case Isa::ref: return true;
    case Isa::avx2:
#if defined(LOWBIT_BUILT_AVX2)
      return true;
#else
      return false;
#endif
    case Isa::neon:
#if defined(LOWBIT_BUILT_NEON)
      return true;
#else
      return false;
#endif
    case Isa::avxvnni:
#if defined(LOWBIT_BUILT_AVXVNNI)
      return true;
#else
      return false;
#endif
    case Isa::avx512vnni:
#if defined(LOWBIT_BUILT_AVX512VNNI)
      return true;
#else
      return false;
#endif
    case Isa::neondot:
      // Its float kernels are neon's; it is built only where its own int8
      // dot-product library is (else "neondot" would silently run neon's).
#if defined(LOWBIT_BUILT_NEON) && defined(LOWBIT_BUILT_NEONDOT)
      return true;
#else
      return false;
#endif
  }
  return false;
}

// What the CPU needs for each path, independent of whether it was built.
static bool cpu_supports(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::ref: return true;
    case Isa::avx2: return f.avx2 && f.fma;
    case Isa::avxvnni: return f.avx2 && f.fma && f.avxvnni;
    // Its float entries are the avx2 ones, so it needs AVX2+FMA too (a
    // hypervisor may mask features independently).
    case Isa::avx512vnni: return f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
    case Isa::neon: return f.neon;
    case Isa::neondot: return f.neon && f.dotprod;
  }
  return false;
}

bool isa_available(Isa isa) { return isa_built(isa) && cpu_supports(isa); }

}  // namespace lowbit::kernels
