#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make coverage: the C unit tests, the pytest suite against the coverage
# build's binaries, the fuzz seed + regression corpus replayed and the
# simulator over every shipped scenario (scripts/sim-test.sh), all on
# one --coverage build (build/cov); merged by lcov into
# build/coverage/html/ and one summary line per component in
# build/coverage/summary.txt. Test code (broker/tests, fuzz, bench, pytest)
# and generated protoc-c code (*.pb-c.c) are left out of the figures.
set -euo pipefail
out=build/coverage
rc=coverage/lcovrc
mk() { make --no-print-directory -s O=build/cov OPT="-O0 -g" SAN="--coverage" "$@"; }
mk all tests fuzzers
find build/cov -name '*.gcda' -delete
rm -rf "$out" && mkdir -p "$out"
echo "coverage: unit tests"
for t in build/cov/tests/test_*; do "$t" >"$out/unit.log" 2>&1 || { cat "$out/unit.log"; exit 1; }; done
echo "coverage: pytest against build/cov/bin"
BUSRT_BIN="$PWD/build/cov/bin" /usr/bin/python3 -m pytest -q pytest | tail -1
echo "coverage: fuzz seeds and regressions"
/usr/bin/python3 fuzz/seeds.py build/fuzz/seeds >/dev/null
scripts/fuzz-regress.sh build/cov/fuzzers build/fuzz/seeds >/dev/null
echo "coverage: the simulator over every shipped scenario (and its proofs)"
SIM_SEEDS=1..100 scripts/sim-test.sh build/cov/bin/busrt-sim build/cov/bin/busrt-sim >"$out/sim.log" 2>&1 \
  || { cat "$out/sim.log"; exit 1; }
lcov -q --config-file "$rc" --capture --directory build/cov --base-directory . \
  --output-file "$out/all.info" 2>/dev/null
lcov -q --config-file "$rc" --remove "$out/all.info" '/usr/*' '*/broker/tests/*' '*/fuzz/*' \
  '*/bench/*' '*.pb-c.c' '*.pb-c.h' --output-file "$out/code.info" 2>/dev/null
genhtml -q --config-file "$rc" --title "busrt-c coverage (tests, fuzz regressions, pytest, simulator)" \
  --output-directory "$out/html" "$out/code.info" >/dev/null 2>&1
: >"$out/summary.txt"
for comp in broker/core broker/client broker/net broker/services broker/apps broker/bridge sim; do
  if ! lcov -q --config-file "$rc" --extract "$out/code.info" "*/$comp/*" \
      --output-file "$out/part.info" >/dev/null 2>&1 || [ ! -s "$out/part.info" ]; then
    printf '%-15s (no code yet)\n' "$comp" | tee -a "$out/summary.txt"
    continue
  fi
  s=$(lcov --config-file "$rc" --summary "$out/part.info" 2>&1)
  pick() { echo "$s" | sed -n "s/^ *$1\.*: \([0-9.]*\)% (\([0-9]*\) of \([0-9]*\).*/\1 \2 \3/p"; }
  read -r lp lh lt <<<"$(pick lines)"
  read -r fp fh ft <<<"$(pick functions)"
  read -r bp bh bt <<<"$(pick branches)"
  printf '%-15s lines %5s%% (%s/%s)  functions %5s%% (%s/%s)  branches %5s%% (%s/%s)\n' \
    "$comp" "$lp" "$lh" "$lt" "$fp" "$fh" "$ft" "${bp:-0}" "${bh:-0}" "${bt:-0}" | tee -a "$out/summary.txt"
done
rm -f "$out/part.info"
echo "coverage: excluded from the figures: test code (broker/tests, fuzz, bench, pytest) and generated protoc-c code (*.pb-c.c)"
echo "coverage: report in $out/html/index.html"
