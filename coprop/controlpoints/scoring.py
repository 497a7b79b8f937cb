"""How good is a control-point list: boundary precision/recall/F1 with a frame tolerance, exact-list accuracy.

A boundary is a change point t >= 1 with c[t] = 1 (c[0] = 1 is given by definition and never scored).
Predicted and GT boundaries are matched one-to-one, greedily by increasing distance (ties: earlier GT,
then earlier prediction), a pair matching when |t_pred - t_gt| <= tolerance. Dataset scores are
micro-averaged (counts summed over clips). Conventions for empty sets: no predictions -> precision 1;
no GT boundaries -> recall 1; F1 = 1 when both are empty, else the harmonic mean (0 when either is 0).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:                 # pandas only for score_table: `coprop infer` imports this module and
    import pandas as pd           # gains 0.3 s of start-up without it


def change_points(c: Sequence[int]) -> list[int]:
    return [t for t in range(1, len(c)) if int(c[t]) == 1]


def match_boundaries(pred: Sequence[int], gt: Sequence[int], tolerance: int = 0) -> tuple[int, int, int]:
    """(matched, n_pred, n_gt) for two control-point lists of equal length."""
    if len(pred) != len(gt):
        raise ValueError(f"control-point lists differ in length: {len(pred)} vs {len(gt)}")
    p, g = change_points(pred), change_points(gt)
    pairs = sorted((abs(a - b), b, a) for a in p for b in g if abs(a - b) <= tolerance)
    used_p, used_g = set(), set()
    for _, b, a in pairs:
        if a not in used_p and b not in used_g:
            used_p.add(a)
            used_g.add(b)
    return len(used_p), len(p), len(g)


def prf(matched: int, n_pred: int, n_gt: int) -> tuple[float, float, float]:
    precision = matched / n_pred if n_pred else 1.0
    recall = matched / n_gt if n_gt else 1.0
    if n_pred == 0 and n_gt == 0:
        return 1.0, 1.0, 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def boundary_scores(preds: Sequence[Sequence[int]], gts: Sequence[Sequence[int]], tolerance: int = 0) -> dict:
    """Micro-averaged boundary precision/recall/F1 and exact-list accuracy over paired lists."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} GT lists")
    m = n_p = n_g = exact = 0
    for p, g in zip(preds, gts):
        a, b, c = match_boundaries(p, g, tolerance)
        m, n_p, n_g = m + a, n_p + b, n_g + c
        exact += int(list(map(int, p)) == list(map(int, g)))
    precision, recall, f1 = prf(m, n_p, n_g)
    return {"precision": precision, "recall": recall, "f1": f1, "exact": exact / len(gts) if gts else float("nan"),
            "matched": m, "n_pred": n_p, "n_gt": n_g, "clips": len(gts)}


def score_table(predictions: Mapping[str, Mapping[str, Sequence[int]]], gt: Mapping[str, Sequence[int]],
                tolerances: Sequence[int] = (0, 1), categories: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per (source, category) and tolerance: columns source, category, tolerance, precision, recall,
    f1, exact, matched, n_pred, n_gt, clips. ``predictions[source][clip] -> list``; ``gt[clip] -> list``.
    Category 'all' pools every clip; per-category rows appear when ``categories`` (clip -> name) is given."""
    rows = []
    for source, by_clip in predictions.items():
        names = [n for n in gt if n in by_clip]
        groups = {"all": names}
        if categories:
            for n in names:
                groups.setdefault(str(categories.get(n, "unknown")), []).append(n)
        for cat, members in groups.items():
            for tol in tolerances:
                s = boundary_scores([by_clip[n] for n in members], [gt[n] for n in members], tol)
                rows.append({"source": source, "category": cat, "tolerance": int(tol), **s})
    import pandas as pd

    return pd.DataFrame(rows)
