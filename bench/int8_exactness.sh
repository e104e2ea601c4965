#!/bin/bash
# The int8 engine against the simulation of the same quantized model on the
# whole Fashion-MNIST test set, on every kernel path this CPU has:
#   bench/int8_exactness.sh OUT.jsonl NAME=FLOAT.safetensors [NAME=FLOAT.safetensors ...]
# For each float checkpoint: lowbit quantize (w8a8, 1024 calibration images)
# --int8-out, lowbit eval of the int8 file, then lowbit eval --compare-sim
# under LOWBIT_ISA=ref, avx2, avxvnni, avx512vnni (those `lowbit info` accepts).
# LOWBIT=path/to/lowbit (default build/tools/lowbit); WORK=dir for the
# quantized files (default a temporary directory, removed afterwards).
set -euo pipefail
out="$1"; shift
lowbit="${LOWBIT:-build/tools/lowbit}"
work="${WORK:-$(mktemp -d)}"
[ -n "${WORK:-}" ] || trap 'rm -rf "$work"' EXIT
: > "$out"
for pair in "$@"; do
  name="${pair%%=*}"; float="${pair#*=}"
  "$lowbit" quantize --weights "$float" --json --out "$work/$name.q.safetensors" \
    --int8-out "$work/$name.int8.safetensors" | sed "s/^{/{\"name\": \"$name\", \"step\": \"quantize\", /" >> "$out"
  "$lowbit" eval --weights "$work/$name.int8.safetensors" --json | sed "s/^{/{\"name\": \"$name\", \"step\": \"eval-int8\", /" >> "$out"
  for isa in ref avx2 avxvnni avx512vnni; do
    LOWBIT_ISA=$isa "$lowbit" info >/dev/null 2>&1 || continue
    LOWBIT_ISA=$isa "$lowbit" eval --weights "$work/$name.q.safetensors" --compare-sim --json \
      | sed "s/^{/{\"name\": \"$name\", \"step\": \"compare-sim\", /" >> "$out"
  done
done
sed -e "s#$work/##g" -i "$out"
