"""Alignment analysis (paper Fig. 1 and Fig. 3): Alignment Rate tables near and far from source conversions,
over all test clips and MOC-style clips, and per-frame 'which object does the method segment' text."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from coprop.experiments.clips import is_moc
from coprop.experiments.evaluation import Evaluation
from coprop.experiments.methods import BASELINE, COPROP, COPROP_GT, ClipResult, Method
from coprop.experiments.scoring import aligned_frames


def alignment_methods() -> list[Method]:
    """Fig. 3: the baseline, Co-Prop (learned / RCPG control points) and Co-Prop with GT control points."""
    return [BASELINE, COPROP, COPROP_GT]


def alignment_table(ev: Evaluation, methods: Sequence[Method]) -> pd.DataFrame:
    rows = []
    for m in methods:
        if not ev.available(m):
            continue
        s = ev.scores(m)
        rows.append({"method": m.label, "our data": ev.data_label, "AR all %": s["AR all"],
                     "AR all std": s["AR all std"], f"AR within ±{ev.k} of a conversion %": s["AR near"],
                     "AR near std": s["AR near std"], "AR farther %": s["AR far"], "AR far std": s["AR far std"],
                     "frames": s["frames"], "frames near": s["frames near"], "J %": s["J"],
                     "seeds": ",".join(map(str, ev.seeds))})
    return pd.DataFrame(rows)


def frame_objects(result: ClipResult, clip, tau: float = 0.5) -> tuple[list[str], list[str]]:
    """What sounds (GT) and what the method segments, per frame, as short text for alignment timelines.

    A frame whose prediction matches the GT is named after the GT object(s); a miss that matches the previous
    frame's GT instead is '<prev> (late)', one that matches the next frame's GT '<next> (early)' -- the
    temporal misalignment of paper Fig. 1 -- else 'other' or 'nothing'.
    """
    from coprop.controlpoints.annotate import frame_labels as gt_labels
    from coprop.viz import logits_to_masks

    gt_names = [n if n else "-" for n in gt_labels(clip)]
    pred = logits_to_masks(result.logits)
    gt = np.asarray(clip.masks)
    aligned = aligned_frames(result, clip, tau)
    T = clip.num_frames

    def same(a, b) -> bool:
        if clip.mode == "semantic":
            return set(np.unique(a)) - {0} == set(np.unique(b)) - {0}
        a, b = a > 0, b > 0
        union = (a | b).sum()
        return bool(union == 0 or (a & b).sum() / union >= tau)

    out = []
    for t in range(T):
        if aligned[t] is None:
            out.append("?")
        elif aligned[t]:
            out.append(gt_names[t])
        elif t > 0 and not same(gt[t - 1], gt[t]) and same(pred[t], gt[t - 1]):
            out.append(f"{gt_names[t - 1] if gt_names[t - 1] != gt_names[t] else 'previous object'} (late)")
        elif t + 1 < T and not same(gt[t + 1], gt[t]) and same(pred[t], gt[t + 1]):
            out.append(f"{gt_names[t + 1] if gt_names[t + 1] != gt_names[t] else 'next object'} (early)")
        else:
            out.append("nothing" if not pred[t].any() else "other")
    return gt_names, out


def alignment_report(ev: Evaluation, methods: Sequence[Method]) -> pd.DataFrame:
    """Alignment rates of ``methods`` over all test clips and over the MOC-style ones (if any)."""
    rates = alignment_table(ev, methods)
    rates.insert(1, "clips", "all test clips")
    moc = ev.subset(is_moc)
    if moc.clips:
        moc_rates = alignment_table(moc, methods)
        moc_rates.insert(1, "clips", f"MOC-style clips ({len(moc.clips)})")
        rates = pd.concat([rates, moc_rates], ignore_index=True)
    return rates
