#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one named stage of a make target and prints its duration.
set -uo pipefail
name=$1; shift
start=$(date +%s%N)
echo "=== stage $name"
"$@"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
printf '=== stage %s: %s in %d.%01d s\n' "$name" "$([ $rc = 0 ] && echo ok || echo FAILED)" $((ms / 1000)) $((ms % 1000 / 100))
exit $rc
