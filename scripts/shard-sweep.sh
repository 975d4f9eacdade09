#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One shard of a simulator sweep, on whatever runs it:
#   scripts/shard-sweep.sh SCENARIO A..B OUTDIR [K N] [-- SWEEP-OPTIONS...]
# K/N (1 <= K <= N) come from the arguments, else from the engine's own
# variables, in this order:
#   SHARD_INDEX, SHARD_COUNT                     (1-based: a CI matrix)
#   JOB_COMPLETION_INDEX, SHARD_COUNT            (0-based: a Kubernetes Indexed Job)
#   SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT (Slurm)
# Writes OUTDIR/shard-K-of-N.json (busrt-sim sweep --json) and saves each
# failure under OUTDIR/saved/; then `busrt-sim merge OUTDIR/shard-*.json`
# anywhere the files are gathered gives the whole sweep's report. Exit:
# the sweep's (0 passed, 1 a seed failed, 2 bad input).
set -uo pipefail
usage() { echo "usage: scripts/shard-sweep.sh SCENARIO A..B OUTDIR [K N] [-- SWEEP-OPTIONS...]" >&2; exit 2; }
[ $# -ge 3 ] || usage
sc=$1 seeds=$2 out=$3; shift 3
k="" n=""
if [ $# -ge 2 ] && [ "$1" != "--" ]; then k=$1 n=$2; shift 2; fi
[ "${1:-}" = "--" ] && shift
if [ -z "$k" ]; then
  if [ -n "${SHARD_INDEX:-}" ]; then
    k=$SHARD_INDEX n=${SHARD_COUNT:-}
  elif [ -n "${JOB_COMPLETION_INDEX:-}" ]; then
    k=$((JOB_COMPLETION_INDEX + 1)) n=${SHARD_COUNT:-}
  elif [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
    k=$((SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-1} + 1)) n=${SLURM_ARRAY_TASK_COUNT:-}
  fi
fi
case "$k/$n" in
  */ | /* | *[!0-9/]*) echo "scripts/shard-sweep.sh: no shard: give K N, or run where SHARD_INDEX/SHARD_COUNT, JOB_COMPLETION_INDEX/SHARD_COUNT or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT are set (got '$k/$n')" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
sim=${BUSRT_SIM:-$here/build/bin/busrt-sim}
[ -x "$sim" ] || sim=$(command -v busrt-sim) || { echo "scripts/shard-sweep.sh: no busrt-sim (make, or set BUSRT_SIM)" >&2; exit 2; }
mkdir -p "$out" || exit 2
# a scenario by name: the checkout's, wherever this runs from
export BUSRT_SCENARIOS=${BUSRT_SCENARIOS:-$here/scenarios}
"$sim" sweep "$sc" --seeds "$seeds" --shard "$k/$n" -j "${JOBS:-$(nproc)}" \
  --save-dir "$out/saved" --json "$@" >"$out/shard-$k-of-$n.json"
