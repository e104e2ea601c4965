// Int8 kernel benchmark (`lowbit bench kernels`): lowbit's int8 GEMM and
// convolution kernels (the kernel table's int8 section) against oneDNN's int8
// primitives on the same problems, in one run, on the same machine and
// thread count (1 and all threads).
//
// Problems: GEMM (M,N,K) = (1024,1024,1024), (3136,64,576), (196,512,4608),
// (1,1000,1280); every conv layer of ResNet-18 and MobileNetV2 (width 1.0) at
// 224×224, batch 1 (repeated layers once, with their count in the network).
// Both sides: u8 activations (NHWC), s8 weights packed/reordered once outside
// the timing, s32 bias, per-output-channel fp32 output scales, input and
// output zero points, ReLU/ReLU6 where the network has them, u8 output.
// oneDNN's weights use format_tag::any (its preferred blocked layout).
//
// Timing: each rep is one call; ours and oneDNN's alternate rep by rep, and
// the minimum over the reps is reported (the machine may be shared: the
// minimum is the time the code needs, the median what it got). GMAC/s and
// the fraction of the int8 peak of `lowbit bench peak` at the same thread
// count are of our time.
#pragma once
#include <cstdio>
#include <string>

namespace lowbit::bench {

struct Int8BenchOptions {
  int max_threads = 1;       // measured at 1 and at max_threads
  int min_reps = 10;         // at least this many reps of each side…
  double min_seconds = 0.2;  // …and at least this long per side and case
  std::string only;          // run only cases whose name contains this (empty: all)
  bool json = false;
};

// Prints a table (or, with json, one object per case and thread count plus
// summary objects):
//   {"bench":"int8","net":"resnet18","case":"layer1.conv","count":4,"threads":1,
//    "macs":…,"ours_ms":…,"onednn_ms":…,"speedup":…,"gmacs":…,"peak_fraction":…,
//    "ours_path":"…","onednn_impl":"…"}
// onednn_ms / speedup / onednn_impl are absent in builds without oneDNN.
void run_int8_bench(std::FILE* out, const Int8BenchOptions& opt);

// True if this build compares with oneDNN.
bool int8_bench_has_onednn();

}  // namespace lowbit::bench
