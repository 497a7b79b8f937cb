"""One synthetic clip between planning and writing: ``Job`` (which clip to make: subset, split, name, kind,
length) and ``Made`` (what making it produced: the plan, frames, object instances, waveform, and the masks and
meta derived from them). synth.py makes them and synth_layout.py writes them in the AVSBench layouts; both import
this module, which imports neither."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coprop.data.synth_scene import CATEGORIES, ClipPlan


def class_names() -> list[str]:
    """AVSS-style class list of the synthetic benchmark: index = class id, 0 = background."""
    return ["background"] + list(CATEGORIES)


@dataclass
class Job:
    """One clip to make: ``subset`` 's4' | 'ms3' | 'avss', ``split``, ``name`` (its folder/file stem), ``kind``
    'single' | 'multi' (one or several objects), ``num_frames`` (1 s apart), AVSS ``label``, the S4 ``category``,
    and ``change_rate`` (source conversions per second for long clips; None: the kind's default)."""

    subset: str
    split: str
    name: str
    kind: str
    num_frames: int
    label: str = ""            # AVSS: v1s | v1m | v2
    category: str | None = None
    change_rate: float | None = None


@dataclass
class Made:
    """A made clip (no disk access yet): its plan, frames, per-pixel object instances and 16 kHz waveform; the
    binary and semantic GT masks and the meta (sounding objects per frame, conversions, events) derive from them."""

    plan: ClipPlan
    frames: np.ndarray       # uint8 [T,S,S,3]
    instances: np.ndarray    # int64 [T,S,S], 0 = background, i+1 = object i
    waveform: np.ndarray     # float32 [T*16000]

    def sounding_ids(self) -> list[list[int]]:
        return self.plan.sounding_per_frame()

    def binary_masks(self) -> np.ndarray:
        out = np.zeros_like(self.instances)
        for k, who in enumerate(self.sounding_ids()):
            out[k] = np.isin(self.instances[k], [i + 1 for i in who])
        return out

    def semantic_masks(self) -> np.ndarray:
        cls = np.array([0] + [class_names().index(o.category) for o in self.plan.objects], np.int64)
        out = np.zeros_like(self.instances)
        for k, who in enumerate(self.sounding_ids()):
            keep = np.isin(self.instances[k], [i + 1 for i in who])
            out[k] = np.where(keep, cls[self.instances[k]], 0)
        return out

    def meta(self) -> dict:
        names = [o.category for o in self.plan.objects]
        sounding = [sorted(names[i] for i in who) for who in self.sounding_ids()]
        return {
            "synthetic": True,
            "sounding": sounding,
            "categories_visible": sorted(names),
            "conversions": [k for k in range(1, len(sounding)) if sounding[k] != sounding[k - 1]],
            "events": [[round(t0, 4), round(t1, 4), sorted(names[i] for i in who)]
                       for t0, t1, who in self.plan.events],
            "num_frames": self.plan.num_frames,
        }
