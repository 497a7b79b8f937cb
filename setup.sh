#!/usr/bin/env bash
# Idempotent set-up: a virtual environment at .venv (unless one is already active), pinned torch, coprop editable.
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi

# uv installs the same requirements as pip from the same indexes, in parallel: the whole set-up took 69 s with uv
# and 216 s with pip on the 2-core machine (most of it unpacking the CUDA build of torch). It reads pip's own
# configuration (extra indexes, find-links, constraints) and picks versions as pip does (best match over all
# indexes); pip stays the fallback whenever uv is unavailable or fails.
uv_args() {
  python - <<'EOF'
import subprocess, sys
flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
         "constraint": "--constraint"}
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
seen = set()
for line in out.splitlines():
    key, _, value = line.partition("=")
    name = key.rsplit(".", 1)[-1]
    if name in flags:
        for v in value.strip().strip("'\"").split():
            if (name, v) not in seen:
                seen.add((name, v))
                print(flags[name]); print(v)
EOF
}

install() {
  if python -m pip install -q --disable-pip-version-check uv >/dev/null 2>&1 && python -m uv --version >/dev/null 2>&1; then
    mapfile -t extra < <(uv_args)
    if python -m uv pip install -q --python "$(command -v python)" --index-strategy unsafe-best-match \
        --compile-bytecode "${extra[@]}" "$@"; then
      return 0
    fi
    echo "setup.sh: uv could not install the requirements; installing them with pip" >&2
  fi
  python -m pip install -q --disable-pip-version-check "$@"
}

stamp="${VIRTUAL_ENV:-${CONDA_PREFIX}}/.coprop-setup"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  install "torch==2.14.1" "torchvision==0.29.1" -e ".[notebooks,test]"
  touch "$stamp"
fi
python -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
