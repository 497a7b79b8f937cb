"""Boundary precision/recall/F1 with tolerance, exact accuracy, per-category tables."""
from __future__ import annotations

import pytest

from coprop.controlpoints.scoring import boundary_scores, change_points, match_boundaries, prf, score_table


def test_change_points_ignore_frame_zero():
    assert change_points([1, 0, 1, 0, 1]) == [2, 4]
    assert change_points([1]) == []


def test_tolerance_and_one_to_one_matching():
    gt = [1, 0, 0, 1, 0, 0, 0, 0]
    assert match_boundaries([1, 0, 0, 0, 1, 0, 0, 0], gt, 0) == (0, 1, 1)
    assert match_boundaries([1, 0, 0, 0, 1, 0, 0, 0], gt, 1) == (1, 1, 1)
    # two predictions near one GT boundary: only one may match
    assert match_boundaries([1, 0, 1, 0, 1, 0, 0, 0], gt, 1) == (1, 2, 1)
    # greedy by distance: the exact hit takes GT 3, the neighbour is left for GT 4
    assert match_boundaries([1, 0, 0, 1, 1, 0, 0, 0], [1, 0, 0, 1, 1, 0, 0, 0], 1) == (2, 2, 2)
    with pytest.raises(ValueError):
        match_boundaries([1, 0], [1, 0, 0], 0)


def test_empty_conventions():
    assert prf(0, 0, 0) == (1.0, 1.0, 1.0)
    assert prf(0, 0, 2) == (1.0, 0.0, 0.0)
    assert prf(0, 3, 0) == (0.0, 1.0, 0.0)


def test_micro_average_and_exact():
    preds = [[1, 0, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0]]
    gts = [[1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 0, 0]]
    s = boundary_scores(preds, gts, 0)
    assert (s["matched"], s["n_pred"], s["n_gt"]) == (1, 2, 2)
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["f1"] == 0.5
    assert s["exact"] == pytest.approx(1 / 3)


def test_score_table_per_category():
    gt = {"a": [1, 0, 1], "b": [1, 0, 0], "c": [1, 1, 0]}
    preds = {"oracle": dict(gt), "none": {n: [1, 0, 0] for n in gt}}
    df = score_table(preds, gt, tolerances=(0, 1), categories={"a": "dog", "b": "dog", "c": "car"})
    row = df[(df.source == "oracle") & (df.category == "all") & (df.tolerance == 0)].iloc[0]
    assert row.f1 == 1.0 and row.exact == 1.0 and row.clips == 3
    dog = df[(df.source == "none") & (df.category == "dog") & (df.tolerance == 0)].iloc[0]
    assert dog.recall == 0.0 and dog.clips == 2 and dog.exact == 0.5
    assert set(df.category) == {"all", "dog", "car"} and set(df.tolerance) == {0, 1}
