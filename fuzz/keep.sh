#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A campaign's crashes and hangs into the regression corpus, in one step:
#   fuzz/keep.sh TARGET [DIR...]
# DIR: a campaign's output (build/fuzz/TARGET/out, the default, or a
# fuzz-node SYNC directory: every instance's crashes/ and hangs/). Each
# finding is minimised (afl-tmin, on the ASan+UBSan build) and copied to
# fuzz/regress/TARGET/ under the hash of its bytes, so the same input is
# kept once; make test then replays it (it must no longer crash: fix it
# first). Prints what it kept.
set -euo pipefail
t=${1:?target}; shift
dirs=("$@"); [ ${#dirs[@]} -gt 0 ] || dirs=("build/fuzz/$t/out")
cd "$(dirname "$0")/.."
. fuzz/afl.sh
afl_build "$t" asan
mkdir -p "fuzz/regress/$t"
kept=0
for d in "${dirs[@]}"; do
  for f in "$d"/*/crashes/id* "$d"/*/hangs/id*; do
    [ -e "$f" ] || continue
    tmp=$(mktemp)
    timeout 120 afl-tmin -i "$f" -o "$tmp" -- "build/afl-asan/fuzzers/$t" >/dev/null 2>&1 || cp "$f" "$tmp"
    h=$(sha256sum "$tmp" | cut -c1-16)
    kind=$(basename "$(dirname "$f")")
    out=fuzz/regress/$t/$kind-$h
    if [ -e "$out" ]; then
      echo "fuzz/keep.sh: $f: already kept as $out"
    else
      mv "$tmp" "$out"; kept=$((kept + 1))
      echo "fuzz/keep.sh: $f: kept as $out (replay: build/asan/fuzzers/$t $out)"
    fi
    rm -f "$tmp"
  done
done
echo "fuzz/keep.sh: $kept new input(s) in fuzz/regress/$t"
