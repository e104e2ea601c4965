#!/usr/bin/env bash
# tests/fixtures/qat_student.safetensors: a trained float model for the QAT
# regression test in tests/cli/test_cli.sh (8-bit LSQ QAT from it must keep
# its accuracy). It is the demo's distilled student at seed 0: a ResNet-20
# teacher (3 epochs) and a MobileNetV2 w0.5 small-input student distilled
# from it (2 epochs), both on 30,000 Fashion-MNIST training images — the
# demo's first two stages. About 15 minutes on 2 cores.
# Usage: tools/make_qat_fixture.sh [path/to/lowbit]
set -euo pipefail
cd "$(dirname "$0")/.."
LOWBIT="$(realpath "${1:-build/tools/lowbit}")"
out="$PWD/tests/fixtures/qat_student.safetensors"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"  # relative names: the student's metadata names its teacher "teacher.safetensors"
"$LOWBIT" train --model resnet20 --epochs 3 --limit 30000 --seed 0 --quiet --out teacher.safetensors
"$LOWBIT" distill --teacher teacher.safetensors --teacher-model resnet20 --model mobilenet_v2 --width 0.5 \
  --small-input --epochs 2 --limit 30000 --seed 0 --quiet --out student.safetensors
cp student.best.safetensors "$out"  # no optimizer state: 2.9 MB
"$LOWBIT" eval --weights "$out" --quiet
