// The int8 GEMM and convolution drivers, written once and instantiated per
// ISA with that ISA's microkernel (XNNPACK's split: operators own tiling,
// packing and threads; microkernels compute one MR×NR tile). Include only
// from an ISA folder's .cpp; everything here has internal linkage. No
// intrinsics: the Traits class of the ISA supplies them.
//
//   C[M×N] = epilogue(A[M×K] · Wᵀ + bias − a_zp·rowsum(W))     W: N×K s8
//
// Traits (see kernels/avx512vnni/qgemm_avx512vnni.cpp for an example):
//   kIsa                      the path recorded in the packed weights
//   kArch, kInstr             ISA and instruction of the name ("avx2", "vpmaddwd")
//   kMR, kNR, kKG             tile rows, tile columns, K group (products per lane per step)
//   AElem                     element type of the A rows the microkernel reads: uint8_t,
//                             int8_t (both read as raw bytes) or int16_t (pre-widened)
//   pack_block(dst, w, ldw, cols, k, kpad)   one NR-column block of W (cols ≤ NR valid rows of W)
//   block_bytes(kpad)         bytes of one packed block
//   kIndirect, itile_mr<MR>(ntaps, cg, ptrs, b, …)   optional: the same tile with A
//                             given as ntaps × MR pointers of cg AElems each (convolution
//                             without im2col; cg a multiple of kKG)
//   tile_mr<MR>(kpad, rows, b, col_off, mult, te, c, ldc_bytes)   microkernel for MR ≤ kMR
//                             rows (instantiated for each MR in 1..kMR): rows = MR row
//                             pointers, each with kpad readable AElems (values past K are
//                             multiplied by zero weights); col_off/mult: NR column values;
//                             writes MR × te.nr outputs at c (row stride ldc_bytes).
// QGemmDriver<T>::fill_table(k, dw_pack, dw_run, dw_name) then sets the path's
// Int8Kernels entries and names (depthwise convolutions go to the path's own
// direct kernel).
//
// A rows. The microkernel reads A in its own element type: a row of the
// caller's matrix is used in place when it already is (u8 for VNNI, s8 for
// NEON dot, with K a multiple of the K group); otherwise rows are converted
// into a per-thread block: s8 ↔ u8 by flipping the sign bit (a ± 128, with
// the zero point moved by the same 128, so (a − a_zp) is unchanged), or
// widened to int16 (AVX2 and NEON, exact 16-bit multiplies). Convolution
// builds the same rows by im2col into that block, the padding taps filled
// with the input zero point (exactly zero after subtracting it); on paths
// whose microkernel reads u8 directly, convolutions whose group width is a
// whole number of K groups skip the copy and pass pointers to the input
// pixels of every tap instead (an indirection buffer, as XNNPACK's IGEMM),
// padding taps pointing at a pixel of zero points. 1×1 convolutions without
// padding use the input pixels in place when they can.
//
// Blocking and threads: work items are (group, block of MC rows, slice of
// the NR column blocks); each item prepares its A rows once and runs every
// column block of its slice over them (the A block stays in L2, each packed
// B block in L1/L2 while the MR-row tiles pass over it). Items are shared
// dynamically by the OpenMP threads; each output is computed by one thread in
// a fixed K order, so results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/int8_util.h"
#include "kernels/kernels.h"

namespace lowbit::kernels {
namespace {

// What the microkernel's epilogue needs besides the per-column vectors.
struct TileEpilogue {
  QOut out;
  int32_t zp, qmin, qmax;
  int nr;  // valid columns of this tile (≤ NR); the rest are computed but not stored
};

// f(std::integral_constant<int, mr>{}) for a runtime mr in [1, MaxMR]: the
// microkernel is compiled once per row count, with its loops fully unrolled.
template <int MaxMR, class F>
inline void with_rows(int mr, F&& f) {
  if constexpr (MaxMR == 1) {
    f(std::integral_constant<int, 1>{});
  } else {
    if (mr == MaxMR)
      f(std::integral_constant<int, MaxMR>{});
    else
      with_rows<MaxMR - 1>(mr, f);
  }
}

template <class T>
struct QGemmDriver {
  using AElem = typename T::AElem;
  static constexpr int64_t kMR = T::kMR, kNR = T::kNR, kKG = T::kKG;
  static constexpr int64_t kABlockBytes = 96 * 1024;    // prepared A rows per work item (L2)
  static constexpr int64_t kMaxRows = 256;              // rows per work item
  // Shortest filter row read through a pointer: shorter rows are copied by
  // im2col instead, as a microkernel restarting every few K groups loses more
  // than the copy costs — unless the whole reduction is that short and the copy
  // dominates. Measured (1 thread): ResNet-18 conv1 (7×7×3, rows of 21 → 24
  // bytes) 0.85 ms by row pointers, 0.76 ms by im2col; MobileNetV2's stem
  // (3×3×3, K = 27) 0.21 ms by row pointers, 0.26 ms by im2col.
  static constexpr int64_t kMinSegment = 64;
  static constexpr int64_t kParallelMinMacs = 1 << 18;  // below this, one thread

  static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

  // ---- packing -----------------------------------------------------------------
  static void pack(PackedQGemmWeights& out, const int8_t* w, int64_t n, int64_t k, int64_t groups) {
    const int64_t kpad = round_up(k, kKG), nblocks = (n + kNR - 1) / kNR;
    const size_t group_bytes = static_cast<size_t>(nblocks) * T::block_bytes(kpad);
    int8::init_packed(out, T::kIsa, gemm_name(), w, n, k, groups, group_bytes);
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t nb = 0; nb < nblocks; ++nb)
        T::pack_block(out.data.data() + g * out.group_bytes + nb * T::block_bytes(kpad),
                      w + (g * n + nb * kNR) * k, k, std::min(kNR, n - nb * kNR), k, kpad);
  }

  // ---- A rows ------------------------------------------------------------------
  // Converts len values of the caller's type to AElem (see header comment).
  template <class Src>
  static void convert(AElem* dst, const Src* src, int64_t len) {
    if constexpr (std::is_same_v<AElem, Src>) {
      copy_bytes(reinterpret_cast<uint8_t*>(dst), reinterpret_cast<const uint8_t*>(src), len * int64_t{sizeof(AElem)});
    } else if constexpr (sizeof(AElem) == 1) {  // u8 ↔ s8: flip the sign bit
      const uint8_t* s = reinterpret_cast<const uint8_t*>(src);
      uint8_t* d = reinterpret_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < len; ++i) d[i] = static_cast<uint8_t>(s[i] ^ 0x80u);
    } else {  // widen
      for (int64_t i = 0; i < len; ++i) dst[i] = static_cast<AElem>(src[i]);
    }
  }
  // memcpy for the short runs of im2col (a library call costs more than the
  // copy): two overlapping fixed-size moves cover any n up to twice their size.
  static void copy_bytes(uint8_t* dst, const uint8_t* src, int64_t n) {
    if (n >= 32) {
      std::memcpy(dst, src, static_cast<size_t>(n));
    } else if (n >= 16) {
      std::memcpy(dst, src, 16);
      std::memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8) {
      std::memcpy(dst, src, 8);
      std::memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
      std::memcpy(dst, src, 4);
      std::memcpy(dst + n - 4, src + n - 4, 4);
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    }
  }
  static void fill(AElem* dst, AElem v, int64_t n) {
    if (n <= 0) return;
    for (int64_t i = 0; i < n; ++i) dst[i] = v;
  }

  // The caller's zero point in AElem terms.
  template <class Src>
  static int32_t effective_zp(int32_t zp) {
    if constexpr (sizeof(AElem) == 1 && !std::is_same_v<AElem, Src>) return std::is_signed_v<AElem> ? zp - 128 : zp + 128;
    return zp;
  }
  template <class Src>
  static AElem converted(Src v) {
    AElem d;
    convert(&d, &v, 1);
    return d;
  }

  static std::vector<const AElem*>& row_pointers() {
    static thread_local std::vector<const AElem*> s;
    return s;
  }
  // Per-thread block of prepared rows.
  static std::vector<AElem>& a_scratch() {
    static thread_local std::vector<AElem> s;
    return s;
  }

  // ---- the shared loop -----------------------------------------------------------
  // Problem: `groups` GEMMs of M rows × (n per group) columns × K, packed weights pw.
  // rows_for(g, m0, count, scratch, out_ptrs) fills out_ptrs[0..count) with the A
  // rows m0.. of group g (in place or prepared into scratch, kpad AElems each);
  // out_row(m, g) is the first output element of row m, group g.
  // With ntaps > 0 the A rows are indirect (XNNPACK's IGEMM): rows_for fills,
  // per MR-row tile, ntaps × MR pointers (tap-major), each to k / ntaps
  // consecutive AElems, and the microkernel is T::itile_mr.
  template <class RowsFor, class OutRow>
  static void run(const PackedQGemmWeights& pw, const QuantEpilogue& ep, int32_t ezp, int64_t M, int64_t ldc,
                  bool needs_scratch, int64_t ntaps, RowsFor rows_for, OutRow out_row) {
    const int64_t n = pw.n, k = pw.k, groups = pw.groups, kpad = round_up(k, kKG);
    const int64_t nblocks = (n + kNR - 1) / kNR, npad = nblocks * kNR;
    // Per-call column vectors, padded to whole blocks: bias − ezp·rowsum and the multiplier.
    std::vector<int32_t> off(static_cast<size_t>(groups * npad), 0);
    std::vector<float> mult(static_cast<size_t>(groups * npad), 0.0f);
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t j = 0; j < n; ++j) {
        const int64_t col = g * n + j;
        off[static_cast<size_t>(g * npad + j)] =
            qmath::column_offset(ep.bias ? ep.bias[col] : 0, ezp, pw.row_sums[static_cast<size_t>(col)]);
        mult[static_cast<size_t>(g * npad + j)] = ep.multiplier[ep.per_channel ? col : 0];
      }
    const double macs = static_cast<double>(M) * static_cast<double>(n * groups) * static_cast<double>(k);
    const int threads = macs >= kParallelMinMacs ? num_threads() : 1;
    // Rows per item: what fits the A budget, at most kMaxRows, and few enough
    // that every thread gets a row block when M allows.
    int64_t mc = kABlockBytes / (kpad * static_cast<int64_t>(sizeof(AElem))) / kMR * kMR;
    mc = std::min({mc, kMaxRows, round_up((M + threads - 1) / threads, kMR)});
    mc = std::max(mc, kMR);
    int64_t mblocks = (M + mc - 1) / mc;
    // Whole rounds: make the row blocks a multiple of the thread count (and
    // about equal), so no thread idles through a last round that only some
    // threads have work for. ResNet-18 layer1 (M = 3136, 2 threads) had 19
    // blocks of 168 rows: one thread ran 10, the other 9.
    if (threads > 1 && mblocks > 1 && mblocks % threads != 0) {
      const int64_t target = round_up(mblocks, threads);
      mc = std::max(kMR, round_up((M + target - 1) / target, kMR));
      mblocks = (M + mc - 1) / mc;
    }
    // Split the column blocks when there are too few row blocks to share.
    const int64_t want = 4 * static_cast<int64_t>(threads);
    const int64_t slices = std::clamp<int64_t>((want + groups * mblocks - 1) / (groups * mblocks), 1, nblocks);
    const int64_t items = groups * mblocks * slices;
    const int64_t ob = int8::out_bytes(ep.out);
    const size_t bbytes = T::block_bytes(kpad);

#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t g = item / (mblocks * slices), mb = item / slices % mblocks, sl = item % slices;
      const int64_t m0 = mb * mc, mcur = std::min(mc, M - m0);
      AElem* scratch = nullptr;
      if (needs_scratch) {
        std::vector<AElem>& s = a_scratch();
        if (s.size() < static_cast<size_t>(mc * kpad)) s.resize(static_cast<size_t>(mc * kpad));
        scratch = s.data();
      }
      std::vector<const AElem*>& rv = row_pointers();
      const size_t nptr = static_cast<size_t>(ntaps > 0 ? round_up(mcur, kMR) * ntaps : mcur);
      if (rv.size() < nptr) rv.resize(nptr);
      const AElem** rows = rv.data();
      rows_for(g, m0, mcur, scratch, rows);
      const int64_t nb0 = nblocks * sl / slices, nb1 = nblocks * (sl + 1) / slices;
      for (int64_t nb = nb0; nb < nb1; ++nb) {
        const uint8_t* b = pw.data.data() + g * pw.group_bytes + static_cast<size_t>(nb) * bbytes;
        const int32_t* co = off.data() + g * npad + nb * kNR;
        const float* mu = mult.data() + g * npad + nb * kNR;
        const TileEpilogue te{ep.out, ep.out_zp, ep.qmin, ep.qmax, static_cast<int>(std::min(kNR, n - nb * kNR))};
        for (int64_t i = 0; i < mcur; i += kMR) {
          const int mr = static_cast<int>(std::min(kMR, mcur - i));
          uint8_t* c = static_cast<uint8_t*>(out_row(m0 + i, g)) + nb * kNR * ob;
          if constexpr (T::kIndirect) {
            if (ntaps > 0) {
              const int64_t cg = k / ntaps;
              const AElem* const* p = rows + i * ntaps;
              with_rows<kMR>(mr, [&](auto r) {
                T::template itile_mr<decltype(r)::value>(ntaps, cg, p, b, co, mu, te, c, ldc * ob);
              });
              continue;
            }
          }
          const AElem* const* p = rows + i;
          with_rows<kMR>(mr, [&](auto r) { T::template tile_mr<decltype(r)::value>(kpad, p, b, co, mu, te, c, ldc * ob); });
        }
      }
    }
  }

  // ---- GEMM --------------------------------------------------------------------
  template <class Src>
  static void gemm(void* c, int64_t ldc, const Src* a, int64_t lda, int32_t a_zp, const PackedQGemmWeights& pw,
                   const QuantEpilogue& ep, int64_t m, const char* who) {
    int8::check_packed(pw, T::kIsa, gemm_name(), who);
    int8::check_epilogue(ep, who);
    int8::check_a_zero_point(a_zp, std::is_signed_v<Src>, who);
    if (m <= 0) return;
    const int64_t k = pw.k, kpad = round_up(k, kKG);
    const bool in_place = std::is_same_v<AElem, Src> && k == kpad;
    const int64_t ob = int8::out_bytes(ep.out);
    run(
        pw, ep, effective_zp<Src>(a_zp), m, ldc, !in_place, 0,
        [&](int64_t, int64_t m0, int64_t count, AElem* scratch, const AElem** rows) {
          for (int64_t i = 0; i < count; ++i) {
            const Src* src = a + (m0 + i) * lda;
            if (in_place) {
              rows[i] = reinterpret_cast<const AElem*>(src);
            } else {
              AElem* d = scratch + i * kpad;
              convert(d, src, k);
              std::fill(d + k, d + kpad, AElem{0});
              rows[i] = d;
            }
          }
        },
        [&](int64_t row, int64_t) { return static_cast<void*>(static_cast<uint8_t*>(c) + row * ldc * ob); });
  }

  // ---- convolution -----------------------------------------------------------------
  // Convolutions whose channels are not whole K groups (the RGB stem, C = 3)
  // get per-filter-row segments on indirect paths: the S·C input bytes of a
  // filter row are contiguous (NHWC), so each row is one indirect "tap" of
  // round_up(S·C, K group) bytes, the extra bytes meeting zero weights.
  static bool segments_pay(int64_t seg, int64_t r) { return seg >= kMinSegment || r * seg <= kMinSegment; }
  static bool use_row_segments(const QConv2dShape& sh) {
    return T::kIndirect && std::is_same_v<AElem, uint8_t> && sh.groups == 1 && sh.c % kKG != 0 &&
           segments_pay(round_up(sh.s * sh.c, kKG), sh.r);
  }

  static void conv_pack(PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) {
    int8::init_conv_header(out, sh);
    const int64_t kg = sh.k / sh.groups, rsc = sh.r * sh.s * (sh.c / sh.groups);
    if (!use_row_segments(sh)) {
      pack(out.w, w, kg, rsc, sh.groups);
      return;
    }
    const int64_t sc = sh.s * sh.c, seg = round_up(sc, kKG);
    std::vector<int8_t> padded(static_cast<size_t>(kg * sh.r * seg), 0);
    for (int64_t j = 0; j < kg; ++j)
      for (int64_t r = 0; r < sh.r; ++r)
        std::memcpy(&padded[static_cast<size_t>((j * sh.r + r) * seg)], w + (j * sh.r + r) * sc,
                    static_cast<size_t>(sc));
    pack(out.w, padded.data(), kg, sh.r * seg, 1);
    out.row_segment = seg;
  }

  // The A rows of a convolution: row m is output pixel m (over N·P·Q), its
  // R·S·Cg values in (r, s, c) order, padding taps = the zero point. Sizes are
  // copied into locals before the loops: the byte stores would otherwise
  // force the compiler to reload every field after each store (char aliasing).
  struct Im2col {
    const uint8_t* x;
    int64_t h, w, c, cg, r, s, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, P, Q, kpad;
    int64_t seg;  // values per filter row in a row of A: S·Cg, or the padded row segment
    AElem pad_value;
    bool in_place;         // 1×1 without padding, native A type: rows are the input pixels
    bool contiguous_taps;  // no dilation, one group: the S taps of a filter row are S·C consecutive bytes

    void build(int64_t g, int64_t m0, int64_t count, AElem* scratch, const AElem** rows) const {
      const int64_t H = h, W = w, C = c, Cg = cg, R = r, S = s, sh = stride_h, sw = stride_w, ph = pad_h,
                    pw = pad_w, dh = dil_h, dw = dil_w, NP = P, NQ = Q, KP = kpad, SEG = seg;
      const AElem pad = pad_value;
      const uint8_t* const xg = x + g * Cg;
      int64_t b = m0 / (NP * NQ), p = m0 / NQ % NP, q = m0 % NQ;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t h0 = p * sh - ph, w0 = q * sw - pw;
        const uint8_t* img = xg + b * H * W * C;
        if (in_place) {
          rows[i] = reinterpret_cast<const AElem*>(img + (h0 * W + w0) * C);
        } else if (contiguous_taps && h0 >= 0 && h0 + (R - 1) * dh < H && w0 >= 0 && w0 + S <= W) {
          // Interior pixel: R runs of S·Cg bytes, no padding.
          AElem* d = scratch + i * KP;
          rows[i] = d;
          const uint8_t* src = img + (h0 * W + w0) * C;
          for (int64_t rr = 0; rr < R; ++rr, d += SEG, src += dh * W * C) {
            convert(d, src, S * Cg);
            for (int64_t t = S * Cg; t < SEG; ++t) d[t] = AElem{0};
          }
          for (const AElem* end = rows[i] + KP; d < end; ++d) *d = AElem{0};
        } else {
          AElem* d = scratch + i * KP;
          rows[i] = d;
          const int64_t s_lo = std::clamp<int64_t>(-w0, 0, S), s_hi = std::clamp<int64_t>(W - w0, s_lo, S);
          for (int64_t rr = 0; rr < R; ++rr, d += SEG) {
            fill(d + S * Cg, AElem{0}, SEG - S * Cg);
            const int64_t ih = h0 + rr * dh;
            if (ih < 0 || ih >= H) {
              fill(d, pad, S * Cg);
            } else if (contiguous_taps) {
              const uint8_t* src = img + (ih * W + w0) * C;
              fill(d, pad, s_lo * Cg);
              convert(d + s_lo * Cg, src + s_lo * C, (s_hi - s_lo) * Cg);
              fill(d + s_hi * Cg, pad, (S - s_hi) * Cg);
            } else {
              for (int64_t ss = 0; ss < S; ++ss) {
                const int64_t iw = w0 + ss * dw;
                if (iw >= 0 && iw < W)
                  convert(d + ss * Cg, img + (ih * W + iw) * C, Cg);
                else
                  fill(d + ss * Cg, pad, Cg);
              }
            }
          }
          fill(d, AElem{0}, rows[i] + KP - d);
        }
        if (++q == NQ) {
          q = 0;
          if (++p == NP) {
            p = 0;
            ++b;
          }
        }
      }
    }
  };

  // Indirect A rows of a convolution: per MR-row tile, R·S × MR pointers to
  // input pixels (channel g·Cg), or to a pixel of zero points in the padding.
  struct Indirection {
    const Im2col& im;
    const AElem* zero;
    void build(int64_t g, int64_t m0, int64_t count, const AElem** ptrs) const {
      const int64_t H = im.h, W = im.w, C = im.c, R = im.r, S = im.s, sh = im.stride_h, sw = im.stride_w,
                    ph = im.pad_h, pw = im.pad_w, dh = im.dil_h, dw = im.dil_w, NP = im.P, NQ = im.Q, RS = R * S;
      const uint8_t* const xg = im.x + g * im.cg;
      int64_t b = m0 / (NP * NQ), p = m0 / NQ % NP, q = m0 % NQ;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t h0 = p * sh - ph, w0 = q * sw - pw;
        const uint8_t* img = xg + b * H * W * C;
        const AElem** dst = ptrs + (i / kMR) * kMR * RS + i % kMR;
        for (int64_t rr = 0; rr < R; ++rr) {
          const int64_t ih = h0 + rr * dh;
          for (int64_t ss = 0; ss < S; ++ss) {
            const int64_t iw = w0 + ss * dw;
            dst[(rr * S + ss) * kMR] = ih >= 0 && ih < H && iw >= 0 && iw < W
                                           ? reinterpret_cast<const AElem*>(img + (ih * W + iw) * C)
                                           : zero;
          }
        }
        if (++q == NQ) {
          q = 0;
          if (++p == NP) {
            p = 0;
            ++b;
          }
        }
      }
    }
  };

  // Indirect A rows by filter row (dil_w = 1, one group):
  // per MR-row tile, R × MR pointers to the S·C bytes of a filter row read in
  // place, or, where the row leaves the input (left/right padding, or its
  // padded segment would run past the end of x), to a copy in scratch.
  struct SegmentIndirection {
    const Im2col& im;
    const AElem* zero;  // a segment of zero points (rows above/below the input)
    int64_t x_bytes;    // N·H·W·C
    void build(int64_t m0, int64_t count, AElem* scratch, const AElem** ptrs) const {
      const int64_t H = im.h, W = im.w, C = im.c, R = im.r, S = im.s, sh = im.stride_h, sw = im.stride_w,
                    ph = im.pad_h, pw = im.pad_w, dh = im.dil_h, NP = im.P, NQ = im.Q, SEG = im.seg, SC = S * C,
                    KP = im.kpad, XB = x_bytes;
      const AElem pad = im.pad_value;
      int64_t b = m0 / (NP * NQ), p = m0 / NQ % NP, q = m0 % NQ;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t h0 = p * sh - ph, w0 = q * sw - pw;
        const AElem** dst = ptrs + (i / kMR) * kMR * R + i % kMR;
        for (int64_t rr = 0; rr < R; ++rr) {
          const int64_t ih = h0 + rr * dh;
          const int64_t at = ((b * H + ih) * W + w0) * C;
          if (ih < 0 || ih >= H) {
            dst[rr * kMR] = zero;
          } else if (w0 >= 0 && w0 + S <= W && at + SEG <= XB) {
            dst[rr * kMR] = reinterpret_cast<const AElem*>(im.x + at);
          } else {
            AElem* d = scratch + i * KP + rr * SEG;
            const int64_t s_lo = std::clamp<int64_t>(-w0, 0, S), s_hi = std::clamp<int64_t>(W - w0, s_lo, S);
            fill(d, pad, s_lo * C);
            convert(d + s_lo * C, im.x + at + s_lo * C, (s_hi - s_lo) * C);
            fill(d + s_hi * C, pad, (S - s_hi) * C);
            fill(d + SC, AElem{0}, SEG - SC);
            dst[rr * kMR] = d;
          }
        }
        if (++q == NQ) {
          q = 0;
          if (++p == NP) {
            p = 0;
            ++b;
          }
        }
      }
    }
  };

  static void conv(void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& pw, const QuantEpilogue& ep,
                   const QConv2dShape& sh, const char* who) {
    int8::check_conv_packed(pw, sh, T::kIsa, who);
    int8::check_packed(pw.w, T::kIsa, gemm_name(), who);
    int8::check_epilogue(ep, who);
    int8::check_a_zero_point(x_zp, false, who);
    const int64_t cg = sh.c / sh.groups, P = sh.p(), Q = sh.q(), M = sh.n * P * Q;
    const int64_t k = pw.w.k, kpad = round_up(k, kKG);
    const bool pointwise = sh.r == 1 && sh.s == 1 && sh.pad_h == 0 && sh.pad_w == 0;
    const bool in_place = pointwise && std::is_same_v<AElem, uint8_t> && k == kpad && pw.row_segment == 0;
    const int64_t seg = pw.row_segment > 0 ? pw.row_segment : sh.s * cg;
    if (pw.row_segment > 0 && (pw.row_segment < sh.s * cg || sh.r * pw.row_segment != k))
      throw std::invalid_argument(std::string(who) + ": packed row segments do not match the filter");
    const Im2col im{x, sh.h, sh.w, sh.c, cg, sh.r, sh.s, sh.stride_h, sh.stride_w, sh.pad_h, sh.pad_w, sh.dil_h,
                    sh.dil_w, P, Q, kpad, seg, converted(static_cast<uint8_t>(x_zp)), in_place,
                    sh.dil_w == 1 && sh.groups == 1};
    const int64_t ob = int8::out_bytes(ep.out), kg = sh.k / sh.groups;
    // Indirect (no im2col copy) when the microkernel reads u8 rows and every tap is whole K groups,
    // or every filter row is a padded segment (and no dilation breaks the rows apart).
    // Preferred: one pointer per filter row (its S·C input bytes are contiguous
    // without dilation in one group), then one per tap; else im2col.
    const bool u8_rows = T::kIndirect && std::is_same_v<AElem, uint8_t> && !in_place;
    const bool segments = u8_rows && sh.groups == 1 && sh.dil_w == 1 && seg % kKG == 0 && segments_pay(seg, sh.r);
    const bool indirect = u8_rows && !segments && pw.row_segment == 0 && cg % kKG == 0;
    std::vector<uint8_t> zero_pixel(indirect || segments ? static_cast<size_t>(std::max(cg, seg)) : 0,
                                    static_cast<uint8_t>(x_zp));
    const Indirection ind{im, reinterpret_cast<const AElem*>(zero_pixel.data())};
    const SegmentIndirection sind{im, reinterpret_cast<const AElem*>(zero_pixel.data()), sh.n * sh.h * sh.w * sh.c};
    run(
        pw.w, ep, effective_zp<uint8_t>(x_zp), M, sh.k, !in_place && !indirect,
        indirect ? sh.r * sh.s : (segments ? sh.r : 0),
        [&im, &ind, &sind, indirect, segments](int64_t g, int64_t m0, int64_t count, AElem* scratch,
                                               const AElem** rows) {
          if (indirect)
            ind.build(g, m0, count, rows);
          else if (segments)
            sind.build(m0, count, scratch, rows);
          else
            im.build(g, m0, count, scratch, rows);
        },
        [&](int64_t row, int64_t g) {
          return static_cast<void*>(static_cast<uint8_t*>(y) + (row * sh.k + g * kg) * ob);
        });
  }

  // ---- the path's table entries -----------------------------------------------
  // GEMM and convolution through this driver; depthwise convolutions through
  // the path's direct kernel: dw_pack and dw_run are captureless lambdas with
  // the signatures of Int8Kernels::qconv2d_pack and qu8_qs8_conv2d, dw_name its name.
  template <class DwPack, class DwRun>
  static void fill_table(Int8Kernels& kt, DwPack, DwRun, const char* dw_name) {
    kt.gemm_path = gemm_name();
    kt.conv_path = conv_name();
    kt.depthwise_path = dw_name;
    kt.qgemm_pack = [](PackedQGemmWeights& out, const int8_t* w, int64_t n, int64_t k) { pack(out, w, n, k, 1); };
    kt.qu8_qs8_gemm = [](void* c, int64_t ldc, const uint8_t* a, int64_t lda, int32_t a_zp,
                         const PackedQGemmWeights& w, const QuantEpilogue& ep, int64_t m) {
      gemm(c, ldc, a, lda, a_zp, w, ep, m, who(kGemmU8));
    };
    kt.qs8_qs8_gemm = [](void* c, int64_t ldc, const int8_t* a, int64_t lda, int32_t a_zp,
                         const PackedQGemmWeights& w, const QuantEpilogue& ep, int64_t m) {
      gemm(c, ldc, a, lda, a_zp, w, ep, m, who(kGemmS8));
    };
    kt.qconv2d_pack = [](PackedQConvWeights& out, const int8_t* w, const QConv2dShape& sh) {
      if (sh.depthwise())
        DwPack{}(out, w, sh);
      else
        conv_pack(out, w, sh);
    };
    kt.qu8_qs8_conv2d = [](void* y, const uint8_t* x, int32_t x_zp, const PackedQConvWeights& w,
                           const QuantEpilogue& ep, const QConv2dShape& sh) {
      if (w.depthwise)
        DwRun{}(y, x, x_zp, w, ep, sh);
      else
        conv(y, x, x_zp, w, ep, sh, who(kConvU8));
    };
  }

  // The names, from the tile's own constants: "qu8-qc8w-gemm-6x16c2-fp32-avx2-vpmaddwd"
  // (also the packed weights' layout name); convolution "qu8-qc8w-igemm-…" where the
  // tile reads input pixels through pointers (im2col only where a group's channels are
  // not a whole number of K groups), "qu8-qc8w-conv-im2col-…" where it always copies.
  static std::string tile_suffix() {
    return tile_name(kMR, kNR, kKG) + "-fp32-" + T::kArch + "-" + T::kInstr;
  }
  static const char* gemm_name() {
    static const char* n = kernel_name("qu8-qc8w-gemm-" + tile_suffix());
    return n;
  }
  static const char* conv_name() {
    static const char* n = kernel_name((T::kIndirect ? "qu8-qc8w-igemm-" : "qu8-qc8w-conv-im2col-") + tile_suffix());
    return n;
  }

  // "op (path)" for error messages.
  enum Op { kGemmU8, kGemmS8, kConvU8 };
  static const char* who(Op op) {
    static const std::string names[3] = {std::string("qu8_qs8_gemm (") + isa_name(T::kIsa) + ")",
                                         std::string("qs8_qs8_gemm (") + isa_name(T::kIsa) + ")",
                                         std::string("qu8_qs8_conv2d (") + isa_name(T::kIsa) + ")"};
    return names[op].c_str();
  }
};

}  // namespace
}  // namespace lowbit::kernels
