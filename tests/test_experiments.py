"""coprop.experiments scoring and tables on hand-made predictions (no training): seeds, frame splits, paper columns."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coprop import experiments as E
from coprop import paper_numbers as P
from coprop.data.clip import Clip, avsbench_frame_times
from coprop.errors import ConfigError


def _clip(name: str) -> Clip:
    T, S = 4, 16
    masks = np.zeros((T, S, S), np.int64)
    masks[:2, :8] = 1          # source A on the top half, then source B on the bottom half
    masks[2:, 8:] = 1
    return Clip(np.zeros((T, S, S, 3), np.uint8), np.zeros(16000 * T, np.float32), avsbench_frame_times(T), masks,
                None, {"name": name, "mode": "binary"})


def _logits(masks: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.where(masks > 0, 8.0, -8.0)).float()[:, None]


def _evaluation(per_seed: dict[int, torch.Tensor]) -> E.Evaluation:
    clip = _clip("c0")
    ev = E.Evaluation(E.Data(), [clip], list(per_seed), suites={})
    for s, lg in per_seed.items():
        ev.results[s] = {E.COPROP.key: [E.ClipResult("c0", lg, [1, 0, 1, 0], 0.1)]}
    return ev


class _Cfg:
    num_classes = 1


def test_scores_mean_std_over_seeds_and_frame_splits(monkeypatch):
    clip = _clip("c0")
    perfect = _logits(clip.masks)
    lagging = _logits(np.stack([clip.masks[0], clip.masks[0], clip.masks[0], clip.masks[3]]))  # late on frame 2
    ev = _evaluation({0: perfect, 1: lagging})
    ev.suites = {0: type("S", (), {"cfg": _Cfg})(), 1: type("S", (), {"cfg": _Cfg})()}
    s = ev.scores(E.COPROP)
    assert s["J"] == pytest.approx((100 + 75) / 2)
    assert s["J std"] == pytest.approx(np.std([100, 75], ddof=1))
    assert s["AR near"] < 100 and s["frames"] == 4
    key = ev.scores(E.COPROP, "key")        # frames 0 and 2 are the control points
    normal = ev.scores(E.COPROP, "normal")
    assert key["frames"] == 2 and normal["frames"] == 2
    assert key["J"] == pytest.approx((100 + 50) / 2) and normal["J"] == pytest.approx(100)


def test_near_far_alignment_and_subset():
    clip = _clip("c0")
    lagging = _logits(np.stack([clip.masks[0], clip.masks[0], clip.masks[0], clip.masks[3]]))
    r = E.ClipResult("c0", lagging, [1, 0, 0, 0], 0.0)
    assert E.aligned_frames(r, clip) == [True, True, False, True]
    gt, seg = E.frame_objects(r, clip)
    assert seg[2] == "previous object (late)" and seg[0] == gt[0] == "sounding"
    assert E.is_moc(clip)


def test_parse_seeds():
    assert E.parse_seeds("0, 1,2") == [0, 1, 2]
    assert E.parse_seeds(3) == [3]
    with pytest.raises(ConfigError):
        E.parse_seeds("a,b")
    with pytest.raises(ConfigError):
        E.parse_seeds("")


def test_paper_numbers_are_labelled_and_transcribed():
    t2a = P.paper_table("2a")
    assert all(c.startswith("paper") for c in t2a.columns if c != "method")
    assert t2a.set_index("method").at["KPF+ RCPG+ AIP+", "paper: M3 J (AVSBench MS3)"] == 63.58
    assert P.paper_table("1", "ResNet").set_index("method").at["Co-Prop (ours)", "paper: AVSS F (AVSBench AVSS)"] == 35.8
    assert P.paper_table("3").set_index("dataset").at["MOC", "paper: videos"] == 17
    import pandas as pd

    ours = pd.DataFrame({"method": ["Co-Prop", "mine"], "ours: J %": [1.0, 2.0]})
    both = P.beside(ours, "4", {"Co-Prop": "Co-Prop"}, datasets=("M3",))
    assert both["paper: M3 J (AVSBench MS3)"].tolist()[0] == 63.6 and pd.isna(both["paper: M3 J (AVSBench MS3)"][1])
    assert not any("S4" in c for c in both.columns)
