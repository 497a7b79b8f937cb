"""Scores of predictions against GT: J and F (AVSBench-exact), Alignment Rates near and far from source
conversions, per-frame J and alignment, a per-clip score table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from coprop.errors import ConfigError
from coprop.experiments.methods import ClipResult


def score(results: list[ClipResult], clips: list, frames: str = "all", k: int = 1, tau: float = 0.5,
          num_classes: int | None = None) -> dict[str, float]:
    """J and F (AVSBench-exact) and Alignment Rates (all / within ±k of a GT conversion / far from one), all
    from coprop.metrics.Evaluator, over ``frames``: 'all', 'key' (the frames the method made control points,
    segmented by the keyframe model) or 'normal' (the propagated frames)."""
    from coprop.controlpoints.annotate import clip_control_points
    from coprop.metrics import Evaluator

    mode = clips[0].mode
    ev = Evaluator(mode, k=k, tau=tau, num_classes=num_classes if mode == "semantic" else None)
    used = 0
    for r, c in zip(results, clips):
        avail = np.asarray(c.gt_available, bool).copy()
        cp = np.asarray(r.control_points, bool)
        if frames == "key":
            avail &= cp
        elif frames == "normal":
            avail &= ~cp
        if not avail.any():
            continue
        used += int(avail.sum())
        try:
            # near/far is decided by the clip's GT conversions over ALL its annotated frames, even when only
            # the key (or normal) frames are scored
            ev.add(c.name, r.logits, torch.as_tensor(c.masks), avail, control_points=clip_control_points(c))
        except Exception as e:  # noqa: BLE001 - one bad clip is reported, the rest still count
            ev.add_error(c.name, e)
    res = ev.result()
    if res["bad"]:
        raise ConfigError(f"scoring failed on {len(res['bad'])} clip(s): {res['bad'][0]}")
    nan = float("nan")
    return {"J": float(res.get("J", nan)) if used else nan, "F": float(res.get("F", nan)) if used else nan,
            "AR all": float(res["alignment_all"]), "AR near": float(res["alignment_near"]),
            "AR far": float(res["alignment_far"]), "frames": used, "frames near": int(res["n_near"]),
            "frames far": int(res["n_far"])}


def per_frame_j(result: ClipResult, clip) -> np.ndarray:
    """[T] Jaccard per frame (NaN where the frame has no GT); binary clips only, NaN for semantic."""
    from coprop.metrics import binary_jaccard

    out = np.full(clip.num_frames, np.nan)
    if clip.mode != "binary" or clip.masks is None:
        return out
    j = binary_jaccard(result.logits[:, 0], torch.as_tensor(clip.masks)).numpy()
    avail = np.asarray(clip.gt_available, bool)
    out[avail] = j[avail]
    return out


def aligned_frames(result: ClipResult, clip, tau: float = 0.5) -> list[bool | None]:
    """Per frame: does the prediction segment the GT sounding object(s)? (None where there is no GT)."""
    from coprop.metrics import alignment_rate
    from coprop.viz import logits_to_masks

    return alignment_rate(logits_to_masks(result.logits), clip.masks, clip.mode, tau=tau,
                          gt_available=clip.gt_available)["per_frame"]


def clip_scores(ev_or_results: dict[str, ClipResult], clip, k: int = 1) -> pd.DataFrame:
    """J, F and alignment of each method's result on one clip (a walkthrough table)."""
    rows = []
    for label, r in ev_or_results.items():
        s = score([r], [clip], "all", k)
        rows.append({"method": label, "J %": 100 * s["J"], "F %": 100 * s["F"], "AR %": 100 * s["AR all"],
                     "control points at frames": ", ".join(str(t) for t, c in enumerate(r.control_points) if c),
                     "seconds": r.seconds})
    return pd.DataFrame(rows)
