#!/usr/bin/env bash
# Remakes tests/fixtures/mobilenet_v2_w025.int8.safetensors (a MobileNetV2,
# width 0.25, trained one epoch on 2,048 Fashion-MNIST images, PTQ w8a8) and
# tests/fixtures/engine_files.safetensors (each committed int8 model's logits
# on the reference kernel path, which tests/quant/test_engine_files.cpp holds
# every path to, on x86 and under qemu on aarch64).
# Usage: tools/make_engine_fixture.sh   (after tools/run build)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
build/tools/lowbit train --model mobilenet_v2 --width 0.25 --small-input --epochs 1 --limit 2048 --val-limit 256 \
  --seed 0 --quiet --out "$tmp/m.safetensors"
build/tools/lowbit quantize --weights "$tmp/m.safetensors" --calib 256 --limit 512 --quiet --out "$tmp/q.safetensors" \
  --int8-out tests/fixtures/mobilenet_v2_w025.int8.safetensors
LOWBIT_WRITE_ENGINE_FIXTURE=tests/fixtures/engine_files.safetensors build/tests/test_engine_files
