// Float convolution through oneDNN (v2.x API): forward with bias,
// backward-data, backward-weights with bias gradient.
//
// Our tensors are plain NCHW / K×(C/G)×R×S. Each primitive is created with
// format_tag::any so oneDNN picks its blocked layouts (nChw8c, OIhw8i8o, …);
// user memory is reordered in and out around the call. Primitive descriptors,
// primitives and reorders are cached per (shape, direction, bias) — creating
// them costs far more than running a small conv. The blocked buffers are not:
// they are taken from the shared buffer cache (kernels/buffers.h) for the
// call and given back after it, so a network with many conv shapes holds
// blocked copies only of the conv running now (keeping them per shape had
// cost MobileNetV2 at 28×28 a gigabyte).
//
// Concurrency: the cache map is guarded by one mutex, each entry by its own
// (one primitive runs one call at a time, which also keeps oneDNN's
// library-owned scratchpad safe). A stream is created per call; a CPU stream
// is cheap and is not safe to share between threads.
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/buffers.h"
#include "kernels/dnnl/dnnl_conv.h"
#include "kernels/ref/ref.h"

namespace lowbit::kernels {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

enum class Direction : int64_t { forward, backward_data, backward_weights };

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// One primitive argument: the plain layout the caller holds and, when oneDNN
// wants another layout, that layout and the reorder into or out of it.
struct Arg {
  int id = 0;              // DNNL_ARG_*
  memory::desc user_md;    // plain layout of the caller's pointer
  memory::desc prim_md;    // the primitive's layout
  bool output = false;     // written by the primitive (reorder after, not before)
  bool reordered = false;  // the primitive's layout differs from user_md
  dnnl::reorder to_internal, to_user;
};

struct Entry {
  mutable std::mutex mu;
  dnnl::primitive prim;
  std::vector<Arg> args;

  void add(int id, const memory::desc& user_md, const memory::desc& prim_md, bool output) {
    Arg a;
    a.id = id;
    a.user_md = user_md;
    a.prim_md = prim_md;
    a.output = output;
    a.reordered = prim_md != user_md;
    if (a.reordered) {
      dnnl::engine& eng = cpu_engine();
      if (output)
        a.to_user = dnnl::reorder(dnnl::reorder::primitive_desc(eng, prim_md, eng, user_md));
      else
        a.to_internal = dnnl::reorder(dnnl::reorder::primitive_desc(eng, user_md, eng, prim_md));
    }
    args.push_back(std::move(a));
  }

  // ptrs[i] is the caller's buffer for args[i].
  void run(const std::vector<void*>& ptrs) const {
    std::lock_guard<std::mutex> lock(mu);
    // oneDNN sizes its OpenMP regions from the calling thread's default;
    // make that our setting (LOWBIT_THREADS / set_num_threads) on every call.
    omp_set_num_threads(num_threads());
    dnnl::engine& eng = cpu_engine();
    dnnl::stream strm(eng);
    std::unordered_map<int, memory> exec_args;
    std::vector<memory> user(args.size()), internal(args.size());
    std::vector<std::unique_ptr<ScratchBuffer>> scratch;
    for (size_t i = 0; i < args.size(); ++i) {
      const Arg& a = args[i];
      user[i] = memory(a.user_md, eng, ptrs[i]);
      if (!a.reordered) {
        exec_args[a.id] = user[i];
        continue;
      }
      scratch.push_back(std::make_unique<ScratchBuffer>(a.prim_md.get_size()));
      internal[i] = memory(a.prim_md, eng, scratch.back()->get());
      if (!a.output) a.to_internal.execute(strm, user[i], internal[i]);
      exec_args[a.id] = internal[i];
    }
    prim.execute(strm, exec_args);
    for (size_t i = 0; i < args.size(); ++i)
      if (args[i].reordered && args[i].output) args[i].to_user.execute(strm, internal[i], user[i]);
    strm.wait();
  }
};

// Plain-layout descriptors and geometry of one Conv2dShape.
struct Geometry {
  memory::desc src, wei, bias, dst;
  memory::dims strides, dilates, pad_l, pad_r;
  static memory::desc any(const memory::desc& d) { return memory::desc(d.dims(), kF32, Tag::any); }
};

Geometry geometry(const Conv2dShape& sh) {
  Geometry g;
  g.src = memory::desc({sh.n, sh.c, sh.h, sh.w}, kF32, Tag::nchw);
  g.dst = memory::desc({sh.n, sh.k, sh.p(), sh.q()}, kF32, Tag::nchw);
  if (sh.groups == 1)
    g.wei = memory::desc({sh.k, sh.c, sh.r, sh.s}, kF32, Tag::oihw);
  else  // K×(C/G)×R×S is G×(K/G)×(C/G)×R×S read as goihw
    g.wei = memory::desc({sh.groups, sh.k / sh.groups, sh.c / sh.groups, sh.r, sh.s}, kF32, Tag::goihw);
  g.bias = memory::desc({sh.k}, kF32, Tag::x);
  g.strides = {sh.stride_h, sh.stride_w};
  g.dilates = {sh.dil_h - 1, sh.dil_w - 1};  // oneDNN counts dilation from 0
  g.pad_l = {sh.pad_h, sh.pad_w};
  // oneDNN checks P = (H − eff_R + pad_l + pad_r) / stride + 1 with floor
  // division, as PyTorch does, so the symmetric padding is accepted.
  g.pad_r = {sh.pad_h, sh.pad_w};
  return g;
}

dnnl::convolution_forward::primitive_desc forward_pd(const Geometry& g, bool bias) {
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                    Geometry::any(g.src), Geometry::any(g.wei), bias ? g.bias : memory::desc(),
                                    Geometry::any(g.dst), g.strides, g.dilates, g.pad_l, g.pad_r);
  return dnnl::convolution_forward::primitive_desc(d, cpu_engine());
}

std::unique_ptr<Entry> make_entry(const Conv2dShape& sh, Direction dir, bool bias) {
  const Geometry g = geometry(sh);
  auto e = std::make_unique<Entry>();
  // The forward descriptor is also the layout hint the backward ones require.
  const auto fwd = forward_pd(g, bias && dir == Direction::forward);
  switch (dir) {
    case Direction::forward:
      e->prim = dnnl::convolution_forward(fwd);
      e->add(DNNL_ARG_SRC, g.src, fwd.src_desc(), false);
      e->add(DNNL_ARG_WEIGHTS, g.wei, fwd.weights_desc(), false);
      if (bias) e->add(DNNL_ARG_BIAS, g.bias, fwd.bias_desc(), false);
      e->add(DNNL_ARG_DST, g.dst, fwd.dst_desc(), true);
      break;
    case Direction::backward_data: {
      dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, Geometry::any(g.src),
                                              Geometry::any(g.wei), Geometry::any(g.dst), g.strides, g.dilates,
                                              g.pad_l, g.pad_r);
      dnnl::convolution_backward_data::primitive_desc pd(d, cpu_engine(), fwd);
      e->prim = dnnl::convolution_backward_data(pd);
      e->add(DNNL_ARG_DIFF_DST, g.dst, pd.diff_dst_desc(), false);
      e->add(DNNL_ARG_WEIGHTS, g.wei, pd.weights_desc(), false);
      e->add(DNNL_ARG_DIFF_SRC, g.src, pd.diff_src_desc(), true);
      break;
    }
    case Direction::backward_weights: {
      dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, Geometry::any(g.src),
                                                 Geometry::any(g.wei), bias ? g.bias : memory::desc(),
                                                 Geometry::any(g.dst), g.strides, g.dilates, g.pad_l, g.pad_r);
      dnnl::convolution_backward_weights::primitive_desc pd(d, cpu_engine(), fwd);
      e->prim = dnnl::convolution_backward_weights(pd);
      e->add(DNNL_ARG_DIFF_DST, g.dst, pd.diff_dst_desc(), false);
      e->add(DNNL_ARG_SRC, g.src, pd.src_desc(), false);
      e->add(DNNL_ARG_DIFF_WEIGHTS, g.wei, pd.diff_weights_desc(), true);
      if (bias) e->add(DNNL_ARG_DIFF_BIAS, g.bias, pd.diff_bias_desc(), true);
      break;
    }
  }
  return e;
}

std::string shape_text(const Conv2dShape& sh) {
  auto s = [](int64_t v) { return std::to_string(v); };
  return "input " + s(sh.n) + "x" + s(sh.c) + "x" + s(sh.h) + "x" + s(sh.w) + ", " + s(sh.k) + " filters " +
         s(sh.r) + "x" + s(sh.s) + " stride " + s(sh.stride_h) + "," + s(sh.stride_w) + " pad " + s(sh.pad_h) +
         "," + s(sh.pad_w) + " dilation " + s(sh.dil_h) + "," + s(sh.dil_w) + " groups " + s(sh.groups);
}

using Key = std::array<int64_t, 16>;

const Entry& entry(const Conv2dShape& sh, Direction dir, bool bias) {
  static std::mutex mu;
  static std::map<Key, std::unique_ptr<Entry>> cache;
  const Key key = {sh.n,        sh.c,        sh.h,     sh.w,     sh.k,     sh.r,     sh.s,
                   sh.stride_h, sh.stride_w, sh.pad_h, sh.pad_w, sh.dil_h, sh.dil_w, sh.groups,
                   static_cast<int64_t>(dir), bias ? 1 : 0};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  try {
    return *cache.emplace(key, make_entry(sh, dir, bias)).first->second;
  } catch (const dnnl::error& err) {
    throw std::runtime_error("conv2d (oneDNN): cannot create primitive for " + shape_text(sh) + ": " + err.what());
  }
}

// oneDNN rejects zero-sized tensors; those convolutions are trivial anyway.
bool empty(const Conv2dShape& sh) {
  return sh.n == 0 || sh.c == 0 || sh.k == 0 || sh.h == 0 || sh.w == 0 || sh.p() <= 0 || sh.q() <= 0;
}

// y[N×K×P×Q] = conv(x[N×C×H×W], w[K×C/G×R×S]) + bias[K]
void f32_conv2d_forward_dnnl(float* y, const float* x, const float* w, const float* bias, const Conv2dShape& sh) {
  if (empty(sh)) return ref::f32_conv2d_forward(y, x, w, bias, sh);
  std::vector<void*> ptrs = {const_cast<float*>(x), const_cast<float*>(w)};
  if (bias) ptrs.push_back(const_cast<float*>(bias));
  ptrs.push_back(y);
  entry(sh, Direction::forward, bias != nullptr).run(ptrs);
}

// dx[N×C×H×W] (overwritten) from dy[N×K×P×Q], w[K×C/G×R×S]
void f32_conv2d_backward_input_dnnl(float* dx, const float* dy, const float* w, const Conv2dShape& sh) {
  if (empty(sh)) return ref::f32_conv2d_backward_input(dx, dy, w, sh);
  entry(sh, Direction::backward_data, false).run({const_cast<float*>(dy), const_cast<float*>(w), dx});
}

// dw[K×C/G×R×S], db[K] (overwritten; db may be null) from dy, x
void f32_conv2d_backward_weight_dnnl(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& sh) {
  if (empty(sh)) return ref::f32_conv2d_backward_weight(dw, db, dy, x, sh);
  std::vector<void*> ptrs = {const_cast<float*>(dy), const_cast<float*>(x), dw};
  if (db) ptrs.push_back(db);
  entry(sh, Direction::backward_weights, db != nullptr).run(ptrs);
}

}  // namespace

void fill_dnnl_conv(FloatKernels& k) {
  k.f32_conv2d_forward = f32_conv2d_forward_dnnl;
  k.f32_conv2d_backward_input = f32_conv2d_backward_input_dnnl;
  k.f32_conv2d_backward_weight = f32_conv2d_backward_weight_dnnl;
  k.conv_path = "f32-conv-onednn";
}

}  // namespace lowbit::kernels
