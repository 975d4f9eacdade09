#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Replays every seed and regression input of every fuzz target through its
# ASan+UBSan replay build: scripts/fuzz-regress.sh FUZZERS_DIR SEEDS_DIR
set -euo pipefail
bin=$1; seeds=$2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
for f in "$bin"/*; do
  t=$(basename "$f")
  dirs=("$seeds/$t")
  [ -d "fuzz/regress/$t" ] && dirs+=("fuzz/regress/$t")
  printf '%-10s ' "$t"
  "$f" "${dirs[@]}" 2>&1 | tail -1
done
