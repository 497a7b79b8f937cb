#!/usr/bin/env bash
# The main job: set up, then run the whole Co-Prop pipeline on the built-in synthetic benchmark.
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh
[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] || . .venv/bin/activate
exec coprop demo "$@"
