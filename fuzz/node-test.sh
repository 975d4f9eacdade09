#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A distributed campaign on this one machine (ci/fuzz-smoke.sh): a main
# and a secondary of TARGET (default frame) through one sync directory for
# SECONDS (30); the secondary starts a little later and imports the main's
# finds first. Passes when inputs went across: the secondary's queue holds
# entries taken from the main (and the main's, when its first sync came
# within the time, from the secondary).
set -euo pipefail
t=${1:-frame} secs=${2:-30}
cd "$(dirname "$0")/.."
sync=$(mktemp -d /tmp/fuzz-sync.XXXXXX)
trap 'rm -rf "$sync"' EXIT
. fuzz/afl.sh
afl_build "$t" plain cmplog   # before the clock starts, for both
fuzz/node.sh "$t" main "$sync" "$secs" >"$sync/main.out" 2>&1 &
main=$!
sleep $((secs / 3))
AFL_IMPORT_FIRST=1 AFL_SYNC_TIME=1 fuzz/node.sh "$t" secondary "$sync" "$((secs * 2 / 3))" peer \
  >"$sync/peer.out" 2>&1 || { cat "$sync/peer.out"; exit 1; }
wait $main || { cat "$sync/main.out"; exit 1; }
tail -1 "$sync/main.out"; tail -1 "$sync/peer.out"
from_main=$(find "$sync/peer/queue" -maxdepth 1 -name 'id:*,sync:main,*' | wc -l)
from_peer=$(find "$sync/main/queue" -maxdepth 1 -name 'id:*,sync:peer,*' | wc -l)
echo "fuzz-node-test $t: the secondary took $from_main inputs from the main, the main $from_peer from the secondary"
[ "$from_main" -gt 0 ] || { echo "fuzz-node-test: FAILED: nothing went across"; exit 1; }
