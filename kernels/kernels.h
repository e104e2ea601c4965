// lowbit kernels: raw-pointer compute, no Tensor. Everything here is callable
// from C++ without core/, and builds (and tests) on its own for aarch64.
//
// Shape legend used throughout kernels/:
//   N batch, C input channels, H×W input height×width, K output channels,
//   R×S filter height×width, P×Q output height×width, G groups.
//   GEMM: C[M×N] = A[M×K] · B[K×N], row-major with leading dimensions.
// Signatures: output first, sizes last.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/int8.h"  // int8 types and the Int8Kernels table section

namespace lowbit::kernels {

// ---- CPU features and ISA paths ---------------------------------------------
struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512vl = false,
       avx512vnni = false, avxvnni = false, amx_int8 = false, neon = false, dotprod = false;
};
// Read once (CPUID + XGETBV on x86, HWCAP on Linux/aarch64).
const CpuFeatures& cpu_features();

enum class Isa { ref, avx2, avxvnni, avx512vnni, neon, neondot };
const char* isa_name(Isa isa);
// True if the path was compiled into this build.
bool isa_built(Isa isa);
// True if the path was built and this CPU can run it.
bool isa_available(Isa isa);

// ---- kernel names ----------------------------------------------------------
// Kernels are named by family, tile and ISA, as XNNPACK names its own
// (kernels/README.md#kernel-names), e.g. "qu8-qc8w-gemm-6x16c2-fp32-avx2-vpmaddwd".
// The tile part is written from the microkernel's own constants
// (tile_name(kMR, kNR, kKG)), so a name cannot disagree with the tile that
// runs. kernel_name returns an interned copy that lives as long as the program.
const char* kernel_name(const std::string& name);
std::string tile_name(int64_t mr, int64_t nr, int64_t kgroup);  // "6x16c2"; "6x16" for kgroup 1

// ---- elementwise op codes ---------------------------------------------------
enum class Unary : int { neg, exp, log, sqrt, abs, relu, relu6, sigmoid, tanh, square, reciprocal };
enum class Binary : int { add, sub, mul, div, max, min };
// Activation fused into an op's output (batch-norm apply and its backward).
// Forward: relu clamps below at 0, relu6 to [0, 6]; NaN passes through.
// Backward: the gradient passes where the fused output y is inside the open
// active range (relu: y > 0; relu6: 0 < y < 6) and is 0 elsewhere, which is
// PyTorch's relu / hardtanh backward read from the output.
enum class Act : int { none, relu, relu6 };
inline float act_apply(Act a, float v) {
  if (a == Act::none) return v;
  v = v < 0.0f ? 0.0f : v;
  return a == Act::relu6 && v > 6.0f ? 6.0f : v;
}
inline bool act_passes(Act a, float y) {
  return a == Act::none || (y > 0.0f && (a == Act::relu || y < 6.0f));
}

// ---- float convolution problem ---------------------------------------------
// Activations NCHW, weights K×(C/G)×R×S, output N×K×P×Q, all contiguous.
struct Conv2dShape {
  int64_t n, c, h, w;     // input
  int64_t k, r, s;        // output channels, filter
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  int64_t p() const { return (h + 2 * pad_h - dil_h * (r - 1) - 1) / stride_h + 1; }
  int64_t q() const { return (w + 2 * pad_w - dil_w * (s - 1) - 1) / stride_w + 1; }
};

// ---- the kernel table --------------------------------------------------------
// One set of function pointers, filled once from cpu_features() (or LOWBIT_ISA).
// Every entry has a scalar reference in kernels/ref/ that is the test oracle.
struct FloatKernels {
  // y[i] = op(x[i]), contiguous.
  void (*f32_unary)(float* y, const float* x, Unary op, int64_t n);
  // y[i] = op(a[i*sa], b[i*sb]), strides in elements (0 = broadcast scalar).
  void (*f32_binary)(float* y, const float* a, int64_t sa, const float* b, int64_t sb, Binary op, int64_t n);
  // y[i] = a[i] * alpha + b[i] * beta  (axpby; b may alias y).
  void (*f32_axpby)(float* y, const float* a, float alpha, const float* b, float beta, int64_t n);
  // Sum of a contiguous array. The reference accumulates sequentially in double;
  // fast paths sum fixed-size blocks in float lanes and combine the blocks in
  // double, in block order, so the result does not depend on the thread count.
  // Agreement with ref is to a relative tolerance, not bit-exact.
  double (*f32_sum)(const float* x, int64_t n);
  // Max of a contiguous array: NaN if any element is NaN, -inf if n == 0.
  float (*f32_max)(const float* x, int64_t n);
  // Per-channel mean and biased variance over N×C×HW (NCHW with HW = H*W).
  void (*f32_channel_moments)(float* mean, float* var, const float* x, int64_t n, int64_t c, int64_t hw);
  // y[n,c,i] = act(x[n,c,i] * scale[c] + shift[c])   (batch-norm apply).
  void (*f32_channel_affine)(float* y, const float* x, const float* scale, const float* shift, Act act,
                             int64_t n, int64_t c, int64_t hw);
  // Batch-norm backward over N×C×HW, per channel c (M = N·HW, x̂ = (x − mean)·invstd):
  //   sum_g[c] = Σ g,  sum_gxhat[c] = Σ g·x̂   (accumulated in double across rows);
  //   if dx: dx = w·invstd·(g − sum_g/M − x̂·sum_gxhat/M) when training, w·invstd·g
  //   in eval; weight may be null (w = 1). Agreement with ref is to a tolerance.
  //   With act ≠ none, g is first masked by act_passes(act, y), y the fused
  //   forward output (unused, may be null, for none).
  void (*f32_bn_backward)(float* dx, float* sum_g, float* sum_gxhat, const float* x, const float* g,
                          const float* y, Act act, const float* mean, const float* invstd, const float* weight, bool training,
                          int64_t n, int64_t c, int64_t hw);
  // C = op(A)·op(B) + beta·C ; op = transpose when trans_*; row-major, leading dims.
  // beta == 0 means C is write-only (never read, may hold NaN).
  void (*f32_gemm)(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int64_t ldb,
                   bool trans_a, bool trans_b, float beta, int64_t m, int64_t n, int64_t k);
  // Convolution (bias may be null; db may be null).
  void (*f32_conv2d_forward)(float* y, const float* x, const float* w, const float* bias, const Conv2dShape& sh);
  void (*f32_conv2d_backward_input)(float* dx, const float* dy, const float* w, const Conv2dShape& sh);
  void (*f32_conv2d_backward_weight)(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& sh);

  const char* elementwise_path;  // names of the chosen implementations, for `lowbit info`
  const char* gemm_path;
  const char* conv_path;
};

// Machine peak probes for `lowbit bench peak`: each runs `iters` iterations of
// independent multiply-add chains (enough of them that throughput, not
// latency, bounds the loop), writes a value that depends on every chain to
// *sink so the work is not dead, and returns the operations done, counting a
// multiply-add as 2. Inputs are made opaque to the compiler where they would
// otherwise be loop-invariant, so no product is hoisted out of the loop.
struct PeakProbes {
  int64_t (*f32_fma)(float* sink, int64_t iters);   // fp32 multiply-adds
  int64_t (*s8_dot)(int32_t* sink, int64_t iters);  // u8×s8 products summed in s32
  const char* name;  // the instructions used, for `lowbit bench peak`
};

struct KernelTable {
  Isa isa;
  FloatKernels f32;
  PeakProbes peak;
  Int8Kernels q8;
};

// The table chosen for this process: the best available path, or the one
// LOWBIT_ISA names. An unknown or unavailable name throws std::runtime_error
// (from every call: the table is never built from a bad setting).
const KernelTable& table();
// Build the table for a given path (for tests comparing every path to ref).
// Throws std::runtime_error if the path is not available.
KernelTable make_table(Isa isa);
// The best path this build and CPU can run (what table() uses without LOWBIT_ISA).
Isa best_isa();
// Parse a path name as LOWBIT_ISA takes it. Throws std::runtime_error with a
// one-line message listing the valid and the available names if `name` is
// unknown or not available here.
Isa isa_from_name(const char* name);

// ---- threads ---------------------------------------------------------------
// Number of OpenMP threads used by kernels. Default: LOWBIT_THREADS, else
// OMP_NUM_THREADS (its first level), else all cores. num_threads() throws
// std::runtime_error naming the variable when the value is not a whole number
// from 1 to 4096 (as table() does for a bad LOWBIT_ISA).
void set_num_threads(int n);
int num_threads();
int num_cores();  // the processors OpenMP sees (at least 1)

}  // namespace lowbit::kernels
