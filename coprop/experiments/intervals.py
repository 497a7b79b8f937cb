"""Table cells with intervals: a method's per-clip statistics on an ``Evaluation`` (per training seed), its mean
and 95 % interval for J, F and the Alignment Rates, paired differences between rows, and the paper's claims
checked against them (coprop.experiments.statistics has the bootstrap; this module feeds it the predictions).

Columns follow coprop.report_tables: ``ours: J %`` with ``ours: J %_lo`` / ``ours: J %_hi`` (in %), shown as
"44.5 [42.1, 46.9]".
"""
from __future__ import annotations

import functools
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
    the method made keyframes) or 'normal' (the propagated ones). Binary data only. Kept in memory and, when
    the predictions are cached on disk, beside them (``_stats_file``): the demo's headline computes them once
    and notebooks 05 and 06 read them."""
    from coprop.experiments.clips import gt_control_points

    out = []
    for seed in (ev.seeds_of(m) if seeds is None else seeds):
        key = f"{_clips_key(ev)}/{m.key}/{frames}/{seed}/{ev.k}/{id(ev.results[seed][m.key])}"
        if key not in _STATS:
            f = _stats_file(ev, m, frames, seed)
            st = _read_stats(f) if f is not None else None
            if st is None:
                res = ev.results[seed][m.key]
                cps = [np.asarray(r.control_points, bool) for r in res]
                scored = None if frames == "all" else [cp if frames == "key" else ~cp for cp in cps]
                st = S.clip_stats([r.logits for r in res], [c.masks for c in ev.clips],
                                  [c.gt_available for c in ev.clips],
                                  [gt_control_points(c) for c in ev.clips], scored, k=ev.k)
                if f is not None:
                    _write_stats(f, st)
            _STATS[key] = st
        out.append(_STATS[key])
    return out


STATS_VERSION = 1   # bump when clip_stats or coprop.metrics change what a ClipStats holds


def _stats_file(ev: Evaluation, m: Method, frames: str, seed: int):
    """``<method's prediction folder>/clipstats-v1-<frames>-k<k>-<clips>.npz``, or None without a cache."""
    folder = ev.method_dir(m, seed)
    if folder is None or not folder.is_dir():
        return None
    return folder / f"clipstats-v{STATS_VERSION}-{frames}-k{ev.k}-{_clips_key(ev)}.npz"


def _write_stats(f, st: S.ClipStats) -> None:
    from coprop.io import atomic_path

    arrays = {"j_sum": st.j_sum, "j_n": st.j_n, "f_curve": st.f_curve, "f_n": st.f_n,
              **{f"aligned_{k}": v for k, v in st.aligned.items()},
              **{f"assessed_{k}": v for k, v in st.assessed.items()}}
    with atomic_path(f) as tmp, open(tmp, "wb") as fh:   # two notebooks may write it at once: last one wins
        np.savez(fh, **arrays)


def _read_stats(f) -> S.ClipStats | None:
    if not f.is_file():
        return None
    try:
        with np.load(f) as z:
            keys = ("all", "near", "far")
            return S.ClipStats(z["j_sum"], z["j_n"], z["f_curve"], z["f_n"], {k: z[f"aligned_{k}"] for k in keys},
                               {k: z[f"assessed_{k}"] for k in keys})
    except (OSError, KeyError, ValueError):   # unreadable (e.g. cut short by a full disk): computed again
        return None


@functools.lru_cache(maxsize=64)
def draws(num_seeds: int, num_clips: int) -> S.Draws:
    """The resampling plan of every table with this many seeds and clips (fixed: reruns give the same intervals;
    one object per shape, so statistics can reuse a method's replicates across the rows that compare with it)."""
    return S.Draws.make(num_seeds, num_clips, B=B, rng_seed=0)


def frames_scored(ev: Evaluation, m: Method, frames: str = "all") -> dict[str, int]:
    """``{'frames', 'frames near'}``: annotated frames a row scores (among ``frames``) and those of them within
    ±k of a GT conversion, on the method's first seed, as Evaluation.scores counts them -- read from the per-clip
    statistics instead of scoring every frame a second time (binary data; semantic data is scored)."""
    if not binary(ev):
        s = ev.scores(m, frames)
        return {"frames": s["frames"], "frames near": s["frames near"]}
    st = method_stats(ev, m, frames, ev.seeds_of(m)[:1])[0]
    return {"frames": int(st.j_n.sum()), "frames near": int(st.assessed["near"].sum())}


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
