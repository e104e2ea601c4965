#!/usr/bin/env bash
# The runs behind the distillation table of bench/results/README.md, one at a time.
#   bench/distill_runs.sh TEACHER.safetensors OUT_DIR [LOWBIT]
# TEACHER: the float resnet20 of the 30-epoch recipe (lowbit train --model resnet20 --epochs 30).
# Each run writes OUT_DIR/NAME.json (its --json line); bench/distill_table.py makes the table.
set -uo pipefail
T="$1"; out="$2"; L="${3:-build/tools/lowbit}"
mkdir -p "$out"
MB=(--model mobilenet_v2 --width 0.25 --small-input --epochs 3)
AT=(--attention layer1:features.3,layer2:features.6,layer3:features.13)
run() { local name=$1; shift; echo "$(date +%T) $name" >&2
  "$@" --quiet --json --out "$out/$name.safetensors" > "$out/$name.json"; }
for s in 0 1; do
  run mb25_alone_s$s      "$L" train "${MB[@]}" --seed $s
  run mb25_kd_s$s         "$L" distill --teacher "$T" --teacher-model resnet20 "${MB[@]}" --seed $s
  run mb25_kdat_s$s       "$L" distill --teacher "$T" --teacher-model resnet20 "${MB[@]}" "${AT[@]}" --seed $s
  for q in w4a4 w2a2; do
    run r20_${q}_s$s      "$L" qat --weights "$T" --qconfig $q --quantizer lsq --epochs 2 --seed $s
    run r20_${q}_kd_s$s   "$L" distill --teacher "$T" --teacher-model resnet20 --init "$T" --model resnet20 \
                               --qconfig $q --quantizer lsq --epochs 2 --seed $s
  done
  run r20_w4a4_kdT2_s$s   "$L" distill --teacher "$T" --teacher-model resnet20 --init "$T" --model resnet20 \
                               --qconfig w4a4 --quantizer lsq --epochs 2 --temperature 2 --alpha 0.5 --seed $s
done
