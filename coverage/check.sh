#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make coverage-check: each component of coverage/floors at or above its
# floor in build/coverage/summary.txt (written by coverage/report.sh).
set -euo pipefail
sum=build/coverage/summary.txt
fail=0
while read -r comp lines branches; do
  case "$comp" in ''|'#'*) continue ;; esac
  row=$(grep "^$comp " "$sum" || true)
  if [ -z "$row" ] || echo "$row" | grep -q 'no code yet'; then
    echo "coverage-check: $comp: no figures"; fail=1; continue
  fi
  lp=$(echo "$row" | sed -n 's/.* lines *\([0-9.]*\)%.*/\1/p')
  bp=$(echo "$row" | sed -n 's/.* branches *\([0-9.]*\)%.*/\1/p')
  ok=$(awk -v a="$lp" -v b="$lines" -v c="$bp" -v d="$branches" 'BEGIN{print (a>=b && c>=d) ? 1 : 0}')
  if [ "$ok" = 1 ]; then
    printf 'coverage-check: %-14s lines %s%% >= %s%%, branches %s%% >= %s%%: ok\n' "$comp" "$lp" "$lines" "$bp" "$branches"
  else
    printf 'coverage-check: %-14s lines %s%% (floor %s%%), branches %s%% (floor %s%%): BELOW THE FLOOR\n' "$comp" "$lp" "$lines" "$bp" "$branches"
    fail=1
  fi
done < coverage/floors
exit $fail
