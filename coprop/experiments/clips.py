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


def sounding_objects(clip, t: int) -> frozenset | None:
    """What sounds at frame ``t``, where the data says it: the synthetic schedule's names, the semantic GT's
    class ids; None for binary GT without a schedule (only "something" vs "nothing" is known there)."""
    if "sounding" in clip.meta:
        return frozenset(clip.meta["sounding"][t])
    if clip.masks is not None and clip.mode != "binary":
        import numpy as np

        return frozenset(int(v) for v in np.unique(clip.masks[t]) if v)
    return None


def object_conversion(clip, disjoint: bool = True) -> int | None:
    """The first frame t >= 1 where the sounding object converts to a different one: a GT control point with GT
    on both sides and something sounding before and after; with ``disjoint`` no object sounds on both sides
    (A -> B, not A -> A+B). Where identities are unknown (binary GT, see ``sounding_objects``) both masks being
    non-empty is all that is checked. The last frame does not count: the walkthrough needs a frame after the
    conversion to show propagation. None when the clip has no such conversion."""
    import numpy as np

    cps = gt_control_points(clip)
    avail = np.asarray(clip.gt_available, dtype=bool)
    for t in range(1, len(cps) - 1):
        if not (cps[t] and avail[t] and avail[t - 1]):
            continue
        before, after = sounding_objects(clip, t - 1), sounding_objects(clip, t)
        if before is None:
            if clip.masks[t - 1].any() and clip.masks[t].any():
                return t
        elif before and after and before != after and not (disjoint and before & after):
            return t
    return None


def choose_walkthrough_clip(clips: list, index: int = -1) -> tuple[object, str]:
    """The walkthrough's clip and one sentence saying why it was chosen.

    ``index`` >= 0: that clip. -1: the first clip whose sounding object is replaced by a different one
    (``object_conversion``, A -> B) -- the case Co-Prop is built for; else the first with any change between two
    different sounding sets (A -> A+B); else the first MOC-style clip (e.g. silence to sound); else the first
    clip. Raises ConfigError for an index out of range."""
    if index >= 0:
        if index >= len(clips):
            raise ConfigError(f"clip_index {index} out of range: the test split has {len(clips)} clips")
        return clips[index], f"clip_index={index} was asked for."
    for disjoint, kind in ((True, "is replaced by a different object"), (False, "changes to a different set")):
        for i, c in enumerate(clips):
            t = object_conversion(c, disjoint)
            if t is None:
                continue
            before, after = sounding_objects(c, t - 1), sounding_objects(c, t)
            what = (f"from {'+'.join(sorted(map(str, before)))} to {'+'.join(sorted(map(str, after)))}"
                    if before is not None else "between two non-empty GT masks")
            return c, (f"It is the first of the {len(clips)} test clips (number {i}) whose sounding object "
                       f"{kind} with frames left to follow it: at frame {t}, {what}.")
    moc = next((i for i, c in enumerate(clips) if is_moc(c)), None)
    if moc is not None:
        return clips[moc], (f"No test clip converts between two different sounding objects; clip {moc} is the "
                            "first with any change of the sounding object after frame 0.")
    return clips[0], "No test clip has a change of the sounding object after frame 0; this is the first clip."


def pick_clip(clips: list, index: int = -1):
    """``index`` >= 0: that test clip; -1: the walkthrough's rule (``choose_walkthrough_clip``)."""
    return choose_walkthrough_clip(clips, index)[0]
