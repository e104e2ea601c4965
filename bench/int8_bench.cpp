// Int8 kernels vs oneDNN; see int8_bench.h.
#include "bench/int8_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>
#include <string>
#include <vector>

#include "bench/peak.h"
#include "core/json.h"
#include "kernels/kernels.h"

#if defined(LOWBIT_BENCH_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>
#endif

namespace lowbit::bench {
namespace {

using Clock = std::chrono::steady_clock;
using kernels::QConv2dShape;

enum class Act { none, relu, relu6 };

// One benchmark problem: a GEMM (conv == false) or a convolution.
struct Case {
  std::string net, name;
  int count;  // occurrences in the network (aggregates weight by it)
  bool conv;
  int64_t m, n, k;  // GEMM
  QConv2dShape sh;  // conv
  Act act;
  int32_t x_zp;  // 0 after a ReLU, 128 otherwise (linear bottleneck outputs, GEMM inputs)
  double macs() const {
    if (!conv) return static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    return static_cast<double>(sh.n * sh.p() * sh.q()) * static_cast<double>(sh.k) *
           static_cast<double>(sh.r * sh.s * sh.c / sh.groups);
  }
  bool depthwise() const { return conv && sh.depthwise(); }
};

QConv2dShape conv_shape(int64_t hw, int64_t c, int64_t k, int64_t rs, int64_t stride, int64_t groups = 1) {
  QConv2dShape sh{1, hw, hw, c, k, rs, rs};
  sh.stride_h = sh.stride_w = stride;
  sh.pad_h = sh.pad_w = rs / 2;
  sh.groups = groups;
  return sh;
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  auto gemm = [&](int64_t m, int64_t n, int64_t k) {
    v.push_back({"gemm", std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k), 1, false, m, n, k,
                 {}, Act::none, 128});
  };
  gemm(1024, 1024, 1024);
  gemm(3136, 64, 576);
  gemm(196, 512, 4608);
  gemm(1, 1000, 1280);
  // ResNet-18 (torchvision), every conv: stem, 4 stages of 2 BasicBlocks, 3 downsamples.
  auto rn = [&](const char* name, int count, int64_t hw, int64_t c, int64_t k, int64_t rs, int64_t stride, Act act,
                int32_t zp) { v.push_back({"resnet18", name, count, true, 0, 0, 0, conv_shape(hw, c, k, rs, stride), act, zp}); };
  rn("conv1", 1, 224, 3, 64, 7, 2, Act::relu, 128);
  rn("layer1.conv", 4, 56, 64, 64, 3, 1, Act::relu, 0);
  rn("layer2.0.conv1", 1, 56, 64, 128, 3, 2, Act::relu, 0);
  rn("layer2.0.downsample", 1, 56, 64, 128, 1, 2, Act::none, 0);
  rn("layer2.conv", 3, 28, 128, 128, 3, 1, Act::relu, 0);
  rn("layer3.0.conv1", 1, 28, 128, 256, 3, 2, Act::relu, 0);
  rn("layer3.0.downsample", 1, 28, 128, 256, 1, 2, Act::none, 0);
  rn("layer3.conv", 3, 14, 256, 256, 3, 1, Act::relu, 0);
  rn("layer4.0.conv1", 1, 14, 256, 512, 3, 2, Act::relu, 0);
  rn("layer4.0.downsample", 1, 14, 256, 512, 1, 2, Act::none, 0);
  rn("layer4.conv", 3, 7, 512, 512, 3, 1, Act::relu, 0);
  // MobileNetV2 (width 1.0): stem, 17 inverted residual blocks (t, c, n, s), last 1×1.
  auto mb = [&](const std::string& name, int count, int64_t hw, int64_t c, int64_t k, int64_t rs, int64_t stride,
                int64_t groups, Act act, int32_t zp) {
    v.push_back({"mobilenet_v2", name, count, true, 0, 0, 0, conv_shape(hw, c, k, rs, stride, groups), act, zp});
  };
  mb("features.0 stem", 1, 224, 3, 32, 3, 2, 1, Act::relu6, 128);
  struct Stage {
    int64_t t, c, n, s;
  };
  const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                          {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t in = 32, hw = 112;
  int block = 1;
  for (const Stage& st : stages) {
    for (int64_t i = 0; i < st.n; ++i) {
      const int64_t stride = i == 0 ? st.s : 1, hidden = in * st.t;
      // Blocks after the first of a stage repeat the same shapes: one case, count n − 1.
      const int count = i == 0 ? 1 : static_cast<int>(st.n - 1);
      if (i <= 1) {
        const std::string b = "features." + std::to_string(block) + (count > 1 ? "+" : "");
        if (st.t != 1) mb(b + " expand", count, hw, in, hidden, 1, 1, 1, Act::relu6, 128);
        mb(b + " dw" + std::to_string(stride == 1 ? 1 : 2), count, hw, hidden, hidden, 3, stride, hidden, Act::relu6,
           0);
        mb(b + " project", count, hw / stride, hidden, st.c, 1, 1, 1, Act::none, 0);
      }
      hw /= stride;
      in = st.c;
      ++block;
    }
  }
  mb("features.18", 1, 7, 320, 1280, 1, 1, 1, Act::relu6, 128);
  return v;
}

// Deterministic problem data shared by both sides.
struct Data {
  std::vector<uint8_t> x;
  std::vector<int8_t> w;  // N×K (GEMM) or K×R×S×(C/G) (conv)
  std::vector<int32_t> bias;
  std::vector<float> mult;
  int32_t y_zp, qmin, qmax;
  std::vector<uint8_t> y;
};

Data make_data(const Case& c) {
  Data d;
  std::mt19937 gen(42);
  const int64_t xs = c.conv ? c.sh.n * c.sh.h * c.sh.w * c.sh.c : c.m * c.k;
  const int64_t nout = c.conv ? c.sh.k : c.n;
  const int64_t red = c.conv ? c.sh.r * c.sh.s * c.sh.c / c.sh.groups : c.k;
  const int64_t ys = c.conv ? c.sh.n * c.sh.p() * c.sh.q() * c.sh.k : c.m * c.n;
  d.x.resize(static_cast<size_t>(xs));
  d.w.resize(static_cast<size_t>(nout * red));
  for (auto& v : d.x) v = static_cast<uint8_t>(gen());
  for (auto& v : d.w) v = static_cast<int8_t>(gen());
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  const float base = 100.0f / (128.0f * 74.0f * std::sqrt(static_cast<float>(red)));
  for (int64_t j = 0; j < nout; ++j) {
    d.bias.push_back(static_cast<int32_t>(gen() % 20001) - 10000);
    d.mult.push_back(base * u(gen));
  }
  d.y_zp = c.act == Act::none ? 128 : 0;
  d.qmin = c.act == Act::none ? 0 : d.y_zp;
  d.qmax = c.act == Act::relu6 ? 240 : 255;  // ReLU6: 6 / s_out = 240 steps
  d.y.resize(static_cast<size_t>(ys));
  return d;
}

// Ours: pack once, then one call per run.
struct Ours {
  const kernels::KernelTable& t = kernels::table();
  kernels::PackedQGemmWeights gw;
  kernels::PackedQConvWeights cw;
  kernels::QuantEpilogue ep;
  const Case& c;
  Data& d;
  Ours(const Case& cs, Data& dd) : c(cs), d(dd) {
    if (c.conv)
      t.q8.qconv2d_pack(cw, d.w.data(), c.sh);
    else
      t.q8.qgemm_pack(gw, d.w.data(), c.n, c.k);
    ep.multiplier = d.mult.data();
    ep.per_channel = true;
    ep.bias = d.bias.data();
    ep.out_zp = d.y_zp;
    ep.qmin = d.qmin;
    ep.qmax = d.qmax;
    ep.out = kernels::QOut::u8;
  }
  void run() {
    if (c.conv)
      t.q8.qu8_qs8_conv2d(d.y.data(), d.x.data(), c.x_zp, cw, ep, c.sh);
    else
      t.q8.qu8_qs8_gemm(d.y.data(), c.n, d.x.data(), c.k, c.x_zp, gw, ep, c.m);
  }
  const char* path() const { return c.conv ? (c.depthwise() ? t.q8.depthwise_path : t.q8.conv_path) : t.q8.gemm_path; }
};

#if defined(LOWBIT_BENCH_DNNL)
// oneDNN: the same problem as a convolution_forward or matmul primitive.
struct OneDnn {
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::primitive prim;
  std::unordered_map<int, dnnl::memory> args;
  std::vector<uint8_t> y;
  std::string impl;

  OneDnn(const Case& c, Data& d) {
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, d.mult);  // dim 1 = output channels (conv) / N (matmul)
    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    // ReLU / ReLU6 act on the scaled value before the output zero point is added,
    // as our clamp at [y_zp, y_zp + 240] with y_zp = 0 does.
    dnnl::post_ops po;
    if (c.act == Act::relu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    if (c.act == Act::relu6) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, 0.0f, 240.0f);
    attr.set_post_ops(po);
    dnnl::memory::desc src_md, wei_user_md, bias_md, dst_md;
    dnnl::memory::desc wei_any;
    if (c.conv) {
      const QConv2dShape& s = c.sh;
      const int64_t g = s.groups;
      src_md = {{s.n, s.c, s.h, s.w}, dt::u8, tag::nhwc};
      dst_md = {{s.n, s.k, s.p(), s.q()}, dt::u8, tag::nhwc};
      bias_md = {{s.k}, dt::s32, tag::x};
      if (g == 1) {
        wei_user_md = {{s.k, s.c, s.r, s.s}, dt::s8, tag::ohwi};
        wei_any = {{s.k, s.c, s.r, s.s}, dt::s8, tag::any};
      } else {
        wei_user_md = {{g, s.k / g, s.c / g, s.r, s.s}, dt::s8, tag::gohwi};
        wei_any = {{g, s.k / g, s.c / g, s.r, s.s}, dt::s8, tag::any};
      }
      const dnnl::memory::dims strides{s.stride_h, s.stride_w}, dil{s.dil_h - 1, s.dil_w - 1},
          pad_l{s.pad_h, s.pad_w},
          pad_r{(s.p() - 1) * s.stride_h + (s.r - 1) * s.dil_h + 1 - s.h - s.pad_h,
                (s.q() - 1) * s.stride_w + (s.s - 1) * s.dil_w + 1 - s.w - s.pad_w};
      dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                           src_md, wei_any, bias_md, dst_md, strides, dil, pad_l, pad_r);
      dnnl::convolution_forward::primitive_desc pd(desc, attr, eng);
      prim = dnnl::convolution_forward(pd);
      impl = pd.impl_info_str();
      setup(pd.weights_desc(), wei_user_md, src_md, bias_md, dst_md, c, d);
    } else {
      src_md = {{c.m, c.k}, dt::u8, tag::ab};
      wei_user_md = {{c.k, c.n}, dt::s8, tag::ba};  // our W is N×K
      wei_any = {{c.k, c.n}, dt::s8, tag::any};
      bias_md = {{1, c.n}, dt::s32, tag::ab};
      dst_md = {{c.m, c.n}, dt::u8, tag::ab};
      dnnl::matmul::desc desc(src_md, wei_any, bias_md, dst_md);
      dnnl::matmul::primitive_desc pd(desc, attr, eng);
      prim = dnnl::matmul(pd);
      impl = pd.impl_info_str();
      setup(pd.weights_desc(), wei_user_md, src_md, bias_md, dst_md, c, d);
    }
  }

  void setup(const dnnl::memory::desc& wei_md, const dnnl::memory::desc& wei_user_md,
             const dnnl::memory::desc& src_md, const dnnl::memory::desc& bias_md, const dnnl::memory::desc& dst_md,
             const Case& c, Data& d) {
    y.resize(d.y.size());
    dnnl::memory wei_user(wei_user_md, eng, d.w.data());
    dnnl::memory wei(wei_md, eng);
    dnnl::reorder(wei_user, wei).execute(strm, wei_user, wei);  // once, outside the timing
    strm.wait();
    args[DNNL_ARG_SRC] = dnnl::memory(src_md, eng, d.x.data());
    args[DNNL_ARG_WEIGHTS] = wei;
    args[DNNL_ARG_BIAS] = dnnl::memory(bias_md, eng, d.bias.data());
    args[DNNL_ARG_DST] = dnnl::memory(dst_md, eng, y.data());
    const dnnl::memory::desc zp_md({1}, dt::s32, tag::x);
    dnnl::memory szp(zp_md, eng), dzp(zp_md, eng);
    *static_cast<int32_t*>(szp.get_data_handle()) = c.x_zp;
    *static_cast<int32_t*>(dzp.get_data_handle()) = d.y_zp;
    args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = szp;
    args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = dzp;
  }

  void run() {
    omp_set_num_threads(kernels::num_threads());
    prim.execute(strm, args);
    strm.wait();
  }
};
#endif

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Timing {
  double ours_ms = 0, onednn_ms = 0;  // minimum over reps (onednn_ms 0 when not measured)
};

// Alternates ours and theirs (if given) until both have min_reps reps and
// min_seconds each; returns the minimum of each.
Timing measure(const Int8BenchOptions& o, const std::function<void()>& ours, const std::function<void()>& theirs) {
  ours();  // warm-up: first-touch, caches, OpenMP thread start
  if (theirs) theirs();
  Timing t{1e30, theirs ? 1e30 : 0.0};
  double sum_ours = 0, sum_theirs = 0;
  for (int rep = 0; rep < 100000; ++rep) {
    auto t0 = Clock::now();
    ours();
    const double a = ms_since(t0);
    t.ours_ms = std::min(t.ours_ms, a);
    sum_ours += a;
    if (theirs) {
      t0 = Clock::now();
      theirs();
      const double b = ms_since(t0);
      t.onednn_ms = std::min(t.onednn_ms, b);
      sum_theirs += b;
    }
    if (rep + 1 >= o.min_reps && sum_ours >= o.min_seconds * 1e3 && (!theirs || sum_theirs >= o.min_seconds * 1e3))
      break;
  }
  return t;
}

struct Row {
  const Case* c;
  int threads;
  Timing t;
  std::string ours_path, onednn_impl;
};

}  // namespace

bool int8_bench_has_onednn() {
#if defined(LOWBIT_BENCH_DNNL)
  return true;
#else
  return false;
#endif
}

void run_int8_bench(std::FILE* out, const Int8BenchOptions& o) {
  const std::vector<Case> cases = all_cases();
  const bool dnnl = int8_bench_has_onednn();
  std::vector<int> thread_counts{1};
  if (o.max_threads > 1) thread_counts.push_back(o.max_threads);
  // The peak at each thread count, measured in short windows (robust on a shared machine).
  std::map<int, double> peak_gops;
  for (const PeakPoint& p : measure_peak(o.max_threads, {}, 0.02, 15)) peak_gops[p.threads] = p.int8_gops;
  const kernels::KernelTable& kt = kernels::table();
  if (!o.json) {
    std::fprintf(out, "int8 kernels, path %s; int8 peak (lowbit bench peak):", kernels::isa_name(kt.isa));
    for (int th : thread_counts) std::fprintf(out, " %.0f GOP/s at %d thread%s", peak_gops[th], th, th > 1 ? "s" : "");
    std::fprintf(out, "\ntimes: minimum of >= %d alternating reps; u8 NHWC in/out, s8 weights, s32 bias, per-channel scales, zero points\n",
                 o.min_reps);
    std::fprintf(out, "%-14s %-24s %-28s %3s %3s | %9s %9s %7s | %7s %6s\n", "net", "case", "shape", "cnt", "thr",
                 "ours ms", dnnl ? "oneDNN ms" : "", dnnl ? "speedup" : "", "GMAC/s", "peak");
  }
  std::vector<Row> rows;
  const int saved_threads = kernels::num_threads();
  for (const Case& c : cases) {
    if (!o.only.empty() && (c.net + " " + c.name).find(o.only) == std::string::npos) continue;
    Data d = make_data(c);
    for (int th : thread_counts) {
      // Both sides are set up at the thread count they run with (oneDNN picks its
      // work split when the primitive is created).
      kernels::set_num_threads(th);
      Ours ours(c, d);
      Row r{&c, th, {}, ours.path(), ""};
#if defined(LOWBIT_BENCH_DNNL)
      omp_set_num_threads(th);
      std::unique_ptr<OneDnn> theirs;
      try {
        theirs = std::make_unique<OneDnn>(c, d);
        r.onednn_impl = theirs->impl;
      } catch (const dnnl::error& e) {
        r.onednn_impl = std::string("unsupported: ") + e.what();
      }
      std::function<void()> their_fn;
      if (theirs) their_fn = [&] { theirs->run(); };
      r.t = measure(o, [&] { ours.run(); }, their_fn);
#else
      r.t = measure(o, [&] { ours.run(); }, {});
#endif
      const double gmacs = c.macs() / (r.t.ours_ms * 1e-3) * 1e-9;
      const double frac = peak_gops[th] > 0 ? 2.0 * gmacs / peak_gops[th] : 0.0;
      char shape[80];
      if (c.conv)
        std::snprintf(shape, sizeof shape, "%lldx%lldx%lld>%lld %lldx%lld/%lld%s", (long long)c.sh.h,
                      (long long)c.sh.w, (long long)c.sh.c, (long long)c.sh.k, (long long)c.sh.r, (long long)c.sh.s,
                      (long long)c.sh.stride_h, c.depthwise() ? " dw" : "");
      else
        std::snprintf(shape, sizeof shape, "M%lld N%lld K%lld", (long long)c.m, (long long)c.n, (long long)c.k);
      if (o.json) {
        Json j{{"bench", "int8"},        {"net", c.net},           {"case", c.name},  {"shape", shape},
               {"count", c.count},       {"threads", th},          {"macs", (int64_t)c.macs()},
               {"ours_ms", r.t.ours_ms}, {"gmacs", gmacs},         {"peak_fraction", frac},
               {"ours_path", r.ours_path}};
        if (dnnl && r.t.onednn_ms > 0)
          j["onednn_ms"] = r.t.onednn_ms, j["speedup"] = r.t.onednn_ms / r.t.ours_ms, j["onednn_impl"] = r.onednn_impl;
        std::fprintf(out, "%s\n", json_line(j).c_str());
      } else {
        char theirs_ms[32] = "", speed[32] = "";
        if (r.t.onednn_ms > 0) {
          std::snprintf(theirs_ms, sizeof theirs_ms, "%9.3f", r.t.onednn_ms);
          std::snprintf(speed, sizeof speed, "%6.2fx", r.t.onednn_ms / r.t.ours_ms);
        } else if (dnnl) {
          std::snprintf(theirs_ms, sizeof theirs_ms, "%9s", "n/a");
        }
        std::fprintf(out, "%-14s %-24s %-28s %3d %3d | %9.3f %9s %7s | %7.1f %5.0f%%\n", c.net.c_str(),
                     c.name.c_str(), shape, c.count, th, r.t.ours_ms, theirs_ms, speed, gmacs, 100.0 * frac);
      }
      std::fflush(out);
      rows.push_back(r);
    }
  }
  kernels::set_num_threads(saved_threads);

  // Aggregates over whole networks (each layer × its count).
  struct Agg {
    const char* name;
    std::function<bool(const Case&)> pick;
  };
  const Agg aggs[] = {{"resnet18 convs", [](const Case& c) { return c.net == "resnet18"; }},
                      {"mobilenet_v2 depthwise", [](const Case& c) { return c.net == "mobilenet_v2" && c.depthwise(); }},
                      {"mobilenet_v2 1x1+stem", [](const Case& c) { return c.net == "mobilenet_v2" && !c.depthwise(); }},
                      {"mobilenet_v2 convs", [](const Case& c) { return c.net == "mobilenet_v2"; }}};
  if (!o.json) std::fprintf(out, "network totals (each layer x its count):\n");
  for (const Agg& a : aggs)
    for (int th : thread_counts) {
      double ours = 0, theirs = 0, macs = 0;
      bool all_theirs = true;
      int n = 0;
      for (const Row& r : rows)
        if (r.threads == th && a.pick(*r.c)) {
          ours += r.c->count * r.t.ours_ms;
          theirs += r.c->count * r.t.onednn_ms;
          macs += r.c->count * r.c->macs();
          all_theirs = all_theirs && r.t.onednn_ms > 0;
          ++n;
        }
      if (n == 0) continue;
      const double gmacs = macs / (ours * 1e-3) * 1e-9;
      if (o.json) {
        Json j{{"bench", "int8"}, {"summary", a.name}, {"threads", th}, {"ours_ms", ours}, {"gmacs", gmacs}};
        if (dnnl && all_theirs) j["onednn_ms"] = theirs, j["speedup"] = theirs / ours;
        std::fprintf(out, "%s\n", json_line(j).c_str());
      } else {
        char theirs_ms[32] = "", speed[32] = "";
        if (dnnl && all_theirs) {
          std::snprintf(theirs_ms, sizeof theirs_ms, "%9.3f", theirs);
          std::snprintf(speed, sizeof speed, "%6.2fx", theirs / ours);
        }
        std::fprintf(out, "%-14s %-24s %-28s %3s %3d | %9.3f %9s %7s | %7.1f %5.0f%%\n", "total", a.name, "", "", th,
                     ours, theirs_ms, speed, gmacs, 100.0 * 2.0 * gmacs / peak_gops[th]);
      }
    }
  if (!o.json && dnnl) {
    std::fprintf(out, "oneDNN implementations:");
    std::map<std::string, int> impls;
    for (const Row& r : rows) ++impls[r.onednn_impl];
    for (const auto& [name, n] : impls) std::fprintf(out, " %s (%d)", name.c_str(), n);
    std::fprintf(out, "\n");
  }
}

}  // namespace lowbit::bench
