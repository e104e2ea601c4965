#!/usr/bin/env bash
# QAT step / float step, robust to this machine's run-to-run swings: REPS rounds,
# each timing float, w8a8 STE and w8a8 LSQ one after the other (lowbit bench
# train, its own process each, median of 20 steps after 3), for each model; prints
# every figure and the medians over the rounds. A single compare_train.py run
# gives the PyTorch side; this gives the ratio.
#
# usage: bench/qat_step_repeats.sh [REPS (5)] [THREADS (2)]   (LOWBIT=path: another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-5}"; threads="${2:-2}"
L="${LOWBIT:-build/tools/lowbit}"
export GOMP_SPINCOUNT=1000
for model in "resnet20" "mobilenet_v2 --width 0.5 --small-input"; do
  declare -A all=()
  for ((i = 0; i < reps; ++i)); do
    for q in float ste lsq; do
      extra=(); [ "$q" != float ] && extra=(--qconfig w8a8 --quantizer "$q")
      ms=$($L bench train --model $model --steps 20 --warmup 3 --threads "$threads" "${extra[@]}" --json |
           python3 -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])')
      all[$q]+="$ms "
    done
  done
  python3 - "$model" "${all[float]}" "${all[ste]}" "${all[lsq]}" <<'PY'
import statistics, sys
model, *cols = sys.argv[1:]
f, s, l = ([float(v) for v in c.split()] for c in cols)
mf, ms, ml = (statistics.median(v) for v in (f, s, l))
print(f"{model}: float {mf:.1f} ms, STE {ms:.1f} ms ({ms / mf:.2f}x), LSQ {ml:.1f} ms ({ml / mf:.2f}x)  "
      f"[float {f} | ste {s} | lsq {l}]")
PY
  unset all
done
