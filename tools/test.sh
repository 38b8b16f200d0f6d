#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export OMP_WAIT_POLICY=PASSIVE
exec python3 -m pytest -q "$@"
