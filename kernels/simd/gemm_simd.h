// SGEMM written once with xsimd, GotoBLAS/BLIS style, instantiated per ISA:
// GemmSimd<Arch> for Arch = fma3<avx2> (kernels/avx2/) or neon64
// (kernels/neon/). Include only from an ISA folder's .cpp (built with that
// ISA's flags); everything here has internal linkage.
//
//   C[M×N] = op(A)[M×K] · op(B)[K×N] + beta·C     (row-major, leading dims)
//
// Loops, outermost first (BLIS names), with L = float lanes (8 AVX2, 4 NEON):
//   jc: N in NC columns          B block  KC×NC packed once per (jc, pc), shared by all threads
//   pc: K in KC steps            first step applies beta, later steps accumulate (C += AB)
//   ic: M in MC rows             A block  MC×KC packed per thread (stays in L2)
//   jr: NC in NR = 2L columns    B sliver KC×NR (16 KiB for AVX2 at KC = 256: stays in L1)
//   ir: MC in MR = 6 rows        microkernel: 6×2L tile in 12 vector accumulators
// 6×16 is the largest tile that fits AVX2's 16 ymm registers: 12
// accumulators + 2 B vectors + 1 A broadcast, 12 FMAs per 2 loads of B.
// (NEON's 32 registers would allow a larger tile; 6×8 keeps one code path.)
//
// Transposes are handled entirely by the packing routines; the microkernel
// sees the same packed layout for all four cases. Edge tiles are computed in
// full on zero-padded panels into a local tile, then merged into C.
//
// Threads: work items are (MC block, slice of the NR slivers) pairs, so a
// short-and-wide problem still splits across threads. Each C element is
// computed by one thread with the same K order, so the result does not
// depend on the thread count.
#pragma once
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/kernels.h"

namespace lowbit::kernels {
namespace {

// A growable 64-byte aligned scratch buffer, one per thread and kind, kept
// between calls: convolution calls the GEMM once per image and group.
struct GemmScratch {
  float* ptr = nullptr;
  size_t cap = 0;
  float* get(size_t n) {
    if (n > cap) {
      std::free(ptr);
      const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
      cap = n;
    }
    return ptr;
  }
  ~GemmScratch() { std::free(ptr); }
};

// How the microkernel merges its tile into C.
struct Merge {
  bool overwrite;  // C = acc (C never read: beta == 0 on the first K step)
  float beta;      // else C = acc + beta·C (beta = 1 after the first K step)
};

template <class Arch>
struct GemmSimd {
  using VF = xsimd::batch<float, Arch>;
  static constexpr int64_t kL = VF::size;
  static constexpr int64_t kMR = 6, kNR = 2 * kL;
  static constexpr int64_t kKC = 256;   // B sliver KC×NR floats: 16 KiB (AVX2) of a 32 KiB L1d
  static constexpr int64_t kMC = 144;   // A block MC×KC floats: 144 KiB, in L2
  static constexpr int64_t kNC = 3072;  // B block KC×NC floats: 3 MiB, in L3
  // Below this many multiply-adds a parallel region costs more than it saves.
  static constexpr int64_t kParallelMinMacs = 64 * 64 * 64;

  static GemmScratch& pack_a_scratch() {
    static thread_local GemmScratch s;
    return s;
  }
  static GemmScratch& pack_b_scratch() {
    static thread_local GemmScratch s;
    return s;
  }

  // Pack op(A)[i0:i0+mc, p0:p0+kc] as ⌈mc/6⌉ slivers, each kc steps of 6 values
  // (rows past mc are zero).
  static void pack_a(float* dst, const float* a, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
    for (int64_t is = 0; is < mc; is += kMR) {
      const int64_t rows = std::min(kMR, mc - is);
      if (trans) {  // op(A)(i, p) = a[p·lda + i]: each step is a contiguous run of rows
        for (int64_t p = 0; p < kc; ++p) {
          const float* src = a + (p0 + p) * lda + i0 + is;
          for (int64_t r = 0; r < rows; ++r) dst[r] = src[r];
          for (int64_t r = rows; r < kMR; ++r) dst[r] = 0.0f;
          dst += kMR;
        }
      } else {  // op(A)(i, p) = a[i·lda + p]: interleave `rows` row pointers
        const float* src[kMR];
        for (int64_t r = 0; r < kMR; ++r) src[r] = a + (i0 + is + std::min(r, rows - 1)) * lda + p0;
        for (int64_t p = 0; p < kc; ++p) {
          for (int64_t r = 0; r < kMR; ++r) dst[r] = r < rows ? src[r][p] : 0.0f;
          dst += kMR;
        }
      }
    }
  }

  // Pack one NR sliver of op(B)[p0:p0+kc, j0:j0+cols] (cols ≤ NR) as kc steps of
  // NR values (columns past `cols` are zero).
  static void pack_b_sliver(float* dst, const float* b, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0,
                     int64_t cols) {
    if (!trans) {  // op(B)(p, j) = b[p·ldb + j]: rows are contiguous
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b + (p0 + p) * ldb + j0;
        if (cols == kNR) {
          VF::load_unaligned(src).store_aligned(dst);
          VF::load_unaligned(src + kL).store_aligned(dst + kL);
        } else {
          for (int64_t j = 0; j < cols; ++j) dst[j] = src[j];
          for (int64_t j = cols; j < kNR; ++j) dst[j] = 0.0f;
        }
        dst += kNR;
      }
    } else {  // op(B)(p, j) = b[j·ldb + p]: read each column of op(B) contiguously
      for (int64_t j = 0; j < kNR; ++j) {
        if (j < cols) {
          const float* src = b + (j0 + j) * ldb + p0;
          for (int64_t p = 0; p < kc; ++p) dst[p * kNR + j] = src[p];
        } else {
          for (int64_t p = 0; p < kc; ++p) dst[p * kNR + j] = 0.0f;
        }
      }
    }
  }


  // acc[6×2L] = Σ_p a[p, 0:6]ᵀ b[p, 0:2L] over kc packed steps, merged into
  // c (ldc) — a full tile. The fully unrolled loops keep the 12 accumulators in
  // registers (checked in the AVX2 disassembly: no spills in the K loop).
  static inline void tile(float* c, int64_t ldc, const float* a, const float* b, int64_t kc, Merge mg) {
    VF acc[kMR][2];
#pragma GCC unroll 6
    for (int64_t r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = VF(0.0f);
    // Touch the C rows now so their cache misses overlap the K loop.
    for (int64_t r = 0; r < kMR; ++r) {
      __builtin_prefetch(c + r * ldc);
      __builtin_prefetch(c + r * ldc + kNR - 1);
    }
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p) {
      const VF b0 = VF::load_aligned(b), b1 = VF::load_aligned(b + kL);
#pragma GCC unroll 6
      for (int64_t r = 0; r < kMR; ++r) {
        const VF av(a[r]);
        acc[r][0] = xsimd::fma(av, b0, acc[r][0]);
        acc[r][1] = xsimd::fma(av, b1, acc[r][1]);
      }
      a += kMR;
      b += kNR;
    }
    if (mg.overwrite) {
#pragma GCC unroll 6
      for (int64_t r = 0; r < kMR; ++r) {
        acc[r][0].store_unaligned(c + r * ldc);
        acc[r][1].store_unaligned(c + r * ldc + kL);
      }
    } else {
      const VF beta(mg.beta);
#pragma GCC unroll 6
      for (int64_t r = 0; r < kMR; ++r) {
        float* row = c + r * ldc;
        xsimd::fma(beta, VF::load_unaligned(row), acc[r][0]).store_unaligned(row);
        xsimd::fma(beta, VF::load_unaligned(row + kL), acc[r][1]).store_unaligned(row + kL);
      }
    }
  }

  // A partial tile (rows ≤ 6, cols ≤ 2L): full tile into a local buffer, then
  // merged element by element so C outside the tile is never touched.
  static void edge_tile(float* c, int64_t ldc, const float* a, const float* b, int64_t kc, Merge mg, int64_t rows,
                      int64_t cols) {
    alignas(64) float buf[kMR * kNR];
    tile(buf, kNR, a, b, kc, Merge{true, 0.0f});
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) {
        float* dst = c + r * ldc + j;
        *dst = mg.overwrite ? buf[r * kNR + j] : buf[r * kNR + j] + mg.beta * *dst;
      }
  }

  // C block[mc × (slivers js0..js1 of the packed B block)] from packed A and B.
  static void macro_kernel(float* c, int64_t ldc, const float* pa, const float* pb, int64_t mc, int64_t nc, int64_t kc,
                    int64_t js0, int64_t js1, Merge mg) {
    for (int64_t js = js0; js < js1; ++js) {
      const int64_t j = js * kNR, cols = std::min(kNR, nc - j);
      const float* bs = pb + js * kNR * kc;
      for (int64_t i = 0; i < mc; i += kMR) {
        const int64_t rows = std::min(kMR, mc - i);
        const float* as = pa + i * kc;
        if (rows == kMR && cols == kNR)
          tile(c + i * ldc + j, ldc, as, bs, kc, mg);
        else
          edge_tile(c + i * ldc + j, ldc, as, bs, kc, mg, rows, cols);
      }
    }
  }

  // C[M×N] = op(A)·op(B) + beta·C
  static void f32_gemm(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int64_t ldb, bool trans_a,
                     bool trans_b, float beta, int64_t m, int64_t n, int64_t k) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // no products: C = beta·C, and beta == 0 must not read C
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
      return;
    }
    const int threads = m * n * k >= kParallelMinMacs ? num_threads() : 1;
    const int64_t kc_max = std::min(k, kKC), nc_max = std::min(n, kNC);
    const int64_t nslivers_max = (nc_max + kNR - 1) / kNR;
    float* pb = pack_b_scratch().get(static_cast<size_t>(nslivers_max * kNR * kc_max));
    const int64_t m_blocks = (m + kMC - 1) / kMC;

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      float* pa = pack_a_scratch().get(static_cast<size_t>(((std::min(m, kMC) + kMR - 1) / kMR) * kMR * kc_max));
      for (int64_t jc = 0; jc < n; jc += kNC) {
        const int64_t nc = std::min(kNC, n - jc), nslivers = (nc + kNR - 1) / kNR;
        // Split the slivers too when there are fewer M blocks than threads.
        const int64_t slices = std::min<int64_t>(nslivers, std::max<int64_t>(1, (threads + m_blocks - 1) / m_blocks));
        for (int64_t pc = 0; pc < k; pc += kKC) {
          const int64_t kc = std::min(kKC, k - pc);
          const Merge mg = pc == 0 ? Merge{beta == 0.0f, beta} : Merge{false, 1.0f};
#pragma omp for schedule(static)
          for (int64_t js = 0; js < nslivers; ++js)
            pack_b_sliver(pb + js * kNR * kc, b, ldb, trans_b, pc, kc, jc + js * kNR, std::min(kNR, nc - js * kNR));
          // (implicit barrier: B is packed before anyone reads it)
          int64_t packed_ic = -1;
#pragma omp for schedule(static)
          for (int64_t item = 0; item < m_blocks * slices; ++item) {
            const int64_t ib = item / slices, sl = item % slices;
            const int64_t ic = ib * kMC, mc = std::min(kMC, m - ic);
            if (ib != packed_ic) {  // consecutive items of one thread often share the A block
              pack_a(pa, a, lda, trans_a, ic, mc, pc, kc);
              packed_ic = ib;
            }
            const int64_t js0 = nslivers * sl / slices, js1 = nslivers * (sl + 1) / slices;
            macro_kernel(c + ic * ldc + jc, ldc, pa, pb, mc, nc, kc, js0, js1, mg);
          }
          // (implicit barrier: nobody repacks B while it is in use)
        }
      }
    }
  }
};

}  // namespace
}  // namespace lowbit::kernels
