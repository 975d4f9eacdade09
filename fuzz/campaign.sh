#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One AFL++ campaign: fuzz/campaign.sh TARGET SECONDS
# A plain instance (-M, with a CmpLog build; its execs/s is the figure) and
# an ASan+UBSan instance (-S) share build/fuzz/TARGET/out. At the end: the
# figures, then every crash or hang minimised (afl-tmin) into
# build/fuzz/TARGET/min/ and named loudly. Exit 0 unless the harness broke.
set -euo pipefail
t=${1:?target}; secs=${2:?seconds}
root=build/fuzz/$t
. fuzz/afl.sh
afl_build "$t" plain cmplog asan
afl_inputs "$t" "$root/in"
rm -rf "$root/out" "$root/min"
read -r -a dict <<<"$(afl_dict "$t")"
echo "fuzz $t: ${secs}s, plain+cmplog (main) and asan (secondary) instances"
afl-fuzz -i "$root/in" -o "$root/out" -M main -c "build/afl-cmplog/fuzzers/$t" \
  "${dict[@]}" -V "$secs" -- "build/afl/fuzzers/$t" >"$root/main.log" 2>&1 &
main=$!
AFL_USE_ASAN=1 afl-fuzz -i "$root/in" -o "$root/out" -S asan "${dict[@]}" -V "$secs" \
  -- "build/afl-asan/fuzzers/$t" >"$root/asan.log" 2>&1 &
asan=$!
# a live line every FUZZ_STATUS_S seconds (5; 0: none) from each
# instance's latest "Fuzzing test case" line (AFL++ 4's stats files are
# written only now and then): corpus, crashes saved, and the execs/s one
# execution's time implies (the exact figure is at the end)
every=${FUZZ_STATUS_S:-5}
start=$SECONDS
live() { grep -a 'Fuzzing test case' "$root/$1.log" 2>/dev/null | tail -1 || true; }
while [ "$every" -gt 0 ] && kill -0 $main 2>/dev/null; do
  sleep "$every"
  kill -0 $main 2>/dev/null || break
  m=$(live main); a=$(live asan)
  [ -n "$m" ] || continue
  total=$(sed -n 's/.*(\([0-9]*\) total.*/\1/p' <<<"$m")
  cm=$(sed -n 's/.* \([0-9]*\) crashes saved.*/\1/p' <<<"$m")
  ca=$(sed -n 's/.* \([0-9]*\) crashes saved.*/\1/p' <<<"$a")
  us=$(sed -n 's/.*exec_us=\([0-9]*\).*/\1/p' <<<"$m")
  eps=$([ -n "$us" ] && [ "$us" -gt 0 ] && echo $((1000000 / us)) || echo "?")
  printf 'fuzz %s: %ss of %ss  corpus %s  crashes %s+%s  ~%s execs/s (1/exec_us, plain)\n' \
    "$t" "$((SECONDS - start))" "$secs" "${total:-?}" "${cm:-0}" "${ca:-0}" "$eps"
done
rc=0
wait $main || rc=$?
wait $asan || rc=$?
stat() { sed -n "s/^$2 *: *//p" "$root/out/$1/fuzzer_stats" 2>/dev/null | head -1; }
if [ ! -f "$root/out/main/fuzzer_stats" ]; then
  echo "fuzz $t: the campaign did not run (harness broken?):"; tail -20 "$root/main.log"; exit 1
fi
printf 'fuzz %-9s execs/s %s (plain)  %s (asan)  corpus %s  edges %s of %s  crashes %s+%s  hangs %s+%s\n' \
  "$t" "$(stat main execs_per_sec)" "$(stat asan execs_per_sec)" "$(stat main corpus_count)" \
  "$(stat main edges_found)" "$(stat main total_edges)" \
  "$(stat main saved_crashes)" "$(stat asan saved_crashes)" \
  "$(stat main saved_hangs)" "$(stat asan saved_hangs)"
# findings: the first 5 minimised (one bug tends to give many), all listed
found=0
for f in "$root"/out/*/crashes/id* "$root"/out/*/hangs/id*; do
  [ -e "$f" ] || continue
  found=$((found + 1))
  mkdir -p "$root/min"
  out="$root/min/$(basename "$(dirname "$(dirname "$f")")")-$(basename "$(dirname "$f")")-$found"
  if [ "$found" -le 5 ]; then
    timeout 120 afl-tmin -i "$f" -o "$out" -- "build/afl-asan/fuzzers/$t" >/dev/null 2>&1 || cp "$f" "$out"
    echo "!!! fuzz $t: NEW FINDING $out (replay: build/asan/fuzzers/$t $out)"
  else
    cp "$f" "$out"
  fi
done
[ "$found" = 0 ] || echo "!!! fuzz $t: $found finding(s) in $root/min: fix, then add the minimised input to fuzz/regress/$t/"
exit $rc
