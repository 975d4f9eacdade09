#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test's simulator stage: every shipped scenario in both topologies
# (embedded: the broker in the agent, DaemonEye's default; standalone:
# busrtd of its own) with its fault plan (its own, or the one seed 1 draws)
# and without faults, each run twice in separate processes (determinism);
# one run of the ASan+UBSan build must give the very same trace as the
# plain build; then sweeps of the default scenario in both topologies; the
# planted bugs, each caught in both. Prints a line per run and the sweep's summary; exits 1 on the
# first failure, after showing the failing report.
set -uo pipefail
SIM=${1:-build/bin/busrt-sim}
ASAN_SIM=${2:-build/asan/bin/busrt-sim}
SEEDS=${SIM_SEEDS:-1..500}
rc=0
TOPOLOGIES="embedded standalone"
for sc in scenarios/*.yaml; do
  for topo in $TOPOLOGIES; do
    for faults in plan none; do
      args=(run "$sc" --seed 1 --check-determinism --topology "$topo")
      [ "$faults" = none ] && args+=(--faults none)
      out=$("$SIM" "${args[@]}" 2>&1); r=$?
      verdict=$(echo "$out" | grep -c FAILED)
      hash=$(echo "$out" | sed -n 's/.*hash \([0-9a-f]*\)$/\1/p' | head -1)
      printf 'sim: %-20s %-10s faults %-5s %s  trace %s\n' "$(basename "$sc" .yaml)" \
        "$topo" "$faults" "$([ $r = 0 ] && echo ok || echo FAILED)" "$hash"
      if [ $r != 0 ] || [ "$verdict" != 0 ]; then echo "$out"; rc=1; fi
    done
  done
done
a=$("$SIM" run default --seed 7 --json | sed -n 's/.*"trace_hash": "\([0-9a-f]*\)".*/\1/p')
b=$("$ASAN_SIM" run default --seed 7 --json | sed -n 's/.*"trace_hash": "\([0-9a-f]*\)".*/\1/p')
if [ -n "$a" ] && [ "$a" = "$b" ]; then
  echo "sim: the ASan+UBSan build replays seed 7 to the same trace ($a)"
else
  echo "sim: FAILED: seed 7 traces differ between the plain ($a) and ASan ($b) builds"; rc=1
fi
# JUNIT_DIR (make test JUNIT_DIR=DIR): the sweeps' JUnit XML there too
junit() { [ -n "${JUNIT_DIR:-}" ] && echo --junit "$JUNIT_DIR/sim-$1.xml"; }
[ -n "${JUNIT_DIR:-}" ] && mkdir -p "$JUNIT_DIR"
for topo in $TOPOLOGIES; do
  # shellcheck disable=SC2046
  "$SIM" sweep default --seeds "$SEEDS" -j 2 --topology "$topo" $(junit "sweep-$topo") 2>/dev/null || rc=1
  # Every fault site armed in every run: each must be reached and fire,
  # and the checks must hold through them (they force rare, correct paths).
  # shellcheck disable=SC2046
  out=$("$SIM" sweep default --seeds 1..200 -j 2 --buggify all --topology "$topo" \
    $(junit "sites-$topo") 2>/dev/null); r=$?
  echo "$out" | sed -n "s/^  fault sites/sim: fault sites, all armed, 200 seeds, $topo:/p"
  if [ $r != 0 ] || echo "$out" | grep -q -e "never reached" -e "never fired"; then
    echo "sim: FAILED: the fault-site sweep ($topo)"; echo "$out"; rc=1
  fi
  # the accounting compares every run, to the byte (frames that died in
  # flight at a reset or a close are found in the bytes and accounted)
  echo "$out" | sed -n "s/^  accounting/sim: accounting, all sites armed, $topo:/p"
  if ! echo "$out" | grep -q "accounting compared in 200 of 200 runs"; then
    echo "sim: FAILED: the accounting was not compared in every run ($topo)"; rc=1
  fi
done

# Proof that the checks can fail: each planted bug of the simulator build
# must be caught by its checker, which names the first offending event.
plan=scenarios/plans/reset-and-crash.yaml
crash=scenarios/plans/broker-crash.yaml
while read -r bug check faults sc; do
  for topo in $TOPOLOGIES; do
    out=$("$SIM" run "${sc:-default}" --plant "$bug" --faults "$faults" --topology "$topo" 2>&1); r=$?
    line=$(echo "$out" | grep -E "^  $check +FAILED: .*\(at [0-9.]+ ms\)" | head -1)
    if [ $r = 1 ] && [ -n "$line" ]; then
      printf 'sim: planted %-15s %-10s caught by %-11s %s\n' "$bug" "$topo" "$check" \
        "$(echo "$line" | sed 's/.*FAILED: //' | cut -c1-80)"
    else
      echo "sim: FAILED: planted bug $bug ($topo) was not caught by $check"; echo "$out"; rc=1
    fi
  done
done <<PLANTS
dup            delivery     none
swap           ordering     none
drop-acked     equivalence  none
no-resubscribe equivalence  $plan
no-restart     liveness     $plan
miscount       accounting   none
lifecycle      lifecycle    none
corrupt        delivery     none
child-first    lifecycle    none
drop-on-eagain stream       none   burst-overflow
no-resend      stream       $crash burst-overflow
acl-open       access       none
svc-open       access       none
qbytes         invariants   none
svc-closed     access       scenarios/plans/operator.yaml
shutdown-waits control      none
PLANTS

# Planted bugs on ordinary workloads: each bug's catch rate over 100 seeds
# of every shipped scenario, both topologies (scripts/sim-plants.sh).
scripts/sim-plants.sh "$SIM" || rc=1

# The ledger: every failure that ever exposed a bug, replayed; all pass now.
for f in scenarios/regress/*.yaml; do
  out=$("$SIM" replay "$f" 2>&1); r=$?
  printf 'sim: regress %-34s %s\n' "$(basename "$f" .yaml)" "$([ $r = 0 ] && echo ok || echo FAILED)"
  [ $r = 0 ] || { echo "$out"; rc=1; }
done

# Shrinking: a planted bug found under a 20-fault plan shrinks to <= 3.
# Standalone: embedded, the plan's broker crashes take the agent down too,
# and a rebooted agent starts every collector, masking no-restart.
tmp=$(mktemp -d /tmp/simXXXXXX)
"$SIM" run default --plant no-restart --faults scenarios/plans/twenty-faults.yaml \
  --topology standalone --save "$tmp/fail.yaml" >/dev/null 2>&1
if "$SIM" shrink "$tmp/fail.yaml" --out "$tmp/small.yaml" >"$tmp/log" 2>&1; then
  n=$(grep -c '^  - {at_ms' "$tmp/small.yaml")
  "$SIM" replay "$tmp/small.yaml" >/dev/null 2>&1; still=$?
  if [ "$n" -le 3 ] && [ $still = 1 ]; then
    echo "sim: shrink: $(sed 's/ (still fails.*//' "$tmp/log"): $n fault(s) left, and it still fails"
  else
    echo "sim: FAILED: shrink left $n faults or the result no longer fails"; cat "$tmp/log"; rc=1
  fi
else
  echo "sim: FAILED: shrink"; cat "$tmp/log"; rc=1
fi
rm -rf "$tmp"
exit $rc
