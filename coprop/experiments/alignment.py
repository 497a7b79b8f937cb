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
    """Alignment Rate (all frames, within ±k of a GT source conversion, farther) and J of each method, in %,
    with 95 % intervals over seeds and clips; ``Δ AR near - far %`` is the paired difference of one method's
    two rates (negative: it loses the frames next to conversions, the misalignment the benchmark is built for)."""
    from coprop.experiments import intervals as I
    from coprop.experiments.statistics import separated

    near = f"AR within ±{ev.k} of a conversion %"
    rows = []
    for m in methods:
        if not ev.available(m) or not ev.seeds_of(m):
            continue
        c = I.cells(ev, m, "all", ("AR all", "AR near", "AR far", "J"), prefix="")
        s = I.frames_scored(ev, m)   # counted from the interval's per-clip statistics, not scored again
        row = {"method": m.label, "our data": ev.data_label}
        for metric, col in (("AR all", "AR all %"), ("AR near", near), ("AR far", "AR farther %"), ("J", "J %")):
            row.update({col: c[f"{metric} %"], f"{col}_lo": c[f"{metric} %_lo"], f"{col}_hi": c[f"{metric} %_hi"]})
        d = I.paired(ev, m, m, "AR near", metric_b="AR far")
        row.update({"Δ AR near - far %": 100 * d[0], "Δ AR near - far %_lo": 100 * d[1],
                    "Δ AR near - far %_hi": 100 * d[2],
                    "near below far, intervals apart": ("yes" if separated(
                        (0, c["AR near %_lo"], c["AR near %_hi"]), (0, c["AR far %_lo"], c["AR far %_hi"])) else "no")
                    if I.binary(ev) else None,
                    "frames": s["frames"], "frames near": s["frames near"], "seeds": I.seeds_text(ev, m)})
        rows.append(row)
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
