#!/usr/bin/python3
"""The distillation table of bench/results/README.md from bench/distill_runs.sh's JSON results.

usage: bench/distill_table.py DIR   (default bench/results/distill)
Prints one markdown row per setting: mean of the seeds and each seed's accuracy.
"""
import glob
import json
import os
import sys

ROWS = [("mb25_alone", "mobilenet_v2 w0.25 small-input, float, alone (lowbit train)"),
        ("mb25_kd", "… + logit KD (T 4, α 0.9)"),
        ("mb25_kdat", "… + KD + attention (layer1:features.3, layer2:features.6, layer3:features.13)"),
        ("r20_w4a4", "resnet20 w4a4 LSQ, QAT alone (lowbit qat)"),
        ("r20_w4a4_kd", "resnet20 w4a4 LSQ, QAT + KD (T 4, α 0.9)"),
        ("r20_w4a4_kdT2", "resnet20 w4a4 LSQ, QAT + KD (T 2, α 0.5)"),
        ("r20_w2a2", "resnet20 w2a2 LSQ, QAT alone (lowbit qat)"),
        ("r20_w2a2_kd", "resnet20 w2a2 LSQ, QAT + KD (T 4, α 0.9)")]


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                             "distill")
    print("| student | mean | seed 0 | seed 1 |\n|---|---|---|---|")
    for key, label in ROWS:
        accs = []
        for s in (0, 1):
            f = os.path.join(d, "%s_s%d.json" % (key, s))
            if os.path.exists(f) and os.path.getsize(f):
                accs.append(json.load(open(f))["accuracy"] * 100)
        if not accs:
            continue
        cells = ["%.2f%%" % a for a in accs] + [""] * (2 - len(accs))
        print("| %s | **%.2f%%** | %s |" % (label, sum(accs) / len(accs), " | ".join(cells)))


if __name__ == "__main__":
    main()
