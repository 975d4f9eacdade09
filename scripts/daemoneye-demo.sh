#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make run: DaemonEye's default deployment on this machine, for a few
# seconds. daemoneye-agent hosts the embedded broker and starts procmond;
# busrt-cli (--proto) watches the events of a process we start and end,
# asks procmond's health, kills procmond to show the agent restarting it,
# and the agent stops everything on SIGTERM. Exits non-zero if a step fails.
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
D=$(mktemp -d /tmp/deXXXXXX)
AGENT_PID=
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
cli() { "$BIN/busrt-cli" -s "$D/b.sock" --proto "$@"; }
# the agent serves lifecycle.* to admin.* (root, or the broker's own uid);
# a collector serves health.* to the agent and monitors
admin() { cli -n "admin.demo$$" "$@"; }
monitor() { cli -n "monitor.demo$$" "$@"; }
field() { sed -E "s/.*\"$1\": \"?([^\",}]*)\"?.*/\1/"; }

cat > "$D/agent.yaml" <<EOF
broker:
  mode: embedded
  embedded:
    transport: {type: unix_socket, path: $D/b.sock}
agent:
  audit_log: $D/audit.jsonl
  heartbeat: {interval_ms: 500, timeout_ms: 300, retries: 1, dead_after: 3}
  restart: {delay_ms: 200}
  collectors:
    - id: procmond-1
      type: process
      command: [$BIN/procmond]
      scan_interval_ms: 200
EOF

echo "== daemoneye-agent --config $D/agent.yaml (embedded broker at $D/b.sock)"
"$BIN/daemoneye-agent" --config "$D/agent.yaml" --log-level info 2> >(sed -u 's/^/   | /' >&2) &
AGENT_PID=$!
for _ in $(seq 100); do
  st=$(admin rpc call daemoneye-agent lifecycle.status 2>/dev/null || true)
  case "$st" in *'"RUNNING"'*) break ;; esac
  sleep 0.1
done
echo "== lifecycle.status: $st"
case "$st" in *'"RUNNING"'*) ;; *) echo "procmond did not come up" >&2; exit 1 ;; esac

echo "== events/process/lifecycle while 'sleep 1' lives and ends"
cli listen events/process/lifecycle --seconds 2 > "$D/events" 2>/dev/null &
LISTEN=$!
sleep 0.3
sleep 1 &
SLEEP=$!
wait "$SLEEP"
wait "$LISTEN" || true
grep "\"pid\": $SLEEP," "$D/events" | while read -r line; do
  echo "   $(echo "$line" | field event_type) pid=$SLEEP name=$(echo "$line" | field name)" \
       "exe=$(echo "$line" | field executable_path) seq=$(echo "$line" | field sequence)"
done
n=$(grep -c "\"pid\": $SLEEP," "$D/events" || true)
[ "$n" = 2 ] || { echo "expected DISCOVERY and TERMINATION for pid $SLEEP, got $n events" >&2; exit 1; }

echo "== health.check on collector.process.procmond-1"
echo "   $(monitor rpc call collector.process.procmond-1 health.check include_metrics=true)"

old=$(echo "$st" | field pid)
echo "== kill -9 procmond (pid $old): the agent sees SIGCHLD and restarts it"
kill -9 "$old"
for _ in $(seq 100); do
  st=$(admin rpc call daemoneye-agent lifecycle.status 2>/dev/null || true)
  new=$(echo "$st" | field pid)
  case "$st" in *'"RUNNING"'*) [ "$new" != "$old" ] && break ;; esac
  sleep 0.1
done
echo "== lifecycle.status: $st"
[ "$new" != "$old" ] || { echo "procmond was not restarted" >&2; exit 1; }

echo "== SIGTERM to the agent: collectors stop first, then the broker"
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=
sleep 0.2
echo "== audit log: $(wc -l < "$D/audit.jsonl") control messages, e.g."
echo "   $(grep -m1 '"dir": "in"' "$D/audit.jsonl")"
echo "== ok"
