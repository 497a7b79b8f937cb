"""Table cells with intervals: a method's per-clip statistics on an ``Evaluation`` (per training seed), its mean
and 95 % interval for J, F and the Alignment Rates, paired differences between rows, and the paper's claims
checked against them (coprop.experiments.statistics has the bootstrap; this module feeds it the predictions).

Columns follow coprop.report_tables: ``ours: J %`` with ``ours: J %_lo`` / ``ours: J %_hi`` (in %), shown as
"44.5 [42.1, 46.9]".
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from coprop.experiments import statistics as S
from coprop.experiments.evaluation import Evaluation
from coprop.experiments.methods import Method

FBATCH = 4          # videos per F-batch (the official AVSBench test.sh): F depends on it, every table states it
B = S.B_DEFAULT     # bootstrap replicates
_STATS: dict[str, list] = {}   # method predictions' per-clip statistics, per (clips, method, frames, seed)


def _clips_key(ev: Evaluation) -> str:
    return hashlib.sha1("|".join(c.name for c in ev.clips).encode()).hexdigest()[:12]


def binary(ev: Evaluation) -> bool:
    return ev.clips[0].mode == "binary"


def method_stats(ev: Evaluation, m: Method, frames: str = "all", seeds: list[int] | None = None) -> list:
    """ClipStats of ``m`` per seed (``seeds``, default the seeds it was run for): frames 'all', 'key' (the frames
    the method made keyframes) or 'normal' (the propagated ones). Binary data only."""
    from coprop.experiments.clips import gt_control_points

    out = []
    for seed in (ev.seeds_of(m) if seeds is None else seeds):
        key = f"{_clips_key(ev)}/{m.key}/{frames}/{seed}/{ev.k}/{id(ev.results[seed][m.key])}"
        if key not in _STATS:
            res = ev.results[seed][m.key]
            cps = [np.asarray(r.control_points, bool) for r in res]
            scored = None if frames == "all" else [cp if frames == "key" else ~cp for cp in cps]
            _STATS[key] = S.clip_stats([r.logits for r in res], [c.masks for c in ev.clips],
                                       [c.gt_available for c in ev.clips],
                                       [gt_control_points(c) for c in ev.clips], scored, k=ev.k)
        out.append(_STATS[key])
    return out


def draws(num_seeds: int, num_clips: int) -> S.Draws:
    """The resampling plan of every table with this many seeds and clips (fixed: reruns give the same intervals)."""
    return S.Draws.make(num_seeds, num_clips, B=B, rng_seed=0)


def cells(ev: Evaluation, m: Method, frames: str = "all", metrics=("J", "F"), prefix: str = "ours: ",
          seeds: list[int] | None = None) -> dict[str, Any]:
    """``{prefix + 'J %': mean, ... '_lo', '_hi'}`` in % for ``metrics`` ('J', 'F', 'AR all', 'AR near',
    'AR far'); semantic data (no per-clip bootstrap for mIoU yet): means over seeds, intervals left empty."""
    seeds = ev.seeds_of(m) if seeds is None else seeds
    out: dict[str, Any] = {}
    if not binary(ev):
        s = ev.scores(m, frames)
        for metric in metrics:
            out.update({f"{prefix}{metric} %": s[metric], f"{prefix}{metric} %_lo": None,
                        f"{prefix}{metric} %_hi": None})
        return out
    st = method_stats(ev, m, frames, seeds)
    plan = draws(len(st), len(ev.clips))
    for metric in metrics:
        mean, lo, hi = S.interval(st, metric, plan, FBATCH)
        out.update({f"{prefix}{metric} %": 100 * mean, f"{prefix}{metric} %_lo": 100 * lo,
                    f"{prefix}{metric} %_hi": 100 * hi})
    return out


def paired_cells(ev: Evaluation, a: Method, b: Method, metric: str = "J", frames_a: str = "all",
                 frames_b: str = "all", name: str = "Δ J vs reference %") -> dict[str, Any]:
    """The paired difference a - b (in % points) on the seeds both were run for, with its interval."""
    d = paired(ev, a, b, metric, frames_a, frames_b)
    return {name: 100 * d[0], f"{name}_lo": 100 * d[1], f"{name}_hi": 100 * d[2]}


def paired(ev: Evaluation, a: Method, b: Method, metric: str = "J", frames_a: str = "all",
           frames_b: str = "all", metric_b: str | None = None) -> tuple[float, float, float]:
    """(a - b, lo, hi) as fractions, on the seeds both methods were run for; NaNs for semantic data.
    ``metric_b``: compare a's ``metric`` with b's ``metric_b`` (e.g. AR near - AR far of one method)."""
    seeds = [s for s in ev.seeds_of(a) if s in ev.seeds_of(b)]
    if not binary(ev) or not seeds:
        return float("nan"), float("nan"), float("nan")
    sa, sb = method_stats(ev, a, frames_a, seeds), method_stats(ev, b, frames_b, seeds)
    return S.paired(sa, sb, metric, draws(len(seeds), len(ev.clips)), FBATCH, metric_b=metric_b)


def claim(ev: Evaluation, text: str, a: Method, b: Method, sign: int = 1, metric: str = "J",
          frames_a: str = "all", frames_b: str = "all") -> dict[str, Any]:
    """One paper claim ("a beats b" when ``sign`` is +1) checked on this run: the paired difference with its
    interval and the verdict in words (agrees / disagrees / not resolved at this size)."""
    d, lo, hi = paired(ev, a, b, metric, frames_a, frames_b)
    return {"paper's claim": text, "measured": f"{metric} {a.label} - {b.label}",
            f"Δ {metric} %": 100 * d, f"Δ {metric} %_lo": 100 * lo, f"Δ {metric} %_hi": 100 * hi,
            "seeds": ",".join(map(str, [s for s in ev.seeds_of(a) if s in ev.seeds_of(b)])),
            "verdict": S.verdict(lo, hi, sign)}


def seeds_text(ev: Evaluation, m: Method) -> str:
    return ",".join(map(str, ev.seeds_of(m)))
