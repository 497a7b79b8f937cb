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
