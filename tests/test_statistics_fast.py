"""The faster bootstrap (issue 9 demo budget): F replicates equal the previous padded-gather loop bit for bit,
replicates are shared between the rows that use them, and the per-clip statistics cached beside the
predictions give the same table as computing them again."""
from __future__ import annotations

import numpy as np

from coprop import experiments as E
from coprop.experiments import intervals as I
from coprop.experiments import statistics as S


def _reference_f(stats: S.ClipStats, idx: np.ndarray, fbatch: int) -> np.ndarray:
    """The loop statistics.metric_on used before (padded gather of every [r, G, fbatch, 255] curve), kept here
    as the reference the faster code must reproduce."""
    idx = np.atleast_2d(idx)
    R, C = idx.shape
    G = -(-C // fbatch)
    out = np.empty(R)
    for lo in range(0, R, 256):
        sel = idx[lo:lo + 256]
        pad = np.zeros((len(sel), G * fbatch), np.int64)
        valid = np.zeros((len(sel), G * fbatch), bool)
        pad[:, :C], valid[:, :C] = sel, True
        curves = stats.f_curve[pad] * valid[..., None]
        n = stats.f_n[pad] * valid
        curves = curves.reshape(len(sel), G, fbatch, -1).sum(2)
        n = n.reshape(len(sel), G, fbatch).sum(2)
        best = np.where(n > 0, (curves / np.maximum(n, 1)[..., None]).max(-1), 0.0)
        groups = valid.reshape(len(sel), G, fbatch).any(2)
        out[lo:lo + len(sel)] = (best * groups).sum(1) / groups.sum(1)
    return out


def _stats(C: int, rng) -> S.ClipStats:
    f_n = rng.integers(0, 6, C).astype(float)            # some clips have no non-empty-GT frame
    curves = rng.random((C, 255)) * f_n[:, None]
    keys = ("all", "near", "far")
    return S.ClipStats(rng.random(C) * 5, np.full(C, 5.0), curves, f_n, {k: rng.integers(0, 5, C) for k in keys},
                       {k: np.full(C, 5) for k in keys})


def test_f_replicates_equal_the_previous_loop_exactly():
    rng = np.random.default_rng(3)
    for C, fbatch in ((120, 4), (118, 4), (7, 4), (3, 4), (50, 1), (33, 5)):
        st = _stats(C, rng)
        d = S.Draws.make(3, C, B=700, rng_seed=1)   # > 512 replicates: more than one chunk
        assert np.array_equal(S.metric_on(st, "F", d.clips, fbatch), _reference_f(st, d.clips, fbatch)), (C, fbatch)


def test_replicates_are_shared_and_intervals_unchanged():
    rng = np.random.default_rng(4)
    a, b = [_stats(40, rng) for _ in range(3)], [_stats(40, rng) for _ in range(3)]
    d = S.Draws.make(3, 40, B=1000)
    first = S.interval(a, "F", d)
    S._SEED_REPS.clear()
    assert S.interval(a, "F", d) == first                 # memo or not, the same numbers
    n = len(S._SEED_REPS)
    S.paired(a, b, "F", d)
    assert len(S._SEED_REPS) == n + 3                     # a's replicates were reused, only b's were computed
    assert I.draws(3, 40) is I.draws(3, 40)               # one plan object per shape: the memo can hit


def test_cached_clip_stats_give_the_same_table(tmp_path, monkeypatch):
    from test_headline import _evaluation

    ev = _evaluation(tmp_path, n=8)
    folder = tmp_path / "pred"
    for m_key in ev.results[0]:
        for s in ev.seeds:
            (folder / f"seed{s}" / m_key).mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(type(ev), "method_dir", lambda self, m, seed: folder / f"seed{seed}" / m.key)
    I._STATS.clear()
    first = E.headline(ev)
    files = sorted(folder.rglob("clipstats-*.npz"))
    assert files and all(f.stat().st_size > 0 for f in files)
    I._STATS.clear()
    S._SEED_REPS.clear()
    calls = []
    monkeypatch.setattr(S, "clip_stats", lambda *a, **k: calls.append(1))
    assert E.headline(ev) == first and not calls          # read back, not recomputed
