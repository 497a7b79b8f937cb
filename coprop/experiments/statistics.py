"""Confidence intervals for the tables: a two-level bootstrap over training seeds and test clips.

Every J, F and Alignment Rate of a table is a mean over training seeds of a score over the same test clips.
Its 95 % interval comes from resampling both sources of variation at once (Davison & Hinkley 1997, §3.8,
hierarchical data): each of ``B`` replicates draws the seeds with replacement and, independently, the test clips
with replacement (one clip draw shared by all seeds and all methods of the replicate), recomputes each drawn
seed's score on the drawn clips exactly as the official protocol aggregates them (J: mean over the frames of the
drawn clips; F: mean over F-batches of ``fbatch`` consecutive drawn clips of the batch's max-F; Alignment Rate:
aligned frames / assessed frames), and averages over the drawn seeds. The interval is the 2.5-97.5 percentile
range of the replicates (percentile bootstrap). A *paired* difference A - B uses the same draws for A and B, so
the clip-to-clip and seed-to-seed variation both methods share cancels; identical methods give exactly 0 [0, 0].

With 3 seeds the seed level is coarse (a draw holds at most 3 distinct seeds): intervals are approximate, and
they cover test-clip sampling and training-seed variation, not the choice of the synthetic benchmark's seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

B_DEFAULT = 2000
LEVEL = 0.95


@dataclass
class ClipStats:
    """Per-clip sums of one method on one seed, from which any pooled score over a clip sample follows.

    j_sum, j_n      float64 [C]: sum of per-frame J (binary IoU, AVSBench rule) and number of scored frames
    f_curve, f_n    float64 [C,255]: sum of the per-frame F-curves of the clip's non-empty-GT frames, and their count
    aligned, assessed  dict 'all' | 'near' | 'far' -> int64 [C]: aligned and assessed frames (Alignment Rate)
    """

    j_sum: np.ndarray
    j_n: np.ndarray
    f_curve: np.ndarray
    f_n: np.ndarray
    aligned: dict[str, np.ndarray]
    assessed: dict[str, np.ndarray]

    @property
    def num_clips(self) -> int:
        return len(self.j_n)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1e-300), np.nan)


def metric_on(stats: ClipStats, metric: str, idx: np.ndarray, fbatch: int = 4) -> np.ndarray:
    """``metric`` ('J', 'F', 'AR all', 'AR near', 'AR far') on clip samples ``idx`` (int [R,C'] or [C']):
    one value per row, as a fraction (NaN where no frame counts)."""
    idx = np.atleast_2d(idx)
    if metric == "J":
        return _ratio(stats.j_sum[idx].sum(1), stats.j_n[idx].sum(1))
    if metric.startswith("AR "):
        key = metric[3:]
        return _ratio(stats.aligned[key][idx].sum(1).astype(float), stats.assessed[key][idx].sum(1).astype(float))
    if metric == "F":
        R, C = idx.shape
        G = -(-C // fbatch)
        curves_all, n_all = stats.f_curve, stats.f_n
        if G * fbatch > C:   # the last F-batch is short: pad with a clip that has no frame (adds 0 to its sums)
            curves_all = np.vstack([curves_all, np.zeros((1, curves_all.shape[1]))])
            n_all = np.append(n_all, 0.0)
            idx = np.hstack([idx, np.full((R, G * fbatch - C), len(n_all) - 1)])
        out = np.empty(R)
        for lo in range(0, R, 512):   # chunks keep the [r, G, 255] array small
            sel = idx[lo:lo + 512].reshape(-1, G, fbatch)
            curves = curves_all[sel[..., 0]]              # [r,G,255]: the batch's summed F-curves, clip by clip
            for j in range(1, fbatch):
                curves += curves_all[sel[..., j]]
            n = n_all[sel].sum(2)
            # max over thresholds of curve / n is max(curve) / n (n > 0 is one number per batch); a batch with
            # no non-empty-GT frame scores 0 (official Eval_Fmeasure), it is not skipped
            best = np.where(n > 0, curves.max(-1) / np.maximum(n, 1), 0.0)
            out[lo:lo + len(sel)] = best.mean(1)
        return out
    raise ValueError(f"unknown metric {metric!r}: use 'J', 'F', 'AR all', 'AR near' or 'AR far'")


@dataclass
class Draws:
    """The resampling plan shared by every method of a table: seed positions [B,S] and clip indices [B,C]."""

    seeds: np.ndarray
    clips: np.ndarray

    @classmethod
    def make(cls, num_seeds: int, num_clips: int, B: int = B_DEFAULT, rng_seed: int = 0) -> "Draws":
        rng = np.random.default_rng([rng_seed, num_seeds, num_clips])
        return cls(rng.integers(0, num_seeds, (B, num_seeds)), rng.integers(0, num_clips, (B, num_clips)))


# (id(stats), metric, fbatch, id(draws.clips)) -> (stats, draws.clips, [B] replicates): a table scores the same
# method on the same draws several times (its row, then each paired difference to it); the objects are held so
# their ids cannot be reused while the entry lives
_SEED_REPS: dict[tuple, tuple] = {}


def _seed_replicates(stats: ClipStats, metric: str, clips: np.ndarray, fbatch: int) -> np.ndarray:
    key = (id(stats), metric, fbatch, id(clips))
    if key not in _SEED_REPS:
        if len(_SEED_REPS) > 4096:
            _SEED_REPS.clear()
        _SEED_REPS[key] = (stats, clips, metric_on(stats, metric, clips, fbatch))
    return _SEED_REPS[key][2]


def _replicates(per_seed: Sequence[ClipStats], metric: str, draws: Draws, fbatch: int) -> np.ndarray:
    """[B] bootstrap replicates of the seed-mean of ``metric``."""
    if draws.seeds.shape[1] != len(per_seed) or draws.clips.shape[1] != per_seed[0].num_clips:
        raise ValueError(f"draws were made for {draws.seeds.shape[1]} seeds x {draws.clips.shape[1]} clips, "
                         f"the scores have {len(per_seed)} x {per_seed[0].num_clips}: use Draws.make(S, C)")
    by_seed = np.stack([_seed_replicates(s, metric, draws.clips, fbatch) for s in per_seed])   # [S,B]
    picked = np.take_along_axis(by_seed, draws.seeds.T, axis=0)                        # [S,B], seeds drawn
    with np.errstate(invalid="ignore"):
        return np.nanmean(picked, axis=0) if np.isfinite(picked).any() else np.full(picked.shape[1], np.nan)


def point(per_seed: Sequence[ClipStats], metric: str, fbatch: int = 4) -> float:
    """Mean over seeds of ``metric`` on all clips (a fraction)."""
    all_clips = np.arange(per_seed[0].num_clips)
    vals = np.array([metric_on(s, metric, all_clips, fbatch)[0] for s in per_seed])
    return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")


def _interval(reps: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    if not len(reps):
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(reps, [a, 1 - a])
    return float(lo), float(hi)


def interval(per_seed: Sequence[ClipStats], metric: str, draws: Draws, fbatch: int = 4,
             level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, lo, hi) of ``metric`` over seeds and clips, as fractions; see the module docstring."""
    return (point(per_seed, metric, fbatch), *_interval(_replicates(per_seed, metric, draws, fbatch), level))


def paired(a: Sequence[ClipStats], b: Sequence[ClipStats], metric: str, draws: Draws, fbatch: int = 4,
           level: float = LEVEL, metric_b: str | None = None) -> tuple[float, float, float]:
    """(A - B, lo, hi): the paired difference of two methods scored on the same clips and the same seeds
    (``a[i]`` and ``b[i]`` come from the same training seed); ``metric_b`` (default ``metric``) compares two
    metrics, e.g. one method's Alignment Rate near conversions against its rate far from them."""
    if len(a) != len(b):
        raise ValueError(f"paired difference needs the same seeds for both methods ({len(a)} vs {len(b)})")
    mb = metric_b or metric
    d = _replicates(a, metric, draws, fbatch) - _replicates(b, mb, draws, fbatch)
    return (point(a, metric, fbatch) - point(b, mb, fbatch), *_interval(d, level))


AGREES, DISAGREES, UNRESOLVED = "agrees", "disagrees", "not resolved at this size"


def verdict(lo: float, hi: float, paper_sign: int) -> str:
    """Does a measured difference with interval [lo, hi] agree with the paper's claim that it is
    > 0 (``paper_sign`` +1) or < 0 (-1)? 'agrees' / 'disagrees' when the interval excludes 0 on the claimed /
    the other side, else 'not resolved at this size'."""
    if paper_sign not in (1, -1):
        raise ValueError("paper_sign must be +1 (the paper finds A > B) or -1 (A < B)")
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 <= hi:
        return UNRESOLVED
    return AGREES if (lo > 0) == (paper_sign > 0) else DISAGREES


def separated(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    """True when interval a lies entirely below interval b (hi of a < lo of b)."""
    return bool(np.isfinite(a[2]) and np.isfinite(b[1]) and a[2] < b[1])


def clip_stats(logits: Sequence, masks: Sequence, gt_available: Sequence, control_points: Sequence,
               scored: Sequence | None = None, k: int = 1, tau: float = 0.5,
               area_floor: float | None = None) -> ClipStats:
    """ClipStats of binary predictions: per clip ``logits`` [T,1,H,W] or [T,H,W], ``masks`` {0,1} [T,H,W],
    ``gt_available`` bool [T], GT ``control_points`` [T] (near/far split) and ``scored`` bool [T] (the frames
    counted, default all annotated frames). Uses coprop.metrics' exact per-frame J, F-curves and alignment."""
    import torch

    from coprop.metrics import AREA_FLOOR, alignment_rate, binary_jaccard, fmeasure_curves

    floor = AREA_FLOOR if area_floor is None else area_floor
    C = len(logits)
    out = ClipStats(np.zeros(C), np.zeros(C), np.zeros((C, 255)), np.zeros(C),
                    {k_: np.zeros(C, np.int64) for k_ in ("all", "near", "far")},
                    {k_: np.zeros(C, np.int64) for k_ in ("all", "near", "far")})
    for i in range(C):
        lg = torch.as_tensor(logits[i]).float()
        lg = lg[:, 0] if lg.ndim == 4 else lg
        g = torch.as_tensor(np.asarray(masks[i])).float()
        avail = np.asarray(gt_available[i], bool) & (np.ones(len(g), bool) if scored is None
                                                     else np.asarray(scored[i], bool))
        idx = torch.from_numpy(np.flatnonzero(avail))
        if len(idx):
            out.j_sum[i] = float(binary_jaccard(lg[idx], g[idx]).double().sum())
            out.j_n[i] = len(idx)
            curves, nonempty = fmeasure_curves(lg[idx], g[idx])
            out.f_curve[i] = curves[nonempty].double().sum(0).numpy()
            out.f_n[i] = int(nonempty.sum())
        pred = (torch.sigmoid(lg) > 0.5).long().numpy()
        al = alignment_rate(pred, g.long().numpy(), "binary", control_points[i], k, tau, floor, avail)
        for key in ("all", "near", "far"):
            out.aligned[key][i], out.assessed[key][i] = al[f"aligned_{key}"], al[f"n_{key}"]
    return out

