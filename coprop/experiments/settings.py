"""Run settings shared by every experiment: training seeds, paths from the repository root, CPU threads,
device choice."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from coprop.errors import ConfigError


def parse_seeds(seeds: str | int | Sequence[int]) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    if isinstance(seeds, int):
        return [seeds]
    if isinstance(seeds, str):
        try:
            out = [int(s) for s in seeds.replace(" ", "").split(",") if s]
        except ValueError:
            raise ConfigError(f"seeds {seeds!r}: expected comma-separated integers such as '0,1,2'") from None
    else:
        out = [int(s) for s in seeds]
    if not out:
        raise ConfigError("seeds is empty; give at least one, e.g. '0'")
    return out


def resolve_path(path: str | Path) -> Path:
    """Relative paths are taken from the repository root (nbval runs kernels in notebooks/, papermill in root)."""
    from coprop.paths import repo_root

    p = Path(path).expanduser()
    return p if p.is_absolute() else repo_root() / p


def set_threads(n: int) -> int:
    """CPU threads for torch; 0 keeps torch's default. On a small, busy CPU one thread is much faster than two:
    measured on the 2-core dev machine under load, a 64 px keyframe forward took 46 ms with 1 thread and 435 ms
    with 2 (OpenMP workers spin while waiting for a core)."""
    if n > 0:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def pick_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
