#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages a make target needs, only those missing.
# Usage: ci/deps.sh [build|test|bench|fuzz|coverage|perf|install]   (each includes build)
set -euo pipefail
set_name=${1:-build}
build=(make gcc pkg-config libuv1-dev libmsgpack-dev libyaml-dev protobuf-c-compiler libprotobuf-c-dev libssl-dev libpcre2-dev libmicrohttpd-dev libjansson-dev libnats-dev)
test=(nats-server scdoc man-db systemd chromium libcmocka-dev python3-pytest python3-msgpack protobuf-compiler python3-protobuf openssl python3-prometheus-client python3-yaml parallel)
bench=(python3 openssl nats-server libnats-dev redis-server libhiredis-dev mosquitto libmosquitto-dev python3-msgpack python3-protobuf protobuf-compiler)
fuzz=(afl++ clang libclang-rt-14-dev python3-msgpack zip unzip)
coverage=(nats-server lcov scdoc man-db systemd chromium libcmocka-dev python3-pytest python3-msgpack protobuf-compiler python3-protobuf openssl python3-prometheus-client python3-yaml parallel)
perf=(valgrind)
# make install renders the man pages; its test verifies units and pages
install=(scdoc)
case "$set_name" in
  build) want=("${build[@]}") ;;
  test) want=("${build[@]}" "${test[@]}") ;;
  bench) want=("${build[@]}" "${bench[@]}") ;;
  fuzz) want=("${build[@]}" "${fuzz[@]}") ;;
  coverage) want=("${build[@]}" "${coverage[@]}") ;;
  perf) want=("${build[@]}" "${perf[@]}") ;;
  install) want=("${build[@]}" "${install[@]}") ;;
  *) echo "ci/deps.sh: unknown set '$set_name' (build|test|bench|fuzz|coverage|perf|install)" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ci/deps.sh: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "ci/deps.sh: need root to install: ${missing[*]}" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
