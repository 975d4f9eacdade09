#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test's planted-bug rates: each bug of the simulator's build swept
# over 100 seeds of every shipped scenario in both topologies, each seed
# with its own drawn fault plan. Prints, per bug and scenario, the runs in
# which the bug acted and those in which a check caught it.
#
# Gates: a run in which the bug never acted must pass (no false alarm);
# a bug that needs no fault (it acts on any workload) must be caught in
# at least 95 of 100 seeds on every scenario. Those runs arm no fault
# site: the allocation sites open loss windows by design, and a loss
# inside one is allowed. A bug that needs a fault to act (a death, a
# reconnect, a full output buffer) is reported with its rate over the
# runs in which it acted; the seeds' fault mixes decide how often that
# is. Where a check sees the bug's act itself (no-resubscribe: the broker
# must hold every mask of a reconnected client once its resubscribe is
# due) that rate is gated at 95% too; where a later fault can undo the
# act before anything could see it (an agent that dies within the
# restart delay: the next one starts every collector), it is reported:
# see scenarios/README.md.
set -uo pipefail
SIM=${1:-build/bin/busrt-sim}
SEEDS=${PLANT_SEEDS:-1..100}
ORDINARY="dup swap drop-acked miscount lifecycle corrupt child-first acl-open svc-open qbytes svc-closed"
SEEN="no-resubscribe"
FAULTED="no-restart no-resend drop-on-eagain shutdown-waits"
rc=0
row() { # bug kind topo -> one line, and the gate
  local bug=$1 kind=$2 topo=$3 line="" worst=100
  for sc in scenarios/*.yaml; do
    args=(sweep "$sc" --seeds "$SEEDS" -j 2 --plant "$bug" --topology "$topo")
    [ "$kind" = ordinary ] && args+=(--buggify none)
    out=$("$SIM" "${args[@]}" 2>/dev/null)
    p=$(echo "$out" | sed -n 's/^  planted [^:]*: acted in \([0-9]*\) of \([0-9]*\) runs, caught in \([0-9]*\) of those.*; \([0-9]*\) runs failed where.*/\1 \2 \3 \4/p')
    read -r acted runs caught alarms <<<"$p"
    if [ -z "${runs:-}" ]; then echo "sim: FAILED: no planted-bug line for $bug on $sc"; rc=1; return; fi
    line="$line $(basename "$sc" .yaml) $caught/$acted"
    [ "$alarms" != 0 ] && { echo "sim: FAILED: $bug ($topo) on $sc: $alarms runs failed where it never acted"; rc=1; }
    if [ "$kind" = ordinary ] && [ "$caught" -lt $((runs * 95 / 100)) ]; then
      echo "sim: FAILED: $bug ($topo) caught in $caught of $runs seeds of $sc (< 95%)"; rc=1
    fi
    if [ "$kind" = seen ] && [ "$caught" -lt $((acted * 95 / 100)) ]; then
      echo "sim: FAILED: $bug ($topo) caught in $caught of the $acted runs of $sc where it acted (< 95%)"; rc=1
    fi
  done
  printf 'sim: planted %-15s %-10s caught/acted:%s\n' "$bug" "$topo" "$line"
}
for topo in embedded standalone; do
  for bug in $ORDINARY; do row "$bug" ordinary "$topo"; done
  for bug in $SEEN; do row "$bug" seen "$topo"; done
  for bug in $FAULTED; do row "$bug" faulted "$topo"; done
done
exit $rc
