"""Where things live: the repository root, reports/, data/, run folders. Override with environment variables."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def repo_root() -> Path:
    return Path(os.environ.get("COPROP_ROOT", REPO_ROOT))


def reports_dir() -> Path:
    return Path(os.environ.get("COPROP_REPORTS", repo_root() / "reports"))


def data_dir() -> Path:
    return Path(os.environ.get("COPROP_DATA", repo_root() / "data"))


def runs_dir() -> Path:
    return Path(os.environ.get("COPROP_RUNS", repo_root() / "runs"))


def synthetic_root(preset: str = "demo", seed: int = 0) -> Path:
    """Where ``coprop.data.synth.ensure(preset, seed)`` keeps a generated synthetic benchmark."""
    return data_dir() / f"synthetic-{preset}-s{seed}"


def display_path(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies inside it (POSIX separators), else unchanged.

    What reports, metrics.json, index.csv and printed notebook lines use, so committed files carry no
    machine-specific absolute paths."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(repo_root().resolve()).as_posix()
    except ValueError:
        return str(path)
