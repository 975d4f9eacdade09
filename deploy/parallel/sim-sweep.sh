#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A simulator sweep over SSH hosts with GNU parallel: one shard per job,
# each run in the same checkout path on its host (built there), its
# result brought back, then all merged here.
#   deploy/parallel/sim-sweep.sh HOSTS-FILE [SCENARIO] [A..B] [SHARDS]
# HOSTS-FILE is parallel's --sshloginfile: one "[N/]host" per line, ":"
# for this machine. The checkout's path must be the same on every host.
# OUT (default: results, in the checkout) is where the results go;
# BUSRT_SIM (default build/bin/busrt-sim) the simulator that merges.
set -euo pipefail
hosts=${1:?usage: deploy/parallel/sim-sweep.sh HOSTS-FILE [SCENARIO] [A..B] [SHARDS]}
sc=${2:-default} seeds=${3:-1..20000} n=${4:-8}
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
out=${OUT:-results}
mkdir -p "$out"
# a shard's failed seeds are the merge's to report: its exit is not ours
seq 1 "$n" | parallel --will-cite --sshloginfile "$hosts" --workdir "$here" \
  --return "$out/shard-{}-of-$n.json" \
  "scripts/shard-sweep.sh '$sc' '$seeds' '$out' {} $n; [ \$? -le 1 ]"
"${BUSRT_SIM:-build/bin/busrt-sim}" merge "$out"/shard-*-of-"$n".json --junit "$out/sim.xml"
