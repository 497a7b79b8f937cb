"""Which clips an experiment uses: the dataset (``Data``: AVSBench or the synthetic benchmark, by subset) and
the clip picks the notebooks make (MOC-style clips, the walkthrough clip, GT control points)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from coprop.errors import ConfigError


@dataclass
class Data:
    """Where the clips come from. ``seed`` is the synthetic benchmark's seed (the data), not a training seed."""

    data_root: str = ""
    synthetic_preset: str = "smoke"
    subset: str = "ms3"
    seed: int = 0

    @property
    def root(self) -> Path:
        from coprop.data.synth import resolve_root

        return resolve_root(self.data_root or None, self.synthetic_preset, self.seed)

    @property
    def synthetic(self) -> bool:
        from coprop.data.synth import is_synthetic

        return is_synthetic(self.root)

    def split(self, split: str, limit: int | None = None) -> list:
        from coprop.data import open_dataset

        ds = open_dataset(self.root, self.subset, split)
        n = len(ds) if limit is None or limit < 0 else min(limit, len(ds))
        return [ds[i] for i in range(n)]

    def key(self) -> str:
        where = self.data_root or f"synthetic-{self.synthetic_preset}-s{self.seed}"
        return f"{self.subset}-" + hashlib.sha1(where.encode()).hexdigest()[:8]


def is_moc(clip) -> bool:
    """MOC-style clip (paper Table 3): its GT control points hold a sounding-object change after frame 0."""
    from coprop.controlpoints.annotate import clip_control_points

    return any(clip_control_points(clip)[1:])


def gt_control_points(clip) -> list[int]:
    from coprop.controlpoints.annotate import clip_control_points

    return [int(v) for v in clip_control_points(clip)]


def pick_clip(clips: list, index: int = -1):
    """``index`` >= 0: that test clip; -1: the first MOC-style clip (a source conversion after frame 0)."""
    if index >= 0:
        if index >= len(clips):
            raise ConfigError(f"clip_index {index} out of range: the test split has {len(clips)} clips")
        return clips[index]
    return next((c for c in clips if is_moc(c)), clips[0])
