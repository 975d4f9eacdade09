#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One AFL++ instance of a campaign spread over machines (AFL++'s -M/-S
# distributed mode): fuzz/node.sh TARGET main|secondary SYNC SECONDS [NAME]
# Every instance of the campaign uses the same SYNC directory as its -o
# (NFS, or rsync'd between the machines: each instance writes only
# SYNC/NAME, and reads the others' queues); one is the main (-M, with a
# CmpLog build), every other a secondary (-S; SAN=asan: the ASan+UBSan
# build). NAME must be unique in the campaign (default: main, or
# s-HOST-PID). AFL_SYNC_TIME (minutes) is how often an instance imports
# the others' finds; AFL_IMPORT_FIRST=1 imports them before it starts.
# At the end: the instance's figures and how many of its queue entries it
# took from the others. Crashes: fuzz/keep.sh TARGET SYNC.
set -euo pipefail
t=${1:?target} role=${2:?main or secondary} sync=${3:?sync directory} secs=${4:?seconds}
case $role in
  main) name=${5:-main} ;;
  secondary) name=${5:-s-$(hostname -s)-$$} ;;
  *) echo "fuzz/node.sh: ROLE is main or secondary, not '$role'" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
. fuzz/afl.sh
in=build/fuzz/$t/node-in
if [ "$role" = main ]; then
  afl_build "$t" plain cmplog
  bin=build/afl/fuzzers/$t extra=(-M "$name" -c "build/afl-cmplog/fuzzers/$t")
elif [ "${SAN:-}" = asan ]; then
  afl_build "$t" asan
  export AFL_USE_ASAN=1
  bin=build/afl-asan/fuzzers/$t extra=(-S "$name")
else
  afl_build "$t" plain
  bin=build/afl/fuzzers/$t extra=(-S "$name")
fi
afl_inputs "$t" "$in"
mkdir -p "$sync"
read -r -a dict <<<"$(afl_dict "$t")"
echo "fuzz-node $t: $role $name, ${secs}s, syncing through $sync"
afl-fuzz -i "$in" -o "$sync" "${extra[@]}" "${dict[@]}" -V "$secs" -- "$bin" \
  >"$sync/$name.log" 2>&1 || { tail -20 "$sync/$name.log"; exit 1; }
st() { sed -n "s/^$1 *: *//p" "$sync/$name/fuzzer_stats" 2>/dev/null | head -1; }
taken=$(find "$sync/$name/queue" -maxdepth 1 -name 'id:*,sync:*' 2>/dev/null | wc -l)
printf 'fuzz-node %s %s: execs/s %s  corpus %s  edges %s  crashes %s  taken from the others %s\n' \
  "$t" "$name" "$(st execs_per_sec)" "$(st corpus_count)" "$(st edges_found)" \
  "$(st saved_crashes)" "$taken"
