#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CI's simulator sweep: every shipped scenario over a few hundred seeds
# (each seed its own fault mix), in both topologies (the broker embedded in
# the agent, and standalone). A failure is deterministic and saved
# (build/sim-failures/) with the command that replays it; it gates.
set -euo pipefail
seeds=${1:-1..2000}
sim=build/bin/busrt-sim
make --no-print-directory -s all >/dev/null
mkdir -p build/sim-failures
rc=0
for sc in scenarios/*.yaml; do
  for topo in embedded standalone; do
    "$sim" sweep "$sc" --seeds "$seeds" -j 2 --topology "$topo" \
      --save-dir build/sim-failures 2>/dev/null || rc=1
  done
done
# Leaks are failures too: a sample of each sweep in the ASan+UBSan+LSan
# build, every run checked for leaks as it ends (sim/main.c: leaked())
make --no-print-directory -s asan-sim >/dev/null
for sc in scenarios/*.yaml; do
  for topo in embedded standalone; do
    ASAN_OPTIONS=detect_leaks=1 build/asan/bin/busrt-sim sweep "$sc" --seeds "${ASAN_SEEDS:-1..40}" \
      -j 2 --topology "$topo" --save-dir build/sim-failures \
      2> >(grep -v "^busrt-sim: sweep: " >&2) \
      | sed 's/^busrt-sim: sweep/busrt-sim (asan+lsan): sweep/' || rc=1
  done
done
exit $rc
