#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ClusterFuzzLite's build script, run here as its builder runs it (clang,
# libFuzzer, ASan+UBSan; ci/fuzz-smoke.sh): every target must come out in
# OUT with its seed corpus, and run its corpus without a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/cflite-out
rm -rf "$out"
CC=clang CFLAGS="-fsanitize=address,undefined,fuzzer-no-link" \
  LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=$out SRC=.. .clusterfuzzlite/build.sh
for t in $(sed -n 's/^FUZZ_TARGETS := //p' Makefile); do
  [ -x "$out/$t" ] && [ -s "$out/${t}_seed_corpus.zip" ] || { echo "cflite: $t: not built"; exit 1; }
  c=$(mktemp -d)
  unzip -q "$out/${t}_seed_corpus.zip" -d "$c"
  (cd "$out" && "./$t" -runs=0 "$c" >/dev/null 2>&1) || { echo "cflite: $t crashed on its corpus"; rm -rf "$c"; exit 1; }
  rm -rf "$c"
done
echo "cflite: every target built by .clusterfuzzlite/build.sh and ran its seed corpus"
