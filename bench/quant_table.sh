#!/usr/bin/env bash
# The quantization table of bench/results/README.md for one float checkpoint: float, PTQ
# per-tensor MinMax, PTQ per-channel with each observer, QAT w8a8 STE/LSQ,
# w4a4 LSQ, w2a2 LSQ. Every accuracy is `lowbit eval --json` of the written
# file on the full test split; one JSON line per row goes to OUT.
#
# usage: bench/quant_table.sh FLOAT.safetensors OUT.jsonl [W8A8_QAT_EPOCHS (2)] [LOW_BIT_QAT_EPOCHS (same)]
#                             [W8A8_LR (0.001)] [LOW_BIT_LR (0.01)] [LOW_BIT_FREEZE_BN_AFTER (never)]
# 8-bit QAT fine-tunes a converged model (a small lr); 4 and 2 bits must move
# the weights much further (the LSQ paper fine-tunes at 0.01). With the BN
# statistics frozen for the last low-bit epochs, the weights train against the
# running statistics that the frozen model folds in (Krishnamoorthi 2018).
# ROWS=REGEX (environment) keeps only the rows whose label matches; LOWBIT=PATH runs another binary.
set -euo pipefail
cd "$(dirname "$0")/.."
weights="$1"; out="$2"; epochs="${3:-2}"; epochs2="${4:-$epochs}"; lr8="${5:-0.001}"; lr_low="${6:-0.01}"
freeze_low=(); [ -n "${7:-}" ] && freeze_low=(--freeze-bn-after "$7")
L="${LOWBIT:-build/tools/lowbit}"  # LOWBIT=path: a copied binary, so a rebuild during the run changes nothing
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
: > "$out"
# row LABEL EPOCHS FILE CMD...: run CMD (which writes FILE; empty CMD: FILE is the float model),
# then record lowbit eval --json of FILE with the label, epochs and CMD.
row() {
  local label="$1" ep="$2" file="$3"; shift 3
  [[ "$label" =~ ${ROWS:-.} ]] || return 0
  local t0=$SECONDS
  [ $# -gt 0 ] && "$@" --quiet >/dev/null 2>"$dir/log"
  local secs=$((SECONDS - t0))
  local json; json="$($L eval --weights "$file" --quiet --json)"
  local cmd="${*:-$L eval --weights $file}"
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(row=sys.argv[2], qat_epochs=int(sys.argv[3]), seconds=int(sys.argv[4]), command=sys.argv[5]); print(json.dumps(r))' \
    "$json" "$label" "$ep" "$secs" "${cmd//$dir\//}" >> "$out"
  echo "$label: $(tail -1 "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["accuracy"], r.get("quantized_mb", r["file_mb"]))') (${secs} s)" >&2
}
row "float" 0 "$weights"
row "PTQ per-tensor minmax" 0 "$dir/pt.safetensors" \
  $L quantize --weights "$weights" --qconfig w8a8-per-tensor --observer minmax --out "$dir/pt.safetensors"
for obs in minmax ema histogram entropy percentile mse; do
  row "PTQ per-channel $obs" 0 "$dir/pc_$obs.safetensors" \
    $L quantize --weights "$weights" --qconfig w8a8 --observer "$obs" --out "$dir/pc_$obs.safetensors"
done
for q in "w8a8 ste $epochs $lr8" "w8a8 lsq $epochs $lr8" "w4a4 lsq $epochs2 $lr_low" "w2a2 lsq $epochs2 $lr_low"; do
  set -- $q
  extra=(); [ "$1" != w8a8 ] && extra=("${freeze_low[@]}")
  row "QAT $1 ${2^^}" "$3" "$dir/qat_$1_$2.safetensors" \
    $L qat --weights "$weights" --qconfig "$1" --quantizer "$2" --epochs "$3" --lr "$4" "${extra[@]}" --out "$dir/qat_$1_$2.safetensors"
done
