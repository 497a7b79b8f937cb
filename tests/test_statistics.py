"""Two-level bootstrap intervals, paired differences and verdicts of the ablation tables."""
from __future__ import annotations

import numpy as np
import torch

from coprop.experiments import statistics as S
from coprop.metrics import Evaluator


def _random_clips(rng, n=12, T=5, size=16):
    logits, masks, avail, cps = [], [], [], []
    for _ in range(n):
        m = np.zeros((T, size, size), np.int64)
        for t in range(T):
            if rng.random() < 0.8:
                y, x = rng.integers(0, size - 6, 2)
                m[t, y:y + 6, x:x + 6] = 1
        lg = torch.randn(T, 1, size, size) * 2 + torch.from_numpy(m[:, None] * 3.0).float()
        logits.append(lg)
        masks.append(m)
        avail.append(np.ones(T, bool))
        cps.append([1, 0, int(rng.random() < 0.5), 0, 0])
    return logits, masks, avail, cps


def test_point_estimates_equal_the_official_evaluator():
    rng = np.random.default_rng(0)
    logits, masks, avail, cps = _random_clips(rng, n=10)
    stats = S.clip_stats(logits, masks, avail, cps)
    ev = Evaluator("binary", fbatch=4)
    for i in range(10):
        ev.add(str(i), logits[i], masks[i], avail[i], control_points=cps[i])
    res = ev.result()
    assert abs(S.point([stats], "J") - res["J"]) < 1e-6
    assert abs(S.point([stats], "F", fbatch=4) - res["F"]) < 1e-5
    for key in ("all", "near", "far"):
        assert abs(S.point([stats], f"AR {key}") - res[f"alignment_{key}"]) < 1e-12


def _stats_from_j(values: np.ndarray) -> S.ClipStats:
    """One frame per clip with the given J (F and AR left empty)."""
    C = len(values)
    zeros = {k: np.zeros(C, np.int64) for k in ("all", "near", "far")}
    return S.ClipStats(values.astype(float), np.ones(C), np.zeros((C, 255)), np.zeros(C), zeros, dict(zeros))


def test_interval_covers_the_true_mean_at_about_95_percent():
    rng = np.random.default_rng(1)
    covered = 0
    trials = 200
    for t in range(trials):
        per_seed = [_stats_from_j(rng.beta(4, 2, 150))]            # true mean 4/6
        draws = S.Draws.make(1, 150, B=400, rng_seed=t)
        _, lo, hi = S.interval(per_seed, "J", draws)
        covered += lo <= 4 / 6 <= hi
    assert 0.88 <= covered / trials <= 0.99


def test_seed_level_widens_the_interval():
    rng = np.random.default_rng(2)
    base = rng.beta(4, 2, 100)
    same = [_stats_from_j(base) for _ in range(3)]
    spread = [_stats_from_j(np.clip(base + shift, 0, 1)) for shift in (-0.1, 0.0, 0.1)]
    draws = S.Draws.make(3, 100, B=500)
    w_same = np.subtract(*S.interval(same, "J", draws)[2:0:-1])
    w_spread = np.subtract(*S.interval(spread, "J", draws)[2:0:-1])
    assert w_spread > 2 * w_same


def test_paired_difference_of_identical_methods_is_exactly_zero():
    rng = np.random.default_rng(3)
    logits, masks, avail, cps = _random_clips(rng, n=8)
    a = [S.clip_stats(logits, masks, avail, cps)] * 2
    draws = S.Draws.make(2, 8, B=300)
    for metric in ("J", "F", "AR all"):
        assert S.paired(a, a, metric, draws) == (0.0, 0.0, 0.0)


def test_paired_difference_detects_a_shift_the_unpaired_intervals_do_not():
    rng = np.random.default_rng(4)
    base = rng.uniform(0, 1, 80)   # wide clip-to-clip spread, small constant gain
    a, b = [_stats_from_j(np.clip(base + 0.03, 0, 1))], [_stats_from_j(base)]
    draws = S.Draws.make(1, 80, B=500)
    ia, ib = S.interval(a, "J", draws), S.interval(b, "J", draws)
    assert ia[1] < ib[2]                       # the two intervals overlap ...
    d, lo, hi = S.paired(a, b, "J", draws)     # ... yet the paired difference is resolved
    assert lo > 0 and abs(d - 0.03) < 0.005
    assert S.verdict(lo, hi, +1) == S.AGREES and S.verdict(lo, hi, -1) == S.DISAGREES


def test_verdict_and_separation():
    assert S.verdict(-0.01, 0.02, +1) == S.UNRESOLVED
    assert S.verdict(float("nan"), 0.2, +1) == S.UNRESOLVED
    assert S.verdict(-0.3, -0.1, -1) == S.AGREES
    assert S.separated((0.5, 0.4, 0.6), (0.8, 0.7, 0.9))
    assert not S.separated((0.5, 0.4, 0.75), (0.8, 0.7, 0.9))
