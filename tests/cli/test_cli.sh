#!/usr/bin/env bash
# The lowbit command line as a user meets it: exit codes and one-line
# errors for bad usage and bad files, and exact resume of training.
# Usage: tests/cli/test_cli.sh path/to/lowbit
# Prints "lowbit-tests: test_cli N passed, M failed" like the doctest suites.
set -uo pipefail
LOWBIT="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# expect NAME CODE PATTERN -- CMD...: exit code CODE and stderr matching PATTERN
# (a single line when CODE is 2).
expect() {
  local name="$1" code="$2" pattern="$3"; shift 4
  local err rc
  err="$("$@" 2>&1 >/dev/null)"; rc=$?
  if [ "$rc" != "$code" ]; then
    echo "FAIL $name: exit $rc, expected $code; stderr: $err" >&2; failed=$((failed + 1)); return
  fi
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" <<<"$err"; then
    echo "FAIL $name: stderr does not match /$pattern/: $err" >&2; failed=$((failed + 1)); return
  fi
  if [ "$code" = 2 ] && [ "$(wc -l <<<"$err")" != 1 ]; then
    echo "FAIL $name: error is not one line: $err" >&2; failed=$((failed + 1)); return
  fi
  passed=$((passed + 1))
}

expect "info"              0 ""                                  -- "$LOWBIT" info
for c in train eval bench demo info; do
  if "$LOWBIT" "$c" --help | grep -q "^usage: lowbit $c"; then passed=$((passed + 1)); else
    echo "FAIL $c --help: no usage on stdout with exit 0" >&2; failed=$((failed + 1)); fi
done
expect "no command"        2 "usage"                             -- "$LOWBIT"
expect "unknown command"   2 "unknown command 'frobnicate'"      -- "$LOWBIT" frobnicate
expect "unknown flag"      2 "unknown option --bogus"            -- "$LOWBIT" info --bogus 1
expect "bad threads"       2 "--threads expects an integer"      -- "$LOWBIT" info --threads two
expect "bad LOWBIT_ISA"    2 "LOWBIT_ISA=nope.*valid"            -- env LOWBIT_ISA=nope "$LOWBIT" info
expect "unknown model"     2 "unknown model 'resnet19'"          -- "$LOWBIT" train --model resnet19 --out "$tmp/x.safetensors" --limit 64
expect "missing --out"     2 "--out"                             -- "$LOWBIT" train --model resnet20
expect "missing data dir"  2 "$tmp/nodata"                       -- "$LOWBIT" train --model resnet20 --data "$tmp/nodata" --out "$tmp/x.safetensors"
mkdir -p "$tmp/empty"
expect "empty data dir"    2 "$tmp/empty: no train-images"       -- "$LOWBIT" train --model resnet20 --data "$tmp/empty" --out "$tmp/x.safetensors"
expect "NaN weight decay"  2 "--wd expects a finite number"      -- "$LOWBIT" train --model resnet20 --wd nan --out "$tmp/x.safetensors"
expect "NaN mean"          2 "--mean expects comma-separated finite" -- "$LOWBIT" train --model resnet20 --mean nan --out "$tmp/x.safetensors"
expect "missing weights"   2 "$tmp/none.safetensors"             -- "$LOWBIT" eval --model resnet20 --weights "$tmp/none.safetensors"

# Train a tiny run, then damage the checkpoint in the ways users do.
small=(--model resnet20 --limit 256 --val-limit 128 --batch 64 --quiet)
expect "train 2 epochs"    0 "^epoch 2/2 .*val loss" -- "$LOWBIT" train "${small[@]}" --epochs 2 --out "$tmp/a.safetensors"
expect "train 1 of 2"      0 "" -- "$LOWBIT" train "${small[@]}" --epochs 2 --stop-after 1 --out "$tmp/b.safetensors"
expect "resume 1 more"     0 "" -- "$LOWBIT" train "${small[@]}" --epochs 2 --resume "$tmp/b.safetensors" --out "$tmp/b.safetensors"
if cmp -s "$tmp/a.safetensors" "$tmp/b.safetensors"; then passed=$((passed + 1)); else
  echo "FAIL resume: 1 epoch + resume 1 epoch differs from 2 epochs" >&2; failed=$((failed + 1)); fi
expect "val split"         0 "461 train / 51 val images" -- "$LOWBIT" train --model resnet20 --limit 512 --val-split 0.1 --batch 64 --quiet --out "$tmp/v.safetensors"
expect "bad val split"     2 "--val-split must be in" -- "$LOWBIT" train --model resnet20 --val-split 1 --out "$tmp/v.safetensors"
expect "eval"              0 "" -- "$LOWBIT" eval --weights "$tmp/a.safetensors" --limit 128 --quiet
head -c 1000 "$tmp/a.safetensors" > "$tmp/trunc.safetensors"
expect "truncated"         2 "trunc.safetensors" -- "$LOWBIT" eval --weights "$tmp/trunc.safetensors" --limit 128
expect "wrong shape"       2 "shape mismatch: conv1.weight" -- "$LOWBIT" eval --weights "$tmp/a.safetensors" --model resnet20 --in-channels 3 --limit 128
expect "wrong model"       2 "missing keys|unexpected keys|shape mismatch" -- "$LOWBIT" eval --weights "$tmp/a.safetensors" --model resnet32 --limit 128
printf 'not a checkpoint' > "$tmp/garbage.safetensors"
expect "garbage file"      2 "garbage.safetensors" -- "$LOWBIT" eval --weights "$tmp/garbage.safetensors" --model resnet20

# Quantization: PTQ and QAT of the tiny model, their outputs, and bad input.
# expect_json NAME PATTERN... -- CMD...: exit 0 and stdout matching every pattern.
expect_json() {
  local name="$1"; shift
  local patterns=()
  while [ "$1" != "--" ]; do patterns+=("$1"); shift; done
  shift
  local out rc
  out="$("$@" 2>/dev/null)"; rc=$?
  if [ "$rc" != 0 ]; then echo "FAIL $name: exit $rc" >&2; failed=$((failed + 1)); return; fi
  for p in "${patterns[@]}"; do
    if ! grep -qE -- "$p" <<<"$out"; then
      echo "FAIL $name: stdout does not match /$p/: $out" >&2; failed=$((failed + 1)); return; fi
  done
  passed=$((passed + 1))
}
acc='0\.[0-9]{6}'
expect_json "quantize w8a8" "\"float_accuracy\": $acc" "\"accuracy\": $acc" '"quantized_mb": 0\.2[0-9]' '"qconfig": "w8a8"' \
  -- "$LOWBIT" quantize --weights "$tmp/a.safetensors" --limit 128 --calib 64 --json --out "$tmp/q.safetensors"
expect_json "eval quantized" "\"accuracy\": $acc" '"quantization": "ptq"' '"quantized_mb"' \
  -- "$LOWBIT" eval --weights "$tmp/q.safetensors" --limit 128 --json
expect_json "quantize per-tensor mse" '"observer": "mse"' \
  -- "$LOWBIT" quantize --weights "$tmp/a.safetensors" --limit 128 --calib 64 --per-tensor --observer mse --json --out "$tmp/q2.safetensors"
expect_json "qat w4a4 lsq" "\"accuracy\": $acc" '"qconfig": "w4a4"' '"quantizer": "lsq"' \
  -- "$LOWBIT" qat --weights "$tmp/a.safetensors" --qconfig w4a4 --limit 128 --val-limit 64 --batch 64 --json --out "$tmp/qat.safetensors"
expect_json "eval qat" '"quantization": "qat"' -- "$LOWBIT" eval --weights "$tmp/qat.safetensors" --limit 64 --json
expect "calib 0"           2 "--calib must be at least 1" -- "$LOWBIT" quantize --weights "$tmp/a.safetensors" --calib 0 --out "$tmp/x.safetensors"
expect "unknown qconfig"   2 "unknown qconfig 'w3a3'" -- "$LOWBIT" quantize --weights "$tmp/a.safetensors" --qconfig w3a3 --out "$tmp/x.safetensors" --limit 64
expect "unknown observer"  2 "unknown observer 'kl'" -- "$LOWBIT" quantize --weights "$tmp/a.safetensors" --observer kl --out "$tmp/x.safetensors" --limit 64
expect "granularity"       2 "--per-channel and --per-tensor" -- "$LOWBIT" quantize --weights "$tmp/a.safetensors" --per-channel --per-tensor --out "$tmp/x.safetensors" --limit 64
expect "unknown quantizer" 2 "unknown quantizer 'pact'" -- "$LOWBIT" qat --weights "$tmp/a.safetensors" --quantizer pact --out "$tmp/x.safetensors" --limit 64
expect "quantize twice"    2 "q.safetensors is already quantized" -- "$LOWBIT" quantize --weights "$tmp/q.safetensors" --out "$tmp/x.safetensors"
expect "qat from quantized" 2 "q.safetensors is already quantized" -- "$LOWBIT" qat --weights "$tmp/q.safetensors" --out "$tmp/x.safetensors" --limit 64
expect "resume float as qat" 2 "a.safetensors is not a lowbit qat checkpoint" -- "$LOWBIT" qat --resume "$tmp/a.safetensors" --out "$tmp/x.safetensors" --limit 64
expect "quantized, other model" 2 "q.safetensors.*layer1.3.conv1" -- "$LOWBIT" eval --weights "$tmp/q.safetensors" --model resnet32 --limit 64

echo "lowbit-tests: test_cli $passed passed, $failed failed"
[ "$failed" = 0 ]
