#!/usr/bin/env bash
# Set up, then run the whole test suite (unit tests, papermill smoke runs, nbval over notebooks/).
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh
[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] || . .venv/bin/activate
exec python -m pytest "$@"
