# SPDX-License-Identifier: Apache-2.0
# Sourced by fuzz/campaign.sh and fuzz/node.sh: AFL++'s settings for this
# machine, its three builds of a target, and a campaign's input directory.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
export AFL_NO_AFFINITY=1 AFL_QUIET=1
afl_mk() { make --no-print-directory -s "$@" FUZZ_DRIVER= FUZZ_LDFLAGS=-fsanitize=fuzzer; }
# afl_build TARGET KIND...: plain (build/afl), cmplog (build/afl-cmplog),
# asan (build/afl-asan, ASan+UBSan)
afl_build() {
  local t=$1 k; shift
  for k in "$@"; do
    case $k in
      plain) afl_mk O=build/afl CC=afl-clang-fast OPT="-O2 -g" "build/afl/fuzzers/$t" ;;
      cmplog) AFL_LLVM_CMPLOG=1 afl_mk O=build/afl-cmplog CC=afl-clang-fast OPT="-O2 -g" "build/afl-cmplog/fuzzers/$t" ;;
      asan) AFL_USE_ASAN=1 AFL_USE_UBSAN=1 afl_mk O=build/afl-asan CC=afl-clang-fast OPT="-O1 -g" "build/afl-asan/fuzzers/$t" ;;
    esac
  done
}
# afl_inputs TARGET DIR: the target's generated seeds and regression inputs
afl_inputs() {
  /usr/bin/python3 fuzz/seeds.py build/fuzz/seeds >/dev/null
  mkdir -p "$2"
  cp build/fuzz/seeds/"$1"/* "$2/"
  if [ -d "fuzz/regress/$1" ]; then find "fuzz/regress/$1" -type f -exec cp {} "$2/" \; ; fi
}
afl_dict() { [ -f "fuzz/dict/$1.dict" ] && echo "-x fuzz/dict/$1.dict"; true; }
