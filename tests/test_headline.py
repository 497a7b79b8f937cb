"""reports/headline.json: exactly issue 9's fields, fractions in [0, 1], intervals around their means."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from coprop import experiments as E
from coprop.data.clip import Clip, avsbench_frame_times


def _clip(i: int, rng) -> Clip:
    T, S = 5, 16
    masks = np.zeros((T, S, S), np.int64)
    cut = int(rng.integers(1, T))            # source A on the top half, then B on the bottom half
    masks[:cut, :8] = 1
    masks[cut:, 8:] = 1
    return Clip(np.zeros((T, S, S, 3), np.uint8), np.zeros(16000 * T, np.float32), avsbench_frame_times(T), masks,
                None, {"name": f"c{i}", "mode": "binary"})


def _evaluation(tmp_path, seeds=(0, 1, 2), n=12) -> E.Evaluation:
    rng = np.random.default_rng(0)
    clips = [_clip(i, rng) for i in range(n)]
    ev = E.Evaluation(E.Data(data_root=str(tmp_path)), clips, list(seeds),
                      suites={s: SimpleNamespace(cfg=SimpleNamespace(num_classes=1)) for s in seeds})
    methods = E.table1_methods(ev) + [E.COPROP_GT, E.KEYFRAME_ALONE, E.PROPAGATOR_FROM_GT]
    for s in seeds:
        ev.results[s] = {}
        for j, m in enumerate(methods):
            res = []
            for c in clips:
                noise = torch.from_numpy(rng.normal(0, 6 + j, c.masks.shape)).float()
                lg = torch.from_numpy(np.where(c.masks > 0, 5.0, -5.0)).float() + noise
                cp = E.gt_control_points(c) if m.source == "gt" else [1] + [0] * (c.num_frames - 1)
                res.append(E.ClipResult(c.name, lg[:, None], cp, 0.01))
            ev.results[s][m.key] = res
    return ev


def test_headline_has_exactly_the_issue_fields(tmp_path):
    h = E.headline(_evaluation(tmp_path))
    assert set(h) == {"data", "test_clips", "seeds", "keyframe", "propagator_from_gt_keyframes", "methods", "paired",
                      "fbatch"}
    assert h["test_clips"] == 12 and h["seeds"] == [0, 1, 2] and h["fbatch"] == 4 and isinstance(h["data"], str)
    assert set(h["keyframe"]) == {"J", "alignment_near", "alignment_far"}
    assert set(h["propagator_from_gt_keyframes"]) == {"J"}
    assert {"simultaneous_baseline", "coprop"} <= set(h["methods"])
    for m in h["methods"].values():
        assert set(m) == {"J", "J_ci", "F", "F_ci", "AR_near", "AR_near_ci", "AR_far", "AR_far_ci"}
        for key in ("J", "F", "AR_near", "AR_far"):
            lo, hi = m[f"{key}_ci"]
            assert 0 <= lo <= m[key] + 1e-9 and m[key] - 1e-9 <= hi <= 1
    pair = h["paired"]["coprop - simultaneous_baseline"]
    assert set(pair) == {"J", "J_ci"}
    assert abs(pair["J"] - (h["methods"]["coprop"]["J"] - h["methods"]["simultaneous_baseline"]["J"])) < 1e-9
    assert pair["J_ci"][0] <= pair["J"] <= pair["J_ci"][1]


def test_tables_carry_intervals_deltas_and_verdicts(tmp_path):
    ev = _evaluation(tmp_path)
    t1 = E.table1(ev)
    for col in ("ours: J %", "ours: J %_lo", "ours: J %_hi", "ours: F %_lo", "Δ J vs reference %_hi", "F-batch"):
        assert col in t1.columns
    assert t1["seeds"].tolist() == ["0,1,2"] * 3
    c = E.claims(ev, "1")
    assert len(c) == 2 and set(c["verdict"]) <= {"agrees", "disagrees", "not resolved at this size"}
    # a row compared with itself: the paired difference is exactly 0 with a zero-width interval
    d = E.intervals.paired(ev, E.COPROP, E.COPROP)
    assert d == (0.0, 0.0, 0.0)
