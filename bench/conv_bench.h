// Float convolution benchmark: lowbit::conv2d forward and forward+backward on
// the ResNet-18 convolution shapes (224×224 input), plus the three kernel
// directions timed alone through the kernel table.
//
// The code lives here, in the lowbit_bench library, and has two front ends
// that only parse arguments: `lowbit bench conv` (tools/cmd_bench.cpp) and the
// stand-alone bench/bench_conv executable. bench/compare_pytorch.py runs the
// former side by side with PyTorch.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace lowbit::bench {

struct ConvBenchOptions {
  int64_t batch = 32;
  int warmup = 1;  // untimed runs first (oneDNN primitive creation, page faults)
  int reps = 5;    // timed runs; the median is reported
  bool json = false;
  // Kernels timed alone: "table" (what conv2d uses: oneDNN on x86 with libdnnl)
  // or "im2col" (the reference im2col lowering over the table's GEMM). With
  // "im2col" only the kernel directions are timed (conv2d always uses the table).
  std::string path = "table";
  std::string only;  // run only the case with this name (empty: all)
};

// Runs every case and prints a table, or with json one object per line:
//   {"bench":"conv","case":"layer1.conv","n":32,"c":64,"h":56,"w":56,"k":64,"r":3,"s":3,
//    "stride":1,"pad":1,"threads":2,"path":"onednn","gflop_fwd":…,
//    "fwd_ms":…,"fwd_gflops":…,"fwdbwd_ms":…,"fwdbwd_gflops":…,
//    "kernel_fwd_ms":…,"kernel_bwd_data_ms":…,"kernel_bwd_weight_ms":…}
// fwd_ms: conv2d(x, w) with no gradient recorded. fwdbwd_ms: x and w require
// grad, y = conv2d(x, w), y.backward(gy), grads cleared between runs (not
// timed). Forward+backward counts 3× the forward FLOPs (dx and dw).
// Throws std::invalid_argument for an unknown path or case name.
void run_conv_bench(std::FILE* out, const ConvBenchOptions& opt);

}  // namespace lowbit::bench
