#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Performance gate that a noisy machine cannot fool: instructions per
# delivered message (valgrind --tool=callgrind, counted inside workload()
# of broker/tests/perf_core.c) on fixed workloads through the broker core
# and the in-memory host, against ci/perf-baseline. Fails above
# baseline * (1 + tolerance). The baseline changes only in a commit that
# says why; `ci/perf-gate.sh --print` prints the current figures.
set -euo pipefail
make --no-print-directory -s O=build/perf OPT="-O2 -g" SAN= build/perf/tests/perf_core
tol=$(sed -n 's/^tolerance_pct *//p' ci/perf-baseline)
fail=0
for w in 1to1 1to4; do
  out=$(mktemp)
  delivered=$(valgrind --tool=callgrind --toggle-collect=workload --callgrind-out-file="$out" \
    build/perf/tests/perf_core "$w" 2>/dev/null | sed -n 's/^delivered //p')
  ir=$(sed -n 's/^summary: //p' "$out")
  rm -f "$out"
  per=$(awk -v i="$ir" -v d="$delivered" 'BEGIN{printf "%.1f", i / d}')
  if [ "${1:-}" = --print ]; then echo "$w $per"; continue; fi
  base=$(sed -n "s/^$w *//p" ci/perf-baseline)
  verdict=$(awk -v p="$per" -v b="$base" -v t="$tol" \
    'BEGIN{ if (p > b * (1 + t / 100)) print "FAIL"; else if (p < b * (1 - t / 100)) print "better"; else print "ok" }')
  printf 'perf-gate: %-5s %8s instructions per delivered message (baseline %s, +%s%% allowed): %s\n' \
    "$w" "$per" "$base" "$tol" "$verdict"
  [ "$verdict" = better ] && echo "perf-gate: $w is more than $tol% under its baseline: lower ci/perf-baseline in a commit that says why"
  [ "$verdict" = FAIL ] && fail=1
done
exit $fail
