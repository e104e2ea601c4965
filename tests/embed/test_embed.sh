#!/usr/bin/env bash
# lowbit as a library in another project (examples/embed): built against the
# installed lowbit (meson install --destdir of BUILD_DIR, found by pkg-config)
# and run; then as a Meson subproject: configured (the subproject's
# meson.build, its options and lowbit_dep resolve), and with
# LOWBIT_EMBED_SUBPROJECT=1 also built and run (a third compile of lowbit:
# 5 minutes on 2 cores, so CI leaves it to releases).
# Then the engine alone (examples/engine against the installed
# liblowbit_engine, lowbit_engine.pc): it runs the int8 file the embed program
# wrote and gives its logits bit for bit; the engine library holds no
# training code (nn/, quant/'s modules, distill/) and links no oneDNN.
# Usage: tests/embed/test_embed.sh BUILD_DIR
# Prints "lowbit-tests: test_embed N passed, M failed, K skipped".
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0

# run_embed CMD...: the example must exit 0 and print its int8 logits within 5% of its float ones.
run_embed() {
  local out
  if out="$("$@" 2>&1)" && grep -qE "int8 within [0-9.]+% of float: ok" <<<"$out"; then passed=$((passed + 1)); else
    echo "FAIL embed ($1): $out" >&2; failed=$((failed + 1)); fi
}

# 1. Installed: headers, liblowbit and lowbit.pc under a staging root.
if meson install -C "$build" --destdir "$tmp/inst" --quiet >"$tmp/install.log" 2>&1; then
  pc="$(find "$tmp/inst" -name lowbit.pc | head -1)"
  libdir="$(dirname "$(dirname "$pc")")"
  if PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$tmp/inst" \
       meson setup "$tmp/installed" "$root/examples/embed" --wrap-mode=nofallback >"$tmp/setup1.log" 2>&1 &&
     ninja -C "$tmp/installed" >"$tmp/build1.log" 2>&1; then
    mkdir -p "$tmp/files"
    run_embed env LD_LIBRARY_PATH="$libdir" "$tmp/installed/embed" "$tmp/files"
  else
    echo "FAIL embed against the installed lowbit: $(tail -5 "$tmp/setup1.log" "$tmp/build1.log" 2>/dev/null)" >&2
    failed=$((failed + 1))
  fi
else
  echo "FAIL meson install: $(tail -5 "$tmp/install.log")" >&2
  failed=$((failed + 1))
fi

# 2. The engine alone: an application that only runs int8 files.
pc_engine="$(find "$tmp/inst" -name lowbit_engine.pc | head -1)"
if [ -n "$pc_engine" ] && PKG_CONFIG_PATH="$(dirname "$pc_engine")" PKG_CONFIG_SYSROOT_DIR="$tmp/inst" \
     meson setup "$tmp/engine" "$root/examples/engine" --wrap-mode=nofallback >"$tmp/setup3.log" 2>&1 &&
   ninja -C "$tmp/engine" >"$tmp/build3.log" 2>&1; then
  libdir="$(dirname "$(dirname "$pc_engine")")"
  if out="$(env LD_LIBRARY_PATH="$libdir" "$tmp/engine/infer" "$tmp/files/mlp.int8.safetensors" \
              "$tmp/files/batch.safetensors" 2>&1)" && grep -q "logits equal the expected ones" <<<"$out"; then
    passed=$((passed + 1))
  else
    echo "FAIL the engine alone on the embed program's int8 file: $out" >&2
    failed=$((failed + 1))
  fi
  # What the engine library is made of: no training code, no oneDNN.
  so="$(find "$tmp/inst" -name 'liblowbit_engine.so' | head -1)"
  a="$(find "$tmp/inst" -name 'liblowbit_engine.a' | head -1)"
  symbols="$(nm -C --defined-only "$a" 2>/dev/null)"
  training="$(grep -E ' lowbit::(nn|distill|data)::| lowbit::quant::(Quantizer|QuantModel|FusedConv2d|Observer)' <<<"$symbols" | head -3)"
  if [ -n "$so" ] && [ -n "$a" ] && ! ldd "$so" | grep -i dnnl >/dev/null && [ -z "$training" ] &&
     grep 'lowbit::quant::engine::Runner::run' <<<"$symbols" >/dev/null; then
    passed=$((passed + 1))
  else
    echo "FAIL liblowbit_engine: oneDNN linked ($(ldd "$so" | grep -i dnnl)) or training code inside ($training)" >&2
    failed=$((failed + 1))
  fi
else
  echo "FAIL building examples/engine against the installed liblowbit_engine: $(tail -5 "$tmp/setup3.log" "$tmp/build3.log" 2>/dev/null)" >&2
  failed=$((failed + 1))
fi

# 3. As a subproject (subprojects/lowbit → this checkout).
cp -r "$root/examples/embed" "$tmp/sub"
mkdir -p "$tmp/sub/subprojects"
ln -s "$root" "$tmp/sub/subprojects/lowbit"
if meson setup "$tmp/subbuild" "$tmp/sub" --wrap-mode=forcefallback >"$tmp/setup2.log" 2>&1 &&
   grep -q "Subproject lowbit finished" "$tmp/setup2.log"; then
  passed=$((passed + 1))
  if [ "${LOWBIT_EMBED_SUBPROJECT:-0}" = 1 ]; then
    if ninja -C "$tmp/subbuild" embed >"$tmp/build2.log" 2>&1; then
      run_embed "$tmp/subbuild/embed"
    else
      echo "FAIL embed with lowbit as a subproject: $(tail -5 "$tmp/build2.log")" >&2
      failed=$((failed + 1))
    fi
  else
    echo "SKIPPED building embed with lowbit as a subproject (configured only; LOWBIT_EMBED_SUBPROJECT=1 builds it)" >&2
    skipped=$((skipped + 1))
  fi
else
  echo "FAIL configuring embed with lowbit as a subproject: $(tail -5 "$tmp/setup2.log")" >&2
  failed=$((failed + 1))
fi

echo "lowbit-tests: test_embed $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
