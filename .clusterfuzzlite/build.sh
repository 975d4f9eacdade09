#!/bin/bash -eu
# SPDX-License-Identifier: Apache-2.0
# ClusterFuzzLite (and OSS-Fuzz) build: every fuzz target of the Makefile
# with the engine's CC, CFLAGS and LIB_FUZZING_ENGINE, into $OUT, each with
# its seed corpus (fuzz/seeds.py and fuzz/regress) as TARGET_seed_corpus.zip.
# Run here: CC=clang CFLAGS="-fsanitize=address,fuzzer-no-link" \
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/out SRC=.. .clusterfuzzlite/build.sh
cd "$(dirname "$0")/.."
O=build/cflite
make --no-print-directory -s O=$O CC="$CC" OPT="-O1 -g" SAN="$CFLAGS" \
  FUZZ_DRIVER= FUZZ_LDFLAGS="$LIB_FUZZING_ENGINE" fuzzers
"${PYTHON:-/usr/bin/python3}" fuzz/seeds.py build/fuzz/seeds >/dev/null  # the system python: python3-msgpack
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # the zips are written from other directories
for t in $(sed -n 's/^FUZZ_TARGETS := //p' Makefile); do
  cp "$O/fuzzers/$t" "$OUT/$t"
  [ -f "fuzz/dict/$t.dict" ] && cp "fuzz/dict/$t.dict" "$OUT/$t.dict"
  rm -f "$OUT/${t}_seed_corpus.zip"
  (cd build/fuzz/seeds/$t && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
  if [ -d "fuzz/regress/$t" ]; then (cd "fuzz/regress/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .); fi
done
# the sim target reads scenarios/default.yaml relative to its directory
mkdir -p "$OUT/scenarios" && cp scenarios/default.yaml "$OUT/scenarios/"
