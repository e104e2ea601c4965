// Training throughput: images/s of forward + cross-entropy + backward + SGD
// step on a fixed synthetic batch (so only compute is measured; the data
// pipeline has its own benchmark), achieved GFLOP/s of the conv/matmul work
// (counted by core/profile.h) and the process's peak resident memory.
// bench/compare_train.py runs the same step in PyTorch in the same run.
#pragma once
#include <cstdio>
#include <string>

namespace lowbit::bench {

struct TrainBenchOptions {
  std::string model = "resnet20";
  float width = 1.0f;         // mobilenet_v2
  bool small_input = false;
  int64_t batch = 128;
  int64_t channels = 1, size = 28, classes = 10;
  int warmup = 3, steps = 10;
  bool json = false;
  // QAT: quant::prepare_qat(model, preset(qconfig)) with every quantizer set
  // to `quantizer` (ste, lsq, lsq+); empty: the float step.
  std::string qconfig, quantizer;
};

void run_train_bench(std::FILE* out, const TrainBenchOptions& o);

// Distillation step against the plain student step, in one run: per rep, one
// plain step (forward, cross-entropy, backward, SGD), one distillation step
// (teacher forward under NoGradGuard + student step with the KD loss, plus the
// attention pairs if given) and one teacher forward alone, interleaved; the
// medians, the overhead ratio and the teacher forward's share of the
// distillation step. Random weights and a fixed random batch (compute only).
struct DistillBenchOptions {
  TrainBenchOptions student;          // model, width, batch, input, steps, warmup, json (qconfig: a QAT student)
  std::string teacher = "resnet20";   // teacher model (width 1, the student's input)
  std::string attention;              // "layer2:features.6,…" (empty: logit KD only)
};
void run_distill_bench(std::FILE* out, const DistillBenchOptions& o);

}  // namespace lowbit::bench
