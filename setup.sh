#!/usr/bin/env bash
# Idempotent set-up: a virtual environment at .venv (unless one is already active), pinned torch, coprop editable.
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
stamp="${VIRTUAL_ENV:-${CONDA_PREFIX}}/.coprop-setup"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install -q --disable-pip-version-check "torch==2.14.1" "torchvision==0.29.1"
  python -m pip install -q --disable-pip-version-check -e ".[notebooks,test]"
  touch "$stamp"
fi
python -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
