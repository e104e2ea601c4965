// Divergence: the rule a training loop applies after every step, so a run
// that is falling apart stops (or warns) while it still can be told why.
//
//   nn::DivergenceMonitor m;                       // rule below
//   for (step) { ...; if (auto why = m.add_loss(loss)) handle(*why); }
//   for (line : quant::collapsed_steps(model)) handle(line);  // QAT: steps at the clamp
//
// The loss rule: the mean training loss of each window of `window` steps
// (20, the --metrics interval) is compared with the first window's. The run
// diverges when `rising` (3) consecutive windows each rose over the one
// before and the last one is at least `factor` (2) times the first. A
// healthy run's windows fall or wander; a fine-tune whose loss doubles in a
// steady climb is broken (the demo's QAT w8a8 stage climbed 0.40, 0.55,
// 1.83, ... to 7.5 in one epoch and ended at 10% accuracy).
#pragma once
#include <optional>
#include <string>

namespace lowbit::nn {

struct DivergenceRule {
  int window = 20;     // steps per window
  int rising = 3;      // consecutive rising windows
  double factor = 2.0; // the last one at least this times the first
};

class DivergenceMonitor {
 public:
  explicit DivergenceMonitor(DivergenceRule rule = {}) : rule_(rule) {}
  // One step's loss; at the end of a window, the reason if the rule fires
  // ("training loss rose for 3 windows of 20 steps to 1.83, 4.6x the first
  // window's 0.40"). It fires once; later windows continue the watch.
  std::optional<std::string> add_loss(double loss);
  const DivergenceRule& rule() const { return rule_; }

 private:
  DivergenceRule rule_;
  double sum_ = 0, first_ = -1, last_ = -1;
  int in_window_ = 0, rises_ = 0;
  bool fired_ = false;
};

}  // namespace lowbit::nn
