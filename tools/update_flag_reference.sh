#!/usr/bin/env bash
# Rewrites the flag reference in tools/README.md from the option table
# (lowbit help --markdown). Usage: tools/update_flag_reference.sh [LOWBIT]
set -euo pipefail
cd "$(dirname "$0")/.."
lowbit="${1:-build/tools/lowbit}"
ref="$(mktemp)"
"$lowbit" help --markdown > "$ref"
awk -v ref="$ref" '
  /^<!-- flag reference: begin/ { print; while ((getline line < ref) > 0) print line; skip = 1; next }
  /^<!-- flag reference: end/   { skip = 0 }
  !skip' tools/README.md > tools/README.md.new
mv tools/README.md.new tools/README.md
rm -f "$ref"
