#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CI's mutation sample: a fixed seeded sample of single-operator mutants
# of the cores (scripts/mutate.py), each rebuilt and run against the unit
# tests and the simulator's sweeps. The score must not fall below
# mutate/floor (a ratchet: raise it as survivors are killed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/deps.sh test
floor=$(cat mutate/floor)
exec /usr/bin/python3 scripts/mutate.py -m "${1:-16}" --seed 1 --floor "$floor"
