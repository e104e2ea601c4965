// Float convolution benchmark on the ResNet-18 shapes; see conv_bench.h.
//
// Timing: std::chrono::steady_clock around each run; `warmup` untimed runs
// first, then the median of `reps`. Every timed call is a whole lowbit call
// (allocation and zero-fill of outputs included for conv2d), as a user sees it.
#include "bench/conv_bench.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "core/generator.h"
#include "core/json.h"
#include "core/ops.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref.h"

namespace lowbit::bench {
namespace {

using Clock = std::chrono::steady_clock;

// One convolution of ResNet-18 (torchvision), square input and filter, no bias.
struct ConvCase {
  const char* name;
  int64_t c, hw, k, rs, stride, pad;
};

// Every distinct conv shape of ResNet-18 at 224×224; "layerN.conv" is the
// stride-1 3×3 conv repeated inside stage N, "layerN.0.conv1" its first,
// strided conv, "layerN.0.downsample" the 1×1 shortcut projection.
constexpr ConvCase kResNet18[] = {
    {"conv1", 3, 224, 64, 7, 2, 3},
    {"layer1.conv", 64, 56, 64, 3, 1, 1},
    {"layer2.0.conv1", 64, 56, 128, 3, 2, 1},
    {"layer2.conv", 128, 28, 128, 3, 1, 1},
    {"layer2.0.downsample", 64, 56, 128, 1, 2, 0},
    {"layer3.0.conv1", 128, 28, 256, 3, 2, 1},
    {"layer3.conv", 256, 14, 256, 3, 1, 1},
    {"layer3.0.downsample", 128, 28, 256, 1, 2, 0},
    {"layer4.0.conv1", 256, 14, 512, 3, 2, 1},
    {"layer4.conv", 512, 7, 512, 3, 1, 1},
    {"layer4.0.downsample", 256, 14, 512, 1, 2, 0},
};

// Median wall time in ms of run(), with prep() (untimed) before each run.
template <class Prep, class Run>
double median_ms(const ConvBenchOptions& o, Prep&& prep, Run&& run) {
  std::vector<double> ms;
  for (int i = 0; i < o.warmup + o.reps; ++i) {
    prep();
    const auto t0 = Clock::now();
    run();
    const double t = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (i >= o.warmup) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const size_t m = ms.size();
  return m % 2 ? ms[m / 2] : 0.5 * (ms[m / 2 - 1] + ms[m / 2]);
}

struct CaseResult {
  double fwd_ms = 0, fwdbwd_ms = 0;  // conv2d, autograd (0 when not measured)
  double k_fwd_ms = 0, k_bwd_data_ms = 0, k_bwd_weight_ms = 0;
};

CaseResult run_case(const ConvCase& cc, const ConvBenchOptions& o, bool im2col) {
  const Conv2dOptions opt = Conv2dOptions::make(cc.stride, cc.pad);
  const kernels::Conv2dShape sh{o.batch, cc.c, cc.hw, cc.hw, cc.k, cc.rs, cc.rs, cc.stride, cc.stride, cc.pad, cc.pad};
  Generator gen(1);
  const Tensor x = randn({sh.n, sh.c, sh.h, sh.w}, &gen);
  const Tensor w = randn({sh.k, sh.c, sh.r, sh.s}, &gen);
  const Tensor gy = randn({sh.n, sh.k, sh.p(), sh.q()}, &gen);
  CaseResult r;
  auto nothing = [] {};

  if (!im2col) {
    r.fwd_ms = median_ms(o, nothing, [&] { Tensor y = conv2d(x, w, Tensor(), opt); });
    Tensor xg = x.detach().set_requires_grad(), wg = w.detach().set_requires_grad();
    r.fwdbwd_ms = median_ms(
        o,
        [&] {  // fresh gradients each run, as after optimizer.zero_grad(set_to_none=True)
          xg.set_grad(Tensor());
          wg.set_grad(Tensor());
        },
        [&] {
          Tensor y = conv2d(xg, wg, Tensor(), opt);
          y.backward(gy);
        });
  }

  // The kernel directions alone, on preallocated buffers.
  const kernels::FloatKernels& k = kernels::table().f32;
  Tensor y = Tensor::empty(gy.shape()), dx = Tensor::empty(x.shape()), dw = Tensor::empty(w.shape());
  float *py = y.data<float>(), *pdx = dx.data<float>(), *pdw = dw.data<float>();
  const float *px = x.data<float>(), *pw = w.data<float>(), *pgy = gy.data<float>();
  if (im2col) {
    r.k_fwd_ms = median_ms(o, nothing, [&] { kernels::ref::f32_conv2d_forward_im2col(py, px, pw, nullptr, sh, k.f32_gemm); });
    r.k_bwd_data_ms =
        median_ms(o, nothing, [&] { kernels::ref::f32_conv2d_backward_input_im2col(pdx, pgy, pw, sh, k.f32_gemm); });
    r.k_bwd_weight_ms = median_ms(
        o, nothing, [&] { kernels::ref::f32_conv2d_backward_weight_im2col(pdw, nullptr, pgy, px, sh, k.f32_gemm); });
  } else {
    r.k_fwd_ms = median_ms(o, nothing, [&] { k.f32_conv2d_forward(py, px, pw, nullptr, sh); });
    r.k_bwd_data_ms = median_ms(o, nothing, [&] { k.f32_conv2d_backward_input(pdx, pgy, pw, sh); });
    r.k_bwd_weight_ms = median_ms(o, nothing, [&] { k.f32_conv2d_backward_weight(pdw, nullptr, pgy, px, sh); });
  }
  return r;
}

}  // namespace

void run_conv_bench(std::FILE* out, const ConvBenchOptions& o) {
  if (o.path != "table" && o.path != "im2col")
    throw std::invalid_argument("conv benchmark: unknown path '" + o.path + "' (table or im2col)");
  if (o.batch < 1 || o.reps < 1 || o.warmup < 0)
    throw std::invalid_argument("conv benchmark: batch and reps must be at least 1, warmup at least 0");
  bool found = o.only.empty();
  for (const ConvCase& cc : kResNet18) found = found || o.only == cc.name;
  if (!found) {
    std::string names;
    for (const ConvCase& cc : kResNet18) names += std::string(names.empty() ? "" : ", ") + cc.name;
    throw std::invalid_argument("conv benchmark: unknown case '" + o.only + "' (cases: " + names + ")");
  }
  const bool im2col = o.path == "im2col";
  const kernels::KernelTable& t = kernels::table();
  const std::string path = im2col ? std::string("im2col + ") + t.f32.gemm_path : t.f32.conv_path;
  const int threads = kernels::num_threads();
  if (!o.json) {
    std::fprintf(out, "conv2d, ResNet-18 shapes: batch %lld, %d threads, kernel path %s, median of %d (%d warm-up)\n",
                 static_cast<long long>(o.batch), threads, path.c_str(), o.reps, o.warmup);
    std::fprintf(out, "%-20s %-20s %7s | %9s %8s | %9s %8s | %8s %8s %8s\n", "case", "C->K RxS/stride @HW", "GFLOP",
                 "fwd ms", "GFLOP/s", "f+b ms", "GFLOP/s", "k.fwd", "k.bwd-d", "k.bwd-w");
  }
  for (const ConvCase& cc : kResNet18) {
    if (!o.only.empty() && o.only != cc.name) continue;
    const int64_t pq = (cc.hw + 2 * cc.pad - cc.rs) / cc.stride + 1;
    const double gflop = 2.0 * o.batch * cc.k * pq * pq * cc.c * cc.rs * cc.rs * 1e-9;
    const CaseResult r = run_case(cc, o, im2col);
    auto rate = [](double g, double ms) { return ms > 0 ? g / (ms * 1e-3) : 0.0; };
    if (o.json) {
      Json j{{"bench", "conv"}, {"case", cc.name}, {"n", o.batch},     {"c", cc.c},         {"h", cc.hw},
             {"w", cc.hw},      {"k", cc.k},       {"r", cc.rs},        {"s", cc.rs},        {"stride", cc.stride},
             {"pad", cc.pad},   {"threads", threads}, {"path", path},   {"gflop_fwd", gflop}};
      if (!im2col) {
        j["fwd_ms"] = r.fwd_ms, j["fwd_gflops"] = rate(gflop, r.fwd_ms);
        j["fwdbwd_ms"] = r.fwdbwd_ms, j["fwdbwd_gflops"] = rate(3 * gflop, r.fwdbwd_ms);
      }
      j["kernel_fwd_ms"] = r.k_fwd_ms, j["kernel_bwd_data_ms"] = r.k_bwd_data_ms;
      j["kernel_bwd_weight_ms"] = r.k_bwd_weight_ms;
      std::fprintf(out, "%s\n", json_line(j).c_str());
    } else {
      char shape[64];
      std::snprintf(shape, sizeof shape, "%lld->%lld %lldx%lld/%lld @%lld", static_cast<long long>(cc.c),
                    static_cast<long long>(cc.k), static_cast<long long>(cc.rs), static_cast<long long>(cc.rs),
                    static_cast<long long>(cc.stride), static_cast<long long>(cc.hw));
      if (im2col)  // conv2d itself always uses the table: only the kernels were timed
        std::fprintf(out, "%-20s %-20s %7.2f | %9s %8s | %9s %8s | %8.2f %8.2f %8.2f\n", cc.name, shape, gflop, "-",
                     "-", "-", "-", r.k_fwd_ms, r.k_bwd_data_ms, r.k_bwd_weight_ms);
      else
        std::fprintf(out, "%-20s %-20s %7.2f | %9.2f %8.1f | %9.2f %8.1f | %8.2f %8.2f %8.2f\n", cc.name, shape, gflop,
                     r.fwd_ms, rate(gflop, r.fwd_ms), r.fwdbwd_ms, rate(3 * gflop, r.fwdbwd_ms), r.k_fwd_ms,
                     r.k_bwd_data_ms, r.k_bwd_weight_ms);
    }
    std::fflush(out);
  }
  if (!o.json) std::fprintf(out, "f+b = forward + backward (dx and dw, 3x the forward FLOPs); k.* = kernel alone, ms\n");
}

}  // namespace lowbit::bench
