// `lowbit demo`: the cycle as far as lowbit has it today — train a small
// ResNet-20 teacher on Fashion-MNIST, evaluate it, and print a table.
// (Distillation, quantization and int8 inference join as they land.)
//
// Default: 1 epoch on a 12,000-image subset (a couple of minutes on 2 cores);
// --full: the short recipe, 3 epochs on all 60,000 images.
#include <cstdio>
#include <string>

#include "tools/cli.h"
#include "tools/common.h"

namespace lowbit::cli {

int cmd_train(const Args& a);
int cmd_eval(const Args& a);

int cmd_demo(const Args& a) {
  a.reject_unknown({"--full", "--out", "--data", "--quiet"});
  const bool full = a.has("--full");
  const std::string out = a.get("--out", "demo-teacher.safetensors");
  Args t;
  t.command = "train";
  t.flags = {{"--model", "resnet20"}, {"--epochs", full ? "3" : "1"}, {"--out", out}, {"--lr", "0.1"},
             {"--batch", "128"}, {"--seed", a.get("--seed", "0")}};
  if (!full) {
    t.flags["--limit"] = "12000";
    t.flags["--val-limit"] = "10000";
  }
  if (a.has("--data")) t.flags["--data"] = a.get("--data", "");
  if (a.has("--quiet")) t.flags["--quiet"] = "";
  std::fprintf(stderr, "== lowbit demo: train a ResNet-20 teacher on Fashion-MNIST (%s)\n",
               full ? "3 epochs, 60k images" : "1 epoch, 12k images; --full for the 3-epoch recipe");
  if (int rc = cmd_train(t)) return rc;
  std::fprintf(stderr, "\n== evaluate %s on the 10,000 test images\n", out.c_str());
  Args e;
  e.command = "eval";
  e.flags = {{"--weights", out}};
  if (a.has("--data")) e.flags["--data"] = a.get("--data", "");
  return cmd_eval(e);
}

}  // namespace lowbit::cli
