// AVX2+FMA SGEMM, GotoBLAS/BLIS style, and the im2col convolution over it.
//
//   C[M×N] = op(A)[M×K] · op(B)[K×N] + beta·C     (row-major, leading dims)
//
// Loops, outermost first (BLIS names):
//   jc: N in NC columns          B block  KC×NC packed once per (jc, pc), shared by all threads
//   pc: K in KC steps            first step applies beta, later steps accumulate (C += AB)
//   ic: M in MC rows             A block  MC×KC packed per thread (stays in L2)
//   jr: NC in NR = 16 columns    B sliver KC×16 (16 KiB at KC = 256: stays in L1)
//   ir: MC in MR = 6 rows        microkernel: 6×16 tile in 12 ymm accumulators
// The 6×16 tile is the largest that fits AVX2's 16 ymm registers: 12
// accumulators + 2 B vectors + 1 A broadcast, 12 FMAs per 2 loads of B.
//
// Transposes are handled entirely by the packing routines; the microkernel
// sees the same packed layout for all four cases. Edge tiles are computed in
// full on zero-padded panels into a local tile, then merged into C.
//
// Threads: work items are (MC block, slice of the NR slivers) pairs, so a
// short-and-wide problem still splits across threads. Each C element is
// computed by one thread with the same K order, so the result does not
// depend on the thread count.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/avx2/avx2.h"
#include "kernels/ref/ref.h"

namespace lowbit::kernels {
namespace {

constexpr int64_t kMR = 6, kNR = 16;
constexpr int64_t kKC = 256;   // B sliver KC×NR·4 B = 16 KiB of the 32 KiB L1d
constexpr int64_t kMC = 144;   // A block MC×KC·4 B = 144 KiB, in L2
constexpr int64_t kNC = 3072;  // B block KC×NC·4 B = 3 MiB, in L3
// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kParallelMinMacs = 64 * 64 * 64;

// A growable 64-byte aligned scratch buffer, one per thread and kind, kept
// between calls: convolution calls the GEMM once per image and group.
struct Scratch {
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
  ~Scratch() { std::free(ptr); }
};
thread_local Scratch tl_pack_a, tl_pack_b;

// Pack op(A)[i0:i0+mc, p0:p0+kc] as ⌈mc/6⌉ slivers, each kc steps of 6 values
// (rows past mc are zero).
void pack_a(float* dst, const float* a, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
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

// Pack one NR sliver of op(B)[p0:p0+kc, j0:j0+cols] (cols ≤ 16) as kc steps of
// 16 values (columns past `cols` are zero).
void pack_b_sliver(float* dst, const float* b, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0,
                   int64_t cols) {
  if (!trans) {  // op(B)(p, j) = b[p·ldb + j]: rows are contiguous
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b + (p0 + p) * ldb + j0;
      if (cols == kNR) {
        _mm256_store_ps(dst, _mm256_loadu_ps(src));
        _mm256_store_ps(dst + 8, _mm256_loadu_ps(src + 8));
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

// How the microkernel merges its tile into C.
struct Merge {
  bool overwrite;  // C = acc (C never read: beta == 0 on the first K step)
  float beta;      // else C = acc + beta·C (beta = 1 after the first K step)
};

// acc[6×16] = Σ_p a[p, 0:6]ᵀ b[p, 0:16] over kc packed steps, merged into
// c (ldc) — a full tile. The body is straight-line FMA on 12 accumulators.
inline void gemm_6x16_avx2(float* c, int64_t ldc, const float* a, const float* b, int64_t kc, Merge mg) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  // Touch the C rows now so their cache misses overlap the K loop.
  for (int64_t r = 0; r < kMR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 15), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += kMR;
    b += kNR;
  }
  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mg.overwrite) {
    for (int64_t r = 0; r < kMR; ++r) {
      _mm256_storeu_ps(c + r * ldc, acc[r][0]);
      _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
    }
  } else {
    const __m256 beta = _mm256_set1_ps(mg.beta);
    for (int64_t r = 0; r < kMR; ++r) {
      float* row = c + r * ldc;
      _mm256_storeu_ps(row, _mm256_fmadd_ps(beta, _mm256_loadu_ps(row), acc[r][0]));
      _mm256_storeu_ps(row + 8, _mm256_fmadd_ps(beta, _mm256_loadu_ps(row + 8), acc[r][1]));
    }
  }
}

// A partial tile (rows ≤ 6, cols ≤ 16): full tile into a local buffer, then
// merged element by element so C outside the tile is never touched.
void gemm_edge_avx2(float* c, int64_t ldc, const float* a, const float* b, int64_t kc, Merge mg, int64_t rows,
                    int64_t cols) {
  alignas(32) float tile[kMR * kNR];
  gemm_6x16_avx2(tile, kNR, a, b, kc, Merge{true, 0.0f});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      float* dst = c + r * ldc + j;
      *dst = mg.overwrite ? tile[r * kNR + j] : tile[r * kNR + j] + mg.beta * *dst;
    }
}

// C block[mc × (slivers js0..js1 of the packed B block)] from packed A and B.
void macro_kernel(float* c, int64_t ldc, const float* pa, const float* pb, int64_t mc, int64_t nc, int64_t kc,
                  int64_t js0, int64_t js1, Merge mg) {
  for (int64_t js = js0; js < js1; ++js) {
    const int64_t j = js * kNR, cols = std::min(kNR, nc - j);
    const float* bs = pb + js * kNR * kc;
    for (int64_t i = 0; i < mc; i += kMR) {
      const int64_t rows = std::min(kMR, mc - i);
      const float* as = pa + i * kc;
      if (rows == kMR && cols == kNR)
        gemm_6x16_avx2(c + i * ldc + j, ldc, as, bs, kc, mg);
      else
        gemm_edge_avx2(c + i * ldc + j, ldc, as, bs, kc, mg, rows, cols);
    }
  }
}

// C[M×N] = op(A)·op(B) + beta·C
void f32_gemm_avx2(float* c, int64_t ldc, const float* a, int64_t lda, const float* b, int64_t ldb, bool trans_a,
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
  float* pb = tl_pack_b.get(static_cast<size_t>(nslivers_max * kNR * kc_max));
  const int64_t m_blocks = (m + kMC - 1) / kMC;

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float* pa = tl_pack_a.get(static_cast<size_t>(((std::min(m, kMC) + kMR - 1) / kMR) * kMR * kc_max));
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

// Convolution = the reference im2col lowering over this GEMM (1×1 stride-1
// convolutions skip im2col: the input plane is already the B matrix).
void f32_conv2d_forward_avx2(float* y, const float* x, const float* w, const float* bias, const Conv2dShape& sh) {
  ref::f32_conv2d_forward_im2col(y, x, w, bias, sh, f32_gemm_avx2);
}
void f32_conv2d_backward_input_avx2(float* dx, const float* dy, const float* w, const Conv2dShape& sh) {
  ref::f32_conv2d_backward_input_im2col(dx, dy, w, sh, f32_gemm_avx2);
}
void f32_conv2d_backward_weight_avx2(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& sh) {
  ref::f32_conv2d_backward_weight_im2col(dw, db, dy, x, sh, f32_gemm_avx2);
}

}  // namespace

void fill_avx2_gemm(FloatKernels& k) {
  k.f32_gemm = f32_gemm_avx2;
  k.f32_conv2d_forward = f32_conv2d_forward_avx2;
  k.f32_conv2d_backward_input = f32_conv2d_backward_input_avx2;
  k.f32_conv2d_backward_weight = f32_conv2d_backward_weight_avx2;
  k.gemm_path = "avx2 6x16";
  k.conv_path = "avx2 im2col + gemm";
}

}  // namespace lowbit::kernels
